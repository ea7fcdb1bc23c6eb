"""The Analyze page's results: the player component (waveform, spectrogram, label lanes and
events on one time axis, playing from the exact instant clicked: ``st.audio`` floors to
whole seconds), the event table beside it, review, and downloads.

The player is a Streamlit custom component v2 (inline HTML/CSS/JS from ``frontend/``, no
iframe, no build step): plain JavaScript on canvases, because nothing on npm or PyPI
draws probability lanes, a spectrogram and review status on one axis, and the app must
not need a bundler to start. See README "The player".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from sonotag_app import context
from sonotag_app.keys import KEYS, keyed
from sonotag_core import access, exports
from sonotag_core.dashboard import charts
from sonotag_core.dashboard.workbench_data import workbench_payload
from sonotag_core.domain import review
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.report import Report
from sonotag_core.domain.timefmt import clock
from sonotag_core.errors import SonoTagError
from sonotag_core.service import spans as span_service
from sonotag_core.service.library import Analysed

FRONTEND = Path(__file__).parent / "frontend"
NAME = "sonotag_workbench"
STATUS_FILTERS = {
    "all": "All events",
    "": "Not reviewed",
    "accepted": "Accepted",
    "rejected": "Rejected",
    review.ADDED: "Added",
    review.NEGATIVE: "Checked: not there",
}


@cache
def _component() -> Any:
    """Registered once per process (re-registering on every run would log a warning)."""

    def read(suffix: str) -> str:
        return (FRONTEND / f"workbench{suffix}").read_text(encoding="utf-8")

    # no shadow root: the page theme's CSS variables and the tests reach it directly; every
    # rule in workbench.css is scoped under .wb
    return st.components.v2.component(
        NAME, html=read(".html"), css=read(".css"), js=read(".js"), isolate_styles=False
    )


TRIGGERS = ("pick", "review", "span", "similar", "skip")  # what workbench.js reports


def mount(
    payload: Mapping[str, Any],
    *,
    key: str = KEYS.player,
    on_pick: Callable[[], None] | None = None,
    on_review: Callable[[], None] | None = None,
    **on: Callable[[], None],
) -> Any:
    """Mount the player; its triggers ``pick`` ({t, event}), ``review`` ({event,
    status}), ``span`` ({label, onset_s, offset_s, kind}), ``similar`` ({onset_s,
    offset_s, label}) and ``skip`` reach ``st.session_state[key]`` and the callbacks
    (``on_span=...``), once per action."""
    callbacks = {"pick": on_pick, "review": on_review}
    callbacks.update({name.removeprefix("on_"): fn for name, fn in on.items()})
    return _component()(
        data=dict(payload),
        key=key,
        **{f"on_{name}_change": callbacks.get(name) or (lambda: None) for name in TRIGGERS},
    )


def trigger(name: str, key: str = KEYS.player) -> Any:
    """The value of trigger ``name`` of the player mounted under ``key`` (or None)."""
    value = st.session_state.get(key)
    if value is None:
        return None
    try:
        return value[name]
    except (KeyError, TypeError):
        return getattr(value, name, None)


def seek_to(t: float, *, event: int | None = None, play: bool = True) -> None:
    """Ask the player to jump to ``t`` on its next render (an event-row click, a link)."""
    previous = st.session_state.get(KEYS.seek) or {}
    nonce = int(previous.get("nonce", 0)) + 1
    st.session_state[KEYS.seek] = {"t": float(t), "nonce": nonce, "play": play}
    st.session_state[KEYS.selected] = event
    st.session_state[KEYS.picked_t] = float(t)


def event_table(events: pd.DataFrame) -> pd.DataFrame:
    """The table users read: m:ss times, a duration, the peak, the review status (the
    exports keep the mean and exact seconds); ``id`` is the
    event's row in the report (hidden, it maps a clicked row back to its event)."""
    out = pd.DataFrame(
        {
            "id": range(len(events)),
            "label": events["label"].astype(str),
            "start": [clock(t) for t in events["onset_s"]],
            "end": [clock(t) for t in events["offset_s"]],
            "duration (s)": (events["offset_s"] - events["onset_s"]).round(2),
            "peak": events["peak"],
        }
    )
    if "status" in events:
        out["status"] = events["status"].fillna("").astype(str)
    return out


def download_stem(title: str | None) -> str:
    """A file name from the audio's title (titles carry no suffix: "Mr. Smith" stays
    whole): no folders, no backslashes or NULs."""
    stem = re.sub(r"[\\/\x00]", "_", title or "").strip(" .")
    return stem or "sonotag"


# ---------------------------------------------------------------- the section


def show(result: Analysed, report: Report, params: EventParams, views: Mapping[str, str]) -> None:
    """Everything under the inputs once an analysis is on screen."""
    src, tl = result.source, report.timeline
    aid = result.analysis_id
    events = report.events.reset_index(drop=True)  # with their review status
    mine = context.may_change(aid)  # None: not stored; False: opened through its link
    can_review = mine is True  # only the owner (or the operator) gives verdicts
    st.subheader(context.md_text(src.title))
    with st.container():  # always there, so the player below keeps its place on the page
        if mine is False:
            st.caption(
                "Shared with you through its link, read-only: only the person who made "
                "it can delete or review it. Analyze it again to keep a copy of your own."
            )
        if result.warning:
            context.warning(result.warning)
    took = (
        "from the Library"
        if result.seconds == 0 and result.analysis_id
        else f"{result.seconds:.1f} s"
    )
    with st.container(horizontal=True, gap="medium"):
        st.metric("Duration", clock(tl.duration_s, 1), width="content")
        st.metric("Windows", result.embeddings.n_windows, width="content")
        st.metric("Events", len(review.detected_only(events)), width="content")
        st.metric("Analysis time", took, width="content")

    view = (
        st.segmented_control(
            "View", list(views), key=KEYS.view, format_func=views.__getitem__, required=True
        )
        or "timeline"
    )
    colors = charts.label_colors(tl.labels, tl.negatives)
    thresholds = {lab: params.threshold_for(lab) for lab in tl.labels}
    counts = review.review_counts(events, [lab for lab in tl.labels if lab not in tl.negatives])
    player, table = st.columns([3, 2], gap="medium")
    refined = refined_labels(report)
    if refined:
        st.caption(
            "Scored by refined detectors: "
            + context.md_text(", ".join(f"{k} · {v}" for k, v in refined.items()))
        )
    with player:
        _player(result, tl, events, thresholds, colors, view, counts, can_review, refined)
    with table:
        _events(events, counts, aid if can_review else None, aid, src.title)
    if view == "scores":
        st.altair_chart(charts.scores_chart(report.clip_scores), width="stretch")
    _downloads(report, download_stem(src.title))


def refined_labels(report: Report) -> dict[str, str]:
    """label -> "refined v3" for each label a detector scored (the report's settings)."""
    used = report.settings.get("detectors") or {}
    return {
        str(label): f"refined v{int(d.get('version') or 0)}"
        for label, d in used.items()
        if isinstance(d, Mapping)
    }


def mark_span(analysis_id: str, label: str, onset_s: float, offset_s: float, kind: str) -> bool:
    """Keep a marked span (added / negative) on a stored analysis under the rules of
    verdicts; an error becomes the message shown under the player. True when kept."""
    try:
        span = review.Span(label, float(onset_s), float(offset_s), kind)
        span_service.mark_span(context.store(), context.viewer(), analysis_id, span)
        return True
    except (SonoTagError, TypeError, ValueError) as exc:
        st.session_state[KEYS.review_error] = str(exc)
        return False


def delete_span(analysis_id: str, event: Mapping[str, Any]) -> None:
    """Forget the marked span a row of the event table shows."""
    try:
        store = context.store()
        for span in span_service.list_spans(store, analysis_id):
            same = span.label == str(event["label"]) and span.kind == str(event["status"])
            if same and abs(span.onset_s - float(event["onset_s"])) < 1e-6 and span.id is not None:
                span_service.delete_span(store, context.viewer(), analysis_id, span.id)
    except SonoTagError as exc:
        st.session_state[KEYS.review_error] = str(exc)


def record_review(
    analysis_id: str, event: Mapping[str, Any], status: str, relabel: str | None = None
) -> None:
    """Store (or clear, for status "") the verdict on one event; errors become a message."""
    try:
        store = context.store()
        owner = store.analysis_owner(analysis_id)
        access.check_change(context.viewer(), owner or "", "review")
        label, onset = str(event["label"]), float(event["onset_s"])
        if status:
            verdict = review.Review.of_event(
                label, onset, float(event["offset_s"]), status, relabel=relabel
            )
            store.set_review(analysis_id, verdict, reviewer=context.viewer().owner)
        else:
            store.clear_review(analysis_id, label, review.onset_frame(onset))
    except SonoTagError as exc:
        st.session_state[KEYS.review_error] = str(exc)


def _player(
    result: Analysed,
    tl: Any,
    events: pd.DataFrame,
    thresholds: dict[str, float],
    colors: dict[str, str],
    view: str,
    counts: Mapping[str, review.ReviewCount],
    can_review: bool,
    refined: Mapping[str, str] | None = None,
) -> None:
    src = result.source
    url = context.audio_url(src.path) if src.path.is_file() else None
    overview = context.overview(src) if src.path.is_file() else None
    ss = st.session_state
    if KEYS.seek not in ss:  # the first view: a link's &t= (or a YouTube link's own t=)
        start = ss.get(KEYS.picked_t)
        if start is None and src.start_s:
            start = src.start_s
        if start is not None:
            seek_to(start, event=ss.get(KEYS.selected), play=False)
    payload = workbench_payload(
        tl,
        events,
        thresholds=thresholds,
        colors=colors,
        view=view if view != "scores" else "timeline",
        overview=overview,
        audio_url=url,
        audio_key=f"{src.content_id}:{url is not None}",
        seek=ss.get(KEYS.seek),
        selected=ss.get(KEYS.selected),
        can_review=can_review,
        can_search=bool(result.analysis_id),
        refined=refined,
        review_counts={k: {"events": c.events, "reviewed": c.reviewed} for k, c in counts.items()},
    )

    def picked() -> None:
        pick = trigger("pick")
        if isinstance(pick, Mapping) and pick.get("t") is not None:
            ss[KEYS.picked_t] = float(pick["t"])
            ss[KEYS.selected] = pick.get("event")

    def reviewed() -> None:
        verdict = trigger("review")
        if not isinstance(verdict, Mapping) or not result.analysis_id:
            return
        i = verdict.get("event")
        if isinstance(i, int) and 0 <= i < len(events):
            record_review(result.analysis_id, events.iloc[i], str(verdict.get("status") or ""))
            ss[KEYS.selected] = i

    def marked() -> None:
        span = trigger("span")
        if isinstance(span, Mapping) and result.analysis_id:
            kind = str(span.get("kind") or "")
            if kind in review.SPAN_KINDS:
                mark_span(
                    result.analysis_id,
                    str(span.get("label") or ""),
                    span.get("onset_s"),  # type: ignore[arg-type]  # checked by Span
                    span.get("offset_s"),  # type: ignore[arg-type]
                    kind,
                )

    def similar() -> None:
        example = trigger("similar")
        if isinstance(example, Mapping) and result.analysis_id:
            ask_similar(result.analysis_id, example, result.source.title)

    mount(payload, on_pick=picked, on_review=reviewed, on_span=marked, on_similar=similar)
    if KEYS.review_error in ss:
        context.error(ss.pop(KEYS.review_error))
    if url is None:
        st.caption("The audio is not kept on this server: results are shown without playback.")


def ask_similar(analysis_id: str, example: Mapping[str, Any], title: str = "") -> None:
    """Find similar from this stretch of a stored analysis (found on the next run)."""
    try:
        at, to = float(example["onset_s"]), float(example["offset_s"])
    except (KeyError, TypeError, ValueError):
        return
    st.session_state[KEYS.similar] = {
        "analysis_id": analysis_id,
        "at": at,
        "to": to,
        "label": str(example.get("label") or ""),
        "title": title,
    }
    st.session_state.pop(KEYS.similar_hits, None)


def _events(
    events: pd.DataFrame,
    counts: Mapping[str, review.ReviewCount],
    analysis_id: str | None,
    stored_id: str | None = None,
    title: str = "",
) -> None:
    st.markdown("**Events**")
    if not len(events):
        st.info("No events above the threshold. Lower the threshold or try other labels.")
        return
    total = sum(c.events for c in counts.values())
    done = sum(c.reviewed for c in counts.values())
    st.caption(
        f"{done} of {total} reviewed · "
        + " · ".join(
            f"{context.md_text(c.label)} {c.reviewed}/{c.events}"
            for c in counts.values()
            if c.events
        )
    )
    shown = (
        st.segmented_control(
            "Show",
            list(STATUS_FILTERS),
            format_func=STATUS_FILTERS.__getitem__,
            key=KEYS.event_filter,
            default="all",
        )
        or "all"
    )
    table = event_table(events)
    if shown != "all":
        table = table[table["status"] == shown].reset_index(drop=True)

    def row_clicked() -> None:
        rows = (st.session_state.get(KEYS.event_table) or {}).get("selection", {}).get("rows", [])
        if rows and rows[0] < len(table):
            i = int(table.iloc[rows[0]]["id"])
            seek_to(float(events.iloc[i]["onset_s"]), event=i)

    st.dataframe(
        table,
        hide_index=True,
        on_select=row_clicked,
        selection_mode="single-row",
        key=KEYS.event_table,
        height=min(38 + 35 * max(len(table), 1), 420),
        column_order=[c for c in table.columns if c != "id"],
        column_config={
            "peak": st.column_config.NumberColumn(format="%.3f"),
            "duration (s)": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    selected = st.session_state.get(KEYS.selected)
    event = (
        events.iloc[selected] if isinstance(selected, int) and 0 <= selected < len(events) else None
    )
    if event is not None and stored_id:
        st.button(
            f"Find similar to the {clock(float(event['onset_s']))} {event['label']}",
            key=keyed("similar_event", selected),
            icon=":material/manage_search:",
            on_click=ask_similar,
            args=(stored_id, dict(event), title),
            help="The closest moments across your Library (also from the player's span bar).",
        )
    if analysis_id is None:
        st.caption("Click a row to play that event from its onset.")
        return
    st.caption(
        "Click a row to play it. Keys: space play/pause · n/p next/previous · "
        "a accept · r reject · l loop · Shift + drag or [ ] marks a span, then a add · "
        "r not there."
    )
    if event is not None and str(event.get("status", "")) in review.SPAN_KINDS:
        st.button(
            f"Delete this marked span ({clock(float(event['onset_s']))})",
            key=keyed("delete_span", selected),
            icon=":material/delete:",
            on_click=delete_span,
            args=(analysis_id, dict(event)),
        )
        return
    if event is not None:
        with st.form("relabel", border=False, enter_to_submit=True):
            new = st.text_input(
                f"Correct label for the {clock(float(event['onset_s']))} event",
                placeholder=str(event["label"]),
                max_chars=review.MAX_RELABEL_CHARS,
            )
            if st.form_submit_button("Relabel") and new.strip():
                record_review(analysis_id, event, review.ACCEPTED, relabel=new.strip())
                st.rerun()


def _downloads(report: Report, stem: str) -> None:
    """One button for everything (a zip), the single formats in a menu: fits a phone."""
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        reviewed = st.toggle(
            "Accepted events only",
            key=KEYS.download_reviewed,
            help="Exports only the events you accepted, relabelled where you corrected the label.",
        )
        # built on click (deferred), like the single formats: an hour of frames is
        # megabytes of CSV, and every rerun (a threshold, a click) would build it again
        st.download_button(
            "Download all (zip)",
            data=lambda: exports.export_zip(report, stem=stem, reviewed=reviewed),
            file_name=f"{stem}.zip",
            mime="application/zip",
            key=KEYS.download_all,
            on_click="ignore",
            icon=":material/download:",
        )
        with st.popover("One format", icon=":material/description:"):
            for name, fmt in exports.FORMATS.items():
                st.download_button(
                    name,
                    data=functools.partial(exports.export_text, report, name, reviewed=reviewed),
                    file_name=stem + fmt.suffix,
                    mime=fmt.mime,
                    help=fmt.description,
                    key=keyed("dl", name),
                    on_click="ignore",
                    width="stretch",
                )

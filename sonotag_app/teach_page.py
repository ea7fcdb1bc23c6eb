"""Teach: from words to a trained detector. Per label: its detectors (name, versions,
cross-validated metrics, threshold, date), *Refine* (a new version from every review of
the label in the visitor's Library), the JSON card out and in, and *Review next*: the
moments whose verdict would teach the detector most, one at a time in the player (its
lane scored by the latest refit), answered with a / r, skipped with n; every
:data:`REFIT_EVERY` answers (or *Refit now*) the detector refits and the queue reorders.

The refits between answers are not stored (``save=False``): *Refine* keeps a version.
The service does the work (:mod:`sonotag_core.service.teach`, ``.detectors``, ``.spans``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from sonotag_app import analyze_workbench, context
from sonotag_app.keys import KEYS, keyed
from sonotag_core.access import Viewer
from sonotag_core.dashboard import charts
from sonotag_core.dashboard.workbench_data import workbench_payload
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet, parse_labels
from sonotag_core.domain.review import ADDED, NEGATIVE
from sonotag_core.domain.timefmt import clock
from sonotag_core.errors import SonoTagError
from sonotag_core.service import detectors as det
from sonotag_core.service import library
from sonotag_core.service import spans as span_service
from sonotag_core.service.api import Service
from sonotag_core.service.detectors import Detector
from sonotag_core.service.runtime import Store
from sonotag_core.service.teach import QueueItem, Refined

PAGE = "pages/teach.py"
REFIT_EVERY = 5  #: answers between two refits of the queue's detector
QUEUE_SIZE = 20


@dataclass
class Queue:
    """A Review next session of one label: what is left to ask, the detector that ranked
    it (the latest refit, else the stored detector, else None: the text), and progress."""

    label: str
    items: list[QueueItem]
    detector: Detector | None = None
    refit: bool = False  # ``detector`` is a refit of this session (not stored)
    answered: int = 0
    since_refit: int = 0
    reviews: int = 0  # reviewed examples behind the latest refit
    first_f1: float | None = None
    last_f1: float | None = None
    nonce: int = 0  # +1 per moment shown: the player seeks to each new one once
    ranked: bool = True  # False: moments given (Find similar), kept in their order
    notes: list[str] = field(default_factory=list)

    @property
    def item(self) -> QueueItem | None:
        return self.items[0] if self.items else None

    def progress(self) -> str:
        """``14 reviewed · F1 (cross-val) 0.78 → 0.85``."""
        parts = [f"{self.answered} answered here", f"{self.reviews} reviewed"]
        if self.last_f1 is not None:
            first = f"{self.first_f1:.2f} → " if self.first_f1 is not None else ""
            parts.append(f"F1 (cross-val) {first}{self.last_f1:.2f}")
        return " · ".join(parts)

    def lane(self) -> str:
        """What the player's lane says scores it."""
        if self.detector is None:
            return "text only"
        if self.refit:
            return f"refit on {self.reviews} reviews"
        return f"refined v{self.detector.version}"


def _f1(refined: Refined) -> float | None:
    value = refined.validation.f1_mean
    return None if value is None or math.isnan(value) else float(value)


def metrics_text(metrics: Mapping[str, Any]) -> str:
    """``event F1 0.82 ± 0.05 on 34 reviews; text alone 0.41`` from a card's metrics."""
    n = metrics.get("n_events")
    f1, sd, text = metrics.get("f1_mean"), metrics.get("f1_std"), metrics.get("text_f1_mean")
    if f1 is None:
        return f"{n or 0} reviews: too few to estimate (needs 2 of each)"
    tail = f"; text alone {text:.2f}" if isinstance(text, (int, float)) else ""
    return f"event F1 {f1:.2f} ± {sd or 0:.2f} on {n} reviews{tail}"


def _whose(d: Detector, me: Viewer) -> str:
    return "you" if d.owner == me.owner else "another visitor"


def detector_table(found: list[Detector], me: Viewer) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": [d.name for d in found],
            "version": [d.version for d in found],
            "label": [d.label for d in found],
            "metrics": [metrics_text(d.metrics) for d in found],
            "threshold": [d.threshold for d in found],
            "examples": [
                ", ".join(f"{k} {v}" for k, v in d.examples.items() if v and k != "analyses")
                for d in found
            ],
            "made": [
                dt.datetime.fromtimestamp(d.created).strftime("%Y-%m-%d %H:%M") for d in found
            ],
            "by": [_whose(d, me) for d in found],
        }
    )


def _service(store: Store) -> Service:
    return context.service(context.model(), store)


def _known_labels(store: Store, me: Viewer, found: list[Detector]) -> list[str]:
    """The labels to offer: the Analyze page's label box, every detector's, then those of
    the visitor's stored analyses."""
    labels: list[str] = []
    text = st.session_state.get(KEYS.labels) or ""
    try:
        box = parse_labels(str(text), max_labels=64, max_chars=context.settings().max_label_chars)
        labels += list(box.positives)
    except SonoTagError:
        pass
    labels += [d.label for d in found]
    try:
        for row in library.visible_analyses(store, me):
            labels += [x for x in row.labels if x not in row.negatives]
    except SonoTagError:
        pass
    return list(dict.fromkeys(labels))


def _newest(found: list[Detector], label: str) -> Detector | None:
    mine = [d for d in found if d.label == label]
    return max(mine, key=lambda d: (d.created, d.version)) if mine else None


# ---------------------------------------------------------------- the page


def render() -> None:
    """Lay out the Teach page."""
    context.start_page("teach")
    st.title("Teach a label")
    st.caption(
        "Refine a label from your reviews (accepted, rejected, relabelled events and marked "
        "spans) into a detector, review the moments it is least sure of, and share it as a "
        "JSON card."
    )
    context.model_loading_note()
    try:
        store = context.store()
    except SonoTagError as exc:
        context.error(exc)
        return
    me = context.viewer()
    ss = st.session_state
    for kind, text in ss.pop(KEYS.teach_notes, None) or []:
        (st.success if kind == "success" else context.error)(context.md_text(text))
    found = det.list_detectors(store, me)
    options = _known_labels(store, me, found)
    if (current := ss.get(KEYS.teach_label)) and current not in options:
        options.insert(0, current)  # set by Find similar's "review them one by one"
    label = st.selectbox(
        "Label to teach",
        options,
        index=0 if options else None,
        key=KEYS.teach_label,
        accept_new_options=True,
        placeholder="Type a label, e.g. siren",
        help="A label you reviewed on the Analyze page (or type one).",
    )
    label = " ".join(str(label or "").split())
    _detectors(store, me, found, label)
    if label:
        _review_next(store, me, found, label)
    _cards(store, me, found)


def _detectors(store: Store, me: Viewer, found: list[Detector], label: str) -> None:
    st.subheader("Detectors")
    if found:
        st.dataframe(detector_table(found, me), hide_index=True, width="stretch")
    else:
        st.info(
            "No detectors yet. Review some events of a label on the Analyze page (a / r, or "
            "mark what the model missed), then press Refine."
        )
    if not label:
        return
    if st.button(f"Refine “{context.md_text(label)}”", type="primary", key=keyed("refine", label)):
        try:
            with st.spinner("Refining from your reviews…"):
                refined = _service(store).refine(label, viewer=me)
            ss = st.session_state
            ss[KEYS.teach_notes] = [("success", f"Saved {refined.summary()}.")]
            queue = ss.get(KEYS.teach_queue)
            if isinstance(queue, Queue) and queue.label == label:
                queue.detector, queue.refit = refined.detector, False
            st.rerun()
        except SonoTagError as exc:
            context.error(exc)


# ---------------------------------------------------------------- Review next


def _refit(store: Store, me: Viewer, queue: Queue) -> None:
    """Refit the queue's detector from every review so far (not stored) and reorder."""
    service = _service(store)
    try:
        refined = service.refine(queue.label, viewer=me, save=False)
    except SonoTagError as exc:
        queue.notes = [str(exc)]
    else:
        queue.detector, queue.refit = refined.detector, True
        queue.reviews = refined.examples.positives + refined.examples.negatives
        queue.last_f1 = _f1(refined)
        if queue.first_f1 is None:
            queue.first_f1 = queue.last_f1
        queue.notes = []
    queue.since_refit = 0
    if queue.ranked or not queue.items:  # given moments are asked in their order first
        queue.ranked = True
        queue.items = service.review_next(
            queue.label, detector=queue.detector, count=QUEUE_SIZE, viewer=me
        )
    queue.nonce += 1


def _start(store: Store, me: Viewer, found: list[Detector], label: str) -> Queue:
    queue = Queue(label, [], detector=_newest(found, label))
    service = _service(store)
    try:  # where the reviews stand before this session (the F1 it starts from)
        refined = service.refine(label, viewer=me, save=False)
        queue.reviews = refined.examples.positives + refined.examples.negatives
        queue.first_f1 = queue.last_f1 = _f1(refined)
    except SonoTagError:
        pass
    queue.items = service.review_next(label, detector=queue.detector, count=QUEUE_SIZE, viewer=me)
    return queue


def moment(hit: Any, label: str) -> QueueItem:
    """A Find similar result as a moment to review."""
    return QueueItem(hit.analysis_id, hit.title, hit.time_s, hit.end_s, label, hit.similarity)


def review_moments(label: str, items: list[QueueItem]) -> None:
    """Review these moments (Find similar's results) one by one on this page, in their
    order; the detector refits every few answers as in Review next."""
    ss = st.session_state
    ss[KEYS.teach_queue] = Queue(label, list(items), ranked=False)
    ss[KEYS.teach_label] = label
    ss[KEYS.teach_queue_from_similar] = True


def _answer(store: Store, me: Viewer, queue: Queue, present: bool | None) -> None:
    """Yes / no on the moment shown (None: skip it), then refit every few answers."""
    item = queue.item
    if item is None:
        return
    if present is not None:
        try:
            span_service.answer_moment(
                store,
                me,
                item.analysis_id,
                queue.label,
                item.onset_s,
                item.offset_s,
                present=present,
            )
        except SonoTagError as exc:
            queue.notes = [str(exc)]
            return
        queue.answered += 1
        queue.since_refit += 1
    queue.items.pop(0)
    queue.nonce += 1
    if queue.since_refit >= REFIT_EVERY or not queue.items:
        _refit(store, me, queue)


def _review_next(store: Store, me: Viewer, found: list[Detector], label: str) -> None:
    ss = st.session_state
    st.subheader("Review next")
    queue = ss.get(KEYS.teach_queue)
    if not isinstance(queue, Queue) or queue.label != label:
        st.caption(
            "The moments of your Library whose answer would teach the detector most (near "
            "its threshold, spread over files). a: yes, it is there · r: no · n: skip · "
            f"space: play. Every {REFIT_EVERY} answers it refits and the queue reorders."
        )
        if st.button("Start reviewing", key=keyed("start_queue", label), icon=":material/school:"):
            try:
                with st.spinner("Ranking every stored moment…"):
                    ss[KEYS.teach_queue] = _start(store, me, found, label)
            except SonoTagError as exc:
                context.error(exc)
                return
            st.rerun()
        return
    bar = st.container(horizontal=True, vertical_alignment="center", gap="small")
    bar.markdown(f"**{context.md_text(queue.progress())}**")
    if bar.button("Refit now", key=keyed("refit", label), icon=":material/refresh:"):
        with st.spinner("Refitting…"):
            _refit(store, me, queue)
        st.rerun()
    if bar.button("Stop", key=keyed("stop_queue", label)):
        ss.pop(KEYS.teach_queue, None)
        st.rerun()
    for note in queue.notes:
        st.info(context.md_text(note))
    item = queue.item
    if item is None:
        st.success("Nothing left to ask about this label in your Library.")
        return
    st.markdown(
        f"Is there **{context.md_text(label)}** at **{clock(item.onset_s)}** of "
        f"“{context.md_text(item.title)}”? (p = {item.probability:.2f}, "
        f"{context.md_text(queue.lane())})"
    )
    _queue_player(store, queue, item)
    yes, no, skip, _ = st.columns([1, 1, 1, 3])
    if yes.button("Yes (a)", key=keyed("q_yes", queue.nonce), width="stretch"):
        _answer(store, context.viewer(), queue, True)
        st.rerun()
    if no.button("No (r)", key=keyed("q_no", queue.nonce), width="stretch"):
        _answer(store, context.viewer(), queue, False)
        st.rerun()
    if skip.button("Skip (n)", key=keyed("q_skip", queue.nonce), width="stretch"):
        _answer(store, context.viewer(), queue, None)
        st.rerun()


def _queue_player(store: Store, queue: Queue, item: QueueItem) -> None:
    """The player for the moment's analysis: one lane, the label scored by the queue's
    detector; the moment is the chosen span (a / r answer it, n skips)."""
    service = _service(store)
    if queue.detector is not None:
        service = service.with_detectors([queue.detector])
    try:
        opened = service.open(item.analysis_id)
        labels = LabelSet((queue.label,))
        cut = queue.detector.threshold if queue.detector is not None else None
        params = EventParams.from_settings(
            context.settings(), label_thresholds={queue.label: cut} if cut else {}
        )
        report = service.report(opened, labels, params)
    except SonoTagError as exc:
        context.error(exc)
        return
    src = opened.source
    url = context.audio_url(src.path) if src.path.is_file() else None
    overview = context.overview(src) if src.path.is_file() else None
    tl = report.timeline
    events = report.events.reset_index(drop=True)
    payload = workbench_payload(
        tl,
        events,
        thresholds={queue.label: params.threshold_for(queue.label)},
        colors=charts.label_colors(tl.labels, tl.negatives),
        overview=overview,
        audio_url=url,
        audio_key=f"{src.content_id}:{url is not None}",
        seek={"t": max(0.0, item.onset_s - 2.0), "nonce": queue.nonce, "play": False},
        can_review=True,
        refined={queue.label: queue.lane()},
        span={
            "key": f"{item.analysis_id}:{item.onset_s:.3f}:{queue.nonce}",
            "label": queue.label,
            "onset_s": item.onset_s,
            "offset_s": item.offset_s,
        },
        queue=True,
    )
    me = context.viewer()

    def answered() -> None:
        span = analyze_workbench.trigger("span", KEYS.teach_player)
        now = queue.item
        if not isinstance(span, Mapping) or now is None:
            return
        onset = span.get("onset_s")
        if not isinstance(onset, (int, float)) or abs(float(onset) - now.onset_s) > 1e-3:
            return  # a stale answer about a moment already gone (0.0 is a time too)
        kind = span.get("kind")
        if kind in (ADDED, NEGATIVE):
            _answer(store, me, queue, kind == ADDED)

    def skipped() -> None:
        _answer(store, me, queue, None)

    analyze_workbench.mount(payload, key=KEYS.teach_player, on_span=answered, on_skip=skipped)
    if url is None:
        st.caption("The audio is not kept on this server: the lane is shown without playback.")


# ---------------------------------------------------------------- cards


def _cards(store: Store, me: Viewer, found: list[Detector]) -> None:
    st.subheader("Detector cards")
    st.caption(
        "A card is one JSON file: another SonoTag server with the same model checkpoint "
        "gives identical probabilities with it. Cards are JSON only, never pickle."
    )
    out, into = st.columns(2, gap="large")
    with out:
        if found:

            def describe(i: int) -> str:
                d = found[i]
                mine = "" if d.owner == me.owner else f" ({_whose(d, me)})"
                return f"{d.name} v{d.version} · {d.label}{mine}"

            chosen = st.selectbox(
                "Detector", range(len(found)), key=KEYS.teach_detector, format_func=describe
            )
            d = found[chosen if isinstance(chosen, int) and chosen < len(found) else -1]
            st.download_button(
                "Export card (JSON)",
                data=det.card_json(d),
                file_name=f"{analyze_workbench.download_stem(d.name)}-v{d.version}.json",
                mime="application/json",
                icon=":material/download:",
                key=keyed("card", d.owner, d.name, d.version),
            )
        else:
            st.caption("Nothing to export yet.")
    with into:
        upload = st.file_uploader("Import a card", type=["json"], key=KEYS.teach_import)
        ss = st.session_state
        if upload is not None and ss.get(KEYS.teach_import_done) != upload.file_id:
            ss[KEYS.teach_import_done] = upload.file_id
            sha = context.checkpoint_sha256()
            try:
                if sha is None:
                    raise SonoTagError("The model's weights are not here yet: try again soon.")
                kept = det.import_card(store, upload.getvalue(), sha, me)
                ss[KEYS.teach_notes] = [("success", f"Imported {kept.ref} ({kept.label}).")]
                st.rerun()
            except SonoTagError as exc:
                ss[KEYS.teach_notes] = [("error", f"Not imported: {exc}")]
                st.rerun()

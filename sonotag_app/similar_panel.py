"""*Find similar* (query by example) under the Analyze player: the moments of the visitor's
Library closest to the chosen span or event, each with a link that opens it at that
moment and a yes / no that teaches the label (``service.spans.answer_moment``: an
``added`` or a ``negative`` span on that analysis), with an optional "…but not <text>".

The example is handed over in the session (:data:`KEYS.similar`, set by the player's
*Find similar* or the event table's button): ``{analysis_id, at, to, label}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import streamlit as st

from sonotag_app import context, teach_page
from sonotag_app.keys import KEYS, keyed
from sonotag_core.domain.timefmt import clock
from sonotag_core.errors import SonoTagError
from sonotag_core.service import spans as span_service
from sonotag_core.service.similar import SimilarHit

ANALYZE = "pages/analyze.py"
TOP_K = 12


def _close() -> None:
    for key in (KEYS.similar, KEYS.similar_hits, KEYS.similar_notes):
        st.session_state.pop(key, None)


def _answer(hit: SimilarHit, label: str, present: bool) -> None:
    """a / r on a result: keep an added (or negative) span of ``label`` on its analysis."""
    ss = st.session_state
    try:
        span_service.answer_moment(
            context.store(),
            context.viewer(),
            hit.analysis_id,
            label,
            hit.time_s,
            hit.end_s,
            present=present,
        )
        verdict = "added as an example of" if present else "marked: no"
        ss[KEYS.similar_notes] = (
            "success",
            f"{clock(hit.time_s)} of {hit.title}: {verdict} {label}.",
        )
        answered = ss.setdefault(keyed(KEYS.similar_notes, "answered"), {})
        answered[(hit.analysis_id, round(hit.time_s, 3))] = present
    except SonoTagError as exc:
        ss[KEYS.similar_notes] = ("error", str(exc))


def _search(example: dict[str, Any], not_text: str) -> tuple[list[SimilarHit], float]:
    service = context.service(context.model(), context.store())
    t0 = time.perf_counter()
    hits = service.similar(
        example["analysis_id"],
        float(example["at"]),
        float(example["to"]),
        not_text=not_text or None,
        top_k=TOP_K,
        viewer=context.viewer(),
    )
    return hits, time.perf_counter() - t0


def show(labels: Sequence[str], negatives: frozenset[str] | set[str] = frozenset()) -> None:
    """The result list of the example in the session (nothing when there is none)."""
    ss = st.session_state
    example = ss.get(KEYS.similar)
    if not example:
        return
    positives = [x for x in labels if x not in negatives] or [example.get("label") or "sound"]
    with st.container(border=True, key=KEYS.similar_panel):
        head, close = st.columns([5, 1], vertical_alignment="center")
        what = f" ({example['label']})" if example.get("label") else ""
        what += f" of “{example['title']}”" if example.get("title") else ""
        head.markdown(
            f"**Similar moments** to {clock(example['at'])}–{clock(example['to'])}"
            + context.md_text(what)
        )
        close.button("Close", key=keyed(KEYS.similar, "close"), on_click=_close, width="stretch")
        left, right = st.columns(2)
        not_text = left.text_input(
            "…but not", key=KEYS.similar_not, placeholder="e.g. car horn", max_chars=200
        ).strip()
        chosen = str(example.get("label") or "")
        chosen = chosen if chosen in positives else positives[0]
        label = (
            right.selectbox(
                "Answers teach the label",
                positives,
                index=positives.index(chosen),
                key=keyed(KEYS.similar, "label"),
            )
            or chosen
        )
        found = ss.get(KEYS.similar_hits)
        if found is None or found[0] != example or found[1] != not_text:
            try:
                with st.spinner("Searching every stored recording…"):
                    hits, took = _search(example, not_text)
            except SonoTagError as exc:
                context.error(exc)
                return
            found = (dict(example), not_text, hits, took)
            ss[KEYS.similar_hits] = found
        hits, took = found[2], found[3]
        if note := ss.pop(KEYS.similar_notes, None):
            (st.success if note[0] == "success" else context.error)(context.md_text(note[1]))
        if not hits:
            st.info("Nothing like it in the Library yet: analyse more audio first.")
            return
        st.caption(
            f"{len(hits)} closest moments ({took:.2f} s), best first. ✓ adds one as an "
            f"example of the label, ✗ marks it 'checked: not there' (your analyses only)."
        )
        st.button(
            "Review them one by one (a / r / n keys)",
            key=keyed(KEYS.similar, "review"),
            icon=":material/school:",
            on_click=teach_page.review_moments,
            args=(label, [teach_page.moment(h, label) for h in hits]),
            help="Opens them on the Teach page in the player: a yes, r no, n skip.",
        )
        if ss.get(KEYS.teach_queue_from_similar):
            ss.pop(KEYS.teach_queue_from_similar)
            st.switch_page(teach_page.PAGE)
        answered = ss.get(keyed(KEYS.similar_notes, "answered"), {})
        mine: dict[str, bool | None] = {}
        for i, hit in enumerate(hits):
            _row(i, hit, label, labels, answered, mine)


def _row(
    i: int,
    hit: SimilarHit,
    label: str,
    labels: Sequence[str],
    answered: dict[tuple[str, float], bool],
    mine: dict[str, bool | None],
) -> None:
    if hit.analysis_id not in mine:
        mine[hit.analysis_id] = context.may_change(hit.analysis_id)
    # one wrapping row (columns would stack into six lines each on a phone)
    row = st.container(horizontal=True, vertical_alignment="center", gap="small")
    row.markdown(
        f"**{clock(hit.time_s, 1)}** · {hit.similarity:.3f} · "
        + context.md_text(hit.title or "(untitled)"),
        width="content",
    )
    row.page_link(
        ANALYZE,
        label="Open",
        icon=":material/play_arrow:",
        query_params={"analysis": hit.analysis_id, "t": f"{hit.time_s:.2f}", "l": list(labels)},
        width="content",
    )
    state = answered.get((hit.analysis_id, round(hit.time_s, 3)))
    can = mine[hit.analysis_id] is True
    why = None if can else "Only the person who analysed this audio can teach from it."
    for present, text, done in ((True, "✓", "✓ added"), (False, "✗", "✗ no")):
        row.button(
            done if state is present else text,
            key=keyed("sim_yes" if present else "sim_no", i, hit.analysis_id, hit.time_s),
            on_click=_answer,
            args=(hit, label, present),
            disabled=not can,
            help=why
            or (f"Yes: {label} is here" if present else f"No: checked, {label} is not here"),
            type="primary" if state is present else "secondary",
            width="content",
        )

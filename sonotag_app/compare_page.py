"""Compare: two stored analyses, or two label sets on one audio, on one time axis."""

from __future__ import annotations

import streamlit as st

from sonotag_app import context
from sonotag_app.keys import KEYS
from sonotag_core.dashboard import charts
from sonotag_core.domain import compare
from sonotag_core.domain.labels import LabelSet, parse_labels
from sonotag_core.errors import SonoTagError
from sonotag_core.service import library
from sonotag_core.service.library import Analysed
from sonotag_core.untrusted import quoted

MODES = ("Two analyses", "Two label sets on one audio")


def render() -> None:
    """Lay out the Compare page."""
    context.start_page("compare")
    S = context.settings()

    st.title("Compare")
    try:
        store = context.store()
        rows = library.visible_analyses(store, context.viewer())
    except SonoTagError as exc:
        context.error(exc)
        st.stop()
    if not rows:
        st.info("The Library is empty: analyse something on the Analyze page first.")
        st.stop()

    names = {r.id: library.describe(r) for r in rows}
    ids = list(names)
    mode = (
        st.segmented_control(
            "Compare", MODES, key=KEYS.compare_mode, default=MODES[0], required=True
        )
        or MODES[0]
    )

    def label_box(title: str, key: str, default: str):
        text = st.text_area(
            title,
            value=default,
            key=key,
            height=100,
            help="One label per line or separated by ;. A leading '-' marks a negative prompt.",
        )
        return parse_labels(text, max_labels=S.max_labels, max_chars=S.max_label_chars)

    try:
        service = context.service(context.model(), store)
        if mode == MODES[0]:
            left, right = st.columns(2)
            a_id = (
                left.selectbox("A", ids, format_func=names.__getitem__, key=KEYS.compare_a)
                or ids[0]
            )
            b_id = (
                right.selectbox(
                    "B",
                    ids,
                    format_func=names.__getitem__,
                    key=KEYS.compare_b,
                    index=min(1, len(ids) - 1),
                )
                or ids[-1]
            )
            a = service.open(a_id)
            b = service.open(b_id)
            shared = st.text_input(
                "Labels for both (empty: each analysis keeps its own)", key=KEYS.compare_labels
            )
            common = (
                parse_labels(shared, max_labels=S.max_labels, max_chars=S.max_label_chars)
                if shared.strip()
                else None
            )
            sides = [
                ("A", service.timeline(a, _labels(common, a))),
                ("B", service.timeline(b, _labels(common, b))),
            ]
            st.caption(
                f"A: {context.md_text(a.source.title)} ({a.embeddings.duration_s:.1f} s) · "
                f"B: {context.md_text(b.source.title)} ({b.embeddings.duration_s:.1f} s)"
            )
        else:
            one_id = (
                st.selectbox("Audio", ids, format_func=names.__getitem__, key=KEYS.compare_one)
                or ids[0]
            )
            one = service.open(one_id)
            left, right = st.columns(2)
            with left:
                labels_a = label_box(
                    "Labels A", KEYS.compare_labels_a, one.labels.to_text() if one.labels else ""
                )
            with right:
                labels_b = label_box("Labels B", KEYS.compare_labels_b, "")
            sides = [("A", service.timeline(one, labels_a)), ("B", service.timeline(one, labels_b))]
    except SonoTagError as exc:
        context.error(exc)
        st.stop()

    combined = compare.combine(sides)
    threshold = st.slider(
        "Threshold line", 0.01, 0.99, S.threshold, 0.01, key=KEYS.compare_threshold
    )
    st.altair_chart(
        charts.timeline_chart(combined, thresholds=dict.fromkeys(combined.labels, threshold)),
        width="stretch",
    )
    st.markdown("**Clip scores**")
    st.dataframe(compare.score_table(sides), hide_index=True, width="stretch")


def _labels(common: LabelSet | None, analysed: Analysed) -> LabelSet:
    """The labels a side is scored with: the shared ones, else the analysis's own."""
    labels = common or analysed.labels
    if labels is None:
        raise SonoTagError(
            f"{quoted(analysed.source.title)} keeps no labels: type labels for both."
        )
    return labels

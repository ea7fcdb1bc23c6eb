"""Analyze: audio in, labels in, one time axis of results, playback, review, exports and a
share link out. The page only lays out; :mod:`.analyze_inputs` (the sidebar and the link),
:mod:`.analyze_run` (the run and its report) and :mod:`.analyze_workbench` (the player) do
the work."""

from __future__ import annotations

import streamlit as st

from sonotag_app import analyze_inputs, analyze_run, analyze_workbench, context, similar_panel
from sonotag_app.keys import KEYS


def render() -> None:
    """Lay out the Analyze page (st.navigation's default page)."""
    context.start_page("analyze")
    analyze_inputs.load_link_state()

    st.title("SonoTag")
    st.caption("Find when any sound happens in any audio, from words alone.")
    # Messages that come and go sit in containers that are always there: an element's place on
    # the page is its identity, and the player must keep its place (and its playback) when a
    # message or the progress box appears or goes above it.
    with st.container():
        context.model_loading_note()
        analyze_inputs.show_link_warnings()
    inputs = analyze_inputs.render()
    clicked = st.button("Analyze", type="primary", disabled=inputs.labels is None)
    with st.container():
        analyze_run.run_if_asked(inputs, clicked)
    result = st.session_state.get(KEYS.result)
    with st.container():
        shown = analyze_run.report(inputs, result)
    with st.container():
        if shown is not None and result is not None:
            analyze_workbench.show(result, shown[0], shown[1], analyze_inputs.VIEWS)
            tl = shown[0].timeline
            similar_panel.show(tl.labels, tl.negatives)  # Find similar from the player
    analyze_inputs.write_share_link(inputs, result)

"""Analyze: audio in, labels in, one time axis of results, playback, review, exports and a
share link out. The page only lays out; ui_inputs, ui_run and ui_workbench do the work."""

from __future__ import annotations

import streamlit as st

import ui_inputs
import ui_run
import ui_state
import ui_workbench

ui_state.start_page("analyze")
ui_inputs.load_link_state()

st.title("SonoTag")
st.caption("Find when any sound happens in any audio, from words alone.")
# Messages that come and go sit in containers that are always there: an element's place on
# the page is its identity, and the player must keep its place (and its playback) when a
# message or the progress box appears or goes above it.
with st.container():
    ui_state.model_loading_note()
    ui_inputs.show_link_warnings()
inputs = ui_inputs.render()
clicked = st.button("Analyze", type="primary", disabled=inputs.labels is None)
with st.container():
    ui_run.run_if_asked(inputs, clicked)
result = st.session_state.get(ui_state.RESULT)
with st.container():
    shown = ui_run.report(inputs, result)
with st.container():
    if shown is not None:
        ui_workbench.show(result, shown[0], shown[1], ui_inputs.VIEWS)
ui_inputs.write_share_link(inputs, result)

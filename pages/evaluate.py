"""Evaluate: a stored analysis against uploaded ground truth; thresholds from the result."""

from __future__ import annotations

import streamlit as st

import ui_evaluate
import ui_state
from sonotag_core.errors import SonoTagError

ui_state.start_page("evaluate")
st.title("Evaluate")
st.caption(
    "How well does each label work on this audio? Upload what really happens in it and "
    "SonoTag scores its frame probabilities with sed_scores_eval (the DCASE metrics)."
)
try:
    store = ui_state.store()
except SonoTagError as exc:
    ui_state.error(exc)
    st.stop()
ui_evaluate.evaluate(store, ui_state.viewer())

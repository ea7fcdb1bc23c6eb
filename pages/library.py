"""Library: every stored analysis (open, delete) and a search of all stored audio."""

from __future__ import annotations

import streamlit as st

import ui_library
import ui_state
from sonotag_core.errors import SonoTagError

ui_state.start_page("library")
st.title("Library")
me = ui_state.viewer()
try:
    store = ui_state.store()
except SonoTagError as exc:
    ui_state.error(exc)
    st.stop()
ui_library.search(store, me)
ui_library.stored(store, me)
ui_library.batch_outputs(store, me)

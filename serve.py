"""The server entry (``streamlit run serve.py``): the app of ``streamlit_app.py`` with the
routes and middleware of :mod:`sonotag_app.server`. Streamlit finds the app by reading this
file for an ``app = st.App(...)`` assignment, so that line lives here."""

import streamlit as st

from sonotag_app import server

app = st.App(server.SCRIPT, **server.app_options())
server.started()

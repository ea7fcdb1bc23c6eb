"""The server entry (``streamlit run serve.py``): the app of ``streamlit_app.py`` behind
the middleware that gives every browser its owner cookie (signed, HttpOnly), which the
pages read to decide who may see and delete what (:mod:`sonotag_core.access`)."""

import streamlit as st
from starlette.middleware import Middleware

from sonotag_core.access import OwnerCookie, server_secret
from sonotag_core.settings import Settings

_settings = Settings.from_env()
app = st.App(
    "streamlit_app.py",
    middleware=[
        Middleware(OwnerCookie, secret=server_secret(_settings.data_dir, _settings.secret))
    ],
)

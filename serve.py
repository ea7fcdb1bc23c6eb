"""The server entry (``streamlit run serve.py``): the app of ``streamlit_app.py`` behind
the middleware that gives every browser its owner cookie (signed, HttpOnly), which the
pages read to decide who may see and delete what (:mod:`sonotag_core.access`), plus the
route that serves signed audio links with byte ranges, so the player can seek to the
frame (:mod:`sonotag_core.dashboard.media_links`). The model starts loading as the server
starts (``SONOTAG_PRELOAD``)."""

import streamlit as st
from starlette.middleware import Middleware

import ui_state
from sonotag_core.access import OwnerCookie, server_secret
from sonotag_core.dashboard.media_links import audio_route, media_roots
from sonotag_core.settings import Settings

_settings = Settings.from_env()
_secret = server_secret(_settings.data_dir, _settings.secret)
app = st.App(
    "streamlit_app.py",
    routes=[audio_route(secret=_secret, roots=media_roots(_settings.data_dir))],
    middleware=[Middleware(OwnerCookie, secret=_secret)],
)
if _settings.preload:
    ui_state.start_loading()  # in a thread: the server (and its health check) answers now

"""The server entry (``streamlit run serve.py``): the app of ``streamlit_app.py`` behind
the middleware that gives every browser its owner cookie (signed, HttpOnly), which the
pages read to decide who may see and delete what (:mod:`sonotag_core.access`), plus the
route that serves signed audio links with byte ranges, so the player can seek to the
frame (:mod:`sonotag_core.dashboard.media_links`), and the redirect that turns a link too
long for Streamlit to restore into a page that says so instead of a silent reset
(:mod:`sonotag_core.dashboard.long_links`). The model starts loading as the server starts
(``SONOTAG_PRELOAD``)."""

import streamlit as st
from starlette.middleware import Middleware

import ui_state
from sonotag_core.access import OwnerCookie, server_secret
from sonotag_core.dashboard.long_links import LongLinkRedirect
from sonotag_core.dashboard.media_links import AUDIO_ROUTE, audio_route, media_roots
from sonotag_core.settings import Settings

_settings = Settings.from_env()
_secret = server_secret(_settings.data_dir, _settings.secret)
app = st.App(
    "streamlit_app.py",
    routes=[audio_route(secret=_secret, roots=media_roots(_settings.data_dir))],
    middleware=[
        Middleware(OwnerCookie, secret=_secret),
        Middleware(LongLinkRedirect, limits=ui_state.query_string_limits(), exclude=(AUDIO_ROUTE,)),
    ],
)
if _settings.preload:
    ui_state.start_loading()  # in a thread: the server (and its health check) answers now

"""What the server entry (``serve.py``) wraps the app in: the middleware that gives every
browser its owner cookie (signed, HttpOnly), which the pages read to decide who may see and
delete what (:mod:`sonotag_core.access`); the route that serves signed audio links with
byte ranges, so the player can seek to the frame (:mod:`sonotag_core.dashboard.media_links`);
and the redirect that turns a link too long for Streamlit to restore into a page that says
so instead of a silent reset (:mod:`sonotag_core.dashboard.long_links`). The model starts
loading as the server starts (``SONOTAG_PRELOAD``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.middleware import Middleware

from sonotag_app import context
from sonotag_core.access import OwnerCookie, server_secret
from sonotag_core.dashboard.long_links import LongLinkRedirect
from sonotag_core.dashboard.media_links import AUDIO_ROUTE, audio_route, media_roots
from sonotag_core.settings import Settings

#: the navigation script: absolute, so the server finds it from any working directory
SCRIPT = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def app_options(settings: Settings | None = None) -> dict[str, Any]:
    """``st.App``'s routes and middleware for this server's settings."""
    s = settings or Settings.from_env()
    secret = server_secret(s.data_dir, s.secret)
    return {
        "routes": [audio_route(secret=secret, roots=media_roots(s.data_dir))],
        "middleware": [
            Middleware(OwnerCookie, secret=secret),
            Middleware(
                LongLinkRedirect, limits=context.query_string_limits(), exclude=(AUDIO_ROUTE,)
            ),
        ],
    }


def started(settings: Settings | None = None) -> None:
    """The server is up: start loading the model in a thread (``SONOTAG_PRELOAD``), so the
    health check and the pages answer meanwhile."""
    if (settings or Settings.from_env()).preload:
        context.start_loading()

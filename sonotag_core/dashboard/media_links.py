"""Signed links to kept audio, and the HTTP route that serves them with Range support.

The player component plays audio through an HTML5 ``<audio>`` element, which can only
seek in a resource served with ``Accept-Ranges: bytes`` and 206 partial responses;
``st.audio`` floors its start to whole seconds and Streamlit's media files cannot be
addressed by a component. So the server signs a URL for one file
(``/sonotag/audio?f=…&exp=…&sig=…``) and :func:`audio_route` serves exactly the files it
signed:

* ``f`` is the file's path relative to one of a few *roots* (the kept media, upload and
  download working copies, the example clips), with the root's index, base64url-encoded;
* ``sig`` is an HMAC-SHA256 over the route, ``f`` and ``exp`` with the server's secret
  (:func:`~.access.server_secret`), so a link cannot be forged, altered or extended;
* the path is checked again when served: no ``..``, and after resolving symlinks it must
  still lie under its root; a file that went away (evicted) is a 404.

The roots are folders of audio, not the data directory itself, which also holds
``secret.key`` and the database: even a signing mistake cannot hand those out.
No Streamlit here; Starlette (which Streamlit serves with) is imported by the route only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import mimetypes
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlencode

from sonotag_core.errors import SonoTagError

log = logging.getLogger(__name__)

AUDIO_ROUTE = "/sonotag/audio"
DEFAULT_EXPIRES_S = 6 * 3600.0
EXPIRY_STEP_S = 3600  # expiry rounded up to this: one URL per file and hour, so reruns
# of a page give the browser the same src (no reload, the play position and cache kept)
MAX_PARAM_CHARS = 4096
EXAMPLES_DIR = "examples"  # sonotag_core.media.examples.example_path writes there

# What the browser is told; mimetypes alone varies by platform (/etc/mime.types) and says
# video/* for containers that here always hold audio.
AUDIO_TYPES: dict[str, str] = {
    ".wav": "audio/wav",
    ".wave": "audio/wav",
    ".mp3": "audio/mpeg",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
    ".weba": "audio/webm",
    ".mka": "audio/x-matroska",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".caf": "audio/x-caf",
}


class MediaLinkError(SonoTagError):
    """An audio link that is not (or no longer) valid; ``status`` is the HTTP answer."""

    status = 403


class MediaGoneError(MediaLinkError):
    """The link is valid but its audio is no longer kept (evicted or deleted)."""

    status = 404


def audio_mime(path: str | Path) -> str:
    """The audio MIME type for a file by its suffix: the table above, then Python's
    guess when it is audio/video, else audio/wav (kept media are named
    ``<content id>.<suffix>`` and a suffix-less file is most likely a WAV)."""
    suffix = Path(str(path)).suffix.lower()
    if suffix in AUDIO_TYPES:
        return AUDIO_TYPES[suffix]
    guessed, _ = mimetypes.guess_type("x" + suffix)
    return guessed if guessed and guessed.startswith(("audio/", "video/")) else "audio/wav"


def media_roots(data_dir: str | Path) -> tuple[Path, ...]:
    """The folders whose files may be signed, in a fixed order (a link carries the index):
    kept media, upload and download working copies, example clips."""
    from sonotag_core.media.sources import DOWNLOADS_DIR, UPLOADS_DIR
    from sonotag_core.store.database import MEDIA_DIR

    base = Path(data_dir)
    return tuple(base / d for d in (MEDIA_DIR, UPLOADS_DIR, DOWNLOADS_DIR, EXAMPLES_DIR))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, f: str, exp: int) -> str:
    message = f"{AUDIO_ROUTE}\n{f}\n{exp}".encode()  # the route name keeps these apart
    return hmac.new(secret, message, hashlib.sha256).hexdigest()  # from owner-cookie MACs


def _resolved(root: Path) -> Path:
    return Path(root).resolve()


def sign_media_url(
    path: Path,
    *,
    secret: bytes,
    roots: Sequence[Path],
    expires_s: float = DEFAULT_EXPIRES_S,
    now: float | None = None,
) -> str:
    """A relative URL (``/sonotag/audio?f=…&exp=…&sig=…``) that serves ``path`` for at
    least ``expires_s`` seconds (expiry rounded up to the hour, so the same file gives the
    same URL for an hour). Raises :class:`MediaLinkError` for a file outside ``roots``
    (symlinks resolved) and :class:`MediaGoneError` for a missing one."""
    target = Path(path).resolve()
    if not target.is_file():
        raise MediaGoneError("This audio is no longer kept on the server, so it cannot be played.")
    for index, root in enumerate(roots):
        try:
            rel = target.relative_to(_resolved(root))
        except ValueError:
            continue
        f = _b64(f"{index}/{rel.as_posix()}".encode())
        stamp = (time.time() if now is None else now) + expires_s
        exp = int(math.ceil(stamp / EXPIRY_STEP_S) * EXPIRY_STEP_S)
        return f"{AUDIO_ROUTE}?{urlencode({'f': f, 'exp': exp, 'sig': _signature(secret, f, exp)})}"
    raise MediaLinkError(
        "This audio is not kept in a folder the player may serve (kept media, uploads, "
        "downloads or examples), so it cannot be played with precise seeking."
    )


def _bad(reason: str) -> MediaLinkError:
    return MediaLinkError(f"{reason} Reload the page to get a new audio link.")


def verify_media_url(
    query: Mapping[str, str],
    *,
    secret: bytes,
    roots: Sequence[Path],
    now: float | None = None,
) -> Path:
    """The file a signed link names, after checking its signature (constant time), its
    expiry, that its path stays under its root (no ``..``, symlinks resolved) and that the
    file exists. Raises :class:`MediaLinkError` (403) or :class:`MediaGoneError` (404)."""
    f, exp_text, sig = (query.get(k) for k in ("f", "exp", "sig"))
    if not (f and exp_text and sig) or max(len(f), len(exp_text), len(sig)) > MAX_PARAM_CHARS:
        raise _bad("This audio link is incomplete.")
    try:
        exp = int(exp_text)
    except ValueError:
        raise _bad("This audio link is malformed.") from None
    if not hmac.compare_digest(sig.encode(), _signature(secret, f, exp).encode()):
        raise _bad("This audio link is not valid (its signature does not match).")
    if (time.time() if now is None else now) > exp:
        raise _bad("This audio link has expired.")
    try:
        index_text, _, rel_text = _unb64(f).decode("utf-8").partition("/")
        index = int(index_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad("This audio link is malformed.") from None
    if not 0 <= index < len(roots):
        raise _bad("This audio link names a folder this server does not serve.")
    rel = PurePosixPath(rel_text)
    if (
        not rel_text
        or rel.is_absolute()
        or "\\" in rel_text
        or "\x00" in rel_text
        or any(part in ("..", ".", "") for part in rel_text.split("/"))
    ):
        raise _bad("This audio link names a path outside the served folders.")
    root = _resolved(roots[index])
    target = (root / rel).resolve()
    try:
        target.relative_to(root)
    except ValueError:
        raise _bad("This audio link names a path outside the served folders.") from None
    if not target.is_file():
        raise MediaGoneError("This audio is no longer kept on the server.")
    return target


def audio_route(*, secret: bytes, roots: Sequence[Path]) -> Any:
    """A Starlette ``Route`` for ``GET``/``HEAD`` :data:`AUDIO_ROUTE` serving verified
    files with their audio type, ``Accept-Ranges: bytes`` and single or multiple byte
    ranges (Starlette's ``FileResponse``), cached privately until the link expires. A bad
    link gets its 403/404 reason as plain text, never a traceback."""
    from starlette.responses import FileResponse, PlainTextResponse
    from starlette.routing import Route

    roots = tuple(roots)

    async def serve_audio(request: Any) -> Any:
        query = request.query_params
        try:
            path = verify_media_url(query, secret=secret, roots=roots)
            stat = os.stat(path)
        except MediaLinkError as exc:
            return PlainTextResponse(str(exc), status_code=exc.status)
        except OSError:
            return PlainTextResponse("This audio is no longer kept on the server.", 404)
        max_age = max(0, int(query["exp"]) - int(time.time()))
        headers = {
            "Cache-Control": f"private, max-age={max_age}",
            "X-Content-Type-Options": "nosniff",
        }
        return FileResponse(path, headers=headers, media_type=audio_mime(path), stat_result=stat)

    return Route(AUDIO_ROUTE, serve_audio, methods=["GET", "HEAD"], name="sonotag-audio")

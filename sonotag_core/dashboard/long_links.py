"""Links too long to restore: say so instead of opening the page with its defaults.

Streamlit drops a page's whole query string, silently, when it has more fields or
characters than it accepts (1.67: ``sanitize_query_string`` in
``streamlit/runtime/state/query_params.py``, more than 1000 fields counted as
``query.count("&") + 1``, or more than 512 Ki characters). The script then sees no
parameters at all, so a share link of 5000 labels opened as the default page. The
server entry sees the raw request first: :class:`LongLinkRedirect` sends such a page
request to the same page with one short marker (``?link_fields=5000``), which the page
turns into a warning (:func:`message`).

No Streamlit here: the server entry passes Streamlit's own limits in
(:class:`QueryLimits`), so the numbers quoted are the ones that apply.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The marker each limit's redirect carries: the count that went over it.
FIELDS_MARKER = "link_fields"
CHARS_MARKER = "link_chars"
MARKERS = (FIELDS_MARKER, CHARS_MARKER)


@dataclass(frozen=True)
class QueryLimits:
    """What Streamlit accepts of a page's query string before dropping all of it."""

    max_fields: int
    max_chars: int


def overflow(query: str, limits: QueryLimits) -> tuple[str, int] | None:
    """(marker, count) when Streamlit would drop ``query`` (the raw query string, without
    the ``?``), counted as Streamlit counts; None when it keeps it."""
    if not query:
        return None
    if len(query) > limits.max_chars:
        return CHARS_MARKER, len(query)
    fields = query.count("&") + 1
    if fields > limits.max_fields:
        return FIELDS_MARKER, fields
    return None


def message(params: Mapping[str, Any], limits: QueryLimits) -> str | None:
    """The warning for a page opened through the redirect (None without a valid marker):
    how many fields (or characters) the link had and how many are restored at most."""
    for marker, noun, limit in (
        (FIELDS_MARKER, "fields", limits.max_fields),
        (CHARS_MARKER, "characters", limits.max_chars),
    ):
        raw = params.get(marker)
        text = raw[-1] if isinstance(raw, list) and raw else raw
        if not (isinstance(text, str) and text.isascii() and text.isdigit() and len(text) < 13):
            continue  # not a count this server wrote: no message to make of it
        if int(text) > limit:
            return (
                f"The link was too long to restore: its address has {int(text):,} query "
                f"{noun}, and this server restores links of at most {limit:,} {noun}. The page "
                "opened with its defaults instead. Share a shorter link (fewer labels), or "
                "save the analysis and share its link."
            )
    return None


Scope = MutableMapping[str, Any]


class LongLinkRedirect:
    """ASGI middleware: a page request (``GET``/``HEAD``, not Streamlit's own ``_stcore``
    endpoints, not a file, not one of ``exclude``) whose query string Streamlit would drop
    is answered ``303 See Other`` to ``?<marker>=<count>``: the same page (a relative
    reference keeps the path, whatever base URL or proxy prefix it has), one field long."""

    def __init__(self, app: Any, limits: QueryLimits | None, exclude: Sequence[str] = ()) -> None:
        self.app = app
        self.limits = limits  # None: Streamlit's limits are unknown, pass everything on
        self.exclude = tuple(exclude)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        over = self._overflow(scope)
        if over is None:
            await self.app(scope, receive, send)
            return
        marker, count = over
        headers = [
            (b"location", f"?{marker}={count}".encode()),
            (b"content-length", b"0"),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _overflow(self, scope: Scope) -> tuple[str, int] | None:
        if self.limits is None or scope.get("type") != "http":
            return None
        if scope.get("method") not in ("GET", "HEAD") or not is_page_path(scope.get("path", "")):
            return None
        if any(scope.get("path", "").startswith(prefix) for prefix in self.exclude):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return overflow(query, self.limits)


def is_page_path(path: str) -> bool:
    """Whether ``path`` asks for a page (``/``, ``/library``), not one of Streamlit's
    endpoints (``/_stcore/…``) or a file (``/static/js/x.js``, ``/favicon.png``)."""
    parts = path.split("/")
    return "_stcore" not in parts and "." not in parts[-1]

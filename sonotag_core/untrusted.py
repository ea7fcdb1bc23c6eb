"""Untrusted text (file names, links, labels, ids) inside our own one-line messages.

A name is data, not layout: a newline in a file name must not split a one-line message
(or a log line) in two, a right-to-left override (U+202E) must not reverse what a
terminal shows, and a 100 kB link must not be printed whole. :func:`quoted` is the one
way a message shows such a value; :func:`one_line` is the last guard on a whole message.
"""

from __future__ import annotations

import unicodedata

SHOWN_CHARS = 80  # how much of an untrusted value a message repeats
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    """``ch`` as a visible escape when a terminal would act on it instead of showing it:
    controls (C0, C1, DEL), format characters (bidi overrides and isolates, zero-width
    joiners, BOM), line/paragraph separators, surrogates and unassigned code points."""
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    category = unicodedata.category(ch)
    if category[0] != "C" and category not in ("Zl", "Zp"):
        return ch
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` made safe to print: invisible/control characters escaped, and at most
    ``limit`` characters of it kept (then "…"). Work is bounded by ``limit``, not by the
    size of the value."""
    text = str(value)
    cut = len(text) > limit
    return "".join(_escaped(ch) for ch in text[:limit]) + ("…" if cut else "")


def quoted(value: object, limit: int = SHOWN_CHARS) -> str:
    """:func:`shown` in single quotes, the form every message uses for a name."""
    return f"'{shown(value, limit)}'"


def one_line(message: str) -> str:
    """A whole message on one line: any control or bidi character left in it (from a
    library's own error text, say) is escaped, so it can never split or reorder."""
    return "".join(_escaped(ch) for ch in str(message))

"""The dashboard view <-> URL query parameters, so the address bar is always a share link.

Query parameters are untrusted. Every value is parsed defensively: anything invalid becomes
the default plus a warning the page shows, never an exception. Nothing here reaches a shell
or a file path. Example ids are checked against the known set, analysis ids must be hex, and
links go through :func:`sonotag_core.media.sources.parse_link`. Warnings never repeat raw text
from the URL, because the page renders them as Markdown.

============  ==========================================  ==========================
param         meaning                                     example
============  ==========================================  ==========================
``src``       YouTube/SoundCloud link (canonicalized)     ``src=https://youtu.be/…``
``ex``        built-in example clip id                    ``ex=alarm-clock``
``analysis``  stored analysis id, 8-64 lowercase hex      ``analysis=3fa2c1d0``
              (``id`` is accepted as a short alias)
``l``         label, repeated; leading ``-`` = negative   ``l=siren&l=-music``
(event)       each event parameter under its share key    ``thr=0.35&med=3``
              (:data:`.event_params.EVENT_PARAMS`: the
              threshold, smoothing, minimum length, gap
              filling), within the row's range
``lt``        per-label threshold ``label:value``,        ``lt=siren:0.2``
              repeated; split on the last ``:``
``hop``       window hop in s: 10 or 5                    ``hop=5``
``fast``      fast mode (bf16 encoder): 1 or 0            ``fast=1``
``view``      timeline, heatmap, events or scores         ``view=heatmap``
``t``         selected playback time in s (0.01 s steps)  ``t=12.5``
``det``       a stored refined detector scoring its       ``det=siren:v3``
              label, ``name:vN``, repeated; split on the
              last ``:`` (a bare name: its newest version)
============  ==========================================  ==========================

Only one audio source is used, with the precedence ``analysis`` > ``src`` > ``ex``. Values equal
to the defaults are left out of the URL, so links stay short. Unknown params (``utm_*``,
Streamlit's own) are ignored without a warning. Any single value (for ``l``, any single
label) over :data:`MAX_VALUE_CHARS` characters is dropped. Labels are cut to
``SONOTAG_MAX_LABELS`` labels of ``SONOTAG_MAX_LABEL_CHARS`` characters each. The page
shows every warning in one message, :func:`combined_warning`. Thresholds and lengths keep
:data:`DECIMALS` decimals and times keep :data:`T_DECIMALS`, so a view parsed from any
link round-trips exactly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from sonotag_core.domain.event_params import event_param, event_params
from sonotag_core.domain.labels import LabelSet, parse_labels
from sonotag_core.errors import SonoTagError
from sonotag_core.settings import DEFAULTS, Settings

DEFAULT_LABELS: tuple[str, ...] = ("dog barking", "siren", "applause")
VIEWS: tuple[str, ...] = ("timeline", "heatmap", "events", "scores")
HOPS: tuple[float, ...] = (10.0, 5.0)
MAX_VALUE_CHARS = 2048  # any single value longer than this is dropped
DECIMALS = 6  # thresholds and event lengths
T_DECIMALS = 2  # playback time: 0.01 s
#: the query keys a view reads besides the event parameters' (:func:`params`)
_OTHER_PARAMS: tuple[str, ...] = tuple("src ex analysis id l lt hop fast view t det".split())
MAX_DETECTORS = 16  # detectors one link may name (the rest are dropped, with a warning)
MAX_DETECTOR_NAME = 100  # characters of a detector's name (service.detectors' limit)


def params() -> tuple[str, ...]:
    """Every query key a view reads."""
    return (*_OTHER_PARAMS, *(row.share_key for row in event_params()))


def _threshold_range() -> tuple[float, float]:
    row = event_param("threshold")
    return row.low, row.high


_ANALYSIS_ID = re.compile(r"[0-9a-f]{8,64}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_LABEL_SPLIT = re.compile(r"[;\n\r]+")  # the label box's separators
_MARKUP = re.compile(r"[\[\]*_`$<>|~#\\]")  # Markdown/LaTeX syntax, dropped from messages
_DETECTOR_VERSION = re.compile(r"v?([0-9]{1,6})")


@dataclass(frozen=True)
class ViewState:
    """Everything a share link restores.

    At most one of ``link``, ``example`` and ``analysis`` is set. ``negatives`` and the
    keys of ``label_thresholds`` are labels from ``labels``, and negatives have no
    threshold of their own.
    """

    link: str | None = None
    example: str | None = None
    analysis: str | None = None
    labels: tuple[str, ...] = DEFAULT_LABELS
    negatives: frozenset[str] = frozenset()
    #: each event parameter's value by name (:data:`.event_params.EVENT_PARAMS`); a row
    #: missing here has its default
    events: Mapping[str, float] = field(default_factory=dict)
    label_thresholds: dict[str, float] = field(default_factory=dict)
    hop_s: float = DEFAULTS.hop_s
    fast: bool = DEFAULTS.fast
    view: str = "timeline"
    t: float | None = None
    #: stored detectors that score their labels: (name, version); version 0 = the newest
    detectors: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        given = dict(self.events)
        full = {row.name: given.get(row.name, row.type(row.default)) for row in event_params()}
        object.__setattr__(self, "events", full)

    @property
    def label_set(self) -> LabelSet:
        return LabelSet(self.labels, self.negatives)

    def with_events(self, **values: float) -> ViewState:
        """A copy with these event parameters changed (names of the table's rows)."""
        return replace(self, events={**self.events, **values})

    @property
    def threshold(self) -> float:
        """The event threshold (every label without its own)."""
        return float(self.events["threshold"])


def default_state(settings: Settings) -> ViewState:
    """The view with no params, from the ``SONOTAG_*`` defaults clamped to the URL's ranges."""
    events = {
        row.name: row.clamp(getattr(settings, row.name, row.default)) for row in event_params()
    }
    return ViewState(
        events=events,
        hop_s=settings.hop_s if settings.hop_s in HOPS else HOPS[0],
        fast=settings.fast,
    )


# ---------------------------------------------------------------- parsing helpers


def _number(text: str, low: float, high: float, decimals: int) -> float | None:
    """A plain decimal number (no nan/inf/hex/underscores), rounded, within [low, high]."""
    text = text.strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        return None
    value = round(float(text), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return value if math.isfinite(value) and low <= value <= high else None


def _plain(message: str, limit: int = 300) -> str:
    """A message with any Markdown/LaTeX syntax removed, cut to ``limit`` characters."""
    text = " ".join(_MARKUP.sub("", message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean_label(text: str) -> str | None:
    """A label as parse_labels would normalize it (leading ``-`` removed), or None."""
    try:
        return parse_labels([text], max_labels=1, max_chars=MAX_VALUE_CHARS).labels[0]
    except SonoTagError:
        return None


class _Reader:
    """Reads values from an untrusted mapping, collecting warnings."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = params
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def all(self, key: str, max_chars: int | None = MAX_VALUE_CHARS) -> list[str]:
        """Every value of ``key`` (a str or a list of them), those over ``max_chars``
        dropped (None: all kept, for a caller that checks the parts of each value)."""
        raw = self.params.get(key)
        if raw is None:
            return []
        items = [raw] if isinstance(raw, (str, bytes)) else raw
        try:
            items = list(items)
        except TypeError:
            items = [items]
        out: list[str] = []
        too_long = 0
        for item in items:
            if item is None:
                continue
            text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
            if max_chars is not None and len(text) > max_chars:
                too_long += 1
            else:
                out.append(text)
        if too_long:
            self.warn(
                f"Ignored {_count(too_long, 'value')} of '{key}' in the link "
                f"(longer than {MAX_VALUE_CHARS} characters)."
            )
        return out

    def one(self, key: str) -> str | None:
        """The last value of ``key`` (Streamlit's ``st.query_params[key]`` does the same)."""
        values = self.all(key)
        return values[-1] if values else None

    def number(
        self, key: str, what: str, low: float, high: float, default: float, decimals: int
    ) -> float:
        text = self.one(key)
        if text is None:
            return default
        value = _number(text, low, high, decimals)
        if value is None:
            self.warn(
                f"Ignored the {what} in the link (not a number from {low:g} to {high:g}); "
                f"using {default:g}."
            )
            return default
        return value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ---------------------------------------------------------------- the parts of a view


def _source(r: _Reader, example_ids: Collection[str]) -> tuple[str | None, str | None, str | None]:
    analysis = link = example = None
    aid = r.one("analysis")
    if aid is None:
        aid = r.one("id")  # the short alias
    if aid is not None:
        if _ANALYSIS_ID.fullmatch(aid):
            analysis = aid
        else:
            r.warn("Ignored the analysis id in the link (not a valid id).")
    if (src := r.one("src")) is not None:
        from sonotag_core.media.sources import (
            parse_link,  # lazy: keeps this module light for the CLI
        )

        try:
            link = parse_link(src).url
        except SonoTagError as exc:
            r.warn(f"Ignored the audio source in the link. {_plain(str(exc))}")
        except Exception:  # e.g. urlsplit's ValueError on a malformed host
            r.warn("Ignored the audio source in the link (not a valid YouTube or SoundCloud link).")
    if (ex := r.one("ex")) is not None:
        if ex in example_ids:
            example = ex
        else:
            r.warn("Ignored the example in the link (no such example).")
    if sum(x is not None for x in (analysis, link, example)) > 1:
        used = "stored analysis" if analysis else "audio link"
        r.warn(f"The link names more than one audio source; using the {used}.")
        link = None if analysis else link
        example = None
    return link, example, analysis


def _labels(r: _Reader, settings: Settings, default: ViewState) -> LabelSet:
    # each value may hold several labels ("a;b"): count and check labels, not values
    values = r.all("l", max_chars=None)
    if not values:
        return default.label_set
    max_labels, max_chars = settings.max_labels, settings.max_label_chars
    parts = [part for value in values for part in _LABEL_SPLIT.split(value)]
    long = [p for p in parts if len(p) > MAX_VALUE_CHARS]
    if long:  # dropped before any per-character work
        r.warn(
            f"Ignored {_count(len(long), 'label')} in the link (longer than "
            f"{MAX_VALUE_CHARS} characters)."
        )
        parts = [p for p in parts if len(p) <= MAX_VALUE_CHARS]
    given = [p for p in parts if p.strip(" \t-")]  # what a reader of the link counts
    if len(given) > max_labels:
        dropped = len(given) - max_labels
        r.warn(
            f"The link has {len(given)} labels; kept the first {max_labels} and dropped "
            f"{dropped} (SONOTAG_MAX_LABELS is {max_labels})."
        )
        parts = given[:max_labels]
    if not parts:  # every value was over-long
        return default.label_set
    try:  # normalize (whitespace, control characters, "-", duplicates) without limits
        loose = parse_labels(parts, max_labels=len(parts), max_chars=MAX_VALUE_CHARS)
    except SonoTagError:
        r.warn("Ignored the labels in the link (none usable); using the defaults.")
        return default.label_set
    labels: list[str] = []
    negatives: set[str] = set()
    cut = 0
    for label in loose.labels:
        short = label[:max_chars].rstrip()
        cut += short != label
        if short not in labels:
            labels.append(short)
            if label in loose.negatives:
                negatives.add(short)
    if cut:
        r.warn(f"Shortened {_count(cut, 'label')} from the link to {max_chars} characters.")
    try:  # the real limits; cannot fail after the cuts above, but never trust that
        return parse_labels(
            ["-" + x if x in negatives else x for x in labels],
            max_labels=max_labels,
            max_chars=max_chars,
        )
    except SonoTagError:
        r.warn("Ignored the labels in the link (none usable); using the defaults.")
        return default.label_set


def _label_thresholds(r: _Reader, labels: LabelSet) -> dict[str, float]:
    low, high = _threshold_range()
    out: dict[str, float] = {}
    items = r.all("lt")
    cap = 4 * len(labels.labels)  # bounds the work on a link with thousands of values
    bad = max(0, len(items) - cap)
    for item in items[:cap]:
        text, sep, number = item.rpartition(":")
        label = _clean_label(text) if sep else None
        value = _number(number, low, high, DECIMALS) if sep else None
        if label in labels.positives and value is not None:
            out[label] = value
        else:
            bad += 1
    if bad:
        r.warn(
            f"Ignored {_count(bad, 'per-label threshold')} in the link (not a label being "
            f"detected, or not a number from {low:g} to {high:g})."
        )
    return out


def detector_name(text: str) -> str | None:
    """A detector name as the store keeps it (control characters dropped, spacing
    collapsed), or None when empty or over :data:`MAX_DETECTOR_NAME` characters."""
    cleaned = " ".join("".join(ch for ch in text if unicodedata.category(ch)[0] != "C").split())
    return cleaned if 0 < len(cleaned) <= MAX_DETECTOR_NAME else None


def detector_ref(name: str, version: int) -> str:
    """``siren:v3`` (a bare ``siren`` for version 0: the newest)."""
    return f"{name}:v{version}" if version else name


def parse_detector_ref(item: str) -> tuple[str, int] | None:
    """``name:vN`` / ``name:N`` / ``name`` -> (name, N or 0), or None when unusable."""
    name, sep, version = item.rpartition(":")
    if not sep:
        name, number = item, 0
    elif m := _DETECTOR_VERSION.fullmatch(version.strip()):
        number = int(m.group(1))
    else:
        return None
    clean = detector_name(name)
    return None if clean is None else (clean, number)


def _detectors(r: _Reader) -> tuple[tuple[str, int], ...]:
    items = r.all("det")
    bad = max(0, len(items) - MAX_DETECTORS)  # bounds the work on a hostile link
    out: list[tuple[str, int]] = []
    for item in items[:MAX_DETECTORS]:
        ref = parse_detector_ref(item)
        if ref is None:
            bad += 1
        elif ref not in out:
            out.append(ref)
    if bad:
        r.warn(
            f"Ignored {_count(bad, 'detector')} in the link (not a name with an optional "
            f":vN version, or more than {MAX_DETECTORS})."
        )
    return tuple(out)


# ---------------------------------------------------------------- public API


def from_query_params(
    params: Mapping[str, str | list[str]], *, settings: Settings, example_ids: Collection[str]
) -> tuple[ViewState, list[str]]:
    """Parse (possibly hostile) query params into a view plus warnings; never raises.

    ``params`` values may be a str (``st.query_params.to_dict()``, last value wins) or a
    list of str (``get_all``, :func:`urllib.parse.parse_qs`).
    """
    d = default_state(settings)
    r = _Reader(params)
    link, example, analysis = _source(r, example_ids)
    labels = _labels(r, settings, d)
    events = _event_values(r, d)
    label_thresholds = _label_thresholds(r, labels)

    hop = r.number("hop", "window hop", 0, 10, d.hop_s, DECIMALS)
    if hop not in HOPS:
        r.warn(f"Ignored the window hop in the link (10 or 5 s); using {d.hop_s:g}.")
        hop = d.hop_s
    fast_text = r.one("fast") or ""
    fast = {"1": True, "0": False}.get(fast_text, d.fast)
    if fast_text not in ("", "1", "0"):
        r.warn(f"Ignored the fast mode in the link (1 or 0); using {int(d.fast)}.")

    view = r.one("view")
    if view is None or view == "":
        view = d.view
    elif view not in VIEWS:
        r.warn(f"Ignored the view in the link (one of {', '.join(VIEWS)}); showing {d.view}.")
        view = d.view

    t = None
    if (t_text := r.one("t")) is not None:
        t = _number(t_text, 0.0, float(settings.max_duration_s), T_DECIMALS)
        if t is None:
            r.warn("Ignored the playback time in the link (not a time in seconds).")

    detectors = _detectors(r)
    state = ViewState(
        link=link,
        example=example,
        analysis=analysis,
        labels=labels.labels,
        negatives=labels.negatives,
        events=events,
        label_thresholds=label_thresholds,
        hop_s=float(hop),
        fast=fast,
        view=view,
        t=t,
        detectors=detectors,
    )
    return state, r.warnings


def _event_values(r: _Reader, default: ViewState) -> dict[str, float]:
    """Each event parameter from its share key, within its row's range."""
    out: dict[str, float] = {}
    for row in event_params():
        fallback = default.events[row.name]
        value = r.number(row.share_key, row.what, row.low, row.high, fallback, DECIMALS)
        if row.type is int and not row.allowed(value):
            choices = row.choices()
            r.warn(
                f"Ignored the {row.what} in the link (one of {', '.join(f'{c:g}' for c in choices)}); "
                f"using {fallback:g}."
            )
            value = fallback
        out[row.name] = row.type(value)
    return out


def combined_warning(warnings: Sequence[str]) -> str | None:
    """Every warning of one link as one message (None when there are none): a link with
    several bad values gets one banner that lists them all, not a stack of banners.

    Plain text, one problem per line after a "•" (lines end in two spaces, Markdown's
    line break), so ``context.warning``, which shows Markdown syntax literally, still
    shows one line per problem.
    """
    items = list(dict.fromkeys(w.strip() for w in warnings if w and w.strip()))
    if not items:
        return None
    if len(items) == 1:
        return items[0]
    lines = "  \n".join(f"• {w}" for w in items)
    return f"The link has {len(items)} problems; the rest of it is restored:  \n{lines}"


def _fmt(x: float, decimals: int = DECIMALS) -> str:
    """Compact: 0.35 (not 0.35000000000000003), 5 (not 5.0), 0 (not -0)."""
    text = f"{round(float(x), decimals) + 0.0:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def to_query_params(state: ViewState, *, settings: Settings) -> dict[str, str | list[str]]:
    """The view as query params, defaults left out; the inverse of :func:`from_query_params`."""
    d = default_state(settings)
    out: dict[str, str | list[str]] = {}
    if state.analysis:
        out["analysis"] = state.analysis
    elif state.link:
        out["src"] = state.link
    elif state.example:
        out["ex"] = state.example
    if state.labels != d.labels or state.negatives != d.negatives:
        out["l"] = [("-" + x) if x in state.negatives else x for x in state.labels]
    for row in event_params():
        if _fmt(state.events[row.name]) != _fmt(d.events[row.name]):
            out[row.share_key] = _fmt(state.events[row.name])
    if state.label_thresholds:
        out["lt"] = [f"{k}:{_fmt(v)}" for k, v in state.label_thresholds.items()]
    if _fmt(state.hop_s) != _fmt(d.hop_s):
        out["hop"] = _fmt(state.hop_s)
    if state.fast != d.fast:
        out["fast"] = "1" if state.fast else "0"
    if state.view != d.view:
        out["view"] = state.view
    if state.t is not None:
        out["t"] = _fmt(state.t, T_DECIMALS)
    if state.detectors:
        out["det"] = [detector_ref(name, version) for name, version in state.detectors]
    return out


def share_url(base_url: str, state: ViewState, *, settings: Settings) -> str:
    """``base_url`` plus the view's query string (just ``base_url`` when all default)."""
    query = urlencode(to_query_params(state, settings=settings), doseq=True)
    return f"{base_url}?{query}" if query else base_url

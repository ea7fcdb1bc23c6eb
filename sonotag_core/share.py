"""The dashboard view <-> URL query parameters, so the address bar is always a share link.

Query parameters are untrusted: every value is parsed defensively, and anything invalid
becomes the default plus a warning the page shows, never an exception. Nothing here reaches
a shell or a file path (example ids are checked against the known set, analysis ids are
hex, links go through :func:`sources.parse_link`).

=======  ========================================  =====================================
param    meaning                                   example
=======  ========================================  =====================================
``src``  YouTube/SoundCloud link                   ``src=https://youtu.be/…``
``ex``   built-in example clip id                  ``ex=alarm-clock``
``id``   stored analysis id (result store)         ``id=3fa2c1d0``
``l``    label, repeated; leading ``-`` = negative ``l=siren&l=-music``
``thr``  event threshold (0-1)                     ``thr=0.35``
``lt``   per-label threshold ``label:value``       ``lt=siren:0.2``
``hop``  window hop, 10 or 5 s                     ``hop=5``
``med``  median filter, odd frames 1-15            ``med=3``
``min``  minimum event length, s (0-60)            ``min=0.5``
``gap``  fill gaps shorter than, s (0-10)          ``gap=0.5``
``view`` timeline, heatmap, events or scores       ``view=heatmap``
``t``    selected playback time, s                 ``t=12.5``
=======  ========================================  =====================================

Defaults are left out of the URL, so links stay short.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .errors import SonoTagError
from .labels import parse_labels
from .settings import Settings

DEFAULT_LABELS: tuple[str, ...] = ("dog barking", "siren", "applause")
VIEWS: tuple[str, ...] = ("timeline", "heatmap", "events", "scores")
HOPS: tuple[float, ...] = (10.0, 5.0)
MAX_VALUE_CHARS = 2048  # any single value longer than this is dropped
_ANALYSIS_ID = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class ViewState:
    """Everything a share link restores."""

    link: str | None = None
    example: str | None = None
    analysis: str | None = None
    labels: tuple[str, ...] = DEFAULT_LABELS
    negatives: frozenset[str] = frozenset()
    threshold: float = 0.5
    label_thresholds: Mapping[str, float] = field(default_factory=dict)
    hop_s: float = 10.0
    median_frames: int = 1
    min_event_s: float = 0.0
    fill_gap_s: float = 0.32
    view: str = "timeline"
    t: float | None = None


def default_state(settings: Settings) -> ViewState:
    hop = settings.hop_s if settings.hop_s in HOPS else 10.0
    med = settings.median_frames if settings.median_frames <= 15 else 1
    return ViewState(threshold=settings.threshold, hop_s=hop, median_frames=med,
                     min_event_s=min(settings.min_event_s, 60.0),
                     fill_gap_s=min(settings.fill_gap_s, 10.0))  # fmt: skip


def _values(params: Mapping[str, Any], key: str) -> list[str]:
    raw = params.get(key)
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else list(raw)
    return [str(v) for v in items]


def _number(text: str, low: float, high: float) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def from_query_params(
    params: Mapping[str, Any], *, settings: Settings, example_ids: Collection[str]
) -> tuple[ViewState, list[str]]:
    """Parse (possibly hostile) query params into a view; never raises."""
    d = default_state(settings)
    warnings: list[str] = []

    def one(key: str) -> str | None:
        vals = _values(params, key)
        if not vals:
            return None
        value = vals[-1]
        if len(value) > MAX_VALUE_CHARS:
            warnings.append(f"Ignored the over-long '{key}' value in the link.")
            return None
        return value

    def num(key: str, what: str, low: float, high: float, default: float) -> float:
        text = one(key)
        if text is None:
            return default
        value = _number(text, low, high)
        if value is None:
            warnings.append(f"Ignored the {what} in the link (not a number from {low:g} to "
                            f"{high:g}); using {default:g}.")  # fmt: skip
            return default
        return value

    link = example = analysis = None
    if (aid := one("id")) is not None:
        if _ANALYSIS_ID.fullmatch(aid):
            analysis = aid
        else:
            warnings.append("Ignored the analysis id in the link (not a valid id).")
    if (src := one("src")) is not None:
        from .sources import parse_link

        try:
            link = parse_link(src).url
        except SonoTagError as exc:
            warnings.append(f"Ignored the link to the audio: {exc}")
    if (ex := one("ex")) is not None:
        if ex in example_ids:
            example = ex
        else:
            warnings.append("Ignored the example in the link (no such example).")
    chosen = [x for x in (analysis, link, example) if x]
    if len(chosen) > 1:
        warnings.append("The link names several audio sources; using the first of id, src, ex.")
        link = None if analysis else link
        example = None
    labels, negatives = d.labels, d.negatives
    raw_labels = _values(params, "l")
    kept = [v for v in raw_labels if len(v) <= settings.max_label_chars + 1]  # +1: a leading "-"
    if len(kept) < len(raw_labels):
        warnings.append(f"Dropped labels longer than {settings.max_label_chars} characters.")
    raw_labels = kept
    if raw_labels:
        if len(raw_labels) > settings.max_labels:
            warnings.append(
                f"The link has {len(raw_labels)} labels; kept the first {settings.max_labels}."
            )
            raw_labels = raw_labels[: settings.max_labels]
        try:
            parsed = parse_labels([v.replace(";", " ") for v in raw_labels],
                                  max_labels=settings.max_labels, max_chars=settings.max_label_chars)  # fmt: skip
            labels, negatives = parsed.labels, parsed.negatives
        except SonoTagError:
            warnings.append("Ignored the labels in the link (none usable); using the defaults.")
    threshold = num("thr", "threshold", 0.01, 0.99, d.threshold)
    label_thresholds: dict[str, float] = {}
    for item in _values(params, "lt")[: settings.max_labels]:
        label, sep, value = item.rpartition(":")
        parsed_value = _number(value, 0.01, 0.99) if sep else None
        if label in labels and label not in negatives and parsed_value is not None:
            label_thresholds[label] = parsed_value
        else:
            warnings.append(
                "Ignored a per-label threshold in the link (unknown label or bad value)."
            )
    hop = num("hop", "hop", 0, 10, d.hop_s)
    if hop not in HOPS:
        warnings.append(f"Ignored the hop in the link (10 or 5 s); using {d.hop_s:g}.")
        hop = d.hop_s
    med = num("med", "smoothing", 1, 15, d.median_frames)
    if med != int(med) or int(med) % 2 == 0:
        warnings.append("Ignored the smoothing in the link (odd whole number of frames); using "
                        f"{d.median_frames}.")  # fmt: skip
        med = d.median_frames
    view = one("view") or d.view
    if view not in VIEWS:
        warnings.append(f"Ignored the view in the link; showing {d.view}.")
        view = d.view
    t_text = one("t")
    t = None
    if t_text is not None:
        t = _number(t_text, 0, 1e7)
        if t is None:
            warnings.append("Ignored the playback time in the link (not a time in seconds).")
    state = ViewState(
        link=link, example=example, analysis=analysis, labels=labels, negatives=negatives,
        threshold=threshold, label_thresholds=label_thresholds, hop_s=hop, median_frames=int(med),
        min_event_s=num("min", "minimum event length", 0, 60, d.min_event_s),
        fill_gap_s=num("gap", "gap filling", 0, 10, d.fill_gap_s), view=view, t=t,
    )  # fmt: skip
    return state, warnings


def _fmt(x: float, digits: int = 4) -> str:
    text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


def to_query_params(state: ViewState, *, settings: Settings) -> dict[str, str | list[str]]:
    """The view as query params, defaults left out."""
    d = default_state(settings)
    out: dict[str, str | list[str]] = {}
    if state.analysis:
        out["id"] = state.analysis
    elif state.link:
        out["src"] = state.link
    elif state.example:
        out["ex"] = state.example
    if state.labels != d.labels or state.negatives != d.negatives:
        out["l"] = [("-" + x) if x in state.negatives else x for x in state.labels]
    if state.threshold != d.threshold:
        out["thr"] = _fmt(state.threshold)
    if state.label_thresholds:
        out["lt"] = [f"{k}:{_fmt(v)}" for k, v in state.label_thresholds.items()]
    for key, value, default in (("hop", state.hop_s, d.hop_s), ("med", state.median_frames, d.median_frames),
                                ("min", state.min_event_s, d.min_event_s), ("gap", state.fill_gap_s, d.fill_gap_s)):  # fmt: skip
        if value != default:
            out[key] = _fmt(float(value))
    if state.view != d.view:
        out["view"] = state.view
    if state.t is not None:
        out["t"] = _fmt(state.t, 2)
    return out


def share_url(base_url: str, state: ViewState, *, settings: Settings) -> str:
    """``base_url`` plus the view's query string (just ``base_url`` when all default)."""
    query = urlencode(to_query_params(state, settings=settings), doseq=True)
    return f"{base_url}?{query}" if query else base_url

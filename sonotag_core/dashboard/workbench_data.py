"""What the player component (``frontend/workbench.js``) draws, as one JSON-safe dict.

The contract, field by field (the JS reads exactly these):

* ``duration_s``, ``frame_s``: the time axis; frame i covers ``[i*frame_s, (i+1)*frame_s)``.
* ``labels``: one entry per timeline row, in order: ``name`` (the label), ``display``
  (with "(negative)"), ``color``, ``negative``, ``threshold`` (None for negatives) and
  ``probs``: base64 of one byte per frame, ``round(p * 255)``. A byte per frame keeps an
  hour of 32 labels at 370 kB, so every frame goes to the browser once and zooming needs
  no round trip; the browser max-pools the visible frames into its pixels.
* ``events``: ``id`` (the row of the page's event table), ``label``, ``onset_s``,
  ``offset_s``, ``status`` ("accepted", "rejected", "" or, for a marked span,
  "added" / "negative": drawn hatched, never judged with a / r).
* ``overview``: :meth:`sonotag_core.media.overview.Overview.to_payload` or None.
* ``audio_url`` / ``audio_key``: where the player fetches the audio, and what identifies
  it (a new key reloads the audio and resets the zoom; the same key keeps both).
* ``seek``: ``{"t", "nonce", "play"}``: jump there once per new nonce (an event-row click).
* ``view``: "timeline", "heatmap" or "events"; ``selected``: an event id or None;
  ``review_counts``: label -> ``{"events", "reviewed"}``; ``can_review``: whether a/r work
  (and spans can be marked); ``can_search``: whether *Find similar* is offered.
* ``refined``: label -> "refined v3" for a label a detector scores (its lane says so).
* ``queue`` / ``span``: a Review next moment: ``span`` ``{"key", "label", "onset_s",
  "offset_s"}`` is the span the player shows chosen (a new ``key``: a new moment), and
  with ``queue`` true a / r answer it and n skips it (trigger "skip").
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S

NEGATIVE_SUFFIX = " (negative)"


def probability_bytes(probabilities: np.ndarray) -> list[str]:
    """(labels, frames) in [0, 1] -> one base64 string of uint8 per label (NaN -> 0)."""
    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float64), nan=0.0)
    q = np.rint(np.clip(p, 0.0, 1.0) * 255.0).astype(np.uint8)
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in q]


def event_records(events: pd.DataFrame) -> list[dict[str, Any]]:
    """The event table's rows as the player's regions; ``id`` is the row's position."""
    status = events["status"] if "status" in events else pd.Series([""] * len(events))
    return [
        {
            "id": i,
            "label": str(label),
            "onset_s": float(onset),
            "offset_s": float(offset),
            "status": str(st or ""),
        }
        for i, (label, onset, offset, st) in enumerate(
            zip(events["label"], events["onset_s"], events["offset_s"], status, strict=True)
        )
    ]


def workbench_payload(
    timeline: Timeline,
    events: pd.DataFrame,
    *,
    thresholds: Mapping[str, float],
    colors: Mapping[str, str],
    view: str = "timeline",
    overview: Mapping[str, Any] | None = None,
    audio_url: str | None = None,
    audio_key: str = "",
    seek: Mapping[str, Any] | None = None,
    selected: int | None = None,
    review_counts: Mapping[str, Mapping[str, int]] | None = None,
    can_review: bool = False,
    can_search: bool = False,
    refined: Mapping[str, str] | None = None,
    span: Mapping[str, Any] | None = None,
    queue: bool = False,
) -> dict[str, Any]:
    """Everything the player needs for one view of one analysis (see the module doc)."""
    labels = list(timeline.labels)
    probs = probability_bytes(timeline.probabilities) if labels else []
    rows = []
    for label, encoded in zip(labels, probs, strict=True):
        negative = label in timeline.negatives
        display = label + NEGATIVE_SUFFIX if negative else label
        if label in (refined or {}):
            display = f"{display} · {refined[label]}"  # type: ignore[index]
        rows.append(
            {
                "name": label,
                "display": display,
                "color": colors.get(label, "#4c78a8"),
                "negative": negative,
                "threshold": None if negative else thresholds.get(label),
                "probs": encoded,
            }
        )
    return {
        "duration_s": float(timeline.duration_s),
        "frame_s": FRAME_S,
        "labels": rows,
        "events": event_records(events),
        "overview": dict(overview) if overview is not None else None,
        "audio_url": audio_url,
        "audio_key": audio_key,
        "seek": dict(seek) if seek is not None else None,
        "view": view if view in ("timeline", "heatmap", "events") else "timeline",
        "selected": selected,
        "review_counts": {k: dict(v) for k, v in (review_counts or {}).items()},
        "can_review": bool(can_review),
        "can_search": bool(can_search),
        "span": dict(span) if span is not None else None,
        "queue": bool(queue),
    }

"""Two timelines on one time axis: the Compare page's data step.

Both analyses share the 0.3125-s frame grid (every window starts on it), so aligning them
needs no resampling: frame ``i`` is the same instant in both. The shorter one is padded
with NaN (drawn as a gap, never as a probability of 0), and each label is prefixed with
its side's name so rows stay distinct when both sides use the same label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sonotag_core.domain.timeline import Timeline

SEPARATOR = " · "


def side_label(side: str, label: str) -> str:
    """How a label of one side is titled in the combined timeline."""
    return f"{side}{SEPARATOR}{label}"


def combine(sides: Sequence[tuple[str, Timeline]]) -> Timeline:
    """One timeline holding every side's labels (prefixed) on the longest side's frames."""
    if not sides:
        raise ValueError("nothing to compare")
    names = [name for name, _ in sides]
    if len(set(names)) != len(names):
        raise ValueError(f"side names must differ, got {names}")
    n_frames = max(tl.n_frames for _, tl in sides)
    labels: list[str] = []
    negatives: set[str] = set()
    rows: list[np.ndarray] = []
    for name, tl in sides:
        padded = np.full((len(tl.labels), n_frames), np.nan, dtype=np.float32)
        padded[:, : tl.n_frames] = tl.probabilities
        rows.append(padded)
        for label in tl.labels:
            labels.append(side_label(name, label))
            if label in tl.negatives:
                negatives.add(labels[-1])
    probabilities = np.concatenate(rows) if rows else np.zeros((0, n_frames), np.float32)
    duration = max(tl.duration_s for _, tl in sides)
    return Timeline(tuple(labels), probabilities, duration, frozenset(negatives))


def score_table(sides: Sequence[tuple[str, Timeline]]) -> pd.DataFrame:
    """Clip scores side by side: one row per label, ``<side> max`` / ``<side> mean`` columns
    (empty where a side does not have the label), in first-seen label order."""
    order: list[str] = []
    columns: dict[str, dict[str, float]] = {}
    for name, tl in sides:
        scores = tl.clip_scores().set_index("label")
        for label in tl.labels:
            if label not in order:
                order.append(label)
            columns.setdefault(f"{name} max", {})[label] = float(scores.at[label, "max"])
            columns.setdefault(f"{name} mean", {})[label] = float(scores.at[label, "mean"])
    table = pd.DataFrame(columns, index=order)
    table.index.name = "label"
    return table.reset_index()

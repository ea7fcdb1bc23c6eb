"""Per-window frame maps -> one timeline over the whole file, plus clip-level scores.

Window k starting at sample s covers frames ``s // 15000 + j`` (j < 32). Where windows
overlap, the probabilities of the frames covering the same instant are averaged.
Frames starting at or after the end of the audio are never reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonotag_core.domain.windows import (
    FRAME_S,
    FRAME_SAMPLES,
    FRAMES_PER_WINDOW,
    SAMPLE_RATE,
    frame_count,
)


@dataclass(frozen=True)
class Timeline:
    """Frame probabilities for every label across the whole file.

    ``probabilities`` has shape (labels, frames), rows in ``labels`` order; frame i covers
    ``[frame_times_s[i], frame_times_s[i] + 0.3125)`` clipped to ``duration_s``.
    """

    labels: tuple[str, ...]
    probabilities: np.ndarray
    duration_s: float
    negatives: frozenset[str] = frozenset()

    @property
    def n_frames(self) -> int:
        return int(self.probabilities.shape[1])

    @property
    def frame_times_s(self) -> np.ndarray:
        return np.arange(self.n_frames, dtype=np.float64) * FRAME_S

    @property
    def frame_s(self) -> float:
        return FRAME_S

    def to_frame_df(self) -> pd.DataFrame:
        """Tidy table: one row per (frame, label) with columns time_s, label, probability."""
        n_labels, n_frames = self.probabilities.shape
        return pd.DataFrame(
            {
                "time_s": np.tile(self.frame_times_s, n_labels),
                "label": np.repeat(np.asarray(self.labels, dtype=object), n_frames),
                "probability": self.probabilities.reshape(-1).astype(np.float64),
            }
        )

    def clip_scores(self) -> pd.DataFrame:
        """Clip-level scores per label (max and mean over frames), ranked by max."""
        probs = self.probabilities
        df = pd.DataFrame(
            {
                "label": list(self.labels),
                "max": probs.max(axis=1) if probs.size else np.zeros(len(self.labels)),
                "mean": probs.mean(axis=1) if probs.size else np.zeros(len(self.labels)),
                "negative": [label in self.negatives for label in self.labels],
            }
        )
        return df.sort_values("max", ascending=False, kind="stable").reset_index(drop=True)


def assemble(
    window_maps: np.ndarray,
    window_starts: Sequence[int],
    n_samples: int,
    labels: Sequence[str],
    negatives: frozenset[str] = frozenset(),
) -> Timeline:
    """Average per-window maps (windows, labels, 32) onto the global frame grid."""
    n_frames = frame_count(n_samples)
    n_labels = len(labels)
    total = np.zeros((n_labels, n_frames), dtype=np.float64)
    count = np.zeros(n_frames, dtype=np.int64)
    for wmap, start in zip(window_maps, window_starts, strict=True):
        if start % FRAME_SAMPLES:
            raise ValueError(f"window start {start} is not on the frame grid")
        first = start // FRAME_SAMPLES
        stop = min(first + FRAMES_PER_WINDOW, n_frames)
        if stop <= first:
            continue
        total[:, first:stop] += wmap[:, : stop - first]
        count[first:stop] += 1
    if n_frames and (count == 0).any():
        raise ValueError("some frames are covered by no window")
    probs = (total / np.maximum(count, 1)).astype(np.float32)
    return Timeline(tuple(labels), probs, n_samples / SAMPLE_RATE, frozenset(negatives))

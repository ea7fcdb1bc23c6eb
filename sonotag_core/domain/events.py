"""Frame probabilities -> sound events (label, onset, offset, peak, mean).

An event is a maximal run of frames whose (optionally median-smoothed) probability is at
or above the label's threshold. Runs of the same label separated by a short gap are
merged, then events that are still too short are dropped.

Time resolution is one OpenFLAM frame, 0.3125 s: frame i covers
``[i * 0.3125, (i + 1) * 0.3125)``, and the last frame is clipped to the end of the audio
so no event ever ends after the audio does. Because of that resolution the seed's
"fill gaps under 200 ms, drop spikes under 40 ms" rule cannot be applied literally (no
gap or event is shorter than one frame); its intent maps to frames: the default
``fill_gap_s = 0.32`` fills a one-frame dip (0.3125 s < 0.32 s) and nothing longer, and
``median_frames = 3`` removes one-frame spikes before thresholding.

Everything is vectorized over the whole (labels, frames) matrix: one hour with 32 labels
(32 x 11 520 frames) takes a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import median_filter

from sonotag_core.domain.event_params import checked, event_defaults, event_param, event_params
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import ConfigError
from sonotag_core.untrusted import quoted

EVENT_COLUMNS: tuple[str, ...] = ("label", "onset_s", "offset_s", "peak", "mean")
TIME_EPS_S = 1e-9  # float slack when comparing clipped event lengths with min_event_s


_DEFAULTS = event_defaults()


@dataclass(frozen=True)
class EventParams:
    """How frame probabilities become events; invalid values raise :class:`ConfigError`.
    Each field but ``label_thresholds`` is a row of :data:`.event_params.EVENT_PARAMS`,
    which gives its default and its check (a test keeps the fields and the rows equal).

    ``label_thresholds`` overrides ``threshold`` per label (e.g. a rarer sound that needs a
    lower bar). ``median_frames`` (odd, 1 = off) smooths each label along time before
    thresholding. ``fill_gap_s``: two events of one label whose gap is shorter than this
    are merged. ``min_event_s``: events shorter than this (after merging, measured on the
    clipped times) are dropped.
    """

    threshold: float = _DEFAULTS["threshold"]
    label_thresholds: Mapping[str, float] = field(default_factory=dict)
    median_frames: int = _DEFAULTS["median_frames"]
    fill_gap_s: float = _DEFAULTS["fill_gap_s"]
    min_event_s: float = _DEFAULTS["min_event_s"]

    def __post_init__(self) -> None:
        for name, value in checked(self.scalars()).items():
            object.__setattr__(self, name, value)
        overrides = {str(k): float(v) for k, v in dict(self.label_thresholds).items()}
        threshold = event_param("threshold").check
        for label, value in overrides.items():
            try:
                threshold(value)
            except ConfigError as exc:
                message = str(exc).replace("Threshold", f"Threshold for {quoted(label)}", 1)
                raise ConfigError(message) from None
        # defensive copy: a frozen params object must not change if the caller's dict does
        object.__setattr__(self, "label_thresholds", overrides)

    def scalars(self) -> dict[str, Any]:
        """name -> value of every row of the table (all but ``label_thresholds``)."""
        return {
            row.name: getattr(self, row.name) for row in event_params() if hasattr(self, row.name)
        }

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> EventParams:
        """Defaults from the settings (``SONOTAG_THRESHOLD`` ...: any object with the
        table's names as attributes), then ``overrides``."""
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {
            row.name: getattr(settings, row.name) for row in event_params() if row.name in names
        }
        values.update(overrides)
        return cls(**values)

    def as_settings(self) -> dict[str, Any]:
        """These parameters as the ``settings`` a stored analysis and every export keep
        (plain values: ``EventParams(**p.as_settings())`` gives them back)."""
        return {**self.scalars(), "label_thresholds": dict(self.label_thresholds)}

    def threshold_for(self, label: str) -> float:
        """The label's own threshold if it has one, else the global one."""
        return float(self.label_thresholds.get(label, self.threshold))


def empty_events() -> pd.DataFrame:
    """An events table with no rows but the right columns and dtypes."""
    return pd.DataFrame(
        {
            # str: object under pandas 2, the string dtype under pandas 3, as for real rows
            "label": pd.Series([], dtype=str),
            "onset_s": pd.Series([], dtype=np.float64),
            "offset_s": pd.Series([], dtype=np.float64),
            "peak": pd.Series([], dtype=np.float64),
            "mean": pd.Series([], dtype=np.float64),
        }
    )


def detect_events(timeline: Timeline, params: EventParams) -> pd.DataFrame:
    """Events of every non-negative label, sorted by onset then label.

    Returns columns ``label, onset_s, offset_s, peak, mean``; ``peak``/``mean`` are taken
    from the raw (unsmoothed) probabilities of the frames inside the event, including any
    gap frames that were filled, so they describe what the model actually said.
    Negative labels (``timeline.negatives``) are context for the model, never events.
    """
    raw = np.asarray(timeline.probabilities)
    if raw.ndim != 2 or raw.shape[0] != len(timeline.labels):
        raise ValueError(
            f"probabilities must have shape (labels={len(timeline.labels)}, frames), not {raw.shape}"
        )
    n_labels, n_frames = raw.shape
    if n_labels == 0 or n_frames == 0:
        return empty_events()

    smoothed = raw
    if params.median_frames > 1:
        # "nearest" repeats the edge frames, so an event touching either end is not eroded
        # the way zero padding (scipy.signal.medfilt) would erode it.
        smoothed = median_filter(raw, size=(1, params.median_frames), mode="nearest")

    # compare in float64 so a threshold like 0.3 means exactly 0.3, not float32(0.3)
    thresholds = np.array(
        [params.threshold_for(label) for label in timeline.labels], dtype=np.float64
    )
    active = np.array([label not in timeline.negatives for label in timeline.labels], dtype=bool)
    mask = (smoothed >= thresholds[:, None]) & active[:, None]

    # run boundaries: +1 where a run starts, -1 one past where it ends
    padded = np.zeros((n_labels, n_frames + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major: grouped by row, ascending frame
    _, ends = np.nonzero(edges == -1)  # paired with starts one to one (same order)
    if rows.size == 0:
        return empty_events()

    # gap filling: merge a run into the previous one of the same label if the gap is short.
    # Gaps are whole frames, and 0.3125 is exact in binary, so gap_s is exact.
    gap_s = (starts[1:] - ends[:-1]) * FRAME_S
    merge = (rows[1:] == rows[:-1]) & (gap_s < params.fill_gap_s)
    first = np.concatenate(([True], ~merge))  # run that opens each merged event
    last = np.concatenate((~merge, [True]))  # run that closes each merged event
    rows, starts, ends = rows[first], starts[first], ends[last]

    onset = starts * FRAME_S
    offset = np.minimum(ends * FRAME_S, float(timeline.duration_s))
    # tolerance: a clipped length like 10.1 - 10.0 is 0.0999999...; it still counts as 0.1 s
    keep = (offset - onset) >= params.min_event_s - TIME_EPS_S
    rows, starts, ends, onset, offset = (a[keep] for a in (rows, starts, ends, onset, offset))
    if rows.size == 0:
        return empty_events()

    peak, mean = _run_stats(raw, rows, starts, ends)

    labels = np.asarray(timeline.labels, dtype=object)
    label_rank = np.empty(n_labels, dtype=np.int64)
    label_rank[np.argsort(labels, kind="stable")] = np.arange(n_labels)
    order = np.lexsort((label_rank[rows], onset))
    return pd.DataFrame(
        {
            "label": labels[rows][order],
            "onset_s": onset[order].astype(np.float64),
            "offset_s": offset[order].astype(np.float64),
            "peak": peak[order],
            "mean": mean[order],
        }
    )


def _run_stats(
    raw: np.ndarray, rows: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max and mean of ``raw[row, start:end]`` for every run, without a Python loop."""
    n_labels, n_frames = raw.shape
    values = raw.astype(np.float64)
    # peak: reduceat over the flattened matrix, with one spare column per row so that a
    # run's end index (which may equal n_frames) stays inside the array. Indices are
    # interleaved start, end, start, end...; the even slots are the runs.
    width = n_frames + 1
    flat = np.full((n_labels, width), -np.inf, dtype=np.float64)
    flat[:, :n_frames] = values
    bounds = np.empty(rows.size * 2, dtype=np.int64)
    bounds[0::2] = rows * width + starts
    bounds[1::2] = rows * width + ends
    peak = np.maximum.reduceat(flat.reshape(-1), bounds)[0::2]
    # mean: the same segments summed (not a cumulative sum, where one NaN or inf frame
    # anywhere before a run would turn that run's mean into NaN)
    flat[:, n_frames] = 0.0
    mean = np.add.reduceat(flat.reshape(-1), bounds)[0::2] / (ends - starts)
    return peak, mean

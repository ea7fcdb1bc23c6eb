"""The curves behind the Evaluate page's numbers: event F1 against threshold and each
label's PSD-ROC, both from ``sed_scores_eval`` (the library the table's numbers come
from, so a chart and its table cannot disagree), plus an overlap view of detections
against ground truth.

Both curves are step functions. A row ``(threshold, f1)`` holds from its threshold up to
the next row's: sed_scores_eval detects a frame when its score is *above* the threshold,
so each operating point covers ``[previous change score, its change score)``. A PSD-ROC
row ``(efpr, tpr)`` likewise holds until the next row's eFPR. Frame probabilities give
thousands of change points per label; the curves are thinned to ``MAX_POINTS`` rows per
label by keeping the row in effect at each of evenly spaced x positions, so every row
drawn is an exact point of the curve (and the F1 curve keeps its maximum).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from sonotag_core.domain.sed_scoring import (
    COLLARS,
    PSDS_COMMON,
    Events,
    single_class,
    writable_detection,
)

MAX_POINTS = 200  #: rows per label and curve, at most
MAX_EFPR = cast(float, PSDS_COMMON["max_efpr"])  #: the PSDS one (false positives per hour)
F1_COLUMNS = ("label", "threshold", "f1", "precision", "recall")
ROC_COLUMNS = ("label", "efpr", "tpr")
STATUS = "status"
HIT, FALSE_ALARM = "hit", "false alarm"  #: detection statuses
FOUND, MISSED = "found", "missed"  #: truth statuses
#: accepted spellings of each column (detect_events writes onset_s/offset_s, the ground
#: truth table event_label)
_ALIASES = {
    "label": ("label", "event_label"),
    "onset": ("onset", "onset_s"),
    "offset": ("offset", "offset_s"),
}


# --------------------------------------------------------------------------- inputs


def _scored(
    scores: Mapping[str, pd.DataFrame], gt: Events, labels: Sequence[str]
) -> tuple[list[str], dict[str, pd.DataFrame], dict[str, list[tuple[float, float, str]]]]:
    """The labels that can have a curve (a score column and at least one truth event:
    recall needs truth), with scores and truth cut down to them."""
    columns = set(next(iter(scores.values())).columns) if scores else set()
    counted = {e[2] for f in scores for e in gt.get(f, ())}
    names = [n for n in dict.fromkeys(labels) if n in columns and n in counted]
    cut = {f: df[["onset", "offset", *names]] for f, df in scores.items()}
    mine = {
        f: [(float(e[0]), float(e[1]), str(e[2])) for e in gt.get(f, ()) if e[2] in names]
        for f in scores
    }
    return names, cut, mine


# --------------------------------------------------------------------------- thinning


def _thin(x: np.ndarray, n: int, keep: Iterable[int] = ()) -> np.ndarray:
    """Indices of at most ``n`` rows of a step curve sorted by ``x``: the row in effect
    at each of evenly spaced positions from the first x to the last (so the first and
    last rows stay), plus ``keep``."""
    if len(x) <= n:
        return np.arange(len(x))
    extra = sorted(set(keep))
    grid = np.linspace(x[0], x[-1], max(n - len(extra), 2))
    picked = np.searchsorted(x, grid, side="right") - 1
    return np.unique(np.concatenate([np.clip(picked, 0, len(x) - 1), extra]).astype(int))


# --------------------------------------------------------------------------- F1 curve


def _f1_rows(label: str, curve: tuple[Any, ...], n: int) -> pd.DataFrame:
    """One label's fscore_curve as rows on [0, 1]; the row in effect at threshold t is
    the one whose change score is the first above t. A last row at 1 repeats the one
    before, so a step line reaches the end of the axis."""
    f, p, r, change = (np.asarray(a, dtype=np.float64) for a in curve[:4])
    starts = np.concatenate([[-np.inf], change[:-1]])  # each point holds on [start, change)
    inside = (change > 0.0) & (starts <= 1.0)
    f, p, r, starts = f[inside], p[inside], r[inside], np.clip(starts[inside], 0.0, 1.0)
    if not len(f):
        return pd.DataFrame(columns=list(F1_COLUMNS))
    best = len(f) - 1 - int(np.argmax(f[::-1]))  # as best_fscore: the highest such threshold
    rows = _thin(starts, n - 1, keep=[best])
    at = starts[rows]
    if at[-1] < 1.0:  # the last row holds on to 1: give the step its end
        rows, at = np.append(rows, rows[-1]), np.append(at, 1.0)
    return pd.DataFrame(
        {
            "label": label,
            "threshold": at,
            "f1": f[rows],
            "precision": p[rows],
            "recall": r[rows],
        }
    )


def f1_curves(
    scores: Mapping[str, pd.DataFrame],
    gt: Events,
    labels: Sequence[str],
    *,
    max_points: int = MAX_POINTS,
) -> pd.DataFrame:
    """Collar-based event F1, precision and recall against threshold, per label.

    ``scores``/``gt`` as in :func:`.evaluation.evaluate` (score frames, and
    ``{file: [(onset, offset, label), ...]}``); collars are :data:`.sed_scoring.COLLARS`.
    Rows (``F1_COLUMNS``) are sorted by label order, then threshold, on [0, 1]; each row
    holds up to the next one's threshold. Labels without a score column or without truth
    events have no rows (recall is undefined without truth).
    """
    names, cut, mine = _scored(scores, gt, labels)
    if not names:
        return pd.DataFrame(columns=list(F1_COLUMNS))
    writable_detection()
    from sed_scores_eval import collar_based

    curves = collar_based.fscore_curve(cut, mine, **COLLARS)
    frames = [_f1_rows(n, curves[n], max_points) for n in names]
    return _concat(frames, F1_COLUMNS)


# --------------------------------------------------------------------------- PSD-ROC


def _roc_rows(
    label: str, tpr: np.ndarray, efpr: np.ndarray, max_efpr: float, n: int
) -> pd.DataFrame:
    """One label's ROC (sorted by eFPR, already cut at ``max_efpr``) with its last TPR
    carried on to ``max_efpr``: the area PSDS measures."""
    tpr, efpr = np.asarray(tpr, dtype=np.float64), np.asarray(efpr, dtype=np.float64)
    if not len(efpr) or efpr[-1] < max_efpr:
        last = tpr[-1] if len(tpr) else 0.0
        tpr, efpr = np.append(tpr, last), np.append(efpr, max_efpr)
    rows = _thin(efpr, n)
    return pd.DataFrame({"label": label, "efpr": efpr[rows], "tpr": tpr[rows]})


def psd_roc_curves(
    scores: Mapping[str, pd.DataFrame],
    gt: Events,
    durations: Mapping[str, float],
    labels: Sequence[str],
    scenario: Mapping[str, Any],
    *,
    max_efpr: float = MAX_EFPR,
    max_points: int = MAX_POINTS,
) -> pd.DataFrame:
    """Each label's PSD-ROC: TPR against eFPR (false positives per hour), on its own.

    ``scenario`` is a DCASE one (:data:`.evaluation.PSDS1`, ...) taken without its
    cross-trigger term, as the per-label PSDS in the table: with no cross-trigger term a
    label's ROC does not depend on the other labels, so one library call gives them all.
    Rows (``ROC_COLUMNS``) are sorted by label order, then eFPR, on [0, ``max_efpr``];
    each row holds up to the next one's eFPR.
    """
    names, cut, mine = _scored(scores, gt, labels)
    if not names:
        return pd.DataFrame(columns=list(ROC_COLUMNS))
    writable_detection()
    from sed_scores_eval import intersection_based

    common = {**PSDS_COMMON, "max_efpr": float(max_efpr)}
    _, single = intersection_based.psd_roc(
        scores=cut,
        ground_truth=mine,
        audio_durations={f: float(durations[f]) for f in cut},
        **single_class(scenario),
        **common,
    )
    frames = [_roc_rows(n, single[n][0], single[n][1], float(max_efpr), max_points) for n in names]
    return _concat(frames, ROC_COLUMNS)


def _concat(frames: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)[list(columns)]


# --------------------------------------------------------------------------- overlap


def _column(df: pd.DataFrame, name: str) -> np.ndarray:
    for spelling in _ALIASES[name]:
        if spelling in df.columns:
            return df[spelling].to_numpy()
    raise KeyError(f"an events table needs a {name!r} column, it has {list(df.columns)}")


def _overlapping(
    on: np.ndarray, off: np.ndarray, other_on: np.ndarray, other_off: np.ndarray
) -> np.ndarray:
    """For each interval [on, off): does any other interval share a positive length?

    Intervals meet iff other_on < off and other_off > on (and both have length): sorted
    by onset, the others starting before ``off`` are a prefix, and one of them reaches
    past ``on`` iff the prefix's largest offset does."""
    real = other_off > other_on
    other_on, other_off = other_on[real], other_off[real]
    out = np.zeros(len(on), dtype=bool)
    if not len(other_on):
        return out
    order = np.argsort(other_on, kind="stable")
    starts, reach = other_on[order], np.maximum.accumulate(other_off[order])
    before = np.searchsorted(starts, off, side="left")  # others with onset < off
    has = before > 0
    out[has] = reach[before[has] - 1] > on[has]
    return out & (off > on)


def _statuses(events: pd.DataFrame, others: pd.DataFrame, yes: str, no: str) -> pd.DataFrame:
    out = events.copy()
    labels, other_labels = _column(events, "label"), _column(others, "label")
    on, off = (
        _column(events, "onset").astype(np.float64),
        _column(events, "offset").astype(np.float64),
    )
    o_on, o_off = (
        _column(others, "onset").astype(np.float64),
        _column(others, "offset").astype(np.float64),
    )
    hit = np.zeros(len(events), dtype=bool)
    for label in pd.unique(labels):
        mine, theirs = labels == label, other_labels == label
        hit[mine] = _overlapping(on[mine], off[mine], o_on[theirs], o_off[theirs])
    out[STATUS] = np.where(hit, yes, no)
    return out


def truth_overlap(
    detections: pd.DataFrame, truth: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of ``detections`` and ``truth`` with a ``status`` column: a detection is a
    "hit" if it overlaps a truth event of its label, else a "false alarm"; a truth event
    is "found" if a detection of its label overlaps it, else "missed".

    A visual aid for the lanes chart, not the metric: overlap means a shared stretch of
    positive length (events that only touch at an edge do not overlap), with no collars
    and no one-to-one matching, so these counts are not the collar-based F1's. Columns:
    label (or event_label), onset (or onset_s), offset (or offset_s), in seconds.
    """
    return (
        _statuses(detections, truth, HIT, FALSE_ALARM),
        _statuses(truth, detections, FOUND, MISSED),
    )

"""How well a label works on the user's audio: SonoTag's frame scores against ground truth,
scored by ``sed_scores_eval`` (the DCASE community's library), not by metrics of our own.

Per label and macro: PSDS1 and PSDS2 (DCASE parameters), collar-based event F1 at the
label's threshold (200 ms onset collar, offset collar max(200 ms, 20 % of the event)),
segment-based F1 (1-s segments), segment AUROC, and the threshold that maximises event
F1 (the calibration :mod:`.calibration` offers). Scores are the timeline's frame
probabilities as they are, one row per 0.3125-s frame, so these numbers describe the
model's output, not SonoTag's event merging.

The DCASE parameters and the pandas-3 adapter for the library's Cython step live in
:mod:`.sed_scoring`, which the curves behind the page's charts share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sonotag_core.domain.calibration import clamp
from sonotag_core.domain.evaluation_curves import f1_curves, psd_roc_curves
from sonotag_core.domain.sed_scoring import (
    COLLARS,
    PSDS1,
    PSDS2,
    PSDS_COMMON,
    SEGMENT_S,
    Events,
    single_class,
    writable_detection,
)
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import TruthError

#: the per-label table's columns, in order (CSV and JSON keep them)
COLUMNS = (
    "label",
    "n_truth",
    "threshold",
    "f1",
    "precision",
    "recall",
    "segment_f1",
    "auroc",
    "psds1",
    "psds2",
    "best_threshold",
    "best_f1",
)


@dataclass(frozen=True)
class Evaluation:
    """The per-label table (``COLUMNS``) and the macro averages; ``files`` evaluated."""

    per_label: pd.DataFrame
    macro: Mapping[str, float]
    files: tuple[str, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    #: event F1 against threshold and the PSD-ROC (scenario 1) per label with truth
    #: (:mod:`.evaluation_curves`), what the Evaluate page draws
    f1_curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    psd_roc: pd.DataFrame = field(default_factory=pd.DataFrame)

    def best_thresholds(self) -> dict[str, float]:
        """label -> the threshold that maximised its event F1, in the slider's range;
        labels without truth, or that no threshold detects (best F1 0), have none."""
        rows = self.per_label.dropna(subset=["best_threshold"])
        rows = rows[rows["best_f1"] > 0]
        return {str(r.label): clamp(float(r.best_threshold)) for r in rows.itertuples()}

    def as_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready (NaN -> None)."""
        table = self.per_label.astype(object).where(self.per_label.notna(), None)
        return {
            "files": list(self.files),
            "macro": {k: _num(v) for k, v in self.macro.items()},
            "labels": table.to_dict(orient="records"),
            "settings": dict(self.settings),
            "curves": {
                "f1_vs_threshold": self.f1_curves.to_dict(orient="records"),
                "psd_roc_psds1": self.psd_roc.to_dict(orient="records"),
            },
        }


def _num(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def score_frame(timeline: Timeline, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """The timeline as sed_scores_eval's score DataFrame: one row per frame, onset/offset
    in seconds (the last frame ends at the audio's end), one column per label."""
    writable_detection()
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    names = list(
        labels
        if labels is not None
        else [x for x in timeline.labels if x not in timeline.negatives]
    )
    rows = [timeline.labels.index(name) for name in names]
    n = timeline.n_frames
    stamps = np.minimum(np.arange(n + 1) * FRAME_S, timeline.duration_s)
    stamps[-1] = timeline.duration_s
    scores = np.ascontiguousarray(timeline.probabilities[rows].T, dtype=np.float64)
    return create_score_dataframe(scores, stamps, event_classes=names)


def evaluate(
    timelines: Mapping[str, Timeline],
    truth: Events,
    thresholds: Mapping[str, float],
    *,
    labels: Sequence[str] | None = None,
) -> Evaluation:
    """Score every file's timeline against its ground-truth events.

    ``truth`` maps a file name to (onset, offset, label) events, labels already mapped to
    SonoTag labels (:func:`.truth.events_for_labels`); a file with no events is a file
    where nothing happens. ``thresholds``: each label's event threshold (the F1 column).
    """
    if not timelines:
        raise TruthError("There is nothing to evaluate: no analysed file matches the truth.")
    first = next(iter(timelines.values()))
    names = list(
        labels if labels is not None else [x for x in first.labels if x not in first.negatives]
    )
    if not names:
        raise TruthError("Evaluate needs at least one (positive) label.")
    writable_detection()
    from sed_scores_eval import collar_based, segment_based

    gt_all = {f: [e for e in truth.get(f, ()) if e[2] in names] for f in timelines}
    n_truth = {n: sum(e[2] == n for events in gt_all.values() for e in events) for n in names}
    known = [n for n in names if n_truth[n]]  # sed_scores_eval scores classes with truth
    if not known:
        raise TruthError(
            "No ground-truth event belongs to any of these labels: map the truth's classes "
            "to labels, or evaluate other labels."
        )
    scores = {f: score_frame(tl, known) for f, tl in timelines.items()}
    gt = {f: [e for e in events if e[2] in known] for f, events in gt_all.items()}
    durations = {f: float(tl.duration_s) for f, tl in timelines.items()}
    at = {n: float(thresholds.get(n, 0.5)) for n in names}
    on = {n: at[n] for n in known}
    f1, precision, recall, _ = collar_based.fscore(scores, gt, on, **COLLARS)
    best_f1, _, _, best_at, _ = collar_based.best_fscore(scores, gt, **COLLARS)
    seg_f1, *_ = segment_based.fscore(scores, gt, durations, on, segment_length=SEGMENT_S)
    auroc = _auroc(scores, gt, durations, n_truth)
    psds1 = _psds_per_label(scores, gt, durations, known, PSDS1)
    psds2 = _psds_per_label(scores, gt, durations, known, PSDS2)
    rows = []
    for n in names:
        if not n_truth[n]:  # nothing to find: every detection would be a false alarm
            rows.append({"label": n, "n_truth": 0, "threshold": at[n]})
            continue
        rows.append(
            {
                "label": n,
                "n_truth": n_truth[n],
                "threshold": at[n],
                "f1": float(f1[n]),
                "precision": float(precision[n]),
                "recall": float(recall[n]),
                "segment_f1": float(seg_f1[n]),
                "auroc": auroc.get(n, np.nan),
                "psds1": psds1[n],
                "psds2": psds2[n],
                "best_threshold": _threshold(best_at[n]),
                "best_f1": float(best_f1[n]),
            }
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    several = len(known) > 1  # a cross-trigger term needs other classes
    macro = {
        "f1": float(f1["macro_average"]),
        "segment_f1": float(seg_f1["macro_average"]),
        "auroc": float(np.nanmean(list(auroc.values()))) if auroc else np.nan,
        "psds1": _psds(scores, gt, durations, PSDS1),
        "psds2": _psds(scores, gt, durations, PSDS2 if several else single_class(PSDS2)),
    }
    return Evaluation(
        table,
        macro,
        tuple(timelines),
        {"collars": COLLARS, "segment_s": SEGMENT_S, "psds1": PSDS1, "psds2": PSDS2},
        f1_curves(scores, gt, known),
        psd_roc_curves(scores, gt, durations, known, PSDS1),
    )


def _threshold(value: float) -> float:
    """best_fscore's threshold sits between two scores; ±inf means "never" / "always"."""
    return clamp(float(value)) if not np.isnan(value) else np.nan


def _auroc(
    scores: Mapping[str, pd.DataFrame],
    gt: Events,
    durations: Mapping[str, float],
    n_truth: Mapping[str, int],
) -> dict[str, float]:
    """Segment AUROC per label that has both positive and negative segments."""
    from sed_scores_eval import segment_based

    try:  # a label no segment lacks (or has) divides by zero: its AUROC is left out below
        with np.errstate(invalid="ignore", divide="ignore"):
            values, *_ = segment_based.auroc(scores, gt, durations, segment_length=SEGMENT_S)
    except (ValueError, ZeroDivisionError, IndexError):
        return {}
    out = {}
    for n, count in n_truth.items():
        value = values.get(n) if isinstance(values, Mapping) else None
        if count and value is not None and np.isfinite(value):
            out[n] = float(value)
    return out


def _psds(
    scores: Mapping[str, pd.DataFrame],
    gt: Events,
    durations: Mapping[str, float],
    scenario: Mapping[str, Any],
) -> float:
    from sed_scores_eval import intersection_based

    value, *_ = intersection_based.psds(
        scores=scores, ground_truth=gt, audio_durations=durations, **scenario, **PSDS_COMMON
    )
    return float(value)


def _psds_per_label(
    scores: Mapping[str, pd.DataFrame],
    gt: Events,
    durations: Mapping[str, float],
    names: Sequence[str],
    scenario: Mapping[str, Any],
) -> dict[str, float]:
    """Each label's PSDS on its own (one class: no cross-trigger term), the label's share
    of how the macro PSDS comes about."""
    alone = single_class(scenario)
    out = {}
    for n in names:
        one = {f: df[["onset", "offset", n]] for f, df in scores.items()}
        mine = {f: [e for e in events if e[2] == n] for f, events in gt.items()}
        out[n] = _psds(one, mine, durations, alone)
    return out

"""Per-label thresholds from evidence: the threshold that maximised event F1 on ground
truth (:meth:`.evaluation.Evaluation.best_thresholds`), or a logistic fit of reviewed
events (accepted = right, rejected = wrong) against their peak probability, read off at
the precision the user asks for (as BirdNET-Analyzer calibrates from reviewed segments).

A calibration belongs to a label *text* and a model checkpoint: "door knock" calibrated
on one checkpoint says nothing about another. The store keeps them with what they came
from; the Analyze page offers them for every later analysis that uses the label.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from sonotag_core.domain.review import ACCEPTED, REJECTED
from sonotag_core.errors import ConfigError

#: thresholds are kept inside the range the threshold slider offers
LOWEST, HIGHEST = 0.01, 0.99
ORIGINS = ("ground truth", "reviews")


@dataclass(frozen=True)
class Calibration:
    """One label's threshold, where it came from (``origin``) and on what (``detail``:
    the F1 it reached, or the fit and the counts of accepted and rejected events)."""

    label: str
    threshold: float
    origin: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)


def clamp(value: float) -> float:
    return float(min(max(value, LOWEST), HIGHEST))


def from_evaluation(
    best: Mapping[str, float], f1: Mapping[str, float], truth: str, origin: str = "ground truth"
) -> list[Calibration]:
    """Calibrations from an evaluation's best thresholds (``truth``: what it was scored
    on, a file or the reviewed events)."""
    if origin not in ORIGINS:
        raise ConfigError(f"A calibration comes from one of {', '.join(ORIGINS)}, not {origin!r}.")
    return [
        Calibration(label, clamp(t), origin, {"f1": float(f1.get(label, math.nan)), "truth": truth})
        for label, t in best.items()
    ]


def _fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> tuple[float, float]:
    """P(accepted | peak) = sigmoid(a * peak + b) by Newton's method, with a small ridge
    so a perfectly separated review set still gives a finite, steep slope."""
    a, b = 0.0, 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        w = p * (1.0 - p)
        grad = np.array([np.sum((p - y) * x) + ridge * a, np.sum(p - y)])
        hess = np.array(
            [[np.sum(w * x * x) + ridge, np.sum(w * x)], [np.sum(w * x), np.sum(w) + 1e-9]]
        )
        step = np.linalg.solve(hess, grad)
        a, b = a - float(step[0]), b - float(step[1])
        if np.abs(step).max() < 1e-9:
            break
    return a, b


def from_reviews(
    events: pd.DataFrame, target_precision: float
) -> tuple[list[Calibration], dict[str, str]]:
    """Calibrations from reviewed events (columns ``label``, ``peak``, ``status``): per
    label, the peak at which the fitted chance of a right detection reaches
    ``target_precision``. Labels without at least one accepted and one rejected event,
    or whose fit does not rise with the peak, are returned in the second value with why."""
    if not 0.0 < target_precision < 1.0:
        raise ConfigError(f"The target precision must be between 0 and 1, not {target_precision}.")
    out: list[Calibration] = []
    skipped: dict[str, str] = {}
    reviewed = events[events["status"].isin([ACCEPTED, REJECTED])]
    for label, group in reviewed.groupby("label", sort=False):
        right = int((group["status"] == ACCEPTED).sum())
        wrong = int((group["status"] == REJECTED).sum())
        if not right or not wrong:
            skipped[str(label)] = (
                f"needs accepted and rejected events ({right} accepted, {wrong} rejected)"
            )
            continue
        x = group["peak"].to_numpy(np.float64)
        y = (group["status"] == ACCEPTED).to_numpy(np.float64)
        a, b = _fit_logistic(x, y)
        if a <= 0:
            skipped[str(label)] = "accepted events do not have higher peaks than rejected ones"
            continue
        logit = math.log(target_precision / (1.0 - target_precision))
        detail = {
            "slope": a,
            "intercept": b,
            "accepted": right,
            "rejected": wrong,
            "target_precision": target_precision,
        }
        out.append(Calibration(str(label), clamp((logit - b) / a), "reviews", detail))
    return out, skipped


#: a per-label threshold within this of a kept calibration is that calibration (the
#: slider's step is 0.01 and share links keep two decimals)
SAME_THRESHOLD = 0.005


def threshold_origins(
    thresholds: Mapping[str, float], kept: Mapping[str, Calibration]
) -> dict[str, dict[str, Any]]:
    """Where each per-label threshold came from, for the exports' ``settings``: the kept
    calibration it equals (origin, what it was fitted on, when), else set by hand."""
    out: dict[str, dict[str, Any]] = {}
    for label, value in thresholds.items():
        cal = kept.get(label)
        if cal is not None and abs(cal.threshold - float(value)) <= SAME_THRESHOLD:
            out[label] = {
                "origin": cal.origin,
                "detail": dict(cal.detail),
                "calibrated": datetime.fromtimestamp(cal.created, timezone.utc).isoformat(
                    timespec="seconds"
                ),
            }
        else:
            out[label] = {"origin": "set by hand"}
    return out

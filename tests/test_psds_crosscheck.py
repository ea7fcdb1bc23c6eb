"""PSDS cross-check: sed_scores_eval (what SonoTag uses) against psds_eval 0.5.3, the
DCASE challenge's original, independent implementation, on the same detections.

sed_scores_eval computes the PSD-ROC exactly, over every score threshold at once;
psds_eval builds it from the operating points it is given. With an operating point at
every distinct score (frames scoring >= the threshold are on; consecutive on-frames form
one event) the two ROCs are the same curve, so the PSDS must agree; sed_scores_eval's
repository test (tests/test_intersection_based/test_psds.py) makes the same comparison.
The detections fed to psds_eval are made here, by neither library. Scores are multiples
of 1/8, exact in float32 (the timeline's dtype), so a few operating points suffice; frames
are SonoTag's 0.3125-s grid. psds_eval runs through tests/psds_eval_compat.py.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("psds_eval")

from psds_eval_compat import patched  # noqa: E402

from sonotag_core.domain import sed_scoring  # noqa: E402
from sonotag_core.domain.evaluation import evaluate  # noqa: E402
from sonotag_core.domain.sed_scoring import PSDS1, PSDS2, PSDS_COMMON  # noqa: E402
from sonotag_core.domain.timeline import Timeline  # noqa: E402
from sonotag_core.domain.windows import FRAME_S  # noqa: E402

TOLERANCE = 1e-3
SCENARIOS: dict[str, Mapping[str, Any]] = {"psds1": PSDS1, "psds2": PSDS2}
Events = dict[str, list[tuple[float, float, str]]]


@dataclass(frozen=True)
class Case:
    """Frame scores (frames, classes) per file, on the 0.3125-s grid, and the truth."""

    classes: tuple[str, ...]
    durations: dict[str, float]
    scores: dict[str, np.ndarray]
    truth: Events

    def stamps(self, name: str) -> np.ndarray:
        """Frame boundaries: frame i is [i * 0.3125, (i + 1) * 0.3125) clipped to the end."""
        n = len(self.scores[name])
        return np.minimum(np.arange(n + 1) * FRAME_S, self.durations[name])


def n_frames(duration: float) -> int:
    return math.ceil(duration / FRAME_S)


def build(
    classes: Sequence[str],
    durations: Mapping[str, float],
    bumps: Mapping[str, Sequence[tuple[str, float, float, float]]],
    truth: Events,
    background: float,
) -> Case:
    """Scores ``background`` everywhere, ``score`` on frames starting in [start, end) for
    each (class, start, end, score) bump."""
    scores = {}
    for name, duration in durations.items():
        n = n_frames(duration)
        grid = np.full((n, len(classes)), background)
        starts = np.arange(n) * FRAME_S
        for cls, start, end, score in bumps.get(name, ()):
            grid[(starts >= start) & (starts < end), classes.index(cls)] = score
        scores[name] = grid
    return Case(tuple(classes), dict(durations), scores, truth)


def two_files_two_classes() -> Case:
    """A dog found whole, a short dog found only at low thresholds, dog false alarms, a
    long siren found in two score levels, a siren that cross-triggers on a dog, a siren
    found only in part (a PSDS2 hit, not a PSDS1 one); one file's duration is off the
    frame grid."""
    truth = {
        "a": [(10.2, 14.9, "dog"), (40.0, 41.1, "dog"), (60.3, 78.8, "siren")],
        "b": [(5.55, 9.0, "dog"), (30.0, 33.3, "siren")],
    }
    bumps = {
        "a": [
            ("dog", 10.0, 15.0, 0.75),
            ("dog", 40.0, 41.25, 0.375),
            ("dog", 90.0, 92.0, 0.625),
            ("dog", 100.0, 101.0, 0.25),
            ("siren", 60.0, 70.0, 0.875),
            ("siren", 70.0, 79.0, 0.625),
            ("siren", 10.0, 12.5, 0.5),
        ],
        "b": [
            ("dog", 5.3, 9.1, 0.625),
            ("siren", 30.0, 31.0, 0.75),
            ("siren", 50.0, 51.0, 0.375),
        ],
    }
    return build(("dog", "siren"), {"a": 120.0, "b": 75.3}, bumps, truth, 0.0)


def three_classes_and_a_quiet_file() -> Case:
    """Three classes over three files, one with no events but false alarms; events from
    0.4 s to 20 s; detections too short (GTC), too long (DTC), split in two, overlapping
    another class's truth (cross-triggers)."""
    truth = {
        "x": [
            (3.0, 23.0, "music"),
            (5.1, 9.7, "speech"),
            (30.2, 30.6, "door"),
            (44.0, 47.5, "speech"),
            (80.0, 81.2, "door"),
        ],
        "y": [],
        "z": [(12.0, 18.0, "speech"), (12.0, 30.0, "music"), (70.1, 70.9, "door")],
    }
    bumps = {
        "x": [
            ("music", 2.5, 14.0, 0.875),
            ("music", 14.0, 24.0, 0.5),
            ("speech", 5.0, 10.0, 0.75),
            ("speech", 20.0, 28.0, 0.375),
            ("door", 30.0, 30.7, 1.0),
            ("door", 5.0, 7.0, 0.625),
            ("speech", 40.0, 55.0, 0.5),
            ("door", 79.0, 82.5, 0.25),
        ],
        "y": [
            ("music", 10.0, 20.0, 0.625),
            ("door", 33.0, 33.5, 0.875),
            ("speech", 1.0, 3.0, 0.25),
        ],
        "z": [
            ("speech", 12.0, 14.5, 0.75),
            ("speech", 15.0, 18.5, 0.75),
            ("music", 12.0, 20.0, 0.625),
            ("music", 20.0, 31.0, 0.75),
            ("door", 70.0, 71.0, 0.25),
            ("door", 13.0, 14.0, 0.375),
        ],
    }
    classes = ("speech", "music", "door")
    return build(classes, {"x": 150.0, "y": 60.0, "z": 93.75}, bumps, truth, 0.125)


def seeded_random() -> Case:
    """Random events (a quarter never scored), fragmented and noisy scores, random false
    alarms (seeded): many partial detections."""
    rng = np.random.default_rng(2024)
    classes = ("a", "b", "c")
    durations = {"r1": 180.0, "r2": 97.4, "r3": 130.0}
    truth: Events = {}
    scores = {}
    for name, duration in durations.items():
        n = n_frames(duration)
        starts = np.arange(n) * FRAME_S
        grid = rng.choice([0.0, 0.125, 0.25], size=(n, len(classes)), p=[0.8, 0.15, 0.05])
        truth[name] = []
        for k, cls in enumerate(classes):
            onset = rng.uniform(0, 10)
            while (offset := onset + rng.uniform(0.4, 8.0)) <= duration:
                truth[name].append((float(onset), float(offset), cls))
                inside = (starts + FRAME_S > onset) & (starts < offset)
                if rng.random() > 0.25:
                    grid[inside & (rng.random(n) < 0.8), k] = rng.integers(3, 9) / 8
                onset = offset + rng.uniform(20.0, 70.0)
            for _ in range(4):
                first = rng.integers(0, n - 10)
                grid[first : first + rng.integers(1, 10), k] = rng.integers(3, 9) / 8
        scores[name] = grid
    return Case(classes, durations, scores, truth)


CASES: dict[str, Callable[[], Case]] = {
    "two_files_two_classes": two_files_two_classes,
    "three_classes_and_a_quiet_file": three_classes_and_a_quiet_file,
    "seeded_random": seeded_random,
}


# --- psds_eval: detections made here, one operating point per distinct score -----------


def detections(case: Case, threshold: float) -> pd.DataFrame:
    """Events where a class's score is >= threshold: runs of consecutive frames."""
    rows = []
    for name, grid in case.scores.items():
        stamps = case.stamps(name)
        for k, cls in enumerate(case.classes):
            on = np.diff(np.concatenate([[0], (grid[:, k] >= threshold).astype(int), [0]]))
            for a, b in zip(np.flatnonzero(on == 1), np.flatnonzero(on == -1), strict=True):
                rows.append((name, float(stamps[a]), float(stamps[b]), cls))
    return pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"])


@functools.cache
def psds_eval_reference(name: str, scenario_name: str) -> tuple[float, dict[str, float]]:
    """psds_eval's PSDS, and each class's PSDS from its own ROC (no cross-trigger or
    instability term), with operating points at every distinct score of the case.

    psds_eval cannot score a lone class (the mean cross-trigger rate over no other class
    is NaN, and so is every eFPR), so the per-class values come from the multi-class run:
    a class's TPR/FPR do not depend on the other classes."""
    case, scenario = CASES[name](), SCENARIOS[scenario_name]
    truth = pd.DataFrame(
        [(f, *event) for f, events in case.truth.items() for event in events],
        columns=["filename", "onset", "offset", "event_label"],
    )
    meta = pd.DataFrame(list(case.durations.items()), columns=["filename", "duration"])
    cttc = scenario["cttc_threshold"]
    max_efpr = PSDS_COMMON["max_efpr"]
    with patched() as PSDSEval:
        ev = PSDSEval(
            dtc_threshold=scenario["dtc_threshold"],
            gtc_threshold=scenario["gtc_threshold"],
            # psds_eval wants a number; it only matters when alpha_ct > 0 (not in PSDS1)
            cttc_threshold=1.0 if cttc is None else cttc,
            ground_truth=truth,
            metadata=meta,
            duration_unit=PSDS_COMMON["unit_of_time"],
        )
        for t in np.unique(np.concatenate([g.ravel() for g in case.scores.values()])):
            ev.add_operating_point(detections(case, t), info={"threshold": t})
        macro = ev.psds(
            alpha_ct=scenario["alpha_ct"], alpha_st=PSDS_COMMON["alpha_st"], max_efpr=max_efpr
        ).value
        *_, roc = ev.psd_roc_curves(alpha_ct=0.0)
        names = [c for c in ev.class_names if c in case.classes]  # sorted, WORLD dropped
        alone = {c: ev._auc(roc.xp, roc.yp[i], max_efpr) / max_efpr for i, c in enumerate(names)}
    return float(macro), {c: float(v) for c, v in alone.items()}


# --- sed_scores_eval ----------------------------------------------------------------------


def sed_scores_eval_psds(case: Case, scenario: Mapping[str, Any]) -> float:
    """PSDS by sed_scores_eval on the case's score DataFrames, as SonoTag calls it."""
    sed_scoring.writable_detection()  # SonoTag's pandas-3 adapter for the Cython step
    from sed_scores_eval import intersection_based
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    frames = {
        f: create_score_dataframe(grid, case.stamps(f), list(case.classes))
        for f, grid in case.scores.items()
    }
    value, *_ = intersection_based.psds(
        scores=frames,
        ground_truth=case.truth,
        audio_durations=case.durations,
        **scenario,
        **PSDS_COMMON,
    )
    return float(value)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("name", list(CASES))
def test_sed_scores_eval_and_psds_eval_agree(name, scenario):
    want, _ = psds_eval_reference(name, scenario)
    assert 0.05 < want < 0.95  # a curve worth comparing, not 0 against 0 or 1 against 1
    got = sed_scores_eval_psds(CASES[name](), SCENARIOS[scenario])
    assert got == pytest.approx(want, abs=TOLERANCE)


def test_the_reference_matches_a_hand_count():
    """The dog of ``two_files_two_classes`` under PSDS1 (DTC = GTC = 0.7), 195.3 s of
    audio, so one false alarm is 3600 / 195.3 = 18.43 per hour. Thresholds 0.75: the
    [10.2, 14.9) dog is hit (TPR 1/3, no FP). 0.625: b's dog is hit ([5.3125, 9.375)
    covers 3.45 of its 4.06 s, DTC 0.85) and a's 90-92 s alarm fires: TPR 2/3, eFPR
    18.43. 0.375: the 40-41.1 s dog is hit by [40, 41.25): TPR 1, still one FP. Staircase
    area up to 100: 18.43 * 1/3 + (100 - 18.43) * 1, so PSDS = 1 - (2/3) * 18.43 / 100."""
    _, alone = psds_eval_reference("two_files_two_classes", "psds1")
    assert alone["dog"] == pytest.approx(1 - (2 / 3) * (3600 / 195.3) / 100, abs=1e-9)
    assert alone["siren"] == pytest.approx(0.5)  # b's siren is never covered to 70 %


def test_sonotags_evaluate_agrees_with_psds_eval():
    """SonoTag's evaluate() on timelines: macro PSDS1/PSDS2 over the three classes, and
    each label's PSDS1/PSDS2 on its own."""
    name = "three_classes_and_a_quiet_file"
    case = CASES[name]()
    timelines = {
        f: Timeline(case.classes, grid.T.astype(np.float32), case.durations[f])
        for f, grid in case.scores.items()
    }
    for f, tl in timelines.items():  # eighths are exact in float32: the same scores
        np.testing.assert_array_equal(tl.probabilities.T, case.scores[f])
    ev = evaluate(timelines, case.truth, {})
    table = ev.per_label.set_index("label")
    for scenario in SCENARIOS:
        macro, alone = psds_eval_reference(name, scenario)
        assert ev.macro[scenario] == pytest.approx(macro, abs=TOLERANCE), scenario
        assert sorted(alone) == sorted(case.classes)
        for cls, want in alone.items():
            assert table.loc[cls, scenario] == pytest.approx(want, abs=TOLERANCE), (cls, scenario)


def test_the_adapter_restores_psds_eval():
    """Outside ``patched()`` psds_eval is as released, so nothing else sees the patches."""
    from psds_eval import PSDSEval

    names = ("step_curve", "_auc")
    before = {k: PSDSEval.__dict__[k] for k in names}
    with patched():
        assert all(PSDSEval.__dict__[k] is not before[k] for k in names)
    assert {k: PSDSEval.__dict__[k] for k in names} == before

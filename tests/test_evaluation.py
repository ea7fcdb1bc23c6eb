"""Evaluation against ground truth (sonotag_core.domain.evaluation): numbers known by
hand, from sed_scores_eval (the DCASE library) under pandas 3 through the adapter."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sonotag_core.domain import sed_scoring
from sonotag_core.domain.evaluation import COLUMNS, evaluate, score_frame
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import TruthError

N = 64  # 20 s of frames
DUR = 20.0


def timeline(**spans: tuple[int, int]) -> Timeline:
    """Frame probabilities 0.05 everywhere, 0.9 over each label's frame span [a, b)."""
    probs = np.full((len(spans), N), 0.05, np.float32)
    for row, (a, b) in enumerate(spans.values()):
        probs[row, a:b] = 0.9
    return Timeline(tuple(spans), probs, DUR, frozenset())


TRUTH = {"a.wav": [(2.5, 5.0, "dog"), (12.5, 13.75, "cat")]}


def test_a_perfect_detector_scores_one():
    ev = evaluate({"a.wav": timeline(dog=(8, 16), cat=(40, 44))}, TRUTH, {"dog": 0.5, "cat": 0.5})
    assert list(ev.per_label.columns) == list(COLUMNS)
    for column in ("f1", "precision", "recall", "segment_f1", "auroc", "psds1", "psds2", "best_f1"):
        assert ev.per_label[column].tolist() == pytest.approx([1.0, 1.0]), column
    assert ev.macro == pytest.approx({k: 1.0 for k in ev.macro})
    assert ev.per_label["n_truth"].tolist() == [1, 1]
    # the calibrated threshold separates the detection (0.9) from the rest (0.05)
    assert all(0.05 < t < 0.9 for t in ev.best_thresholds().values())


def test_an_empty_detector_scores_zero():
    silent = timeline(dog=(0, 0), cat=(0, 0))
    ev = evaluate({"a.wav": silent}, TRUTH, {"dog": 0.5, "cat": 0.5})
    assert ev.per_label["f1"].tolist() == [0.0, 0.0]
    assert ev.per_label["recall"].tolist() == [0.0, 0.0]
    assert ev.per_label["segment_f1"].tolist() == [0.0, 0.0]
    assert ev.macro["psds1"] == 0.0 and ev.macro["psds2"] == 0.0


def test_half_overlap_worked_by_hand():
    """Truth: one dog [0, 2.5) s. Detection: frames 4..11, i.e. [1.25, 3.75) s.

    Collar-based: the onsets differ by 1.25 s > the 0.2-s collar, so no match: TP 0,
    FP 1, FN 1, F1 0. Segment-based (1-s segments of 10... 20 s): the truth covers
    segments 0, 1, 2; the detection 1, 2, 3. TP 2, FP 1, FN 1: precision = recall = 2/3,
    F1 = 2/3.
    """
    ev = evaluate({"a.wav": timeline(dog=(4, 12))}, {"a.wav": [(0.0, 2.5, "dog")]}, {"dog": 0.5})
    row = ev.per_label.iloc[0]
    assert row["f1"] == 0.0 and row["precision"] == 0.0 and row["recall"] == 0.0
    assert row["segment_f1"] == pytest.approx(2 / 3)


def test_a_label_without_truth_counts_only_false_alarms():
    ev = evaluate({"a.wav": timeline(dog=(8, 16), bird=(20, 30))}, TRUTH, {})
    assert ev.per_label["label"].tolist() == ["dog", "bird"]
    bird = ev.per_label.set_index("label").loc["bird"]
    assert bird["n_truth"] == 0 and np.isnan(bird["recall"]) and np.isnan(bird["best_threshold"])
    assert "bird" not in ev.best_thresholds()
    assert json.loads(json.dumps(ev.as_dict()))["labels"][1]["recall"] is None  # strict JSON


def test_score_frame_ends_at_the_audio_end():
    tl = Timeline(("x",), np.zeros((1, 10), np.float32), 3.0, frozenset())
    df = score_frame(tl)
    assert df["onset"].iloc[0] == 0.0 and df["offset"].iloc[-1] == 3.0
    assert df["onset"].iloc[-1] == 9 * FRAME_S


def test_nothing_to_evaluate_is_a_clear_error():
    with pytest.raises(TruthError, match="nothing to evaluate"):
        evaluate({}, TRUTH, {})


def test_the_adapter_matches_the_librarys_own_reference():
    """pandas 3 hands out read-only arrays; the Cython step gets writable copies and gives
    what sed_scores_eval's pure-Python reference of the same step gives."""
    sed_scoring.writable_detection()
    from sed_scores_eval.base_modules import detection, statistics

    rng = np.random.default_rng(5)
    scores = rng.random(200)
    stamps = np.arange(201) * FRAME_S
    frame = pd.DataFrame({"s": scores})
    read_only = frame["s"].to_numpy()
    got = statistics.onset_offset_curves(read_only, stamps)
    want = detection.onset_offset_curves(scores, stamps)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b)


def test_truth_for_no_label_is_a_clear_error():
    with pytest.raises(TruthError, match="No ground-truth event belongs"):
        evaluate({"a.wav": timeline(bird=(8, 16))}, TRUTH, {})

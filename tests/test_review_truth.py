"""Reviewed events as ground truth: only the reviewed spans are known territory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonotag_core.domain.review_truth import evaluate_reviews, reviewed_territory
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import TruthError


def scene() -> tuple[Timeline, pd.DataFrame]:
    """32 frames (10 s), dog high at frames 4-7 (0.9, accepted), 16-17 (0.7, rejected)
    and 24-27 (0.95, never reviewed); cat has one rejected event only."""
    probs = np.full((2, 32), 0.1, dtype=np.float32)
    probs[0, 4:8], probs[0, 16:18], probs[0, 24:28] = 0.9, 0.7, 0.95
    probs[1, 10:12] = 0.8
    events = pd.DataFrame(
        {
            "label": ["dog", "dog", "dog", "cat"],
            "onset_s": [4 * FRAME_S, 16 * FRAME_S, 24 * FRAME_S, 10 * FRAME_S],
            "offset_s": [8 * FRAME_S, 18 * FRAME_S, 28 * FRAME_S, 12 * FRAME_S],
            "peak": [0.9, 0.7, 0.95, 0.8],
            "mean": [0.9, 0.7, 0.95, 0.8],
            "status": ["accepted", "rejected", None, "rejected"],
            "reviewed_label": ["", "", "", ""],  # as review.apply_reviews writes "none"
        }
    )
    return Timeline(("dog", "cat"), probs, 10.0), events


def test_reviewed_spans_score_accepted_as_hits_and_rejected_as_false_alarms():
    """At 0.5 dog detects both reviewed spans: one is right (TP), one wrong (FP), the
    unreviewed 0.95 stretch is not territory: precision 1/2, recall 1, F1 2/3. Between
    0.7 and 0.9 only the right one is detected: best F1 is 1."""
    timeline, events = scene()
    territory = reviewed_territory(timeline, events, ["dog", "cat"])
    assert sorted(territory.files_of["dog"]) == ["dog@1.250s", "dog@5.000s"]
    assert territory.accepted == [(1.25, 2.5, "dog")]
    span = territory.spans["dog@1.250s"]
    assert span.n_frames == 4 and span.duration_s == pytest.approx(4 * FRAME_S)
    result = evaluate_reviews(territory, {"dog": 0.5, "cat": 0.5}, ["dog", "cat"])
    dog = result.per_label.set_index("label").loc["dog"]
    assert dog["n_truth"] == 1
    assert dog["precision"] == pytest.approx(0.5) and dog["recall"] == pytest.approx(1.0)
    assert dog["f1"] == pytest.approx(2 / 3)
    assert dog["best_f1"] == pytest.approx(1.0) and 0.7 < dog["best_threshold"] < 0.9
    cat = result.per_label.set_index("label").loc["cat"]
    assert cat["n_truth"] == 0 and np.isnan(cat["f1"])  # nothing accepted: nothing to find
    assert list(result.per_label["label"]) == ["dog", "cat"]
    assert result.macro["f1"] == pytest.approx(2 / 3)


def test_a_relabelled_event_is_truth_for_its_new_label_and_a_false_alarm_for_the_old():
    timeline, events = scene()
    events.loc[0, "reviewed_label"] = "cat"  # "that was a cat, not a dog"
    territory = reviewed_territory(timeline, events, ["dog", "cat"])
    assert territory.truth["dog@1.250s"] == [(0.0, 4 * FRAME_S, "cat")]
    assert "dog@1.250s" in territory.files_of["cat"]
    result = evaluate_reviews(territory, {"dog": 0.5, "cat": 0.5}, ["dog", "cat"])
    table = result.per_label.set_index("label")
    assert table.at["cat", "n_truth"] == 1
    assert table.at["cat", "recall"] == pytest.approx(0.0)  # cat's scores are 0.1 there
    assert table.at["dog", "n_truth"] == 0  # both dog spans are now wrong


def test_no_reviews_or_no_accepted_event_is_a_clear_truth_error():
    timeline, events = scene()
    with pytest.raises(TruthError, match="no reviewed events"):
        reviewed_territory(timeline, events.assign(status=None), ["dog"])
    only_rejected = events.assign(status="rejected")
    territory = reviewed_territory(timeline, only_rejected, ["dog", "cat"])
    with pytest.raises(TruthError, match="No reviewed event was accepted"):
        evaluate_reviews(territory, {}, ["dog", "cat"])

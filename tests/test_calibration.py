"""Per-label thresholds from reviews (a logistic fit read off at a target precision) and
from ground truth, and their keeping in the store per label text and model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonotag_core.domain.calibration import (
    HIGHEST,
    LOWEST,
    Calibration,
    from_evaluation,
    from_reviews,
)
from sonotag_core.errors import ConfigError
from sonotag_core.store.database import Store


def reviewed(label: str, accepted: list[float], rejected: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": label,
            "peak": accepted + rejected,
            "status": ["accepted"] * len(accepted) + ["rejected"] * len(rejected),
        }
    )


def test_reviews_give_a_threshold_between_wrong_and_right_detections():
    rng = np.random.default_rng(1)
    right = list(0.7 + 0.25 * rng.random(30))
    wrong = list(0.3 + 0.35 * rng.random(30))
    events = pd.concat([reviewed("siren", right, wrong), reviewed("dog", [0.8], [])])
    (cal,), skipped = from_reviews(events, target_precision=0.9)
    assert cal.label == "siren" and cal.origin == "reviews"
    assert 0.6 < cal.threshold < 0.8
    assert cal.detail["accepted"] == 30 and cal.detail["rejected"] == 30
    assert "1 accepted, 0 rejected" in skipped["dog"]
    (stricter,), _ = from_reviews(events, target_precision=0.99)
    assert stricter.threshold > cal.threshold  # more precision asks for a higher threshold


def test_reviews_that_do_not_rise_with_the_peak_are_refused_with_a_reason():
    events = reviewed("siren", [0.3, 0.35, 0.4], [0.8, 0.85, 0.9])
    cals, skipped = from_reviews(events, target_precision=0.9)
    assert cals == [] and "higher peaks" in skipped["siren"]


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 2.0])
def test_a_target_precision_outside_zero_one_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="target precision"):
        from_reviews(reviewed("x", [0.9], [0.1]), target_precision=bad)


def test_ground_truth_thresholds_stay_in_the_sliders_range():
    cals = from_evaluation({"a": 0.0, "b": 1.0, "c": 0.42}, {"a": 0.5, "c": 0.9}, "truth.tsv")
    assert [c.threshold for c in cals] == [LOWEST, HIGHEST, 0.42]
    assert cals[2].detail == {"f1": 0.9, "truth": "truth.tsv"}


def test_the_store_keeps_the_newest_calibration_per_label_and_model(tmp_path):
    store = Store(tmp_path)
    store.save_calibrations(
        [Calibration("siren", 0.4, "reviews", {"accepted": 3})], "m1", owner="op"
    )
    store.save_calibrations(
        [Calibration("siren", 0.6, "ground truth", {"f1": 0.8})], "m1", owner="op"
    )
    store.save_calibrations([Calibration("siren", 0.2, "reviews")], "m2", owner="op")
    got = store.get_calibrations(["siren", "dog"], "m1")
    assert list(got) == ["siren"]
    assert got["siren"].threshold == 0.6 and got["siren"].origin == "ground truth"
    assert got["siren"].detail == {"f1": 0.8}
    assert store.get_calibrations(["siren"], "m2")["siren"].threshold == 0.2
    assert Store(tmp_path).get_calibrations([], "m1") == {}

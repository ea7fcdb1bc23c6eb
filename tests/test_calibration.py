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
    threshold_origins,
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


def test_thresholds_equal_to_a_kept_calibration_take_its_origin():
    kept = {"siren": Calibration("siren", 0.3, "reviews", {"accepted": 4}, created=0.0)}
    got = threshold_origins({"siren": 0.304, "dog": 0.3}, kept)
    assert got["siren"] == {
        "origin": "reviews",
        "detail": {"accepted": 4},
        "calibrated": "1970-01-01T00:00:00+00:00",
    }
    assert got["dog"] == {"origin": "set by hand"}  # no calibration for that label
    assert threshold_origins({"siren": 0.32}, kept)["siren"]["origin"] == "set by hand"


def test_exports_say_which_per_label_thresholds_are_calibrated(
    tmp_path, model, text_cache, settings
):
    """settings.label_thresholds keeps the plain values (EventParams reads them back);
    settings.label_threshold_origins says where each came from."""
    import json

    from sonotag_core.domain.embeddings import AudioEmbeddings
    from sonotag_core.domain.events import EventParams
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.exports import export_text
    from sonotag_core.media.sources import SourceInfo
    from sonotag_core.service.api import Service
    from sonotag_core.service.library import Analysed

    store = Store(tmp_path)
    cal = Calibration("siren", 0.3, "ground truth", {"truth": "t.tsv", "f1": 0.8})
    store.save_calibrations([cal], model.info.checkpoint_sha256, owner="op")
    feats = np.random.default_rng(1).standard_normal((1, 32, 512)).astype(np.float32)
    emb = AudioEmbeddings(np.zeros(1, dtype=np.int64), feats, 480_000, 480_000)
    src = SourceInfo("file", tmp_path / "a.wav", "a", "f" * 64, "a.wav", 10.0)
    service = Service(model, settings, store, text_cache)
    params = EventParams(label_thresholds={"siren": 0.3, "dog": 0.4})
    report = service.report(Analysed(src, emb, 10.0, 0.0), LabelSet(("siren", "dog")), params)
    doc = json.loads(export_text(report, "json"))["settings"]
    assert doc["label_thresholds"] == {"siren": 0.3, "dog": 0.4}
    origins = doc["label_threshold_origins"]
    assert origins["siren"]["origin"] == "ground truth"
    assert origins["siren"]["detail"]["truth"] == "t.tsv"
    assert origins["dog"] == {"origin": "set by hand"}
    plain = service.report(Analysed(src, emb, 10.0, 0.0), LabelSet(("siren",)), EventParams())
    assert "label_threshold_origins" not in plain.settings  # nothing per label: nothing to say

"""Evaluation curves (sonotag_core.domain.evaluation_curves) and the Evaluate page's
charts (sonotag_core.dashboard.evaluation_charts): curves known by hand for a perfect
and a silent detector, thinning that keeps exact points, overlap statuses against a
brute-force check, and Vega-Lite specs that carry the data they were given."""

from __future__ import annotations

import warnings
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import pytest

from sonotag_core.dashboard import evaluation_charts as charts
from sonotag_core.dashboard.charts import label_colors
from sonotag_core.domain import evaluation_curves as curves
from sonotag_core.domain.evaluation import score_frame
from sonotag_core.domain.sed_scoring import COLLARS, PSDS1
from sonotag_core.domain.timeline import Timeline

N = 64  # 20 s of 0.3125-s frames
DUR = 20.0
#: dog: 0.9 over frames 8..15 (2.5 s .. 5.0 s), 0.05 elsewhere; cat: 0 everywhere
DOG_TRUTH = (2.5, 5.0, "dog")
CAT_TRUTH = (12.5, 13.75, "cat")


def _timeline() -> Timeline:
    probs = np.full((3, N), 0.05, np.float32)
    probs[0, 8:16] = 0.9
    probs[1, :] = 0.0
    return Timeline(("dog", "cat", "bird"), probs, DUR, frozenset())


@pytest.fixture(scope="module")
def inputs() -> tuple[dict[str, pd.DataFrame], dict[str, list[tuple[float, float, str]]]]:
    """One file: a perfect dog detector, a cat detector that never fires, no bird truth."""
    return {"a.wav": score_frame(_timeline())}, {"a.wav": [DOG_TRUTH, CAT_TRUTH]}


def at(curve: pd.DataFrame, x: str, y: str, value: float) -> float:
    """A step curve's value at ``value``: the last row whose ``x`` is <= it."""
    rows = curve[curve[x] <= value]
    return float(rows[y].iloc[-1])


# --------------------------------------------------------------------------- F1 curves


def test_a_perfect_detector_peaks_at_one_between_its_scores(inputs):
    """By hand: above 0.05 and below 0.9 the one detection is exactly [2.5, 5] (F1 1);
    below 0.05 every frame is on, one 0-20 s event whose onset misses the 0.2-s collar
    (F1 0); from 0.9 nothing is on (F1 0)."""
    scores, gt = inputs
    table = curves.f1_curves(scores, gt, ["dog", "cat", "bird"])
    assert list(table.columns) == list(curves.F1_COLUMNS)
    dog = table[table["label"] == "dog"]
    assert dog["f1"].max() == 1.0
    peak = dog[dog["f1"] == 1.0]
    assert peak["precision"].tolist() == [1.0] * len(peak)
    assert peak["recall"].tolist() == [1.0] * len(peak)
    for t, expected in [(0.0, 0.0), (0.04, 0.0), (0.06, 1.0), (0.5, 1.0), (0.89, 1.0)]:
        assert at(dog, "threshold", "f1", t) == expected, t
    assert at(dog, "threshold", "f1", 0.95) == 0.0
    assert at(dog, "threshold", "f1", 1.0) == 0.0
    assert dog["threshold"].is_monotonic_increasing
    assert dog["threshold"].iloc[0] == 0.0 and dog["threshold"].iloc[-1] == 1.0


def test_a_silent_detector_has_no_f1_and_a_label_without_truth_no_curve(inputs):
    """cat is 0 everywhere: at any threshold in [0, 1] no frame is above it, nothing is
    detected, F1 is 0. bird has no truth event: recall is undefined, no rows."""
    scores, gt = inputs
    table = curves.f1_curves(scores, gt, ["dog", "cat", "bird"])
    cat = table[table["label"] == "cat"]
    assert len(cat) >= 1
    assert (cat["f1"] == 0.0).all()
    assert (cat["recall"] == 0.0).all()
    assert "bird" not in set(table["label"])
    assert table["threshold"].between(0.0, 1.0).all()


def _noisy() -> tuple[dict[str, pd.DataFrame], dict[str, list[tuple[float, float, str]]]]:
    """Random scores with many local maxima: hundreds of change points."""
    rng = np.random.default_rng(11)
    n = 320  # 100 s
    probs = (rng.random((1, n)) * 0.6).astype(np.float32)
    truth = []
    for start in range(10, n - 10, 40):
        probs[0, start : start + 6] += 0.35
        truth.append((start * 0.3125, (start + 6) * 0.3125, "dog"))
    tl = Timeline(("dog",), probs, n * 0.3125, frozenset())
    return {"b.wav": score_frame(tl)}, {"b.wav": truth}


def test_thinning_keeps_exact_points_and_the_maximum():
    """Every kept row is the library's own F1 at that threshold (fscore at one
    threshold, an independent call), and the maximum is best_fscore's."""
    from sed_scores_eval import collar_based

    scores, gt = _noisy()
    full = curves.f1_curves(scores, gt, ["dog"], max_points=100_000)
    thin = curves.f1_curves(scores, gt, ["dog"], max_points=20)
    assert len(full) > 100
    assert len(thin) <= 20
    best_f1, *_ = collar_based.best_fscore(scores, gt, **COLLARS)
    assert thin["f1"].max() == pytest.approx(best_f1["dog"], abs=1e-12)
    assert full["f1"].max() == pytest.approx(best_f1["dog"], abs=1e-12)
    assert thin["threshold"].is_monotonic_increasing
    for row in thin.iloc[[1, 5, 10, -2]].itertuples():
        f1, *_ = collar_based.fscore(scores, gt, {"dog": row.threshold}, **COLLARS)
        assert row.f1 == pytest.approx(f1["dog"], abs=1e-12), row.threshold


# --------------------------------------------------------------------------- PSD-ROC


def test_a_perfect_detector_reaches_full_tpr_at_no_false_positives(inputs):
    """PSDS1 (DTC = GTC = 0.7): between 0.05 and 0.9 the detection is the truth event:
    TPR 1 at 0 false positives; below 0.05 one 0-20 s detection (1 FP in 20 s, 180/h)
    lies past the 100/h limit. So the ROC is TPR 1 from 0 to 100 per hour."""
    scores, gt = inputs
    durations = {"a.wav": DUR}
    table = curves.psd_roc_curves(scores, gt, durations, ["dog", "cat", "bird"], PSDS1)
    assert list(table.columns) == list(curves.ROC_COLUMNS)
    dog = table[table["label"] == "dog"]
    assert at(dog, "efpr", "tpr", 0.0) == 1.0
    assert dog["efpr"].tolist() == [0.0, 100.0]
    assert dog["tpr"].tolist() == [1.0, 1.0]
    cat = table[table["label"] == "cat"]
    assert (cat["tpr"] == 0.0).all()
    assert table["efpr"].between(0.0, 100.0).all()
    assert "bird" not in set(table["label"])


def test_a_roc_stays_under_its_limit_and_never_falls():
    scores, gt = _noisy()
    durations = {"b.wav": 100.0}
    table = curves.psd_roc_curves(scores, gt, durations, ["dog"], PSDS1, max_efpr=400.0)
    assert len(table) <= curves.MAX_POINTS
    assert table["efpr"].between(0.0, 400.0).all()
    assert table["efpr"].iloc[-1] == 400.0
    assert table["efpr"].is_monotonic_increasing
    assert table["tpr"].is_monotonic_increasing


def test_no_curve_without_truth(inputs):
    scores, _ = inputs
    empty = {"a.wav": []}
    assert curves.f1_curves(scores, empty, ["dog"]).empty
    assert curves.psd_roc_curves(scores, empty, {"a.wav": DUR}, ["dog"], PSDS1).empty


# --------------------------------------------------------------------------- overlap

DETECTIONS = pd.DataFrame(
    {  # detect_events' spelling, and an extra column that must survive
        "label": ["dog", "dog", "cat", "cat", "dog", "dog"],
        "onset_s": [1.0, 5.0, 3.0, 10.0, 29.0, 45.0],
        "offset_s": [2.0, 6.0, 4.0, 11.0, 32.0, 46.0],
        "peak": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
    }
)
TRUTH = pd.DataFrame(
    {
        "label": ["dog", "cat", "dog", "dog", "dog", "dog"],
        "onset": [1.5, 4.0, 10.0, 30.0, 40.0, 41.0],
        "offset": [3.0, 5.0, 12.0, 31.0, 50.0, 42.0],
    }
)


def test_overlap_statuses_by_hand():
    """dog 1-2 meets truth 1.5-3 (hit, found); dog 5-6 meets nothing (false alarm);
    cat 3-4 only touches cat truth 4-5 at 4 s (false alarm, and that truth is missed);
    cat 10-11 lies inside a *dog* truth (false alarm, dog 10-12 missed); dog 29-32
    contains truth 30-31 (hit, found); dog 45-46 lies inside the long truth 40-50 that
    starts before the short 41-42 (hit; 40-50 found, 41-42 missed)."""
    det, truth = curves.truth_overlap(DETECTIONS, TRUTH)
    assert det["status"].tolist() == [
        "hit",
        "false alarm",
        "false alarm",
        "false alarm",
        "hit",
        "hit",
    ]
    assert truth["status"].tolist() == ["found", "missed", "missed", "found", "found", "missed"]
    assert det["peak"].tolist() == DETECTIONS["peak"].tolist()
    assert "status" not in DETECTIONS.columns  # copies, inputs untouched


def _brute(a: pd.DataFrame, b: pd.DataFrame) -> list[bool]:
    """Every pair: same label and min(offsets) - max(onsets) > 0."""
    return [
        any(
            la == lb and min(a1, b1) - max(a0, b0) > 0
            for lb, b0, b1 in zip(b["label"], b["onset"], b["offset"], strict=True)
        )
        for la, a0, a1 in zip(a["label"], a["onset"], a["offset"], strict=True)
    ]


def test_overlap_matches_a_brute_force_check():
    rng = np.random.default_rng(5)

    def events(n: int) -> pd.DataFrame:
        onset = rng.integers(0, 60, n).astype(float)  # whole seconds: many touching edges
        length = rng.integers(0, 5, n).astype(float)  # zero-length ones too
        return pd.DataFrame(
            {"label": rng.choice(["a", "b"], n), "onset": onset, "offset": onset + length}
        )

    det, truth = events(80), events(40)
    got_det, got_truth = curves.truth_overlap(det, truth)
    assert (got_det["status"] == "hit").tolist() == _brute(det, truth)
    assert (got_truth["status"] == "found").tolist() == _brute(truth, det)


# --------------------------------------------------------------------------- charts


def spec_of(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """to_dict() validates against the Vega-Lite schema; Altair must not warn either."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return chart.to_dict()


def rows_of(spec: dict[str, Any], view: dict[str, Any]) -> list[dict[str, Any]]:
    data = view.get("data") or spec["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def test_f1_chart_layers_fields_and_rules(inputs):
    scores, gt = inputs
    table = curves.f1_curves(scores, gt, ["dog", "cat"])
    chart = charts.f1_threshold_chart(
        table, {"dog": 0.5, "cat": 0.3}, {"dog": 0.47}, show_precision_recall=True
    )
    spec = spec_of(chart)
    line, current, best = spec["layer"]
    assert line["mark"]["type"] == "line" and line["mark"]["interpolate"] == "step-after"
    enc = line["encoding"]
    assert enc["x"]["field"] == "threshold" and enc["x"]["scale"]["domain"] == [0.0, 1.0]
    assert enc["y"]["field"] == "value" and enc["y"]["scale"]["domain"] == [0.0, 1.0]
    assert enc["color"]["field"] == "label"
    assert enc["color"]["scale"]["domain"] == ["dog", "cat"]
    assert enc["color"]["scale"]["range"] == [
        label_colors(["dog", "cat"])[n] for n in ("dog", "cat")
    ]
    assert enc["strokeDash"]["field"] == "measure"
    rows = rows_of(spec, line)
    assert len(rows) == 3 * len(table)
    assert {r["measure"] for r in rows} == {"f1", "precision", "recall"}
    f1_rows = [r for r in rows if r["measure"] == "f1"]
    assert [r["value"] for r in f1_rows] == table["f1"].tolist()
    assert [r["threshold"] for r in f1_rows] == table["threshold"].tolist()
    assert all(m["type"] == "rule" for m in (current["mark"], best["mark"]))
    assert current["encoding"]["x"]["field"] == "threshold"
    assert {(r["label"], r["threshold"]) for r in rows_of(spec, current)} == {
        ("dog", 0.5),
        ("cat", 0.3),
    }
    assert [(r["label"], r["threshold"]) for r in rows_of(spec, best)] == [("dog", 0.47)]
    assert spec["width"] == "container"


def test_f1_chart_alone_draws_f1_only_with_the_pages_colours(inputs):
    scores, gt = inputs
    table = curves.f1_curves(scores, gt, ["dog"])
    spec = spec_of(charts.f1_threshold_chart(table, {}, {}, colors={"dog": "#123456"}))
    line = spec["layer"][0]
    assert {r["measure"] for r in rows_of(spec, line)} == {"f1"}
    assert line["encoding"]["color"]["scale"]["range"] == ["#123456"]
    assert rows_of(spec, spec["layer"][1]) == []


def test_psd_roc_chart(inputs):
    scores, gt = inputs
    table = curves.psd_roc_curves(scores, gt, {"a.wav": DUR}, ["dog", "cat"], PSDS1)
    spec = spec_of(charts.psd_roc_chart(table))
    assert spec["mark"]["type"] == "line" and spec["mark"]["interpolate"] == "step-after"
    enc = spec["encoding"]
    assert enc["x"]["field"] == "efpr" and enc["x"]["scale"]["domain"] == [0.0, 100.0]
    assert enc["y"]["field"] == "tpr" and enc["y"]["scale"]["domain"] == [0.0, 1.0]
    rows = rows_of(spec, spec)
    assert [(r["label"], r["efpr"], r["tpr"]) for r in rows] == list(
        table[["label", "efpr", "tpr"]].itertuples(index=False, name=None)
    )


def test_truth_lane_chart_one_rect_per_event():
    spec = spec_of(charts.truth_lane_chart(DETECTIONS, TRUTH, 60.0))
    assert spec["mark"]["type"] == "rect"
    enc = spec["encoding"]
    assert enc["x"]["field"] == "onset" and enc["x2"]["field"] == "offset"
    assert enc["x"]["scale"]["domain"] == [0.0, 60.0] and enc["x"]["title"] == "time (s)"
    assert enc["y"]["field"] == "label"
    assert enc["yOffset"]["field"] == "lane" and enc["yOffset"]["sort"] == ["detected", "truth"]
    assert enc["color"]["field"] == "status"
    assert enc["color"]["scale"]["domain"] == ["hit", "false alarm", "found", "missed"]
    assert len(set(enc["color"]["scale"]["range"])) == 4
    tips = {t["field"]: t.get("format") for t in enc["tooltip"]}
    assert tips["onset"] == ".2f" and tips["offset"] == ".2f"
    assert spec["width"] == "container"
    rows = rows_of(spec, spec)
    assert len(rows) == len(DETECTIONS) + len(TRUTH)
    detected = [r for r in rows if r["lane"] == "detected"]
    truth = [r for r in rows if r["lane"] == "truth"]
    # the statuses worked out by hand in test_overlap_statuses_by_hand
    assert [r["status"] for r in detected] == [
        "hit",
        "false alarm",
        "false alarm",
        "false alarm",
        "hit",
        "hit",
    ]
    assert [r["status"] for r in truth] == ["found", "missed", "missed", "found", "found", "missed"]
    assert [(r["onset"], r["offset"]) for r in detected] == list(
        zip(DETECTIONS["onset_s"], DETECTIONS["offset_s"], strict=True)
    )


def test_truth_lane_chart_with_nothing_detected():
    empty = pd.DataFrame({"label": [], "onset": [], "offset": []})
    spec = spec_of(charts.truth_lane_chart(empty, TRUTH, 60.0))
    rows = rows_of(spec, spec)
    assert len(rows) == len(TRUTH)
    assert {r["status"] for r in rows} == {"missed"}

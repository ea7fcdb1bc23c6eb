"""detect_events on hand-made probability maps whose right answer is known, plus a
property test against a plain-Python reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sonotag_core.domain.events import EVENT_COLUMNS, EventParams, detect_events
from sonotag_core.domain.timeline import Timeline
from sonotag_core.errors import ConfigError
from sonotag_core.settings import Settings

F = 0.3125


def timeline(
    rows: dict[str, list[float]] | list[list[float]],
    duration_s: float | None = None,
    negatives: frozenset[str] = frozenset(),
) -> Timeline:
    if isinstance(rows, dict):
        labels, data = tuple(rows), list(rows.values())
    else:
        labels, data = tuple(f"l{i}" for i in range(len(rows))), rows
    probs = np.asarray(data, dtype=np.float32).reshape(len(labels), -1)
    n = probs.shape[1]
    return Timeline(labels, probs, n * F if duration_s is None else duration_s, negatives)


def block(n: int, on: range | list[int], value: float = 0.9, base: float = 0.1) -> list[float]:
    row = [base] * n
    for i in on:
        row[i] = value
    return row


def as_tuples(df: pd.DataFrame) -> list[tuple]:
    return list(df.itertuples(index=False, name=None))


# ---------------------------------------------------------------- basic shape


def test_single_block_exact_onset_offset() -> None:
    tl = timeline({"dog": block(32, range(4, 10))})
    ev = detect_events(tl, EventParams())
    assert list(ev.columns) == list(EVENT_COLUMNS)
    assert len(ev) == 1
    row = ev.iloc[0]
    assert row["label"] == "dog"
    assert row["onset_s"] == 4 * F == 1.25
    assert row["offset_s"] == 10 * F == 3.125
    assert row["peak"] == pytest.approx(0.9)
    assert row["mean"] == pytest.approx(0.9)


def test_dtypes() -> None:
    ev = detect_events(timeline({"dog": block(8, [2, 3])}), EventParams())
    for col in ("onset_s", "offset_s", "peak", "mean"):
        assert ev[col].dtype == np.float64
    assert pd.api.types.is_string_dtype(ev["label"])
    assert (
        ev["label"].dtype == detect_events(timeline({"dog": [0.0]}), EventParams())["label"].dtype
    )


@pytest.mark.parametrize(
    "tl",
    [
        Timeline(("a", "b"), np.zeros((2, 0), dtype=np.float32), 0.0),
        Timeline((), np.zeros((0, 5), dtype=np.float32), 5 * F),
        Timeline(("a",), np.zeros((1, 10), dtype=np.float32), 10 * F),
    ],
    ids=["no-frames", "no-labels", "nothing-above"],
)
def test_empty_results_have_columns_and_dtypes(tl: Timeline) -> None:
    ev = detect_events(tl, EventParams())
    assert ev.empty
    assert list(ev.columns) == list(EVENT_COLUMNS)
    assert ev["onset_s"].dtype == np.float64 and ev["offset_s"].dtype == np.float64


def test_threshold_is_inclusive() -> None:
    tl = timeline({"a": [0.1, 0.5, 0.5, 0.1]})
    ev = detect_events(tl, EventParams(threshold=0.5))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(F, 3 * F)]


def test_threshold_compared_in_float64() -> None:
    # float32(0.3) is 0.30000001192...; a 0.3000000119 threshold lies between and must exclude 0.3
    tl = timeline({"a": [0.3, 0.3, 0.0]})
    assert len(detect_events(tl, EventParams(threshold=0.3))) == 1
    assert len(detect_events(tl, EventParams(threshold=float(np.float32(0.3)) + 1e-12))) == 0


def test_event_at_start_and_whole_file() -> None:
    tl = timeline({"a": [0.9] * 5})
    ev = detect_events(tl, EventParams())
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(0.0, 5 * F)]


# ---------------------------------------------------------------- gap filling / min length


def test_one_frame_dip_filled_by_default() -> None:
    tl = timeline({"a": block(20, [3, 4, 5, 7, 8])})
    ev = detect_events(tl, EventParams())
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(3 * F, 9 * F)]
    # peak/mean include the filled (low) frame: they describe the whole event
    assert ev["mean"].iloc[0] == pytest.approx((0.9 * 5 + 0.1) / 6)


def test_one_frame_dip_kept_without_gap_filling() -> None:
    tl = timeline({"a": block(20, [3, 4, 5, 7, 8])})
    ev = detect_events(tl, EventParams(fill_gap_s=0.0))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(3 * F, 6 * F), (7 * F, 9 * F)]


def test_two_frame_gap_not_filled_by_default_but_filled_when_longer() -> None:
    tl = timeline({"a": block(20, [3, 6])})
    assert len(detect_events(tl, EventParams())) == 2
    # a gap exactly equal to fill_gap_s is not "shorter than" it
    assert len(detect_events(tl, EventParams(fill_gap_s=2 * F))) == 2
    assert len(detect_events(tl, EventParams(fill_gap_s=2 * F + 0.01))) == 1


def test_gaps_only_merge_within_a_label() -> None:
    tl = timeline({"a": block(10, [1, 2]), "b": block(10, [4, 5])})
    ev = detect_events(tl, EventParams(fill_gap_s=5.0))
    assert as_tuples(ev[["label", "onset_s", "offset_s"]]) == [("a", F, 3 * F), ("b", 4 * F, 6 * F)]


def test_chain_of_gaps_merges_into_one() -> None:
    tl = timeline({"a": block(20, [1, 3, 5, 7])})
    ev = detect_events(tl, EventParams())
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(F, 8 * F)]


def test_min_event_drops_short_events() -> None:
    tl = timeline({"a": block(20, [2] + list(range(6, 10)))})
    ev = detect_events(tl, EventParams(min_event_s=0.5))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(6 * F, 10 * F)]
    # a length exactly equal to min_event_s is kept
    assert len(detect_events(tl, EventParams(min_event_s=F))) == 2


def test_min_event_applies_after_gap_filling() -> None:
    tl = timeline({"a": block(20, [2, 4])})  # two 1-frame runs, one-frame gap
    ev = detect_events(tl, EventParams(min_event_s=0.9))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(2 * F, 5 * F)]


# ---------------------------------------------------------------- median filter


def test_median_removes_single_frame_spike_keeps_three_frame_event() -> None:
    tl = timeline({"a": block(20, [3] + [10, 11, 12])})
    assert len(detect_events(tl, EventParams(fill_gap_s=0.0))) == 2
    ev = detect_events(tl, EventParams(median_frames=3, fill_gap_s=0.0))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(10 * F, 13 * F)]


def test_median_fills_single_frame_dip() -> None:
    tl = timeline({"a": block(20, [3, 4, 6, 7])})
    ev = detect_events(tl, EventParams(median_frames=3, fill_gap_s=0.0))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(3 * F, 8 * F)]


def test_median_does_not_erode_events_at_the_edges() -> None:
    tl = timeline({"a": [0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9]})
    ev = detect_events(tl, EventParams(median_frames=3, fill_gap_s=0.0))
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(0.0, 2 * F), (5 * F, 7 * F)]


def test_peak_and_mean_from_raw_probabilities() -> None:
    row = [0.1, 0.6, 0.95, 0.7, 0.1, 0.1]
    tl = timeline({"a": row})
    ev = detect_events(tl, EventParams(median_frames=3))
    # the median smooths 0.95 down to 0.7, but peak reports the raw 0.95
    assert as_tuples(ev[["onset_s", "offset_s"]]) == [(F, 4 * F)]
    assert ev["peak"].iloc[0] == pytest.approx(0.95, abs=1e-7)
    assert ev["mean"].iloc[0] == pytest.approx((0.6 + 0.95 + 0.7) / 3, abs=1e-7)


# ---------------------------------------------------------------- labels


def test_per_label_threshold_override() -> None:
    tl = timeline({"a": [0.1, 0.4, 0.4, 0.1], "b": [0.1, 0.4, 0.4, 0.1]})
    params = EventParams(threshold=0.5, label_thresholds={"b": 0.3})
    ev = detect_events(tl, params)
    assert ev["label"].tolist() == ["b"]
    assert params.threshold_for("a") == 0.5
    assert params.threshold_for("b") == 0.3
    assert params.threshold_for("unknown") == 0.5


def test_negative_labels_never_produce_events() -> None:
    tl = timeline({"dog": block(10, [2, 3]), "noise": [0.99] * 10}, negatives=frozenset({"noise"}))
    ev = detect_events(tl, EventParams())
    assert ev["label"].tolist() == ["dog"]


def test_sorted_by_onset_then_label() -> None:
    tl = timeline(
        {
            "zebra": block(10, [1, 2]),
            "apple": block(10, [1, 2, 6]),
            "mango": block(10, [0]),
        }
    )
    ev = detect_events(tl, EventParams(fill_gap_s=0.0))
    assert as_tuples(ev[["label", "onset_s"]]) == [
        ("mango", 0.0),
        ("apple", F),
        ("zebra", F),
        ("apple", 6 * F),
    ]


# ---------------------------------------------------------------- end of audio


def test_last_event_clipped_to_duration() -> None:
    n = 33  # 10.1 s: ceil(10.1 / 0.3125) = 33 frames, the last covers [10.0, 10.1)
    tl = timeline({"a": block(n, range(30, 33))}, duration_s=10.1)
    ev = detect_events(tl, EventParams())
    assert ev["onset_s"].iloc[0] == 30 * F
    assert ev["offset_s"].iloc[0] == pytest.approx(10.1, abs=1e-12)
    assert ev["offset_s"].max() <= tl.duration_s


def test_min_event_measured_on_clipped_length() -> None:
    tl = timeline({"a": block(33, [32])}, duration_s=10.1)  # last frame lasts 0.1 s
    assert len(detect_events(tl, EventParams(min_event_s=0.2))) == 0
    assert len(detect_events(tl, EventParams(min_event_s=0.1))) == 1


# ---------------------------------------------------------------- params


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 1.0},
        {"threshold": -0.1},
        {"threshold": float("nan")},
        {"label_thresholds": {"a": 1.5}},
        {"label_thresholds": {"a": 0.0}},
        {"median_frames": 2},
        {"median_frames": 0},
        {"median_frames": 1.5},
        {"fill_gap_s": -0.1},
        {"fill_gap_s": float("nan")},
        {"min_event_s": -1.0},
        {"min_event_s": float("inf")},
    ],
)
def test_invalid_params_raise_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        EventParams(**kwargs)


def test_params_defaults_and_from_settings() -> None:
    p = EventParams()
    assert (p.threshold, p.median_frames, p.fill_gap_s, p.min_event_s) == (0.5, 1, 0.32, 0.0)
    s = Settings(threshold=0.4, median_frames=5, fill_gap_s=1.0, min_event_s=0.2)
    p = EventParams.from_settings(s)
    assert (p.threshold, p.median_frames, p.fill_gap_s, p.min_event_s) == (0.4, 5, 1.0, 0.2)
    p = EventParams.from_settings(s, threshold=0.7, label_thresholds={"x": 0.2})
    assert p.threshold == 0.7 and p.threshold_for("x") == 0.2 and p.median_frames == 5
    with pytest.raises(ConfigError):
        EventParams.from_settings(s, median_frames=4)


def test_label_thresholds_are_copied() -> None:
    overrides = {"a": 0.2}
    p = EventParams(label_thresholds=overrides)
    overrides["a"] = 0.9
    assert p.threshold_for("a") == 0.2


# ---------------------------------------------------------------- property test


def reference_events(tl: Timeline, p: EventParams) -> list[tuple[str, float, float, float, float]]:
    """The definition, frame by frame, in plain Python."""
    out = []
    n = tl.n_frames
    half = p.median_frames // 2
    for r, label in enumerate(tl.labels):
        if label in tl.negatives:
            continue
        raw = [float(v) for v in tl.probabilities[r]]
        smooth = [
            sorted(raw[min(max(j, 0), n - 1)] for j in range(i - half, i + half + 1))[half]
            for i in range(n)
        ]
        t = p.threshold_for(label)
        runs: list[list[int]] = []
        i = 0
        while i < n:
            if smooth[i] >= t:
                j = i
                while j < n and smooth[j] >= t:
                    j += 1
                if runs and (i - runs[-1][1]) * F < p.fill_gap_s:
                    runs[-1][1] = j
                else:
                    runs.append([i, j])
                i = j
            else:
                i += 1
        for s, e in runs:
            onset, offset = s * F, min(e * F, tl.duration_s)
            if offset - onset < p.min_event_s - 1e-9:
                continue
            vals = raw[s:e]
            out.append((label, onset, offset, max(vals), sum(vals) / len(vals)))
    out.sort(key=lambda ev: (ev[1], ev[0]))
    return out


LEVELS = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]


@st.composite
def cases(draw: st.DrawFn) -> tuple[Timeline, EventParams]:
    n_labels = draw(st.integers(1, 4))
    n_frames = draw(st.integers(0, 50))
    labels = draw(
        st.lists(
            st.sampled_from(["b", "a", "dog", "café", "C", "z z"]),
            min_size=n_labels,
            max_size=n_labels,
            unique=True,
        )
    )
    if draw(st.booleans()):
        values = st.sampled_from(LEVELS)  # ties with thresholds and long runs
    else:
        values = st.floats(0.0, 1.0, width=32)
    probs = np.array(
        draw(st.lists(values, min_size=n_labels * n_frames, max_size=n_labels * n_frames)),
        dtype=np.float32,
    ).reshape(n_labels, n_frames)
    tail = draw(st.sampled_from([0.0, 0.05, 0.2, 0.3]))  # how much of the last frame is cut off
    duration = max(n_frames * F - tail, 0.0) if n_frames else 0.0
    negatives = frozenset(draw(st.lists(st.sampled_from(labels), max_size=1)))
    threshold_values = st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]) | st.floats(0.01, 0.99)
    params = EventParams(
        threshold=draw(threshold_values),
        label_thresholds=draw(
            st.dictionaries(st.sampled_from(labels), threshold_values, max_size=2)
        ),
        median_frames=draw(st.sampled_from([1, 1, 3, 5])),
        fill_gap_s=draw(st.sampled_from([0.0, 0.32, 0.625, 0.7, 2.0])),
        min_event_s=draw(st.sampled_from([0.0, 0.2, 0.3125, 0.5, 1.0])),
    )
    return Timeline(tuple(labels), probs, duration, negatives), params


@settings(max_examples=300, deadline=None)
@given(cases())
def test_matches_plain_python_reference(case: tuple[Timeline, EventParams]) -> None:
    tl, params = case
    got = as_tuples(detect_events(tl, params))
    want = reference_events(tl, params)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0]
        assert g[1] == w[1]
        assert g[2] == w[2]
        assert g[3] == pytest.approx(w[3], abs=1e-12)
        assert g[4] == pytest.approx(w[4], abs=1e-9)

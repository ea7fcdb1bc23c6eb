"""Compare: two timelines aligned on one frame grid; charts keep padded gaps as gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sonotag_core.dashboard import charts
from sonotag_core.domain import compare
from sonotag_core.domain.timeline import Timeline


def tl(labels, probs, duration, negatives=()):
    return Timeline(tuple(labels), np.asarray(probs, np.float32), duration, frozenset(negatives))


def test_combine_aligns_frames_and_pads_the_shorter_side():
    a = tl(["siren", "music"], [[0.1, 0.9, 0.2, 0.4], [0.5, 0.5, 0.5, 0.5]], 1.25, {"music"})
    b = tl(["siren"], [[0.3, 0.7]], 0.625)
    both = compare.combine([("A", a), ("B", b)])
    assert both.labels == ("A · siren", "A · music", "B · siren")
    assert both.negatives == frozenset({"A · music"})
    assert both.duration_s == 1.25 and both.n_frames == 4
    np.testing.assert_array_equal(both.probabilities[0], a.probabilities[0])
    np.testing.assert_array_equal(both.probabilities[2, :2], b.probabilities[0])
    assert np.isnan(both.probabilities[2, 2:]).all()  # past B's end: a gap, not 0


def test_combine_refuses_nothing_and_duplicate_names():
    with pytest.raises(ValueError):
        compare.combine([])
    a = tl(["x"], [[0.1]], 0.3125)
    with pytest.raises(ValueError, match="differ"):
        compare.combine([("A", a), ("A", a)])


def test_score_table_side_by_side():
    a = tl(["siren", "dog"], [[0.1, 0.9], [0.2, 0.2]], 0.625)
    b = tl(["dog", "rain"], [[0.6, 0.8], [0.0, 0.4]], 0.625)
    table = compare.score_table([("A", a), ("B", b)]).set_index("label")
    assert list(table.index) == ["siren", "dog", "rain"]
    assert table.at["siren", "A max"] == pytest.approx(0.9)
    assert table.at["dog", "B mean"] == pytest.approx(0.7)
    assert np.isnan(table.at["rain", "A max"]) and np.isnan(table.at["siren", "B max"])


def test_pooled_chart_keeps_real_values_next_to_padding():
    """Max-pooling a padded timeline: a bin with some real frames keeps their max, an
    all-padding bin stays NaN (drawn as a gap)."""
    n = 10
    probs = np.full((1, n), np.nan, np.float32)
    probs[0, :5] = [0.1, 0.2, 0.3, 0.4, 0.9]
    pooled, _, _ = charts.pooled_probabilities(tl(["x"], probs, n * 0.3125), 4)  # 3 per bin
    values = pooled[0]
    np.testing.assert_allclose(values[:2], [0.3, 0.9])  # [0.1..0.3], [0.4, 0.9, nan]
    assert np.isnan(values[2:]).all()
    spec = charts.timeline_chart(tl(["x"], probs, n * 0.3125), thresholds={}).to_dict()
    assert "pick" in json.dumps(spec)

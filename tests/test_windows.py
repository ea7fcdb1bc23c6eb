"""Windowing and timeline assembly: exact frame times, nothing dropped, nothing invented."""

from __future__ import annotations

import numpy as np
import pytest

from sonotag_core.domain.timeline import assemble
from sonotag_core.domain.windows import (
    FRAME_S,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    frame_count,
    hop_samples,
    iter_windows,
    tile,
    window_starts,
)

HOP10 = hop_samples(10.0)
HOP5 = hop_samples(5.0)


def _blocks(x: np.ndarray, rng: np.random.Generator):
    i = 0
    while i < x.size:
        n = int(rng.integers(1, 200_000))
        yield x[i : i + n]
        i += n


@pytest.mark.parametrize("seconds", [0.5, 3.3, 10.0, 10.1, 20.0, 37.3, 61.0])
@pytest.mark.parametrize("hop", [HOP10, HOP5])
def test_streamed_windows_equal_slices_of_the_whole(seconds, hop):
    rng = np.random.default_rng(int(seconds * 10) + hop)
    n = int(round(seconds * SAMPLE_RATE))
    x = rng.standard_normal(n).astype(np.float32)
    windows = list(iter_windows(_blocks(x, rng), hop))
    starts = window_starts(n, hop)
    assert [w.start for w in windows] == starts
    assert [w.index for w in windows] == list(range(len(starts)))
    for w in windows:
        assert w.samples.shape == (WINDOW_SAMPLES,) and w.samples.dtype == np.float32
        assert w.start % FRAME_SAMPLES == 0
        if n <= WINDOW_SAMPLES:
            np.testing.assert_array_equal(w.samples, tile(x))
        else:
            real = x[w.start : w.start + WINDOW_SAMPLES]
            np.testing.assert_array_equal(w.samples[: real.size], real)
            assert not w.samples[real.size :].any()
            assert WINDOW_SAMPLES - real.size < FRAME_SAMPLES  # padding is under one frame
    # every sample is covered by some window
    covered = np.zeros(n, dtype=bool)
    for s in starts:
        covered[s : s + WINDOW_SAMPLES] = True
    assert covered.all()


def test_window_starts_examples():
    assert window_starts(3 * SAMPLE_RATE, HOP10) == [0]
    assert window_starts(WINDOW_SAMPLES, HOP10) == [0]
    assert window_starts(2 * WINDOW_SAMPLES, HOP10) == [0, WINDOW_SAMPLES]
    # 37.3 s: three regular windows, then one ending at 37.5 s (on the frame grid)
    assert window_starts(int(37.3 * SAMPLE_RATE), HOP10) == [0, 480_000, 960_000, 1_320_000]
    assert window_starts(20 * SAMPLE_RATE, HOP5) == [0, 240_000, 480_000]


def test_tile_repeats_short_clip():
    x = np.arange(1000, dtype=np.float32)
    t = tile(x)
    assert t.shape == (WINDOW_SAMPLES,)
    np.testing.assert_array_equal(t[1000:2000], x)


def test_empty_stream_gives_no_window():
    assert list(iter_windows(iter([np.zeros(0, np.float32)]), HOP10)) == []


@pytest.mark.parametrize("seconds", [3.3, 10.0, 37.3])
@pytest.mark.parametrize("hop", [HOP10, HOP5])
def test_assemble_averages_overlaps_and_stops_at_the_end(seconds, hop):
    n = int(round(seconds * SAMPLE_RATE))
    starts = window_starts(n, hop)
    rng = np.random.default_rng(1)
    maps = rng.random((len(starts), 2, 32)).astype(np.float32)
    tl = assemble(maps, starts, n, ["a", "b"])
    assert tl.n_frames == frame_count(n) == int(np.ceil(seconds / FRAME_S - 1e-9))
    assert tl.frame_times_s[-1] < seconds
    np.testing.assert_allclose(tl.frame_times_s[:3], [0.0, 0.3125, 0.625])
    # brute-force expectation: mean over windows covering each frame
    for f in range(tl.n_frames):
        vals = [
            maps[k, :, f - s // FRAME_SAMPLES]
            for k, s in enumerate(starts)
            if 0 <= f - s // FRAME_SAMPLES < 32
        ]
        np.testing.assert_allclose(tl.probabilities[:, f], np.mean(vals, axis=0), rtol=0, atol=1e-7)


def test_frame_df_is_tidy():
    tl = assemble(np.full((1, 2, 32), 0.25, np.float32), [0], 5 * SAMPLE_RATE, ["x", "y"])
    df = tl.to_frame_df()
    assert list(df.columns) == ["time_s", "label", "probability"]
    assert len(df) == 2 * 16
    assert set(df.label) == {"x", "y"}
    scores = tl.clip_scores()
    assert list(scores.columns) == ["label", "max", "mean", "negative"]
    assert scores["max"].tolist() == pytest.approx([0.25, 0.25])

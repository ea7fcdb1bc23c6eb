"""Waveform envelope and spectrogram for the player: placed right in time and frequency,
bounded in size and memory for long audio, cached on disk and recomputed when the cache
is damaged."""

from __future__ import annotations

import base64
import json
import math
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.domain.windows import SAMPLE_RATE
from sonotag_core.errors import DecodeError
from sonotag_core.media import decode, overview
from sonotag_core.media.overview import (
    Overview,
    band_edges_hz,
    cached_overview,
    compute_overview,
    mel_filterbank,
    overview_dir,
)


def lavfi(path: Path, expression: str, seconds: float, rate: int = SAMPLE_RATE) -> Path:
    """A 16-bit WAV of an aevalsrc expression of t (commas escaped as in a filter graph)."""
    src = f"aevalsrc='{expression}':s={rate}:d={seconds}"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src]
    subprocess.run([*cmd, "-c:a", "pcm_s16le", str(path)], check=True)
    return path


def assert_envelope_bounds(ov: Overview, samples: np.ndarray) -> None:
    """Every bucket's [min, max] holds its samples (x 127), and is tight to 1 step."""
    b = round(ov.bucket_s * SAMPLE_RATE)
    assert ov.n_buckets == math.ceil(samples.size / b) or ov.n_buckets * b < samples.size
    scaled = np.clip(samples, -1, 1) * 127.0
    for k in range(ov.n_buckets):
        end = (k + 1) * b if k < ov.n_buckets - 1 else samples.size  # last: the rest
        part = scaled[k * b : end]
        assert ov.envelope_min[k] <= part.min() and part.max() <= ov.envelope_max[k], k
        assert part.min() - ov.envelope_min[k] < 1 and ov.envelope_max[k] - part.max() < 1, k


def band_of(hz: float, n_bands: int = 64) -> int:
    """The band whose centre is nearest ``hz``."""
    return int(np.argmin(np.abs(band_edges_hz(n_bands)[1:-1] - hz)))


@pytest.mark.parametrize("max_buckets", [20000, 7])
def test_envelope_bounds_the_samples_of_each_bucket(tmp_path: Path, max_buckets: int) -> None:
    path = make_audio(tmp_path / "n.wav", 3.0, kind="noise", sample_rate=SAMPLE_RATE)
    samples = decode.decode_all(path)
    ov = compute_overview(path, max_buckets=max_buckets)
    assert ov.envelope_min.dtype == np.int8 and ov.envelope_max.dtype == np.int8
    assert round(ov.bucket_s * SAMPLE_RATE) == math.ceil(samples.size / max_buckets)
    assert ov.n_buckets == math.ceil(samples.size / math.ceil(samples.size / max_buckets))
    assert_envelope_bounds(ov, samples)


@pytest.mark.parametrize("max_buckets", [20000, 100])
def test_a_click_shows_in_the_bucket_of_its_time(tmp_path: Path, max_buckets: int) -> None:
    path = lavfi(tmp_path / "click.wav", "0.9*between(t\\,7.5\\,7.5005)+0.01*sin(2*PI*50*t)", 15)
    ov = compute_overview(path, max_buckets=max_buckets)
    loudest = int(np.argmax(ov.envelope_max))
    assert loudest == int(7.5 / ov.bucket_s)
    assert ov.envelope_max[loudest] >= 110  # 0.9 of full scale
    others = np.delete(ov.envelope_max, [loudest, loudest + 1])  # the click may straddle
    assert others.max() <= 3


@pytest.mark.parametrize("freq", [1000.0, 4000.0])
def test_a_tone_lights_the_band_that_holds_it(tmp_path: Path, freq: float) -> None:
    path = make_audio(tmp_path / "tone.wav", 4.0, freq=freq, sample_rate=SAMPLE_RATE)
    ov = compute_overview(path)
    assert ov.spectrogram.dtype == np.uint8 and ov.spectrogram.shape == (64, ov.n_columns)
    brightest = np.argmax(ov.spectrogram, axis=0)  # per column
    edges = band_edges_hz(64)
    assert edges[band_of(freq)] < freq < edges[band_of(freq) + 2]
    assert np.median(brightest) == band_of(freq)
    assert ov.spectrogram.max() == 255
    # far from the tone the picture is dark: low frequencies at row 0
    assert ov.spectrogram[-5:].max() < 100 and ov.spectrogram[: band_of(freq / 4)].max() < 150


def test_spectrogram_columns_are_placed_in_time(tmp_path: Path) -> None:
    path = lavfi(tmp_path / "burst.wav", "0.5*sin(2*PI*1000*t)*between(t\\,2\\,4)", 6)
    ov = compute_overview(path)
    assert ov.n_columns == 120 and ov.column_s == pytest.approx(0.05)
    row = ov.spectrogram[band_of(1000)]
    centres = (np.arange(ov.n_columns) + 0.5) * ov.column_s
    assert row[(centres > 2.1) & (centres < 3.9)].min() >= 230
    assert row[(centres < 1.9) | (centres > 4.1)].max() == 0  # silence is the floor


@pytest.mark.parametrize(
    ("seconds", "columns"), [(0.02, 1), (6.0, 120), (119.9, 2398), (300.0, 2400)]
)
def test_sizes_follow_the_duration(tmp_path: Path, seconds: float, columns: int) -> None:
    path = make_audio(tmp_path / "s.wav", seconds, sample_rate=8000)
    ov = compute_overview(path)
    n = round(seconds * SAMPLE_RATE)
    assert ov.duration_s == pytest.approx(seconds, abs=1 / 8000)
    assert ov.n_columns == columns
    assert ov.column_s == pytest.approx(ov.duration_s / columns, rel=1e-3)
    assert ov.n_buckets <= 20000 and ov.n_buckets * ov.bucket_s >= ov.duration_s - 1e-9
    assert round(ov.bucket_s * SAMPLE_RATE) == math.ceil(n / 20000)


def test_twenty_minutes_give_the_same_sizes_in_bounded_memory(tmp_path: Path) -> None:
    burst = "0.5*sin(2*PI*1000*t)*between(t\\,600\\,610)+0.05*sin(2*PI*300*t)"
    long_path = lavfi(tmp_path / "long.wav", burst, 1200, rate=8000)
    short_path = lavfi(
        tmp_path / "short.wav", burst.replace("600", "60").replace("610", "70"), 120, rate=8000
    )
    peaks, results = [], []
    for path in (short_path, long_path):
        tracemalloc.start()
        try:
            results.append(compute_overview(path))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    short, long = results
    assert long.duration_s == pytest.approx(1200.0, abs=1e-3)
    assert (long.n_buckets, long.n_columns) == (short.n_buckets, short.n_columns) == (20000, 2400)
    assert long.column_s == pytest.approx(0.5) and long.bucket_s == pytest.approx(0.06)
    # 20 minutes of decoded float32 are 230 MB; the pass holds a block and the outputs
    assert peaks[1] < 64 * 2**20 and peaks[1] < 2 * peaks[0]
    row = long.spectrogram[band_of(1000)]
    lit = np.flatnonzero(row > 200) * long.column_s
    assert lit.min() >= 599.5 and lit.max() <= 610.5 and lit.size >= 18


def test_audio_longer_than_its_probe_stays_within_the_limits(tmp_path: Path, monkeypatch) -> None:
    """A guessed duration (VBR mp3) far too short: buckets and columns merge in pairs;
    slightly too short: the overshoot folds into the last bucket and column."""
    path = lavfi(tmp_path / "c.wav", "0.9*between(t\\,7.5\\,7.5005)+0.01*sin(2*PI*50*t)", 10)
    samples = decode.decode_all(path)
    real_probe = decode.probe
    for guessed, max_columns in ((1.0, 60), (9.95, 50)):

        def probe(p, *, name=None, guessed=guessed):
            info = real_probe(p, name=name)
            return decode.AudioProbe(
                guessed,
                info.codec,
                info.sample_rate,
                info.channels,
                info.format_name,
                duration_estimated=True,
            )

        monkeypatch.setattr(decode, "probe", probe)
        ov = compute_overview(path, max_buckets=500, max_columns=max_columns)
        assert ov.duration_s == pytest.approx(10.0)
        assert 250 <= ov.n_buckets <= 500 and max_columns / 2 <= ov.n_columns <= max_columns
        assert ov.n_buckets * ov.bucket_s == pytest.approx(10.0, rel=0.03)
        assert ov.n_columns * ov.column_s == pytest.approx(10.0, rel=0.03)
        assert_envelope_bounds(ov, samples)
        assert int(np.argmax(ov.envelope_max)) == int(7.5 / ov.bucket_s)


def test_payload_is_json_with_the_arrays_as_base64(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "m.wav", 3.0, kind="mix", sample_rate=SAMPLE_RATE)
    ov = compute_overview(path, max_buckets=300, max_columns=40, n_bands=32)
    payload = json.loads(json.dumps(ov.to_payload()))
    lo = np.frombuffer(base64.b64decode(payload["envelope_min"]), dtype=np.int8)
    hi = np.frombuffer(base64.b64decode(payload["envelope_max"]), dtype=np.int8)
    spec = np.frombuffer(base64.b64decode(payload["spectrogram"]), dtype=np.uint8)
    assert np.array_equal(lo, ov.envelope_min) and np.array_equal(hi, ov.envelope_max)
    assert payload["n_bands"] == 32 and payload["n_columns"] == ov.n_columns == 40
    assert np.array_equal(spec.reshape(32, 40), ov.spectrogram)  # row-major, band first
    assert payload["n_buckets"] == lo.size == 300
    assert payload["duration_s"] == pytest.approx(3.0) and payload["band_scale"] == "mel"
    assert payload["column_s"] * 40 == pytest.approx(3.0)


def test_every_mel_band_sees_some_bins() -> None:
    fb = mel_filterbank(128)
    assert fb.shape == (1025, 128)
    assert np.allclose(fb.sum(axis=0), 1.0)  # no band always dark
    assert np.all(np.diff(np.argmax(fb, axis=0)) >= 0)  # bands rise with frequency


def test_cache_round_trips_without_decoding_again(tmp_path: Path, monkeypatch) -> None:
    path = make_audio(tmp_path / "t.flac", 2.0, freq=1000, sample_rate=SAMPLE_RATE)
    cache = overview_dir(tmp_path / "data")
    first = cached_overview(path, cache, key="ab" * 32)
    assert (cache / f"{'ab' * 32}.npz").is_file()
    assert [p.name for p in cache.iterdir()] == [f"{'ab' * 32}.npz"]  # no temp file left

    def no_decoding(*a, **kw):
        raise AssertionError("decoded again")

    monkeypatch.setattr(overview, "compute_overview", no_decoding)
    again = cached_overview(path, cache, key="ab" * 32)
    for field in ("envelope_min", "envelope_max", "spectrogram"):
        assert np.array_equal(getattr(again, field), getattr(first, field))
        assert getattr(again, field).dtype == getattr(first, field).dtype
    assert again.to_payload() == first.to_payload()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_version", "bad_shape"])
def test_a_damaged_cache_file_is_recomputed(tmp_path: Path, damage: str) -> None:
    path = make_audio(tmp_path / "t.wav", 2.0, freq=1000, sample_rate=SAMPLE_RATE)
    cache = tmp_path / "cache"
    good = cached_overview(path, cache, key="k1")
    file = cache / "k1.npz"
    if damage == "garbage":
        file.write_bytes(b"\x00not a zip at all" * 10)
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    else:
        with np.load(file) as z:
            arrays = dict(z)
        if damage == "wrong_version":
            arrays["version"] = np.int64(overview.FORMAT_VERSION + 1)
        else:
            arrays["spectrogram"] = arrays["spectrogram"][:5]
        np.savez(file, **arrays)
    again = cached_overview(path, cache, key="k1")
    assert np.array_equal(again.spectrogram, good.spectrogram)
    assert np.array_equal(again.envelope_max, good.envelope_max)
    with np.load(file) as z:  # and the cache file is whole again
        assert int(z["version"]) == overview.FORMAT_VERSION
        assert np.array_equal(z["spectrogram"], good.spectrogram)


def test_cache_key_cannot_leave_the_cache_dir(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "t.wav", 1.0, sample_rate=SAMPLE_RATE)
    cache = tmp_path / "cache"
    cached_overview(path, cache, key="../../escaped")
    assert not list(tmp_path.glob("escaped*")) and not list(tmp_path.parent.glob("escaped*"))
    assert len(list(cache.glob("*.npz"))) == 1


def test_an_unwritable_cache_still_gives_the_overview(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "t.wav", 1.0, sample_rate=SAMPLE_RATE)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("in the way")
    ov = cached_overview(path, not_a_dir, key="k")
    assert ov.n_columns == 20 and not_a_dir.read_text() == "in the way"


def test_undecodable_file_raises_decode_error_with_the_users_name(tmp_path: Path) -> None:
    bad = tmp_path / "upload-1234.bin"
    bad.write_bytes(b"this is not audio" * 100)
    with pytest.raises(DecodeError, match="my song.mp3"):
        compute_overview(bad, name="my song.mp3")
    with pytest.raises(DecodeError, match="my song.mp3"):
        cached_overview(bad, tmp_path / "cache", key="k", name="my song.mp3")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())  # nothing cached for it


def test_band_sums_match_the_dense_filterbank() -> None:
    fb = mel_filterbank(64)
    power = np.random.default_rng(0).random((37, fb.shape[0]), dtype=np.float32) ** 4
    sparse = overview._SparseBands(fb).apply(power)
    assert np.allclose(sparse, power.astype(np.float64) @ fb, rtol=1e-5)


def test_digital_silence_is_all_floor(tmp_path: Path) -> None:
    path = lavfi(tmp_path / "zero.wav", "0", 2.0)
    ov = compute_overview(path)
    assert ov.spectrogram.max() == 0 and ov.envelope_max.max() == 0 == ov.envelope_min.min()


def test_a_builder_fed_any_blocks_gives_the_same_overview(tmp_path: Path) -> None:
    """The analysis can build the overview from its own decode pass, whatever its blocks."""
    path = lavfi(
        tmp_path / "b.wav", "0.5*sin(2*PI*1000*t)*between(t\\,1\\,2)+0.2*(random(0)-0.5)", 3
    )
    whole = compute_overview(path, max_buckets=700, max_columns=50)
    samples = decode.decode_all(path)
    builder = overview.OverviewBuilder(3.0, max_buckets=700, max_columns=50)
    cuts = [0, 1, 2049, 2050, 50_000, 50_001, 97_777, samples.size]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        builder.feed(samples[a:b])
    pieces = builder.finish()
    assert np.array_equal(pieces.envelope_min, whole.envelope_min)
    assert np.array_equal(pieces.envelope_max, whole.envelope_max)
    assert np.array_equal(pieces.spectrogram, whole.spectrogram)
    assert pieces.column_s == whole.column_s and pieces.bucket_s == whole.bucket_s

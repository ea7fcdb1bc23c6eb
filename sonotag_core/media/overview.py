"""What the player draws under its time axis: a min/max waveform envelope and a log-mel
spectrogram of one audio file, at display resolution.

Both are computed in one streamed pass over :func:`~.decode.stream_samples` (48 kHz mono
float32 from ffmpeg), so memory holds one decoded block plus the output arrays whatever
the duration: a 3-hour file gives the same few hundred kB as a 3-minute one. The result is
cached on disk per audio (:func:`cached_overview`), so a page shows it without decoding
again.

Sizes follow the probe's duration. Decoded audio a little longer than that (encoder
padding, a rounded header: up to :data:`TAIL_SLACK` of the buckets or columns) is folded
into the last bucket and column. Much longer audio (a VBR mp3 whose duration was guessed)
has its buckets and columns merged in pairs as they pass the limits, so the sizes stay
bounded and the time per bucket/column doubles.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import re
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonotag_core.domain.windows import SAMPLE_RATE
from sonotag_core.media import decode

log = logging.getLogger(__name__)

OVERVIEWS_DIR = "overviews"  # under SONOTAG_DATA_DIR: one <key>.npz per audio
FORMAT_VERSION = 1  # bump when the arrays change meaning; older cache files are recomputed
COLUMN_MIN_S = 0.05  # the finest spectrogram column (20 columns per second)
FRAME_SAMPLES = 2048  # one STFT frame: 42.7 ms, 23.4 Hz per bin
FRAMES_PER_COLUMN = 16  # most frames averaged into one column
DB_RANGE = 80.0  # the spectrogram shows this many dB below the file's loudest band
FMIN_HZ = 0.0
FMAX_HZ = SAMPLE_RATE / 2
GUESSED_DURATION_S = 120.0  # the grid when the probe gives no duration (merged if longer)
BLOCK_SAMPLES = SAMPLE_RATE * 10  # decoded block: 1.9 MB of float32
BATCH_FRAMES = 256  # frames transformed at once: 2 MB of samples
TAIL_SLACK = 0.02  # overshoot folded into the last bucket/column instead of halving all
_TINY_POWER = 1e-20  # floor per bin: no float32 denormals, no log of 0
_SILENT_POWER = 1e-15  # a loudest band below this is digital silence (24-bit noise is ~1e-12)
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True, eq=False)
class Overview:
    """Waveform envelope and spectrogram of one audio file, on one time axis from 0 s.

    ``envelope_min[k]``/``envelope_max[k]`` bound the samples of bucket ``k`` (time
    ``[k*bucket_s, (k+1)*bucket_s)``), scaled so full scale is ±127 and rounded outwards.
    ``spectrogram[b, c]`` is the power of mel band ``b`` (0 = lowest) in column ``c``
    (``[c*column_s, (c+1)*column_s)``), in dB over the file's top ``DB_RANGE`` dB mapped
    to 0..255. The last bucket/column may extend past ``duration_s``.
    """

    duration_s: float
    envelope_min: np.ndarray  # int8, (n_buckets,)
    envelope_max: np.ndarray  # int8, (n_buckets,)
    bucket_s: float
    spectrogram: np.ndarray  # uint8, (n_bands, n_columns)
    column_s: float
    n_bands: int
    fmin_hz: float = FMIN_HZ
    fmax_hz: float = FMAX_HZ

    @property
    def n_buckets(self) -> int:
        return int(self.envelope_min.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.spectrogram.shape[1])

    def to_payload(self) -> dict[str, object]:
        """The JSON the player component receives. The contract for the JS side:

        * ``envelope_min``/``envelope_max``: base64 of ``n_buckets`` signed bytes each
          (``new Int8Array(bytes)``); divide by 127 for amplitude. Bucket ``k`` starts at
          ``k * bucket_s`` seconds.
        * ``spectrogram``: base64 of ``n_bands * n_columns`` unsigned bytes
          (``Uint8Array``), row-major: byte ``b * n_columns + c`` is band ``b`` (0 = lowest
          frequency; draw it at the bottom) of column ``c``, which starts at
          ``c * column_s``. 0 = ``db_range`` dB or more below the file's loudest, 255 = it.
        * ``band_scale`` "mel" (HTK formula) from ``fmin_hz`` to ``fmax_hz``.
        * ``version``: bumped when any of this changes.
        """

        def b64(a: np.ndarray) -> str:
            return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")

        return {
            "version": FORMAT_VERSION,
            "duration_s": float(self.duration_s),
            "bucket_s": float(self.bucket_s),
            "n_buckets": self.n_buckets,
            "envelope_min": b64(self.envelope_min.astype(np.int8)),
            "envelope_max": b64(self.envelope_max.astype(np.int8)),
            "column_s": float(self.column_s),
            "n_columns": self.n_columns,
            "n_bands": int(self.n_bands),
            "spectrogram": b64(self.spectrogram.astype(np.uint8)),
            "band_scale": "mel",
            "fmin_hz": float(self.fmin_hz),
            "fmax_hz": float(self.fmax_hz),
            "db_range": DB_RANGE,
        }


# ---------------------------------------------------------------- mel bands


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def band_edges_hz(n_bands: int, fmin_hz: float = FMIN_HZ, fmax_hz: float = FMAX_HZ) -> np.ndarray:
    """``n_bands + 2`` frequencies equally spaced in mel: band ``b`` rises from edge ``b``,
    peaks at edge ``b + 1`` (its centre) and falls to zero at edge ``b + 2``."""
    return _mel_to_hz(np.linspace(_hz_to_mel(fmin_hz), _hz_to_mel(fmax_hz), n_bands + 2))


def mel_filterbank(n_bands: int, n_fft: int = FRAME_SAMPLES) -> np.ndarray:
    """Triangular mel filters as a (n_fft // 2 + 1, n_bands) float32 matrix. A few lines
    of numpy instead of librosa, whose import alone takes seconds. A low band narrower
    than one FFT bin takes its nearest bin, so no row of the picture is always dark."""
    bins_hz = np.arange(n_fft // 2 + 1) * SAMPLE_RATE / n_fft
    edges = band_edges_hz(n_bands)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (bins_hz[None, :] - lo) / np.maximum(mid - lo, 1e-9)
    fall = (hi - bins_hz[None, :]) / np.maximum(hi - mid, 1e-9)
    weights = np.clip(np.minimum(rise, fall), 0.0, None)  # (n_bands, n_bins)
    for b in np.flatnonzero(weights.sum(axis=1) == 0):
        weights[b, int(np.argmin(np.abs(bins_hz - mid[b, 0])))] = 1.0
    weights /= weights.sum(axis=1, keepdims=True)  # each band: mean power over its bins
    return weights.T.astype(np.float32)


class _SparseBands:
    """``power @ filterbank`` without BLAS. Each FFT bin feeds one or two triangles, so
    the product is a gather, a multiply and a segmented sum. numpy's multithreaded
    OpenBLAS product was measured 30x slower (16 ms instead of 0.5 ms per batch) while
    other processes kept the 2 cores busy, as inference and other sessions do."""

    def __init__(self, fbank: np.ndarray) -> None:
        band, bins = np.nonzero(fbank.T)  # band-major: each band's bins are contiguous
        self.bins = bins
        self.weights = fbank.T[band, bins].astype(np.float32)
        self.starts = np.searchsorted(band, np.arange(fbank.shape[1]))  # every band has one

    def apply(self, power: np.ndarray) -> np.ndarray:
        """(frames, n_bins) power -> (frames, n_bands)."""
        return np.add.reduceat(power[:, self.bins] * self.weights, self.starts, axis=1)


# ---------------------------------------------------------------- streamed reductions


class _Envelope:
    """Running min/max per bucket of ``bucket`` samples; buckets merge in pairs (and the
    bucket doubles) whenever there would be ``2 * max_buckets`` of them."""

    def __init__(self, bucket: int, max_buckets: int) -> None:
        self.bucket = max(1, bucket)
        self.max_buckets = max_buckets
        self.mins = np.zeros(0, dtype=np.float32)
        self.maxs = np.zeros(0, dtype=np.float32)
        self.seen = 0  # samples so far

    def _merge(self) -> None:
        if self.mins.size % 2:
            self.mins = np.append(self.mins, self.mins[-1])
            self.maxs = np.append(self.maxs, self.maxs[-1])
        self.mins = self.mins.reshape(-1, 2).min(axis=1)
        self.maxs = self.maxs.reshape(-1, 2).max(axis=1)
        self.bucket *= 2

    def feed(self, block: np.ndarray) -> None:
        if block.size == 0:
            return
        start, end = self.seen, self.seen + block.size
        while (end - 1) // self.bucket >= 2 * self.max_buckets:
            self._merge()
        first, last = start // self.bucket, (end - 1) // self.bucket
        offsets = np.arange(first + 1, last + 1, dtype=np.int64) * self.bucket - start
        offsets = np.concatenate(([0], offsets))
        lo = np.minimum.reduceat(block, offsets)
        hi = np.maximum.reduceat(block, offsets)
        if first < self.mins.size:  # the last bucket so far was partial: continue it
            self.mins[first] = min(self.mins[first], lo[0])
            self.maxs[first] = max(self.maxs[first], hi[0])
            lo, hi = lo[1:], hi[1:]
        self.mins = np.concatenate((self.mins, lo))
        self.maxs = np.concatenate((self.maxs, hi))
        self.seen = end

    def finish(self) -> tuple[np.ndarray, np.ndarray, int]:
        m = self.max_buckets
        if _tail_to_fold(self.mins.size, m):
            self.mins = np.append(self.mins[: m - 1], self.mins[m - 1 :].min())
            self.maxs = np.append(self.maxs[: m - 1], self.maxs[m - 1 :].max())
        while self.mins.size > m:
            self._merge()
        lo = np.floor(np.clip(self.mins, -1.0, 1.0) * 127.0)
        hi = np.ceil(np.clip(self.maxs, -1.0, 1.0) * 127.0)
        return lo.astype(np.int8), hi.astype(np.int8), self.bucket


class _Spectrogram:
    """Mean mel power per column of ``col_len`` samples, each the average of up to
    :data:`FRAMES_PER_COLUMN` Hann-windowed frames spread evenly over the column.

    Why several frames: a column of a 3-hour file spans 4.5 s, and one 43-ms frame would
    show only that instant (a 1-s siren beside it would vanish). Averaging a stratified
    sample of frames is Welch's estimate of the column's spectrum; capping the count keeps
    the FFT work bounded by the picture's size (≤ 38 400 frames), not by the duration.
    Transients between frames still show in the envelope, which sees every sample.
    """

    def __init__(self, col_len: float, max_columns: int, n_bands: int) -> None:
        self.max_columns = max_columns
        self.bands = _SparseBands(mel_filterbank(n_bands))
        self.window = np.hanning(FRAME_SAMPLES).astype(np.float32)
        self.power = np.zeros((0, n_bands), dtype=np.float64)  # summed over frames
        self.count = np.zeros(0, dtype=np.int64)  # frames per column
        self._set_col_len(col_len)
        half = FRAME_SAMPLES // 2
        self.buf = np.zeros(half, dtype=np.float32)  # zeros before the first sample
        self.buf_start = -half  # absolute sample index of buf[0]

    def _set_col_len(self, col_len: float) -> None:
        self.col_len = float(col_len)
        self.frames = int(min(FRAMES_PER_COLUMN, max(1, self.col_len // FRAME_SAMPLES)))

    def _starts(self, cols: np.ndarray) -> np.ndarray:
        """Frame start samples (cols, frames) of these column indices."""
        step = self.col_len / self.frames
        centres = cols[:, None] * self.col_len + (np.arange(self.frames) + 0.5) * step
        return np.round(centres).astype(np.int64) - FRAME_SAMPLES // 2

    def _compute(self, cols: np.ndarray, starts: np.ndarray, valid: np.ndarray) -> None:
        idx = (starts - self.buf_start)[:, :, None] + np.arange(FRAME_SAMPLES)
        frames = self.buf[idx] * self.window  # (cols, frames, FRAME_SAMPLES)
        spec = np.fft.rfft(frames, axis=-1)
        # floored: a pure tone's far bins would be float32 denormals (slow arithmetic)
        power = np.maximum((spec.real**2 + spec.imag**2).astype(np.float32), _TINY_POWER)
        bands = self.bands.apply(power.reshape(-1, power.shape[-1])).reshape(*starts.shape, -1)
        bands = np.where(valid[:, :, None], bands, 0.0)
        need = int(cols[-1]) + 1
        if need > self.count.size:
            grow = need - self.count.size
            self.power = np.concatenate((self.power, np.zeros((grow, self.power.shape[1]))))
            self.count = np.concatenate((self.count, np.zeros(grow, dtype=np.int64)))
        self.power[cols] += bands.sum(axis=1)
        self.count[cols] += valid.sum(axis=1)

    def _merge(self) -> None:
        if self.count.size % 2:
            self.power = np.concatenate((self.power, np.zeros((1, self.power.shape[1]))))
            self.count = np.append(self.count, 0)
        self.power = self.power.reshape(-1, 2, self.power.shape[1]).sum(axis=1)
        self.count = self.count.reshape(-1, 2).sum(axis=1)
        self._set_col_len(self.col_len * 2)

    def feed(self, block: np.ndarray) -> None:
        self.buf = np.concatenate((self.buf, block))
        buf_end = self.buf_start + self.buf.size
        while True:
            done = self.count.size
            if done >= 2 * self.max_columns:
                self._merge()
                continue
            # columns whose every frame lies inside the buffer
            last_end = (self.frames - 0.5) * self.col_len / self.frames + FRAME_SAMPLES // 2 + 1
            fits = math.floor((buf_end - last_end) / self.col_len) + 1 - done
            n = min(fits, 2 * self.max_columns - done, max(1, BATCH_FRAMES // self.frames))
            if n <= 0:
                break
            cols = np.arange(done, done + n)
            starts = self._starts(cols)
            self._compute(cols, starts, np.ones(starts.shape, dtype=bool))
        keep_from = int(self._starts(np.array([self.count.size]))[0, 0])
        keep_from = min(max(keep_from, self.buf_start), buf_end)
        self.buf = self.buf[keep_from - self.buf_start :]
        self.buf_start = keep_from

    def finish(self, n_samples: int) -> tuple[np.ndarray, float]:
        """Columns up to the end, with frames that run past it zero-padded (a frame whose
        centre is past the end is left out, unless it is the column's only one)."""
        n_cols = max(1, math.ceil(n_samples / self.col_len - 1e-9), self.count.size)
        for first in range(self.count.size, n_cols, max(1, BATCH_FRAMES // self.frames)):
            cols = np.arange(first, min(n_cols, first + max(1, BATCH_FRAMES // self.frames)))
            starts = self._starts(cols)
            short = int(starts.max()) + FRAME_SAMPLES - (self.buf_start + self.buf.size)
            if short > 0:
                self.buf = np.concatenate((self.buf, np.zeros(short, dtype=np.float32)))
            valid = starts + FRAME_SAMPLES // 2 < n_samples
            valid[:, 0] = True
            self._compute(cols, starts, valid)
        m = self.max_columns
        if _tail_to_fold(self.count.size, m):
            self.power = np.vstack((self.power[: m - 1], self.power[m - 1 :].sum(axis=0)))
            self.count = np.append(self.count[: m - 1], self.count[m - 1 :].sum())
        while self.count.size > m:
            self._merge()
        return self.power / np.maximum(self.count, 1)[:, None], self.col_len


def _tail_to_fold(n: int, limit: int) -> bool:
    """Whether ``n`` items over a ``limit`` are a small overshoot to fold into the last."""
    return limit < n <= limit + max(1, math.ceil(TAIL_SLACK * limit))


def _to_image(power: np.ndarray) -> np.ndarray:
    """(columns, bands) mean power -> (bands, columns) uint8: dB, clipped to the top
    :data:`DB_RANGE` dB of the file, 0..255. Digital silence is all 0."""
    top = float(power.max()) if power.size else 0.0
    if top <= _SILENT_POWER:
        return np.zeros(power.T.shape, dtype=np.uint8)
    db = 10.0 * np.log10(np.maximum(power, _TINY_POWER))
    top_db = 10.0 * math.log10(top)
    scaled = (np.clip(db, top_db - DB_RANGE, top_db) - (top_db - DB_RANGE)) / DB_RANGE
    return np.round(scaled * 255.0).astype(np.uint8).T.copy()


# ---------------------------------------------------------------- public API


class OverviewBuilder:
    """The streamed pass behind :func:`compute_overview`, for a caller that already
    decodes the audio (the analysis does): ``feed`` every 48 kHz mono block in order, then
    ``finish``. ``expected_s`` (the probe's duration, or None) sets the grid."""

    def __init__(
        self,
        expected_s: float | None,
        *,
        max_buckets: int = 20000,
        max_columns: int = 2400,
        n_bands: int = 64,
    ) -> None:
        if max_buckets < 1 or max_columns < 1 or n_bands < 1:
            raise ValueError("max_buckets, max_columns and n_bands must be at least 1")
        expected_s = expected_s if expected_s and expected_s > 0 else GUESSED_DURATION_S
        expected = max(1, round(expected_s * SAMPLE_RATE))
        n_columns = min(max_columns, max(1, math.ceil(expected_s / COLUMN_MIN_S - 1e-9)))
        self.n_bands = n_bands
        self.n_samples = 0
        self._envelope = _Envelope(math.ceil(expected / max_buckets), max_buckets)
        self._spectrogram = _Spectrogram(expected / n_columns, max_columns, n_bands)

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float32)
        self._envelope.feed(block)
        self._spectrogram.feed(block)
        self.n_samples += block.size

    def finish(self) -> Overview:
        """The overview of everything fed (at least one sample)."""
        if self.n_samples == 0:
            raise ValueError("no audio was fed")
        lo, hi, bucket = self._envelope.finish()
        power, col_len = self._spectrogram.finish(self.n_samples)
        return Overview(
            duration_s=self.n_samples / SAMPLE_RATE,
            envelope_min=lo,
            envelope_max=hi,
            bucket_s=bucket / SAMPLE_RATE,
            spectrogram=_to_image(power),
            column_s=col_len / SAMPLE_RATE,
            n_bands=self.n_bands,
        )


def compute_overview(
    path: Path,
    *,
    max_buckets: int = 20000,
    max_columns: int = 2400,
    n_bands: int = 64,
    name: str | None = None,
) -> Overview:
    """Envelope and spectrogram of ``path`` in one streamed decode.

    The envelope has ``ceil(n_samples / max_buckets)`` samples per bucket (short audio
    gets sample-level detail); the spectrogram ``min(max_columns, ceil(duration / 0.05 s))``
    columns. Raises :class:`~.errors.DecodeError` (naming the file ``name``) for a file
    that cannot be decoded.
    """
    path = Path(path)
    info = decode.probe(path, name=name)
    builder = OverviewBuilder(
        info.duration_s, max_buckets=max_buckets, max_columns=max_columns, n_bands=n_bands
    )
    for block in decode.stream_samples(path, block_samples=BLOCK_SAMPLES, info=info, name=name):
        builder.feed(block)
    return builder.finish()


def overview_dir(data_dir: str | Path) -> Path:
    """Where overviews are cached: ``<data_dir>/overviews``."""
    return Path(data_dir) / OVERVIEWS_DIR


def _cache_file(cache_dir: Path, key: str) -> Path:
    """``<key>.npz``; a key that is not a plain id (a path, ``..``) is hashed instead, so
    no key names a file outside ``cache_dir``."""
    if not _KEY.fullmatch(key):
        import hashlib

        key = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return Path(cache_dir) / f"{key}.npz"


def _load(file: Path) -> Overview | None:
    """The cached overview, or None when the file is missing, unreadable, from another
    format version or inconsistent (a torn or tampered file is recomputed, not trusted)."""
    try:
        with np.load(file, allow_pickle=False) as z:
            if int(z["version"]) != FORMAT_VERSION:
                return None
            ov = Overview(
                duration_s=float(z["duration_s"]),
                envelope_min=z["envelope_min"].astype(np.int8, copy=False),
                envelope_max=z["envelope_max"].astype(np.int8, copy=False),
                bucket_s=float(z["bucket_s"]),
                spectrogram=z["spectrogram"].astype(np.uint8, copy=False),
                column_s=float(z["column_s"]),
                n_bands=int(z["n_bands"]),
                fmin_hz=float(z["fmin_hz"]),
                fmax_hz=float(z["fmax_hz"]),
            )
            dtypes_ok = (
                z["envelope_min"].dtype == np.int8
                and z["envelope_max"].dtype == np.int8
                and z["spectrogram"].dtype == np.uint8
            )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        log.warning("overview cache %s is unreadable; computing it again", file, exc_info=True)
        return None
    shapes_ok = (
        ov.envelope_min.ndim == 1
        and ov.envelope_min.shape == ov.envelope_max.shape
        and ov.spectrogram.ndim == 2
        and ov.spectrogram.shape[0] == ov.n_bands
        and ov.n_buckets > 0
        and ov.n_columns > 0
    )
    numbers_ok = all(math.isfinite(v) and v > 0 for v in (ov.duration_s, ov.bucket_s, ov.column_s))
    if not (dtypes_ok and shapes_ok and numbers_ok):
        log.warning("overview cache %s is inconsistent; computing it again", file)
        return None
    return ov


def _save(ov: Overview, file: Path) -> None:
    """Write atomically (temp file in the same folder, fsync, rename): a reader sees the
    old file or the whole new one. A folder we cannot write costs the cache, not the page."""
    tmp = file.with_name(f".{file.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                version=np.int64(FORMAT_VERSION),
                duration_s=np.float64(ov.duration_s),
                envelope_min=ov.envelope_min,
                envelope_max=ov.envelope_max,
                bucket_s=np.float64(ov.bucket_s),
                spectrogram=ov.spectrogram,
                column_s=np.float64(ov.column_s),
                n_bands=np.int64(ov.n_bands),
                fmin_hz=np.float64(ov.fmin_hz),
                fmax_hz=np.float64(ov.fmax_hz),
            )
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
    except OSError:
        log.warning("could not cache the overview in %s", file, exc_info=True)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # the folder itself is not there or not a folder
            pass


def forget_overview(cache_dir: Path, key: str) -> None:
    """Delete the cached overview of ``key`` (its audio is gone); never raises."""
    try:
        _cache_file(Path(cache_dir), key).unlink(missing_ok=True)
    except OSError:
        pass


def cached_overview(path: Path, cache_dir: Path, *, key: str, name: str | None = None) -> Overview:
    """The overview of ``path`` from ``cache_dir/<key>.npz``, computed (with the default
    sizes) and stored there when missing or unreadable. ``key`` is the audio's content id,
    so the same audio under any name or link is drawn from one file. Cache problems never
    raise; a file that cannot be decoded raises :class:`~.errors.DecodeError`."""
    file = _cache_file(Path(cache_dir), key)
    cached = _load(file)
    if cached is not None:
        return cached
    ov = compute_overview(path, name=name)
    _save(ov, file)
    return ov

"""Cut a stream of 48 kHz mono samples into the 10-s windows OpenFLAM takes.

Pure functions over numpy arrays: no model, no I/O. Frame times are exact because every
window starts on the frame grid (multiples of 15 000 samples = 0.3125 s).

How the edges are handled (nothing dropped, nothing invented):

* Audio shorter than one window is tiled (repeated) to fill 10 s, as the seed did, so the
  model sees real sound rather than silence; only frames that start before the end of
  the clip are reported.
* Regular windows start at ``k * hop``. If audio remains after the last regular window,
  one final window is added, placed as late as possible while still starting on the
  frame grid, so it holds real audio (it overlaps the previous window; the overlapping
  frames are averaged like any other overlap). It reaches at most one frame (< 0.3125 s)
  past the end, zero-padded, and frames starting at or after the end are never reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 48_000
WINDOW_S = 10.0
WINDOW_SAMPLES = 480_000  # 10 s at 48 kHz: OpenFLAM's fixed input length
FRAMES_PER_WINDOW = 32
FRAME_SAMPLES = WINDOW_SAMPLES // FRAMES_PER_WINDOW  # 15 000
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.3125 s


@dataclass(frozen=True)
class Window:
    """One model input: ``samples`` (480 000 float32) starting at ``start`` samples into the audio."""

    index: int
    start: int
    samples: np.ndarray

    @property
    def start_frame(self) -> int:
        return self.start // FRAME_SAMPLES


def hop_samples(hop_s: float) -> int:
    """Hop in samples, rounded to whole frames."""
    return int(round(hop_s / FRAME_S)) * FRAME_SAMPLES


def frame_count(n_samples: int) -> int:
    """Frames reported for audio of ``n_samples``: those that start before the end."""
    return math.ceil(n_samples / FRAME_SAMPLES)


def window_starts(n_samples: int, hop: int) -> list[int]:
    """Start sample of every window for audio of ``n_samples`` (see module docstring)."""
    if n_samples <= WINDOW_SAMPLES:
        return [0]
    starts = list(range(0, n_samples - WINDOW_SAMPLES + 1, hop))
    covered = starts[-1] + WINDOW_SAMPLES
    if covered < n_samples:
        last = math.ceil((n_samples - WINDOW_SAMPLES) / FRAME_SAMPLES) * FRAME_SAMPLES
        starts.append(last)
    return starts


def window_count(n_samples: int, hop: int) -> int:
    return len(window_starts(n_samples, hop))


def tile(samples: np.ndarray) -> np.ndarray:
    """Repeat a short clip to exactly one window (the seed's behaviour)."""
    if samples.size == 0:
        raise ValueError("cannot tile empty audio")
    reps = math.ceil(WINDOW_SAMPLES / samples.size)
    return np.tile(samples, reps)[:WINDOW_SAMPLES].astype(np.float32, copy=False)


def iter_windows(blocks: Iterable[np.ndarray], hop: int) -> Iterator[Window]:
    """Yield windows from a stream of sample blocks, holding at most one window plus one block.

    Produces exactly the windows of :func:`window_starts` for the total length, without
    knowing that length in advance (the final window is decided when the stream ends).
    """
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute sample index of buf[0]
    next_start = 0
    index = 0
    total = 0
    for block in blocks:
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        if block.size == 0:
            continue
        total += block.size
        buf = np.concatenate([buf, block]) if buf.size else block.copy()
        while next_start + WINDOW_SAMPLES <= buf_start + buf.size:
            off = next_start - buf_start
            yield Window(index, next_start, buf[off : off + WINDOW_SAMPLES].copy())
            index += 1
            next_start += hop
        # keep the last window's worth of audio: the final window may reach back into it
        keep_from = max(0, buf.size - WINDOW_SAMPLES)
        if keep_from:
            buf = buf[keep_from:]
            buf_start += keep_from
    if total == 0:
        return
    if total < WINDOW_SAMPLES:
        yield Window(0, 0, tile(buf[:total]))
        return
    starts = window_starts(total, hop)
    if len(starts) > index:  # the late final window
        last = starts[-1]
        off = last - buf_start
        piece = buf[off:]
        out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        out[: piece.size] = piece
        yield Window(index, last, out)

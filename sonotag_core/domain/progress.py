"""Progress reporting shared by every stage, so the UI and the CLI drive one bar from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress update.

    ``stage`` is one of "download", "queue", "decode", "encode", "labels", "model";
    ``done`` and ``total`` are in ``unit`` (bytes, windows, labels); ``total`` is None when unknown.
    """

    stage: str
    done: float
    total: float | None = None
    unit: str = ""
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]
Clock = Callable[[], float]  # seconds, monotonic: time.monotonic, or a test's fake clock


def no_progress(_: Progress) -> None:
    """Default callback: ignore updates."""


class RateEstimator:
    """Time left from the rate measured in this run, never from a constant.

    The first ``warmup`` updates are not measured: the first batch also pays for starting
    the decoder and the encoder's first-call set-up (it made the first estimate 3.4x too
    high). The rate is then what was done since the end of the warm-up over the time it
    took, so there is no estimate until one more update has been measured.
    """

    def __init__(self, *, warmup: int = 1, clock: Clock = time.monotonic) -> None:
        self.warmup = warmup
        self._clock = clock
        self._updates = 0
        self._base: tuple[float, float] | None = None  # (time, done) when measuring began
        self._rate: float | None = None  # units per second

    def update(self, done: float) -> None:
        """Record that ``done`` units are finished now."""
        now = self._clock()
        self._updates += 1
        if self._base is None:  # still warming up: the end of warm-up starts the clock
            if self._updates >= self.warmup:
                self._base = (now, done)
            return
        t0, d0 = self._base
        if now > t0 and done > d0:
            self._rate = (done - d0) / (now - t0)

    def seconds_left(self, total: float | None, done: float) -> float | None:
        """Seconds until ``total`` at the measured rate; None before a measurement or
        without a total."""
        if self._rate is None or total is None:
            return None
        return max(total - done, 0.0) / self._rate


def time_left_text(seconds: float | None) -> str:
    """Text such as ", about 40 s left"; empty without an estimate or at the end."""
    if seconds is None or seconds < 0.5:
        return ""
    if seconds < 90:
        return f", about {max(1, round(seconds))} s left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f", about {minutes} min left"
    return f", about {seconds / 3600:.1f} h left"


class EncodeProgress:
    """The audio encoder's progress as one stage, "encode", whose counts only go up.

    Decoding is streamed and interleaved with encoding (one block per window), so it is
    folded in here instead of reporting a "decode" stage of its own, which would flip the
    text back and forth. The window total shown before decoding ends is ``expected`` (an
    estimate from the file's stated duration, never below what is done); once the stream
    has ended, :meth:`stream_ended` makes it the exact count the windowing produced.
    One update per batch, so a cancel raised from ``progress`` lands within one batch.
    """

    def __init__(
        self,
        progress: ProgressFn,
        what: str,
        expected: int | None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.progress = progress
        self.what = what  # what the text calls the audio: the user's name for it
        self.expected = expected
        self.done = 0
        self.exact: int | None = None
        self.rate = RateEstimator(clock=clock)
        self._last: tuple[int, int | None] | None = None

    @property
    def total(self) -> int | None:
        if self.exact is not None:
            return self.exact
        return None if self.expected is None else max(self.expected, self.done)

    def start(self) -> None:
        """The slot is ours and decoding starts: report 0 windows done."""
        self._report()

    def batch_done(self, windows: int) -> None:
        self.done += windows
        self.rate.update(self.done)
        self._report()

    def stream_ended(self, windows: int) -> None:
        """Decoding has ended and the windowing knows its count: the total is exact now."""
        self.exact = windows

    def finish(self) -> None:
        """A last update if the one before did not show the exact total already."""
        if self._last != (self.done, self.total):
            self._report()

    def text(self) -> str:
        total = self.total
        if total is None:
            return f"Encoding {self.what}: {self.done} windows"
        left = time_left_text(self.rate.seconds_left(total, self.done))
        return f"Encoding {self.what}: {self.done} of {total} windows{left}"

    def _report(self) -> None:
        self._last = (self.done, self.total)
        self.progress(Progress("encode", self.done, self.total, "windows", self.text()))


class RunHandle:
    """One run as a Cancel sees it from the rerun the click starts. Streamlit (with its
    default ``runner.fastReruns``) starts that rerun at once in a new thread, while the
    cancelled run is still going: it stops at its next progress update and unwinds there.
    So the rerun waits for :meth:`finish`, then reads ``result`` (set only once the run
    had been saved and kept) to say truthfully whether anything was kept."""

    def __init__(self) -> None:
        self.result: object | None = None
        self._finished = threading.Event()

    def finish(self, result: object | None = None) -> None:
        """The run is over, however it ended (``result``: what it produced, if it did)."""
        if result is not None:
            self.result = result
        self._finished.set()

    def wait(self, timeout_s: float) -> bool:
        """True once the run has finished; False if it is still going after ``timeout_s``."""
        return self._finished.wait(timeout_s)

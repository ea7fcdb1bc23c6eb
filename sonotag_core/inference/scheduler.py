"""Sharing one model's CPU between browser sessions: a first-come-first-served queue for
audio encoding, a per-user rate limit on analyses, and a per-user budget of audio minutes.

Why a queue and not just the model lock: the lock is taken per batch, so two long
analyses would interleave batch by batch and both finish late. The queue lets the first
run at full speed while the next one waits and says where it stands ("position 2"); text
encoding (relabels) never queues behind it, only behind the current batch.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sonotag_core.domain.timefmt import duration
from sonotag_core.errors import LimitError


class InferenceQueue:
    """FIFO slots: one holder at a time, waiters served in arrival order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._line: deque[int] = deque()  # waiting and running tickets, front = running

    @property
    def depth(self) -> int:
        """Analyses running or waiting."""
        with self._cond:
            return len(self._line)

    @contextmanager
    def slot(
        self, on_wait: Callable[[int], None] = lambda _ahead: None, poll_s: float = 0.5
    ) -> Iterator[None]:
        """Hold the slot for the body. While waiting, ``on_wait(ahead)`` is called with the
        number of analyses ahead (first at once, then whenever it changes or ``poll_s``
        passes); an exception from it (a session that went away) leaves the line."""
        with self._cond:
            ticket = next(self._tickets)
            self._line.append(ticket)
        try:
            self._wait_turn(ticket, on_wait, poll_s)
            yield
        finally:
            with self._cond:
                self._line.remove(ticket)
                self._cond.notify_all()

    def _wait_turn(self, ticket: int, on_wait: Callable[[int], None], poll_s: float) -> None:
        reported = None
        while True:
            with self._cond:
                ahead = self._line.index(ticket)
                if ahead == 0:
                    return
                if ahead == reported:
                    self._cond.wait(poll_s)
                    ahead = self._line.index(ticket)
                    if ahead == 0:
                        return
            on_wait(ahead)  # outside the lock: it may be slow (a UI update) or raise
            reported = ahead


_ENCODER_QUEUE = InferenceQueue()


def encoder_queue() -> InferenceQueue:
    """The one line for whole audio encodings in this process. It shares the machine's
    CPU, not a model object, so it belongs here: every session, the CLI and a batch
    worker in one process wait in the same line, whichever model they hold."""
    return _ENCODER_QUEUE


class RateLimiter:
    """At most ``limit`` analyses per ``window_s`` for each key (a user); 0 = no limit."""

    def __init__(self, limit: int, window_s: float = 3600.0, clock=time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._starts: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, *keys: str) -> None:
        """Count one analysis for each of ``keys`` (one user seen several ways: an owner,
        an address), or raise LimitError saying when one frees up, counting nothing."""
        if self.limit <= 0:
            return
        now = self._clock()
        with self._lock:
            queues = [self._starts.setdefault(key, deque()) for key in keys]
            for starts in queues:
                while starts and now - starts[0] >= self.window_s:
                    starts.popleft()
            full = [starts for starts in queues if len(starts) >= self.limit]
            if full:
                starts = max(full, key=len)
                wait_min = max(1, round((self.window_s - (now - starts[0])) / 60))
                raise LimitError(
                    f"You have started {len(starts)} analyses in the last "
                    f"{self.window_s / 60:.0f} min, the most this server allows "
                    f"(SONOTAG_RATE_LIMIT_PER_HOUR). The next one is possible in about "
                    f"{wait_min} min; relabeling and re-thresholding stay available."
                )
            for starts in queues:
                starts.append(now)
            if len(self._starts) > 10_000:  # forget idle users, keep memory bounded
                for k in [
                    k for k, v in self._starts.items() if not v or now - v[-1] >= self.window_s
                ]:
                    del self._starts[k]


class AudioBudget:
    """At most ``minutes`` of audio encoded per ``window_s`` for each key (a user seen as
    :class:`RateLimiter` sees one: an owner, an address); 0 = no budget.

    The rate limit counts analyses, but what an analysis costs is its audio: a small file
    that decodes to hours of silence holds the encoder for many minutes. So each run's
    :class:`AudioMeter` is charged as the decoded length becomes known, and refuses (a
    :class:`LimitError`) once a key's hour is used up."""

    def __init__(self, minutes: float, window_s: float = 3600.0, clock=time.monotonic) -> None:
        self.limit_s = max(0.0, float(minutes)) * 60.0
        self.window_s = window_s
        self._clock = clock
        self._spent: dict[str, deque[tuple[float, float]]] = {}  # key -> (when, seconds)
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        return self.limit_s > 0

    def meter(self, *keys: str) -> AudioMeter:
        """The account one run charges, for these keys (one user seen several ways)."""
        return AudioMeter(self, keys)

    def left_s(self, *keys: str) -> float | None:
        """Seconds of audio these keys may still have encoded this hour (the least of
        them); None when there is no budget."""
        if not self.limited:
            return None
        with self._lock:
            return self._left(keys, self._clock())

    def _entries(self, key: str, now: float) -> deque[tuple[float, float]]:
        spent = self._spent.setdefault(key, deque())
        while spent and now - spent[0][0] >= self.window_s:
            spent.popleft()
        return spent

    def _left(self, keys: tuple[str, ...], now: float) -> float:
        used = max((sum(s for _, s in self._entries(k, now)) for k in keys), default=0.0)
        return max(0.0, self.limit_s - used)

    def spend(self, keys: tuple[str, ...], seconds: float) -> float:
        """Count ``seconds`` for every key, at most what is left; returns what is left
        after it (0: the allowance ran out)."""
        now = self._clock()
        with self._lock:
            left = self._left(keys, now)
            counted = min(seconds, left)
            if counted > 0:
                for key in keys:
                    self._entries(key, now).append((now, counted))
            if len(self._spent) > 10_000:  # forget idle users, keep memory bounded
                for k in [k for k, v in self._spent.items() if not self._entries(k, now)]:
                    del self._spent[k]
            return left - seconds

    def free_in_s(self, keys: tuple[str, ...], needed_s: float) -> float:
        """Seconds until ``needed_s`` of audio (at most the whole budget) is free for every
        key, as what was charged more than an hour ago frees up."""
        now = self._clock()
        needed_s = min(needed_s, self.limit_s)
        wait = 0.0
        with self._lock:
            for key in keys:
                entries = self._entries(key, now)
                short = needed_s - (self.limit_s - sum(s for _, s in entries))
                for when, seconds in entries:
                    if short <= 0:
                        break
                    short -= seconds
                    wait = max(wait, self.window_s - (now - when))
        return wait


class AudioMeter:
    """One run's share of an :class:`AudioBudget`: the analysis (``embed_file``) asks it
    before decoding (:meth:`check`, with the length the file states, if any) and charges
    it block by block as audio decodes (:meth:`charge`); both raise :class:`LimitError`
    with a message that says what the allowance is and when more frees up."""

    def __init__(self, budget: AudioBudget, keys: tuple[str, ...]) -> None:
        self.budget = budget
        self.keys = keys
        self.charged_s = 0.0

    def left_s(self) -> float | None:
        return self.budget.left_s(*self.keys)

    def allowance(self) -> str | None:
        """ "45 min of 3 h left this hour", or None without a budget."""
        left = self.left_s()
        if left is None:
            return None
        return f"{duration(left)} of {duration(self.budget.limit_s)} left this hour"

    def check(self, name: str, duration_s: float | None) -> None:
        """Before decoding: refuse when nothing is left, or when the file states a length
        longer than what is left (it would stop part-way anyway). Charges nothing."""
        left = self.left_s()
        if left is None:
            return
        if left <= 0:
            raise LimitError(self._used_up(f"{name} was not analysed"))
        if duration_s is not None and duration_s > left:
            limit = self.budget.limit_s
            if duration_s > limit:
                what = (
                    f"longer than the {duration(limit)} of audio this server encodes per "
                    "visitor per hour (SONOTAG_AUDIO_MINUTES_PER_HOUR). Trim the audio."
                )
            else:
                wait = self.budget.free_in_s(self.keys, duration_s)
                what = (
                    f"more than the {duration(left)} of audio you have left this hour "
                    f"({duration(limit)} per hour, SONOTAG_AUDIO_MINUTES_PER_HOUR). Trim it, "
                    f"or try again in about {_minutes(wait)}."
                )
            raise LimitError(
                f"{name} is {duration(duration_s)} long, {what} Relabeling and opening "
                "stored analyses stay available."
            )

    def charge(self, name: str, seconds: float) -> None:
        """Count ``seconds`` more decoded audio; :class:`LimitError` once over."""
        if not self.budget.limited:
            return
        self.charged_s += seconds
        if self.budget.spend(self.keys, seconds) < 0:
            raise LimitError(
                self._used_up(
                    f"Stopped after {duration(self.charged_s)} of {name}: nothing was saved"
                )
            )

    def _used_up(self, what: str) -> str:
        wait = self.budget.free_in_s(self.keys, 60.0)
        return (
            f"{what}, because your audio allowance for this hour is used up: this server "
            f"encodes {duration(self.budget.limit_s)} of audio per visitor per hour "
            f"(SONOTAG_AUDIO_MINUTES_PER_HOUR). More frees up in about {_minutes(wait)}; "
            "relabeling, re-thresholding and opening stored analyses stay available."
        )


def _minutes(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds / 60))} min"


_METER: ContextVar[AudioMeter | None] = ContextVar("sonotag_audio_meter", default=None)


@contextmanager
def charging(meter: AudioMeter | None) -> Iterator[None]:
    """Runs in the body charge ``meter`` for the audio they encode. The dashboard wraps a
    visitor's analysis in it; the service reads it where the decoded length becomes known
    (:func:`audio_meter`), so no front end's notion of a visitor reaches the core's
    signatures, and the CLI and batch workers, which set none, are not metered."""
    token = _METER.set(meter)
    try:
        yield
    finally:
        _METER.reset(token)


def audio_meter() -> AudioMeter | None:
    """The meter of the run in progress in this thread (:func:`charging`), if any."""
    return _METER.get()

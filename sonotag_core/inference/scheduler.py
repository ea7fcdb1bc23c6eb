"""Sharing one model's CPU between browser sessions: a first-come-first-served queue for
audio encoding, and a per-user rate limit on analyses.

Why a queue and not just the model lock: the lock is taken per batch, so two long
analyses would interleave batch by batch and both finish late. The queue lets the first
run at full speed while the next one waits and says where it stands ("position 2"); text
encoding (relabels) never queues behind it, only behind the current batch.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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

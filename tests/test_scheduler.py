"""The inference queue (first come, first served, with positions) and the rate limit."""

from __future__ import annotations

import threading
import time

import pytest
from audiogen import make_audio

from sonotag_core.errors import LimitError
from sonotag_core.inference.scheduler import InferenceQueue, RateLimiter, encoder_queue
from sonotag_core.service.analysis import embed_file


def test_queue_serves_in_arrival_order_and_reports_positions():
    queue = InferenceQueue()
    order: list[str] = []
    waits: dict[str, list[int]] = {"b": [], "c": []}
    release = threading.Event()
    holding = threading.Event()

    def first():
        with queue.slot():
            holding.set()
            release.wait(10)
            order.append("a")

    def later(name: str):
        with queue.slot(on_wait=waits[name].append, poll_s=0.05):
            order.append(name)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert holding.wait(5)
    for name in ("b", "c"):
        t = threading.Thread(target=later, args=(name,))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while not waits[name] and time.monotonic() < deadline:
            time.sleep(0.01)
    assert queue.depth == 3
    assert waits == {"b": [1], "c": [2]}  # position = analyses ahead + 1
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["a", "b", "c"]
    assert waits["c"][0] == 2 and set(waits["c"]) <= {1, 2}  # c only ever moved up
    assert queue.depth == 0


def test_a_waiter_that_goes_away_leaves_the_line():
    queue = InferenceQueue()
    entered: list[str] = []

    def gone(_ahead: int) -> None:
        raise RuntimeError("session closed")  # what Streamlit raises into a dead session

    with queue.slot():
        with pytest.raises(RuntimeError, match="session closed"):
            with queue.slot(on_wait=gone):
                entered.append("never")
        assert queue.depth == 1
    assert entered == [] and queue.depth == 0


def test_rate_limit_per_user_and_window():
    now = [0.0]
    limiter = RateLimiter(2, window_s=3600, clock=lambda: now[0])
    limiter.check("alice")
    limiter.check("alice")
    limiter.check("bob")  # users are counted apart
    with pytest.raises(LimitError, match="SONOTAG_RATE_LIMIT_PER_HOUR") as err:
        limiter.check("alice")
    assert "60 min" in str(err.value)
    now[0] = 3599.0
    with pytest.raises(LimitError, match="about 1 min"):
        limiter.check("alice")
    now[0] = 3600.0  # the first analysis left the window
    limiter.check("alice")
    unlimited = RateLimiter(0)
    for _ in range(100):
        unlimited.check("alice")


def test_two_sessions_one_model_first_come_first_served(tmp_path, model, settings):
    """Two concurrent analyses on the real model path: the second waits in the queue (and
    says so), and does not start encoding until the first has finished."""
    # 100 s = 10 windows = 3 batches: "a" is still encoding when "b" arrives
    clips = [make_audio(tmp_path / f"{n}.wav", 100.0, kind="mix") for n in ("a", "b")]
    events: list[tuple[str, str, float]] = []
    lock = threading.Lock()
    started = threading.Event()

    def run(name: str, path) -> None:
        def progress(p):
            with lock:
                events.append((name, p.stage, p.done))
            if name == "a" and p.stage == "encode":
                started.set()

        embed_file(model, path, hop_s=10.0, settings=settings, progress=progress)

    a = threading.Thread(target=run, args=("a", clips[0]))
    a.start()
    assert started.wait(60)
    b = threading.Thread(target=run, args=("b", clips[1]))
    b.start()
    a.join(120)
    b.join(120)
    queued = [e for e in events if e[0] == "b" and e[1] == "queue"]
    assert queued, "the second session was never told it is queued"
    a_last = max(i for i, e in enumerate(events) if e[0] == "a" and e[1] == "encode")
    b_first = min(i for i, e in enumerate(events) if e[0] == "b" and e[1] == "encode")
    assert a_last < b_first  # no interleaving: the first ran at full speed
    assert encoder_queue().depth == 0

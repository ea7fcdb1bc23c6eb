"""Honest progress and a Cancel that leaves nothing behind (issue 9 A6): the user's name
in every message, a window total that matches the result, one stage whose counts only go
up, a time-left estimate from the measured rate, and a run stopped from its progress
callback at any stage keeping no file, row or cache entry."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from audiogen import make_audio
from support import ffmpeg_children, serve_directory, stored_rows

from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.progress import EncodeProgress, Progress, RateEstimator, time_left_text
from sonotag_core.errors import DecodeError
from sonotag_core.inference.embedding_cache import EmbeddingCache
from sonotag_core.inference.scheduler import encoder_queue
from sonotag_core.media import sources
from sonotag_core.service import analysis, library
from sonotag_core.store.database import Store

LABELS = LabelSet(("a tone",))
STORE_FILES = {"sonotag.db", "sonotag.db-wal", "sonotag.db-shm", "logs/sonotag.log"}


class Cancelled(BaseException):
    """Stands in for Streamlit's StopException/RerunException (BaseExceptions too), which a
    Cancel click raises from the next progress update."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if not p.is_dir()}


# ---------------------------------------------------------------- the estimate


def test_time_left_is_measured_after_the_first_batch_never_assumed():
    """The first batch also pays for starting ffmpeg and the encoder (here 3.4x the
    others): an estimate from it, as before, said 27 s for what took 8 s."""
    clock = FakeClock()
    rate = RateEstimator(clock=clock)
    assert rate.seconds_left(20, 0) is None  # nothing measured: no estimate at all
    clock.now = 6.8
    rate.update(4)
    assert rate.seconds_left(20, 4) is None  # the warm-up batch is no measurement
    clock.now = 8.8
    rate.update(8)  # 4 windows in 2 s
    assert rate.seconds_left(20, 8) == pytest.approx(6.0)
    clock.now = 12.8
    rate.update(12)  # slower now (a relabel held the model): 8 windows in 6 s since warm-up
    assert rate.seconds_left(20, 12) == pytest.approx(6.0)
    assert rate.seconds_left(None, 12) is None
    assert time_left_text(None) == "" and time_left_text(0.2) == ""
    assert time_left_text(6.0) == ", about 6 s left"
    assert time_left_text(300.0) == ", about 5 min left"


def test_encode_progress_is_one_stage_counting_up_to_the_exact_total():
    clock = FakeClock()
    seen: list[Progress] = []
    enc = EncodeProgress(seen.append, "garbage.mp3", 19, clock=clock)
    enc.start()
    for t in (5.0, 9.0, 13.0, 17.0):  # a slow first batch, then 4 s per 4 windows
        clock.now = t
        enc.batch_done(4)
    enc.stream_ended(18)  # decoding ended: the windowing made 18, not the estimated 19
    clock.now = 19.0
    enc.batch_done(2)
    enc.finish()
    assert {p.stage for p in seen} == {"encode"} and seen[-1].unit == "windows"
    assert [p.done for p in seen] == [0, 4, 8, 12, 16, 18]
    assert [p.total for p in seen] == [19, 19, 19, 19, 19, 18]
    assert seen[0].message == "Encoding garbage.mp3: 0 of 19 windows"
    assert seen[1].message == "Encoding garbage.mp3: 4 of 19 windows"  # no estimate yet
    assert seen[2].message == "Encoding garbage.mp3: 8 of 19 windows, about 11 s left"
    assert seen[-1].message == "Encoding garbage.mp3: 18 of 18 windows"
    under = EncodeProgress(seen.append, "x", 2)
    under.batch_done(4)  # more than the estimate, the stream still going: never "4 of 2"
    assert seen[-1].total == 4
    unknown = EncodeProgress(seen.append, "x", None)
    unknown.batch_done(4)
    assert seen[-1].total is None and seen[-1].message == "Encoding x: 4 windows"


# ---------------------------------------------------------------- totals and stages


@pytest.mark.parametrize(
    "suffix, seconds, hop_s",
    [
        (".mp3", 180.0, 10.0),
        (".mp3", 60.0, 5.0),
        (".ogg", 30.0, 10.0),
        (".wav", 25.0, 10.0),
        (".wav", 4.0, 10.0),
    ],
)
def test_window_total_shown_is_the_results_and_stages_never_flip(
    tmp_path, model, settings, suffix, seconds, hop_s
):
    """A 180-s mp3 states 180.036 s (its padding) and decodes to 180.000 s: 18 windows,
    while the bar said 19. Decoding and encoding interleave, and the text flipped between
    "Decoding" and "Window i of n"; now one stage counts up, decoding folded in."""
    clip = make_audio(tmp_path / f"clip{suffix}", seconds, kind="mix")
    seen: list[Progress] = []
    emb = analysis.embed_file(model, clip, hop_s=hop_s, settings=settings, progress=seen.append)
    assert emb.n_windows >= 1
    assert [p.stage for p in seen] == ["encode"] * len(seen)
    assert {p.total for p in seen} == {emb.n_windows}
    done = [p.done for p in seen]
    assert done == sorted(done) and done[0] == 0 and done[-1] == emb.n_windows


def test_a_total_the_stated_length_cannot_tell_is_made_exact_when_decoding_ends(
    tmp_path, standin_model, standin_settings
):
    """A 60-s m4a states 60.000 s but decodes 18 samples more, which the windowing gives
    a 7th window: no stated length can tell, so the total becomes exact the moment the
    stream ends, before the last batch is reported, and is never below what is done."""
    clip = make_audio(tmp_path / "clip.m4a", 60.0, kind="mix")
    seen: list[Progress] = []
    emb = analysis.embed_file(
        standin_model, clip, hop_s=10.0, settings=standin_settings, progress=seen.append
    )
    if emb.n_samples == 60 * 48_000:  # this ffmpeg decodes it exactly: nothing to tell
        assert {p.total for p in seen} == {emb.n_windows}
        return
    assert emb.n_windows == 7 and [(p.done, p.total) for p in seen] == [(0, 6), (4, 6), (7, 7)]


# ---------------------------------------------------------------- names


def test_an_upload_is_named_as_the_user_named_it(tmp_path, standin_model, standin_settings):
    data = tmp_path / "data"
    clip = make_audio(tmp_path / "take.mp3", 30.0, kind="mix").read_bytes()
    internal = hashlib.sha256(clip).hexdigest()[:16]
    src = sources.from_upload(clip, "garbage.mp3", data / sources.UPLOADS_DIR)
    assert src.path.name.startswith(internal)  # the server's copy has another name
    seen: list[Progress] = []
    library.run(
        standin_model,
        src,
        LABELS,
        hop_s=10.0,
        settings=standin_settings,
        store=None,
        progress=seen.append,
    )
    assert seen and all("garbage.mp3" in p.message for p in seen)
    assert not any(internal in p.message for p in seen)

    cut = clip[: len(clip) // 2]  # passes the probe, fails mid-decode
    broken = sources.from_upload(cut, "garbage.mp3", data / sources.UPLOADS_DIR)
    with pytest.raises(DecodeError) as err:
        library.run(
            standin_model, broken, LABELS, hop_s=10.0, settings=standin_settings, store=None
        )
    assert str(err.value).startswith("'garbage.mp3' looks truncated")
    assert hashlib.sha256(cut).hexdigest()[:16] not in str(err.value)
    with pytest.raises(DecodeError) as err:
        sources.from_upload(b"not audio at all " * 100, "garbage.mp3", data / "uploads")
    assert str(err.value).startswith("'garbage.mp3' could not be read as audio")


def test_a_links_audio_is_named_by_its_title_not_yt_dlps_file(
    tmp_path, standin_model, standin_settings
):
    path = make_audio(tmp_path / "Youtube-dQw4w9WgXcQ.webm", 12.0, kind="mix")
    src = sources.SourceInfo(
        "url",
        path,
        "Night walk in the rain",
        "c" * 64,
        path.name,
        url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    )
    assert src.display_name == "Night walk in the rain"
    seen: list[Progress] = []
    analysis.embed_source(
        standin_model, src, hop_s=10.0, settings=standin_settings, progress=seen.append
    )
    assert seen and all(p.message.startswith("Encoding Night walk in the rain:") for p in seen)


def test_a_download_that_is_not_audio_is_named_by_its_title(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    (root / "garbage.mp3").write_bytes(b"not audio at all " * 100)

    policy = sources.UrlPolicy(allowed_extractors=("Generic",), allow_any_host=True)
    with serve_directory(root) as server, pytest.raises(DecodeError) as err:
        sources.from_url(
            f"http://127.0.0.1:{server.server_address[1]}/garbage.mp3",
            tmp_path / "dl",
            max_duration_s=60,
            policy=policy,
        )
    assert str(err.value).startswith("'garbage' could not be read as audio")  # not Generic-…
    assert not any((tmp_path / "dl").iterdir())


# ---------------------------------------------------------------- the UI adapter


def test_the_bar_sends_every_batch_so_a_cancel_lands_within_one(monkeypatch):
    """Streamlit stops a script only inside a Streamlit call: a throttled update is no
    cancel point. Byte counts are still throttled; batches never are."""
    from sonotag_app import context

    clock = FakeClock()
    bar = context.ProgressBar(clock=clock)
    sent: list[str] = []
    bar.bar = SimpleNamespace(progress=lambda fraction, text: sent.append(text))
    for done in range(5):
        bar(Progress("encode", done * 4, 20, "windows", f"Encoding x: {done * 4} of 20 windows"))
    assert len(sent) == 5  # five batches in the same instant: all five sent
    clock.now = 1.0
    for done in range(1, 6):
        bar(Progress("download", done * 1e6, 1e7, "bytes", "Downloading audio"))
    assert len(sent) == 6  # the same instant: one byte count shown, the rest skipped


def test_loading_the_model_is_said_only_when_it_loads(monkeypatch):
    from sonotag_app import context

    loaded = SimpleNamespace(name="model")
    monkeypatch.setattr(context, "load_model", lambda settings, progress: loaded)
    monkeypatch.setattr(context, "settings", lambda: None)
    monkeypatch.setattr(context, "_loaded", None)
    seen: list[Progress] = []
    assert context.model(seen.append) is loaded
    assert [p.message for p in seen] == [context.LOADING_MODEL]
    seen.clear()
    assert context.model(seen.append) is loaded  # loaded: nothing to say, nothing flashes
    assert seen == []


# ---------------------------------------------------------------- cancel


@pytest.mark.parametrize("where", ["queue", "first", "mid", "last"])
def test_a_cancel_at_any_stage_keeps_nothing_and_the_next_run_works(
    tmp_path, model, settings, where
):
    """The progress callback raises (as Streamlit does after a Cancel click) while queued,
    at the first update, after a batch, or at the last batch: ffmpeg is stopped at once
    (not when the traceback is collected), the upload's copy is gone, no Library row, no
    cache entry; then the same audio analyses normally."""
    data = tmp_path / "data"
    store, cache = Store(data), EmbeddingCache()
    before = files_under(data)
    audio = make_audio(tmp_path / "up.wav", 45.0, kind="mix").read_bytes()  # 5 windows
    release = threading.Event()
    holding = threading.Event()

    def hold_slot() -> None:  # another session's analysis, so this one queues
        with encoder_queue().slot():
            holding.set()
            release.wait(60)

    def cancel(p: Progress) -> None:
        hit = {
            "queue": p.stage == "queue",
            "first": p.stage == "encode" and p.done == 0,
            "mid": p.stage == "encode" and p.done >= 1,
            "last": p.stage == "encode" and p.total is not None and p.done == p.total,
        }[where]
        if hit:
            raise Cancelled

    holder = threading.Thread(target=hold_slot)
    if where == "queue":
        holder.start()
        assert holding.wait(30)
    src = sources.from_upload(audio, "my take.wav", data / sources.UPLOADS_DIR)
    try:
        with pytest.raises(Cancelled):
            library.run(
                model,
                src,
                LABELS,
                hop_s=10.0,
                settings=settings,
                store=store,
                cache=cache,
                progress=cancel,
            )
        assert ffmpeg_children() == []  # no gc.collect(): stopped by the unwinding itself
    finally:
        release.set()
        if where == "queue":
            holder.join(30)
    assert files_under(data) == before and files_under(data) <= STORE_FILES
    assert stored_rows(data) == 0 and len(cache) == 0 and encoder_queue().depth == 0

    again = sources.from_upload(audio, "my take.wav", data / sources.UPLOADS_DIR)
    done = library.run(
        model, again, LABELS, hop_s=10.0, settings=settings, store=store, cache=cache
    )
    assert done.embeddings.n_windows == 5 and done.analysis_id and stored_rows(data) == 1
    assert len(cache) == 1


def test_the_background_load_shares_the_model_and_keeps_its_error(monkeypatch):
    """serve.py starts the load in a thread: a run then gets that same model; a failed
    background load is kept for the About page and the next run tries again."""
    import threading

    from sonotag_app import context
    from sonotag_core.errors import ModelError

    release = threading.Event()
    loaded = SimpleNamespace(name="model")

    def slow_load(settings, progress=None):
        release.wait()
        return loaded

    monkeypatch.setattr(context, "load_model", slow_load)
    monkeypatch.setattr(context, "_loaded", None)
    monkeypatch.setattr(context, "_background", None)
    context.start_loading()
    assert context.model_loading() and context.model_if_loaded() is None
    context.start_loading()  # a second start while loading starts no second load
    first = context._background
    release.set()
    first.join()
    assert context.model_if_loaded() is loaded and not context.model_loading()
    seen: list[Progress] = []
    assert context.model(seen.append) is loaded and seen == []  # nothing left to say

    def broken(settings, progress=None):
        raise ModelError("The OpenFLAM weights are not in /nowhere. Run `sonotag fetch-model`.")

    monkeypatch.setattr(context, "load_model", broken)
    monkeypatch.setattr(context, "_loaded", None)
    context.start_loading()
    context._background.join()
    assert "sonotag fetch-model" in context.background_error() and not context.model_loading()
    monkeypatch.setattr(context, "load_model", lambda settings, progress: loaded)
    monkeypatch.setattr(context, "settings", lambda: None)
    assert context.model() is loaded and context.background_error() is None

"""The result store: round trips, one encoding per audio+model, float16 error, atomic
writes under SIGKILL, migrations, a full disk, kept audio with LRU eviction, link lookups
and streaming for search."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.access import OPERATOR
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.media.sources import SourceInfo, from_path
from sonotag_core.service.analysis import embed_file, score
from sonotag_core.service.library import find_link_source
from sonotag_core.store.database import MIGRATIONS, MediaUsage, Store, StoreError

SHA = "ab" * 32


def fake_source(cid: str = "c" * 64) -> SourceInfo:
    return SourceInfo("upload", Path("/data/uploads/x.wav"), "A clip", cid, "x.wav", 25.0)


def random_embeddings(n: int = 3, seed: int = 0) -> AudioEmbeddings:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, 32, 512)).astype(np.float32)
    f /= np.linalg.norm(f, axis=-1, keepdims=True)
    return AudioEmbeddings(np.arange(n, dtype=np.int64) * 480_000, f, n * 480_000 - 1000, 480_000)


def test_round_trip_and_library(tmp_path):
    store = Store(tmp_path)
    emb = random_embeddings()
    labels = LabelSet(("siren", "music"), frozenset({"music"}))
    aid = store.add_analysis(
        fake_source(),
        emb,
        labels,
        hop_s=10.0,
        checkpoint_sha256=SHA,
        model_name="openflam-v1-base",
        settings={"threshold": 0.4},
        seconds=2.5,
    )
    got = store.get_analysis(aid)
    assert got is not None and got.labels == labels and got.settings == {"threshold": 0.4}
    assert got.source.title == "A clip" and got.source.duration_s == 25.0 and got.hop_s == 10.0
    np.testing.assert_array_equal(got.embeddings.starts, emb.starts)
    assert got.embeddings.n_samples == emb.n_samples and got.embeddings.hop == 480_000
    np.testing.assert_allclose(got.embeddings.features, emb.features, atol=5e-4)  # float16
    [row] = store.list_analyses()
    assert (row.id, row.title, row.labels) == (aid, "A clip", ("siren", "music"))
    assert row.negatives == {"music"} and row.labels_text == "siren; -music"
    assert store.get_labels(aid) == labels and store.get_labels("0" * 16) is None
    assert store.count_analyses() == 1
    assert store.get_analysis("0" * 16) is None


def test_same_audio_and_model_is_stored_once(tmp_path):
    store = Store(tmp_path)
    emb = random_embeddings()
    ids = [
        store.add_analysis(
            fake_source(), emb, LabelSet((x,)), hop_s=10.0, checkpoint_sha256=SHA, model_name="m"
        )
        for x in ("siren", "dog", "rain")
    ]
    assert len(set(ids)) == 3
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1
    assert store.get_embeddings("c" * 64, 10.0, SHA) is not None
    assert store.get_embeddings("c" * 64, 5.0, SHA) is None  # hop is part of the key
    assert store.get_embeddings("c" * 64, 10.0, "cd" * 32) is None  # so is the model
    # deleting the last analysis that uses them removes the embeddings and the source
    for aid in ids:
        assert store.delete_analysis(aid)
    assert db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM sources").fetchone()[0] == 0
    assert not store.delete_analysis(ids[0])


def test_float16_probability_error(tmp_path, model, text_cache, settings):
    """Stored (float16) embeddings change probabilities by less than 1e-3 on the real
    model path (measured here; printed for the record)."""
    clip = make_audio(tmp_path / "a.wav", 25.0, kind="mix")
    emb = embed_file(model, clip, hop_s=10.0, settings=settings)
    store = Store(tmp_path / "db")
    labels = LabelSet(("siren", "beeping", "speech", "music"))
    aid = store.add_analysis(
        from_path(clip),
        emb,
        labels,
        hop_s=10.0,
        checkpoint_sha256=model.info.checkpoint_sha256,
        model_name="m",
    )
    restored = store.get_analysis(aid).embeddings
    diff = np.abs(
        score(text_cache, emb, labels).probabilities
        - score(text_cache, restored, labels).probabilities
    ).max()
    print(f"float16 storage: max |probability difference| = {diff:.2e}")
    assert diff < 1e-3


CHILD = r"""
import json, sys, time
import numpy as np
from pathlib import Path
from sonotag_core.store import database as st
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.media.sources import SourceInfo
real_dumps = json.dumps
def slow_dumps(*a, **kw):   # called while writing the analysis row, after the embeddings
    print("mid-write", flush=True)
    time.sleep(60)
    return real_dumps(*a, **kw)
json.dumps = slow_dumps
s = st.Store(sys.argv[1])
f = np.ones((2, 32, 512), np.float32) / np.sqrt(512)
emb = AudioEmbeddings(np.array([0, 480000]), f, 960000, 480000)
src = SourceInfo("upload", Path("/x.wav"), "t", "d" * 64, "x.wav", 20.0)
s.add_analysis(src, emb, LabelSet(("a",)), hop_s=10.0, checkpoint_sha256="ab" * 32, model_name="m")
"""


def test_killed_mid_write_leaves_nothing_visible(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout.readline().strip() == "mid-write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path)
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for table in ("sources", "embeddings", "analyses"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    assert store.list_analyses() == []
    aid = store.add_analysis(
        fake_source(),
        random_embeddings(),
        LabelSet(("a",)),
        hop_s=10.0,
        checkpoint_sha256=SHA,
        model_name="m",
    )
    assert store.get_analysis(aid) is not None


def test_schema_version_and_newer_database(tmp_path):
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    Store(tmp_path)  # reopening migrates nothing and keeps working
    db = sqlite3.connect(store.path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    with pytest.raises(StoreError, match="newer SonoTag"):
        Store(tmp_path)


def test_full_disk_is_a_clear_error_and_keeps_the_store(tmp_path):
    store = Store(tmp_path)
    first = store.add_analysis(
        fake_source("e" * 64),
        random_embeddings(1),
        LabelSet(("a",)),
        hop_s=10.0,
        checkpoint_sha256=SHA,
        model_name="m",
    )
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count = {pages + 5}")  # simulate a full disk
    with pytest.raises(StoreError, match="full"):
        store.add_analysis(
            fake_source(),
            random_embeddings(40),
            LabelSet(("b",)),
            hop_s=10.0,
            checkpoint_sha256=SHA,
            model_name="m",
        )
    assert [a.id for a in store.list_analyses()] == [first]
    assert store.get_analysis(first) is not None


def test_full_disk_that_sqlite_rolled_back_itself_still_says_full(tmp_path):
    """On SQLITE_FULL SQLite may end the transaction itself; a second ROLLBACK must not
    replace "the disk is full" with "cannot rollback - no transaction is active"."""
    store = Store(tmp_path)
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count = {pages}")  # not one page more
    with pytest.raises(StoreError, match="is full") as err:
        store.add_analysis(
            fake_source(),
            random_embeddings(3),
            LabelSet(("b",)),
            hop_s=10.0,
            checkpoint_sha256=SHA,
            model_name="m",
        )
    assert "rollback" not in str(err.value)
    assert store.list_analyses() == [] and not store._conn().in_transaction


# ---------------------------------------------------------------- kept audio (media)


def audio_file(path: Path, size: int = 4000, seed: int = 0) -> Path:
    """A file with content-specific bytes (keep_media never decodes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes())
    return path


def file_source(path: Path, kind: str = "upload", url: str | None = None) -> SourceInfo:
    cid = hashlib.sha256(path.read_bytes()).hexdigest()
    return SourceInfo(kind, path, path.stem, cid, path.name, 10.0, None, url)


def save(store: Store, source: SourceInfo, seed: int = 0, labels=("a",)) -> str:
    return store.add_analysis(
        source,
        random_embeddings(2, seed),
        LabelSet(labels),
        hop_s=10.0,
        checkpoint_sha256=SHA,
        model_name="m",
    )


def test_keep_media_moves_files_in_the_data_dir_and_copies_others(tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    upload = file_source(audio_file(data / "uploads" / "abc.WAV", seed=1))
    kept = store.keep_media(upload)
    assert kept.path == data / "media" / (upload.content_id[:32] + ".wav")
    assert kept.path.is_file() and not upload.path.exists()  # moved
    assert kept.content_id == upload.content_id and kept.title == upload.title
    outside = file_source(audio_file(tmp_path / "elsewhere" / "clip.m4a?x", seed=2), kind="file")
    copied = store.keep_media(outside)
    assert copied.path.name == outside.content_id[:32] + ".m4ax"  # suffix filtered to [a-z0-9]
    assert outside.path.is_file() and copied.path.read_bytes() == outside.path.read_bytes()
    # the same content again (a second upload of it): one kept file, the duplicate goes
    again = file_source(audio_file(data / "uploads" / "again.wav", seed=1))
    assert store.keep_media(again).path == kept.path and not again.path.exists()
    assert store.keep_media(kept).path == kept.path
    assert sorted(p.name for p in (data / "media").iterdir()) == sorted(
        [kept.path.name, copied.path.name]
    )
    assert store.media_usage() == MediaUsage(2, 8000, None)
    # a source without a file (a stored link whose audio is gone) has nothing to keep
    bare = SourceInfo("url", Path(""), "t", "f" * 64, "x.webm")
    assert store.keep_media(bare) == bare and store.media_path("f" * 64) is None


def test_saved_analysis_plays_from_the_kept_file(tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    src = file_source(audio_file(data / "uploads" / "x.wav"))
    aid, kept = save_with_media(store, src)
    assert kept.path.parent == data / "media"
    assert store.get_analysis(aid).source.path == kept.path
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT media_path FROM sources").fetchone()[0] == str(kept.path)
    # a file analysed in place (CLI path, example) is not copied and plays from where it is
    local = file_source(audio_file(tmp_path / "local.wav", seed=5), kind="file")
    aid2, same = save_with_media(store, local)
    assert same.path == local.path and store.get_analysis(aid2).source.path == local.path
    local.path.unlink()
    assert store.get_analysis(aid2).source.path == Path("")


def save_with_media(store: Store, source: SourceInfo) -> tuple[str, SourceInfo]:
    from sonotag_core.service import analysis

    class Info:  # the two model facts save_analysis reads
        checkpoint_sha256, name = SHA, "openflam-v1-base"

    model = type("M", (), {"info": Info})()
    return analysis.save_analysis(
        store,
        source,
        random_embeddings(2),
        LabelSet(("a",)),
        model,
        hop_s=10.0,
        fast=False,
        settings={"threshold": 0.5},
        seconds=1.0,
    )


def test_lru_eviction_keeps_analyses_that_still_open_and_relabel(tmp_path, text_cache):
    data = tmp_path / "data"
    store = Store(data, media_cap_bytes=10_000)  # room for two 4000-byte files
    srcs = [file_source(audio_file(data / "uploads" / f"{i}.wav", seed=i)) for i in range(4)]
    ids = []
    for src in srcs[:2]:
        ids.append(save(store, store.keep_media(src)))
    assert store.media_path(srcs[0].content_id) is not None  # played: now the most recent
    ids.append(save(store, store.keep_media(srcs[2])))  # over the cap: evicts srcs[1]
    assert store.media_path(srcs[1].content_id) is None
    assert store.media_path(srcs[0].content_id) and store.media_path(srcs[2].content_id)
    assert store.media_usage() == MediaUsage(2, 8000, 10_000)
    assert len(list((data / "media").iterdir())) == 2
    db = sqlite3.connect(store.path)
    evicted = db.execute(
        "SELECT media_path FROM sources WHERE content_id = ?", (srcs[1].content_id,)
    ).fetchone()
    assert evicted == (None,)
    # the evicted audio's analysis remains: it opens without playback and relabels
    opened = store.get_analysis(ids[1])
    assert opened.source.path == Path("") and opened.embeddings.n_windows == 2
    timeline = score(text_cache, opened.embeddings, LabelSet(("siren", "rain")))
    assert timeline.probabilities.shape == (2, opened.embeddings.n_samples // 15_000 + 1)
    assert np.isfinite(timeline.probabilities).all()
    # the file just kept is never evicted, even when it alone is over the cap
    tiny = Store(data, media_cap_bytes=1000)
    big = tiny.keep_media(srcs[3])
    assert big.path.is_file() and tiny.media_usage().files == 1
    assert all(tiny.media_path(s.content_id) is None for s in srcs[:3])


def test_deleting_the_last_analysis_deletes_its_kept_audio(tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    kept = store.keep_media(file_source(audio_file(data / "uploads" / "x.wav")))
    first, second = save(store, kept), save(store, kept, labels=("b",))
    assert store.delete_analysis(first) and kept.path.is_file()  # still used by `second`
    assert store.delete_analysis(second) and not kept.path.exists()
    assert store.media_usage().files == 0


def test_a_missing_kept_file_is_forgotten(tmp_path):
    store = Store(tmp_path)
    kept = store.keep_media(file_source(audio_file(tmp_path / "uploads" / "x.wav")))
    kept.path.unlink()
    assert store.media_path(kept.content_id) is None
    assert store.media_usage().files == 0


def test_full_disk_while_keeping_audio_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno
    import shutil

    def full(src, dst):
        Path(dst).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    store = Store(tmp_path / "data")
    src = file_source(audio_file(tmp_path / "outside.wav"), kind="file")
    with pytest.raises(StoreError, match="full"):
        store.keep_media(src)
    assert list((tmp_path / "data" / "media").iterdir()) == []
    assert store.media_usage().files == 0 and src.path.is_file()


def test_a_link_finds_its_stored_source_in_any_spelling(tmp_path):
    data = tmp_path / "data"
    store = Store(data, media_cap_bytes=5000)
    url = "https://www.youtube.com/watch?v=abcdefghijk"
    old = file_source(audio_file(data / "dl" / "old.webm", seed=1), kind="url", url=url)
    save(store, store.keep_media(old))
    new = file_source(audio_file(data / "dl" / "new.webm", seed=2), kind="url", url=url)
    kept = store.keep_media(new)  # evicts the old download (cap: one file)
    save(store, kept)
    for spelling in (url, "https://youtu.be/abcdefghijk?t=30", "youtube.com/shorts/abcdefghijk"):
        found = find_link_source(store, spelling)
        assert found is not None and found.content_id == new.content_id, spelling
        assert found.path == kept.path and found.kind == "url" and found.url == url
    assert find_link_source(store, "https://youtu.be/zzzzzzzzzzz") is None
    assert find_link_source(store, "not a link") is None
    kept.path.unlink()  # the kept audio is gone: the source is still found, without a path
    assert find_link_source(store, url).path == Path("")


def test_latest_analysis_id(tmp_path):
    store = Store(tmp_path)
    src = fake_source()
    assert store.latest_analysis_id(src.content_id, 10.0, SHA) is None
    save(store, src)
    newest = save(store, src, labels=("b",))
    assert store.latest_analysis_id(src.content_id, 10.0, SHA) == newest
    assert store.latest_analysis_id(src.content_id, 5.0, SHA) is None
    assert store.latest_analysis_id(src.content_id, 10.0, "cd" * 32) is None


def test_iter_embeddings_streams_one_row_at_a_time(tmp_path):
    store = Store(tmp_path)
    n_rows, windows = 8, 40  # 1.3 MB of float16 per row
    for i in range(n_rows):
        src = fake_source(f"{i:064x}")
        store.add_analysis(
            src,
            random_embeddings(windows, i),
            LabelSet(("old",)),
            hop_s=10.0,
            checkpoint_sha256=SHA,
            model_name="m",
        )
        store.add_analysis(
            src,
            random_embeddings(windows, i),
            LabelSet((f"new {i}",)),
            hop_s=10.0,
            checkpoint_sha256=SHA,
            model_name="m",
        )
    other = fake_source("9" * 64)
    store.add_analysis(
        other,
        random_embeddings(3),
        LabelSet(("x",)),
        hop_s=10.0,
        checkpoint_sha256="cd" * 32,
        model_name="m",
    )
    row_bytes = windows * 32 * 512 * 2
    tracemalloc.start()
    try:
        seen = []
        for row in store.iter_embeddings(SHA):
            assert row.embeddings.features.dtype == np.float16
            assert row.embeddings.features.shape == (windows, 32, 512)
            seen.append((row.content_id, row.labels.labels, row.hop_s))
            assert row.analysis_id == store.latest_analysis_id(row.content_id, 10.0, SHA)
            del row
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == [(f"{i:064x}", (f"new {i}",), 10.0) for i in range(n_rows)]
    assert peak < 3 * row_bytes, f"peak {peak / 1e6:.1f} MB: rows are not streamed"
    np.testing.assert_allclose(
        next(store.iter_embeddings(SHA)).embeddings.features,
        random_embeddings(windows, 0).features,
        atol=5e-4,
    )
    assert list(store.iter_embeddings("00" * 32)) == []


def insert_old_embeddings(db: sqlite3.Connection, emb) -> None:
    """One embeddings row (id 1, content "c"*64, hop 10 s) as schemas 1-3 wrote it."""
    db.execute(
        "INSERT INTO embeddings VALUES (1,?,10.0,?,?,2,?,?,1.0)",
        (
            "c" * 64,
            SHA,
            emb.n_samples,
            emb.starts.tobytes(),
            emb.features.astype(np.float16).tobytes(),
        ),
    )


def test_migrates_a_schema_1_database(tmp_path):
    db = sqlite3.connect(tmp_path / "sonotag.db")
    db.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    emb = random_embeddings(2)
    db.execute(
        "INSERT INTO sources VALUES (?,?,?,?,?,?,?,?,?)",
        ("c" * 64, "upload", "Old clip", None, "x.wav", 20.0, None, "/gone/x.wav", 1.0),
    )
    insert_old_embeddings(db, emb)
    db.execute(
        "INSERT INTO analyses VALUES ('0123456789abcdef',1,'[\"siren\"]','[]','{}','m',1.5,2.0)"
    )
    db.commit()
    db.close()
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.get_reviews("0123456789abcdef") == []  # migration 4 ran after 2 and 3
    old = store.get_analysis("0123456789abcdef")
    assert old.labels == LabelSet(("siren",)) and old.source.title == "Old clip"
    assert old.owner == OPERATOR  # rows from before owners belong to the operator
    assert [r.owner for r in store.list_analyses()] == [OPERATOR]
    assert list(store.iter_embeddings(SHA, visible_to="visitor:x")) == []  # an upload
    assert old.source.path == Path("")  # its file is gone: no playback, results still there
    np.testing.assert_allclose(old.embeddings.features, emb.features, atol=5e-4)
    assert store.media_usage() == MediaUsage(0, 0, None)
    assert [r.analysis_id for r in store.iter_embeddings(SHA)] == ["0123456789abcdef"]
    kept = store.keep_media(file_source(audio_file(tmp_path / "uploads" / "y.wav")))
    assert store.media_path(kept.content_id) == kept.path


def test_embed_source_reuses_the_store_before_encoding(tmp_path, model, settings, monkeypatch):
    from sonotag_core.inference.embedding_cache import EmbeddingCache
    from sonotag_core.service import analysis

    store = Store(tmp_path)
    src = fake_source()
    emb = random_embeddings(2)
    store.add_analysis(
        src,
        emb,
        LabelSet(("a",)),
        hop_s=10.0,
        checkpoint_sha256=model.info.checkpoint_sha256,
        model_name="m",
    )

    def no_encoding(*args, **kwargs):
        raise AssertionError("the audio encoder ran")

    monkeypatch.setattr(analysis, "embed_file", no_encoding)
    cache = EmbeddingCache()
    got = analysis.embed_source(model, src, hop_s=10.0, settings=settings, cache=cache, store=store)
    np.testing.assert_allclose(got.features, emb.features, atol=5e-4)
    assert got.features.dtype == np.float32 and len(cache) == 1  # and now in memory too
    with pytest.raises(AssertionError, match="encoder ran"):  # another hop is not stored
        analysis.embed_source(model, src, hop_s=5.0, settings=settings, store=store)


# ---------------------------------------------------------------- reviews


def test_migrates_a_schema_3_database_and_adds_reviews(tmp_path):
    """A database left by the version before reviews (schema 3, owners) keeps its rows and
    gains the reviews table."""
    from sonotag_core.domain.review import Review

    db = sqlite3.connect(tmp_path / "sonotag.db")
    db.executescript(";".join(MIGRATIONS[:3]) + "; PRAGMA user_version = 3;")
    emb = random_embeddings(2)
    db.execute(
        "INSERT INTO sources VALUES (?,?,?,?,?,?,?,?,?)",
        (
            "c" * 64,
            "url",
            "Old video",
            "https://youtu.be/abcdefghijk",
            "v.m4a",
            20.0,
            None,
            None,
            1.0,
        ),
    )
    insert_old_embeddings(db, emb)
    db.execute(
        "INSERT INTO analyses VALUES (?,1,'[\"siren\"]','[]','{\"threshold\": 0.3}',"
        "'m',1.5,2.0,'visitor:abc')",
        ("a" * 32,),
    )
    db.commit()
    db.close()
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    old = store.get_analysis("a" * 32)
    assert old.owner == "visitor:abc" and old.settings == {"threshold": 0.3}
    assert old.labels == LabelSet(("siren",)) and old.source.title == "Old video"
    assert store.get_reviews("a" * 32) == []
    review = Review.of_event("siren", 2.5, 3.75, "accepted")
    assert store.set_review("a" * 32, review, reviewer="visitor:abc")
    assert store.get_reviews("a" * 32) == [review]
    tables = {
        r[0]
        for r in sqlite3.connect(store.path).execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert tables == {
        "sources", "embeddings", "analyses", "media", "reviews", "calibrations",
        "attachments", "attached_items", "spans", "detectors",
    }  # fmt: skip


def test_reviews_replace_clear_and_go_with_their_analysis(tmp_path):
    from sonotag_core.domain.review import Review

    store = Store(tmp_path)
    aid = save(store, fake_source(), labels=("siren", "dog"))
    other = save(store, fake_source("d" * 64), labels=("siren",))
    first = Review.of_event("siren", 2.5, 3.75, "accepted")
    dog = Review.of_event("dog", 0.3125, 1.0, "rejected")
    assert store.set_review(aid, first, reviewer="visitor:a")
    assert store.set_review(aid, dog, reviewer="visitor:a")
    assert store.set_review(other, first, reviewer=OPERATOR)
    assert store.get_reviews(aid) == [dog, first]  # in time order
    # a second verdict on the same event (label + onset frame) replaces the first
    second = Review.of_event("siren", 2.5 + 1e-6, 4.0, "accepted", relabel="police siren")
    assert second.key == first.key
    assert store.set_review(aid, second, reviewer="visitor:b")
    assert store.get_reviews(aid) == [dog, second]
    db = sqlite3.connect(store.path)
    assert db.execute(
        "SELECT reviewer FROM reviews WHERE analysis_id = ? AND label = 'siren'", (aid,)
    ).fetchone() == ("visitor:b",)
    # another session (its own connection) sees the same verdicts
    assert Store(tmp_path).get_reviews(aid) == [dog, second]
    assert store.clear_review(aid, "dog", dog.onset_frame)
    assert not store.clear_review(aid, "dog", dog.onset_frame)
    assert store.get_reviews(aid) == [second]
    assert not store.set_review("0" * 32, first, reviewer=OPERATOR)  # no such analysis
    assert store.get_reviews("0" * 32) == []
    # deleting an analysis deletes its verdicts, and only its own
    assert store.delete_analysis(aid)
    assert store.get_reviews(aid) == []
    assert db.execute("SELECT COUNT(*) FROM reviews WHERE analysis_id = ?", (aid,)).fetchone() == (
        0,
    )
    assert store.get_reviews(other) == [first]


def test_a_review_on_a_full_disk_is_a_store_error_and_keeps_the_store(tmp_path):
    from sonotag_core.domain.review import Review

    store = Store(tmp_path)
    aid = save(store, fake_source(), labels=("siren",))
    kept = Review.of_event("siren", 0.0, 1.0, "rejected")
    assert store.set_review(aid, kept, reviewer=OPERATOR)
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count = {pages}")  # simulate a full disk
    with pytest.raises(StoreError, match="full"):
        for frame in range(1, 200):  # long corrected labels: new pages are needed soon
            review = Review.of_event(
                "siren",
                frame * 0.3125,
                frame * 0.3125 + 1,
                "accepted",
                relabel=f"{frame} " + "x" * 190,
            )
            store.set_review(aid, review, reviewer=OPERATOR)
    assert not store._conn().in_transaction
    store._conn().execute(f"PRAGMA max_page_count = {pages + 1000}")
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    got = store.get_reviews(aid)
    assert got[0] == kept and all(r.status == "accepted" for r in got[1:])
    assert store.get_analysis(aid) is not None


def test_the_players_picture_goes_with_the_last_analysis_of_its_audio(tmp_path):
    """The waveform/spectrogram cache (overviews/<content id>.npz) is deleted with the
    kept audio it was drawn from, so deleting analyses does not leave it growing."""
    from sonotag_core.media.overview import overview_dir

    data = tmp_path / "data"
    store = Store(data)
    source = store.keep_media(file_source(audio_file(data / "uploads" / "a.wav", seed=3)))
    first, second = save(store, source, 0, ("a",)), save(store, source, 1, ("b",))
    picture = overview_dir(data) / f"{source.content_id}.npz"
    picture.parent.mkdir(parents=True)
    picture.write_bytes(b"cached")
    assert store.delete_analysis(first) and picture.exists()  # the audio is still in use
    assert store.delete_analysis(second) and not picture.exists()

"""The result store: round trips, one encoding per audio+model, float16 error, atomic
writes under SIGKILL, migrations and a full disk."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.analysis import embed_file, score
from sonotag_core.embeddings import AudioEmbeddings
from sonotag_core.labels import LabelSet
from sonotag_core.sources import SourceInfo, from_path
from sonotag_core.store import MIGRATIONS, Store, StoreError

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
    aid = store.save_analysis(fake_source(), emb, labels, hop_s=10.0, checkpoint_sha256=SHA,
                              model_name="openflam-v1-base", settings={"threshold": 0.4}, seconds=2.5)  # fmt: skip
    got = store.get_analysis(aid)
    assert got is not None and got.labels == labels and got.settings == {"threshold": 0.4}
    assert got.source.title == "A clip" and got.source.duration_s == 25.0 and got.hop_s == 10.0
    np.testing.assert_array_equal(got.embeddings.starts, emb.starts)
    assert got.embeddings.n_samples == emb.n_samples and got.embeddings.hop == 480_000
    np.testing.assert_allclose(got.embeddings.features, emb.features, atol=5e-4)  # float16
    [row] = store.list_analyses()
    assert (row.id, row.title, row.labels) == (aid, "A clip", ("siren", "music"))
    assert store.get_analysis("0" * 16) is None


def test_same_audio_and_model_is_stored_once(tmp_path):
    store = Store(tmp_path)
    emb = random_embeddings()
    ids = [
        store.save_analysis(
            fake_source(), emb, LabelSet((x,)), hop_s=10.0, checkpoint_sha256=SHA, model_name="m"
        )  # fmt: skip
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
    aid = store.save_analysis(from_path(clip), emb, labels, hop_s=10.0,
                              checkpoint_sha256=model.info.checkpoint_sha256, model_name="m")  # fmt: skip
    restored = store.get_analysis(aid).embeddings
    diff = np.abs(score(text_cache, emb, labels).probabilities
                  - score(text_cache, restored, labels).probabilities).max()  # fmt: skip
    print(f"float16 storage: max |probability difference| = {diff:.2e}")
    assert diff < 1e-3


CHILD = r"""
import json, sys, time
import numpy as np
from pathlib import Path
from sonotag_core import store as st
from sonotag_core.embeddings import AudioEmbeddings
from sonotag_core.labels import LabelSet
from sonotag_core.sources import SourceInfo
real_dumps = json.dumps
def slow_dumps(*a, **kw):   # called while writing the analysis row, after the embeddings
    print("mid-write", flush=True)
    time.sleep(60)
    return real_dumps(*a, **kw)
st.json.dumps = slow_dumps
s = st.Store(sys.argv[1])
f = np.ones((2, 32, 512), np.float32) / np.sqrt(512)
emb = AudioEmbeddings(np.array([0, 480000]), f, 960000, 480000)
src = SourceInfo("upload", Path("/x.wav"), "t", "d" * 64, "x.wav", 20.0)
s.save_analysis(src, emb, LabelSet(("a",)), hop_s=10.0, checkpoint_sha256="ab" * 32, model_name="m")
"""


def test_killed_mid_write_leaves_nothing_visible(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    assert proc.stdout.readline().strip() == "mid-write"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(tmp_path)
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for table in ("sources", "embeddings", "analyses"):
        assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    assert store.list_analyses() == []
    aid = store.save_analysis(fake_source(), random_embeddings(), LabelSet(("a",)), hop_s=10.0,
                              checkpoint_sha256=SHA, model_name="m")  # fmt: skip
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
    first = store.save_analysis(fake_source("e" * 64), random_embeddings(1), LabelSet(("a",)),
                                hop_s=10.0, checkpoint_sha256=SHA, model_name="m")  # fmt: skip
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count = {pages + 5}")  # simulate a full disk
    with pytest.raises(StoreError, match="full"):
        store.save_analysis(fake_source(), random_embeddings(40), LabelSet(("b",)), hop_s=10.0,
                            checkpoint_sha256=SHA, model_name="m")  # fmt: skip
    assert [a.id for a in store.list_analyses()] == [first]
    assert store.get_analysis(first) is not None

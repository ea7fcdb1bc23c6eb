"""A `sonotag batch` output attached to the Library: its items list, open, relabel and
search like stored analyses, with their embeddings read from the output's Parquet files
(none copied into SQLite); compacting keeps them readable, a moved output says what to
do, and detaching loses nothing the Library still needs."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.access import AccessError, Viewer
from sonotag_core.archive import BatchError
from sonotag_core.archive.parts import compact, read_embeddings, read_items, read_table
from sonotag_core.domain.labels import LabelSet
from sonotag_core.service.api import Service
from sonotag_core.service.attach import attach_output, detach_output
from sonotag_core.service.library import open_analysis
from sonotag_core.service.search import search_library
from sonotag_core.store.database import Store

LABELS = ("--labels", "a tone; hum")


def _params(settings):
    from sonotag_core.domain.events import EventParams

    return EventParams.from_settings(settings)


@pytest.fixture
def batch_out(cli_here, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(3):
        make_audio(folder / f"clip{i}.wav", 6.0 + 2 * i, kind="mix", freq=300 + 150 * i)
    out = tmp_path / "out"
    assert cli_here("batch", str(folder), "-o", str(out), *LABELS) == 0
    return out


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "library")


def _attached_ids(store: Store) -> list[str]:
    db = sqlite3.connect(store.path)
    try:
        return [r[0] for r in db.execute("SELECT analysis_id FROM attached_items")]
    finally:
        db.close()


def test_attached_items_list_and_open_without_copying_embeddings(batch_out, store, model, settings):
    done = attach_output(store, batch_out)
    assert (done.added, done.listed) == (3, 3)
    rows = store.list_analyses()
    assert sorted(r.title for r in rows) == ["clip0", "clip1", "clip2"]
    assert {r.labels for r in rows} == {("a tone", "hum")}
    assert [d for d in rows if d.duration_s is None] == []
    db = sqlite3.connect(store.path)
    (blob_bytes,) = db.execute("SELECT SUM(LENGTH(features)) FROM embeddings").fetchone()
    db.close()
    assert blob_bytes == 0  # the embeddings stayed in the Parquet parts

    items = {i.title: i for i in read_items(batch_out)}
    frames = read_table(batch_out, "frames")
    service = Service(model, settings, store)
    for row in rows:
        opened = open_analysis(store, model, row.id)
        key = items[row.title].key
        want = read_embeddings(batch_out, key)
        assert np.array_equal(opened.embeddings.features, want.features.astype(np.float32))
        assert np.array_equal(opened.embeddings.starts, want.starts)
        # the original file plays, from a copy kept with the other kept audio (the player
        # serves only those folders); only the audio is copied
        assert opened.source.path.parent == store.media_dir
        assert opened.source.path.read_bytes() == Path(items[row.title].source).read_bytes()
        # the probabilities the batch wrote, from the attached embeddings (float16 as the
        # Library keeps every embedding: within its measured 1e-3)
        report = service.report(opened, opened.labels, _params(settings), reviews=False)
        mine = frames[frames.key == key]
        for j, label in enumerate(report.timeline.labels):
            batch = mine[mine.label == label].sort_values("frame").probability.to_numpy()
            assert np.abs(report.timeline.probabilities[j] - batch).max() < 1e-3

    assert attach_output(store, batch_out).added == 0  # attaching again adds nothing


def test_attached_items_relabel_and_search(batch_out, store, model, settings, text_cache):
    attach_output(store, batch_out)
    service = Service(model, settings, store)
    row = store.list_analyses()[0]
    opened = open_analysis(store, model, row.id)
    relabeled = service.report(
        opened, LabelSet(("dog barking", "a tone")), _params(settings), reviews=False
    )
    assert relabeled.timeline.labels == ("dog barking", "a tone")
    assert relabeled.timeline.probabilities.shape[1] > 0

    hits = search_library(
        store, text_cache, "a tone", checkpoint_sha256=model.info.checkpoint_sha256, top_k=3
    )
    assert hits and {h.analysis_id for h in hits} <= set(_attached_ids(store))


def test_a_compacted_output_still_opens_and_a_moved_one_says_what_to_do(
    batch_out, store, model, text_cache, tmp_path
):
    attach_output(store, batch_out)
    ids = [r.id for r in store.list_analyses()]
    before = open_analysis(store, model, ids[0]).embeddings.features
    compact(batch_out)
    assert not list((batch_out / "parts").glob("*.parquet"))
    assert np.array_equal(open_analysis(store, model, ids[0]).embeddings.features, before)

    batch_out.rename(tmp_path / "moved")
    with pytest.raises(BatchError, match="Attach it again"):
        open_analysis(store, model, ids[0])
    # a search over a library with a missing output still answers (nothing from it)
    sha = model.info.checkpoint_sha256
    assert search_library(store, text_cache, "a tone", checkpoint_sha256=sha) == []


def test_detach_removes_the_analyses_and_keeps_what_the_library_still_uses(
    batch_out, store, model, settings
):
    attach_output(store, batch_out)
    service = Service(model, settings, store)
    row = store.list_analyses()[0]
    opened = open_analysis(store, model, row.id)
    # analysed again with other labels and kept: a Library analysis on attached embeddings
    kept = store.add_analysis(
        opened.source,
        opened.embeddings,
        LabelSet(("applause",)),
        hop_s=opened.hop_s,
        checkpoint_sha256=model.info.checkpoint_sha256,
        model_name=model.info.name,
    )
    other = next(r for r in store.list_analyses() if r.title not in (row.title, "applause"))
    played = open_analysis(store, model, other.id).source.path  # a copy kept to play it
    assert played.is_file()
    parts = sorted(p.name for p in (batch_out / "parts").iterdir())
    assert detach_output(store, batch_out) == 3
    assert not played.is_file() and store.media_usage().files == 1  # only the kept one's
    assert [r.id for r in store.list_analyses()] == [kept]
    assert store.attachments() == []
    shutil.rmtree(batch_out)  # the kept analysis no longer needs the output
    again = open_analysis(store, model, kept)
    assert np.array_equal(again.embeddings.features, opened.embeddings.features)
    assert again.source.path.is_file()  # and it still plays
    assert service.report(
        again, again.labels, _params(settings), reviews=False
    ).timeline.labels == ("applause",)
    assert parts  # (the output's files were never touched until we removed them)


def test_attach_refuses_what_is_not_a_batch_output_and_visitors(tmp_path, store, batch_out):
    with pytest.raises(BatchError, match="not a folder"):
        attach_output(store, tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(BatchError, match="not a SonoTag batch output"):
        attach_output(store, tmp_path / "plain")
    with pytest.raises(AccessError, match="Only the operator"):
        attach_output(store, batch_out, Viewer("visitor-1"))
    assert store.list_analyses() == []


def test_cli_attach_list_detach(cli_here, batch_out, capsys):
    assert cli_here("library", "attach", str(batch_out)) == 0
    assert "3 new, 3 analyses listed" in capsys.readouterr().err
    assert cli_here("library", "attached") == 0
    assert f"{batch_out.resolve()}\t3\t" in capsys.readouterr().out
    assert cli_here("library", "list") == 0
    listed = capsys.readouterr().out
    assert all(f"clip{i}" in listed for i in range(3))
    assert cli_here("library", "detach", str(batch_out)) == 0
    assert "3 analyses removed" in capsys.readouterr().err

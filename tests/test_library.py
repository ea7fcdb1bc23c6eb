"""The store around one run (sonotag_core.library): reuse, open, keep, and never lose a
result to a store that cannot be written. Real model code path, generated checkpoint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core import library
from sonotag_core.errors import ModelError, SourceError
from sonotag_core.labels import LabelSet
from sonotag_core.sources import from_path
from sonotag_core.store import Store

LABELS = LabelSet(("beeping", "music"), frozenset({"music"}))


def url_source(tmp_path, name="clip.m4a", seconds=12.0):
    """A downloaded link's audio: kind url, canonical link, file in the data dir."""
    folder = tmp_path / "data" / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    path = make_audio(folder / name, seconds, kind="mix")
    return dataclasses.replace(from_path(path), kind="url", url="https://youtu.be/abcdefghijk")


def test_run_saves_new_audio_once_and_reuses_it(tmp_path, model, settings, encoder_calls):
    store = Store(tmp_path / "data")
    src = url_source(tmp_path)
    first = library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store)
    assert first.analysis_id and first.warning is None and sum(encoder_calls) == 2
    assert first.source.path.is_file() and first.source.path.parent.name == "media"
    # a shared link opened again: nothing encoder_calls, no copy in the Library
    again = library.run(model, first.source, LABELS, hop_s=10.0, settings=settings, store=store,
                        save=False)  # fmt: skip
    assert again.analysis_id == first.analysis_id and sum(encoder_calls) == 2
    assert len(store.list_analyses()) == 1
    # the user pressed Analyze with new labels: a new record, still no encoding
    other = library.run(model, first.source, LabelSet(("siren",)), hop_s=10.0,
                        settings=settings, store=store, save=True)  # fmt: skip
    assert other.analysis_id != first.analysis_id and sum(encoder_calls) == 2
    assert len(store.list_analyses()) == 2
    # a new process (empty in-memory cache) reuses the stored float16 embeddings
    fresh = Store(tmp_path / "data")
    np.testing.assert_allclose(
        library.run(model, first.source, LABELS, hop_s=10.0, settings=settings, store=fresh,
                    save=False).embeddings.features,
        first.embeddings.features, atol=2e-3,
    )  # fmt: skip
    assert sum(encoder_calls) == 2


def test_stored_link_needs_no_download(tmp_path, model, settings):
    store = Store(tmp_path / "data")
    sha = model.info.checkpoint_sha256
    assert library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=10.0,
                               checkpoint_sha256=sha) is None  # fmt: skip
    done = library.run(model, url_source(tmp_path), LABELS, hop_s=10.0, settings=settings,
                       store=store)  # fmt: skip
    found = library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=10.0,
                                checkpoint_sha256=sha)  # fmt: skip
    assert found is not None and found.content_id == done.source.content_id
    assert found.path == done.source.path
    # another hop was never encoder_calls: the link must be fetched and encoder_calls for it
    assert library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=5.0,
                               checkpoint_sha256=sha) is None  # fmt: skip
    done.source.path.unlink()  # audio evicted: a stored link without audio is no shortcut
    assert library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=10.0,
                               checkpoint_sha256=sha) is None  # fmt: skip


def test_open_analysis_checks_id_model_and_audio(tmp_path, model, settings):
    store = Store(tmp_path / "data")
    done = library.run(model, url_source(tmp_path), LABELS, hop_s=10.0, settings=settings,
                       store=store)  # fmt: skip
    opened = library.open_analysis(store, model, done.analysis_id)
    assert opened.labels == LABELS and opened.hop_s == 10.0 and opened.warning is None
    assert opened.embeddings.n_windows == done.embeddings.n_windows
    with pytest.raises(SourceError, match="no analysis"):
        library.open_analysis(store, model, "0123456789abcdef")
    foreign = store.save_analysis(done.source, done.embeddings, LABELS, hop_s=10.0,
                                  checkpoint_sha256="ab" * 32, model_name="m")  # fmt: skip
    with pytest.raises(ModelError, match="another OpenFLAM checkpoint"):
        library.open_analysis(store, model, foreign)
    opened.source.path.unlink()
    gone = library.open_analysis(store, model, done.analysis_id)
    assert "no longer kept" in gone.warning and gone.embeddings.n_windows == 2


def test_a_full_disk_keeps_the_result(tmp_path, model, settings):
    store = Store(tmp_path / "data")
    pages = store._conn().execute("PRAGMA page_count").fetchone()[0]
    store._conn().execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk is full
    src = from_path(make_audio(tmp_path / "a.wav", 25.0, kind="mix"))
    done = library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store)
    assert done.embeddings.n_windows == 3 and done.analysis_id is None
    assert "full" in done.warning and "not saved" in done.warning
    assert store.list_analyses() == []
    assert library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=None).labels


def test_usage_text():
    from sonotag_core.store import MediaUsage

    assert library.usage_text(MediaUsage(1, 3 * 1024 * 1024, 4096 * 1024 * 1024)) == (
        "1 file, 3.0 MB of 4,096 MB"
    )
    assert library.usage_text(MediaUsage(0, 0, None)) == "0 files, 0.0 MB (no limit)"


def test_an_unreadable_store_costs_an_encoding_not_the_result(tmp_path, model, settings,
                                                              encoder_calls, monkeypatch):  # fmt: skip
    from sonotag_core.store import StoreError

    store = Store(tmp_path / "data")
    src = from_path(make_audio(tmp_path / "a.wav", 12.0, kind="mix"))
    library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store)

    def broken(*_a, **_k):
        raise StoreError("The result store could not read (database disk image is malformed).")

    monkeypatch.setattr(store, "get_embeddings", broken)
    monkeypatch.setattr(store, "latest_analysis_id", broken)
    done = library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store)
    assert (
        done.embeddings.n_windows == 2 and sum(encoder_calls) == 4
    )  # encoder_calls again, no crash

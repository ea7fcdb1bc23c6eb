"""The store around one run (sonotag_core.service.library): reuse, open, keep, and never lose a
result to a store that cannot be written. Real model code path, generated checkpoint."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import ModelError, NotFoundError
from sonotag_core.media.sources import from_path
from sonotag_core.service import library
from sonotag_core.store.database import Store

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
    again = library.run(
        model, first.source, LABELS, hop_s=10.0, settings=settings, store=store, save=False
    )
    assert again.analysis_id == first.analysis_id and sum(encoder_calls) == 2
    assert len(store.list_analyses()) == 1
    # the user pressed Analyze with new labels: a new record, still no encoding
    other = library.run(
        model,
        first.source,
        LabelSet(("siren",)),
        hop_s=10.0,
        settings=settings,
        store=store,
        save=True,
    )
    assert other.analysis_id != first.analysis_id and sum(encoder_calls) == 2
    assert len(store.list_analyses()) == 2
    # a new process (empty in-memory cache) reuses the stored float16 embeddings
    fresh = Store(tmp_path / "data")
    np.testing.assert_allclose(
        library.run(
            model, first.source, LABELS, hop_s=10.0, settings=settings, store=fresh, save=False
        ).embeddings.features,
        first.embeddings.features,
        atol=2e-3,
    )
    assert sum(encoder_calls) == 2


def test_stored_link_needs_no_download(tmp_path, model, settings):
    store = Store(tmp_path / "data")
    sha = model.info.checkpoint_sha256
    assert library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=10.0, key=sha) is None
    done = library.run(
        model, url_source(tmp_path), LABELS, hop_s=10.0, settings=settings, store=store
    )
    found = library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=10.0, key=sha)
    assert found is not None and found.content_id == done.source.content_id
    assert found.path == done.source.path
    # another hop was never encoder_calls: the link must be fetched and encoder_calls for it
    assert library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=5.0, key=sha) is None
    done.source.path.unlink()  # audio evicted: a stored link without audio is no shortcut
    assert library.stored_link(store, "https://youtu.be/abcdefghijk", hop_s=10.0, key=sha) is None


def test_open_analysis_checks_id_model_and_audio(tmp_path, model, settings):
    store = Store(tmp_path / "data")
    done = library.run(
        model, url_source(tmp_path), LABELS, hop_s=10.0, settings=settings, store=store
    )
    opened = library.open_analysis(store, model, done.analysis_id)
    assert opened.labels == LABELS and opened.hop_s == 10.0 and opened.warning is None
    assert opened.embeddings.n_windows == done.embeddings.n_windows
    with pytest.raises(NotFoundError, match="no analysis"):
        library.open_analysis(store, model, "0123456789abcdef")
    foreign = store.add_analysis(
        done.source,
        done.embeddings,
        LABELS,
        hop_s=10.0,
        checkpoint_sha256="ab" * 32,
        model_name="m",
    )
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
    from sonotag_core.store.database import MediaUsage

    assert library.usage_text(MediaUsage(1, 3 * 1024 * 1024, 4096 * 1024 * 1024)) == (
        "1 file, 3.0 MB of 4,096 MB"
    )
    assert library.usage_text(MediaUsage(0, 0, None)) == "0 files, 0.0 MB (no limit)"


def test_an_unreadable_store_costs_an_encoding_not_the_result(
    tmp_path, model, settings, encoder_calls, monkeypatch
):
    from sonotag_core.store.database import StoreError

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


# ---------------------------------------------------------------- the Library table (issue 9 A3)


def summary(
    i: str, title: str, *, created: float, duration_s=None, url=None, labels=("x",), negatives=()
):
    from sonotag_core.store.database import AnalysisSummary

    return AnalysisSummary(
        i,
        title,
        "url" if url else "upload",
        url,
        duration_s,
        tuple(labels),
        "m",
        created,
        frozenset(negatives),
    )


ROWS = [
    summary(
        "a",
        "Siren passing a street",
        created=100,
        duration_s=24.0,
        url="https://youtu.be/abcdefghijk",
        labels=("siren", "car horn"),
    ),
    summary(
        "b",
        "alarm clock (quiet room)",
        created=300,
        duration_s=20.0,
        labels=("alarm", "music"),
        negatives=("music",),
    ),
    summary("c", "Birds.at.dawn", created=200, duration_s=None, labels=("bird chirping",)),
    summary("d", "alarm clock (quiet room)", created=400, duration_s=95.0, labels=("beep",)),
]


def ids(rows) -> list[str]:
    return [r.id for r in rows]


def test_library_sorts_newest_first_by_default_and_by_each_column():
    assert ids(library.sort_analyses(ROWS)) == ["d", "b", "c", "a"]
    assert library.DEFAULT_SORT == "Newest first"
    assert ids(library.sort_analyses(ROWS, "Oldest first")) == ["a", "c", "b", "d"]
    # equal titles (any case) keep newest first
    assert ids(library.sort_analyses(ROWS, "Title (A–Z)")) == ["d", "b", "c", "a"]
    assert ids(library.sort_analyses(ROWS, "Longest first")) == ["d", "a", "b", "c"]
    assert ids(library.sort_analyses(ROWS, "Shortest first")) == ["c", "b", "a", "d"]
    assert ids(library.sort_analyses(ROWS, "Labels (A–Z)")) == ["b", "d", "c", "a"]
    assert set(library.SORTS) >= {"Newest first", "Title (A–Z)", "Longest first", "Labels (A–Z)"}
    with pytest.raises(ValueError, match="Newest first"):
        library.sort_analyses(ROWS, "by mood")
    assert ids(ROWS) == ["a", "b", "c", "d"]  # the input is not reordered


def test_library_filter_matches_title_link_and_labels_as_plain_text():
    f = library.filter_analyses
    assert ids(f(ROWS, "")) == ids(f(ROWS, "   ")) == ["a", "b", "c", "d"]
    assert ids(f(ROWS, "SIREN")) == ["a"]  # title and label, any case
    assert ids(f(ROWS, "youtu.be/abcdefghijk")) == ["a"]  # the link
    assert ids(f(ROWS, "-music")) == ["b"]  # labels as the label box writes them
    assert ids(f(ROWS, "alarm  quiet")) == ["b", "d"]  # every word, anywhere, in any order
    assert ids(f(ROWS, "alarm beep")) == ["d"]
    # words are never patterns: "." is a dot, "(" is a bracket, ".*" matches nothing
    assert ids(f(ROWS, "s.at.d")) == ["c"] and ids(f(ROWS, "Birds.at")) == ["c"]
    assert ids(f(ROWS, "(quiet")) == ["b", "d"]
    assert f(ROWS, ".*") == [] and f(ROWS, "[a-z]") == [] and f(ROWS, "b|c") == []
    # sorted then filtered: the shown order, which selected row numbers refer to
    shown = f(library.sort_analyses(ROWS, "Oldest first"), "alarm")
    assert ids(shown) == ["b", "d"]


def test_delete_many_deletes_exactly_those_it_may_and_says_which_it_refused(
    tmp_path, model, settings, monkeypatch
):
    from sonotag_core.access import Viewer
    from sonotag_core.store.database import StoreError

    store = Store(tmp_path / "data")
    src = from_path(make_audio(tmp_path / "take.wav", 12.0, kind="mix"))
    alice, bob = Viewer("owner:alice"), Viewer("owner:bob")
    made = {}
    for name, viewer in (("a1", alice), ("a2", alice), ("a3", alice), ("b1", bob)):
        made[name] = library.run(
            model, src, LabelSet((name,)), hop_s=10.0, settings=settings, store=store, viewer=viewer
        ).analysis_id
    assert len(set(made.values())) == 4
    gone = "0" * 32
    done = library.delete_many(store, alice, [made["a1"], made["b1"], made["a2"], gone, made["a1"]])
    assert done.deleted == (made["a1"], made["a2"]) and done.refused == (made["b1"],)
    assert done.missing == (gone,) and done.failed == () and done.error is None
    left = {r.id for r in store.list_analyses()}
    assert left == {made["a3"], made["b1"]}  # a3 was not asked for, b1 is bob's
    titles = {made["a1"]: "first *take*", made["a2"]: "second", made["b1"]: "bob's", gone: "old"}
    notes = done.notes(titles)
    assert [kind for kind, _ in notes] == ["success", "warning", "warning"]
    assert notes[0][1] == "Deleted 2 analyses: 'first *take*', 'second'."
    assert "'bob's'" in notes[1][1] and "not yours" in notes[1][1] and "'old'" in notes[2][1]

    # a store that fails for one id: that one is reported, the next still goes
    real = store.delete_analysis

    def flaky(analysis_id):
        if analysis_id == made["b1"]:
            raise StoreError("The result store could not delete the analysis (disk I/O error).")
        return real(analysis_id)

    monkeypatch.setattr(store, "delete_analysis", flaky)
    done = library.delete_many(store, Viewer("owner:op", admin=True), [made["b1"], made["a3"]])
    assert done.failed == (made["b1"],) and done.deleted == (made["a3"],)
    assert "disk I/O error" in done.error and "disk I/O error" in done.notes({})[-1][1]
    assert {r.id for r in store.list_analyses()} == {made["b1"]}
    # deleting what is left, down to nothing, and then again, never raises
    monkeypatch.setattr(store, "delete_analysis", real)
    assert library.delete_many(store, bob, [made["b1"]]).deleted == (made["b1"],)
    assert store.list_analyses() == []
    assert library.delete_many(store, bob, [made["b1"]]).missing == (made["b1"],)
    assert library.delete_many(store, bob, []) == library.Deleted()


def test_delete_question_names_what_it_deletes_briefly():
    q = library.delete_question(["one\nline", "x" * 200])
    assert q.startswith("Delete 2 analyses for good: 'one\\nline', 'xxx")
    assert "\n" not in q and "…'" in q and len(q) < 260  # long titles are cut to 80
    assert library.delete_question(["solo"]).startswith("Delete 1 analysis for good: 'solo'?")
    many = library.name_list([f"t{i}" for i in range(30)], most=20)
    assert many.endswith("'t19' and 10 more") and "'t20'" not in many

"""Batch mode's storage core: manifests -> items with stable keys, and an output folder
where every item is committed exactly once (tiny generated arrays, no model)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sonotag_core.archive.parts import (
    BatchSpec,
    ItemRecord,
    compact,
    item_tables,
    open_output,
    read_embeddings,
    read_events,
    read_items,
    read_table,
    sweep_temporaries,
)
from sonotag_core.batch import BatchError
from sonotag_core.batch.manifest import Item, read_manifest
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.timeline import Timeline

# ---------------------------------------------------------------- helpers


def _file(path: Path, data: bytes = b"RIFF....") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _expected_file_key(path: Path) -> str:
    """The documented recipe, spelled out here: SHA-256 of resolved path, size, mtime_ns."""
    p = path.resolve()
    st = p.stat()
    return hashlib.sha256(f"file\0{p}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:32]


def _expected_url_key(url: str) -> str:
    return hashlib.sha256(f"url\0{url}".encode()).hexdigest()[:32]


SPEC = BatchSpec(
    model="v1-base",
    checkpoint_sha256="ab" * 32,
    labels=("dog barking", "bird song"),
    negatives=("speech",),
    hop_s=5.0,
    events={"threshold": 0.5, "median_frames": 3},
)


def _result(seed: int, n_events: int = 2):
    """A made-up analysis: 2 windows (0 s and 2.5 s) over 12.5 s = 40 frames, 2 labels."""
    rng = np.random.default_rng(seed)
    emb = AudioEmbeddings(
        starts=np.array([0, 120_000], dtype=np.int64),
        features=rng.standard_normal((2, 32, 512)).astype(np.float32),
        n_samples=600_000,
        hop=120_000,
    )
    probs = rng.random((2, 40)).astype(np.float32)
    timeline = Timeline(("dog barking", "bird song"), probs, 12.5)
    events = pd.DataFrame(
        {
            "label": ["dog barking", "bird song"][:n_events],
            "onset_s": [0.3125, 5.0][:n_events],
            "offset_s": [1.25, 6.875][:n_events],
            "peak": [0.9, 0.7][:n_events],
            "mean": [0.8, 0.6][:n_events],
        }
    )
    return emb, timeline, events


def _commit(output, key: str, seed: int, meta: dict | None = None, n_events: int = 2) -> bool:
    emb, timeline, events = _result(seed, n_events)
    tables = item_tables(
        key, f"/audio/{key}.wav", meta or {}, emb, timeline, events,
        title=f"clip {key[:4]}", content_id=f"{seed:064x}",
    )  # fmt: skip
    return output.commit(key, tables)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns)).reset_index(drop=True)


# ---------------------------------------------------------------- manifests


def test_folder_manifest_is_recursive_and_takes_only_media(tmp_path):
    a = _file(tmp_path / "a.wav")
    b = _file(tmp_path / "sub" / "deep" / "b.FLAC")
    c = _file(tmp_path / "sub" / "clip.mp4")
    _file(tmp_path / "notes.txt", b"not audio")
    _file(tmp_path / ".hidden.wav")
    _file(tmp_path / "sub" / "._b.wav")  # a macOS sidecar
    _file(tmp_path / ".trash" / "old.wav")
    items = read_manifest(tmp_path)
    assert sorted(i.source for i in items) == sorted(str(p.resolve()) for p in (a, b, c))
    assert {i.key for i in items} == {_expected_file_key(p) for p in (a, b, c)}
    assert all(i.meta == {} for i in items)


def test_text_manifest_skips_comments_and_resolves_relative_paths(tmp_path, monkeypatch):
    audio = _file(tmp_path / "m" / "rec" / "a.wav")
    other = _file(tmp_path / "elsewhere" / "b.mp3")
    listing = tmp_path / "m" / "list.txt"
    listing.write_text(
        "# field recordings\n\n  rec/a.wav  \n"
        f"{other}\n"
        "https://youtu.be/dQw4w9WgXcQ\n"
        "# the same video with a start time: one item\n"
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=30\n"
        "rec/../rec/a.wav\n"
    )
    monkeypatch.chdir(tmp_path)  # relative to the manifest, not to where we run
    items = read_manifest(listing)
    assert [i.source for i in items] == [
        str(audio.resolve()),
        str(other.resolve()),
        "https://youtu.be/dQw4w9WgXcQ",
    ]
    assert items[2].key == _expected_url_key("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert items[0].key == _expected_file_key(audio)


def test_generic_links_are_normalised_for_the_key(tmp_path):
    listing = tmp_path / "links.txt"
    listing.write_text("HTTPS://Example.ORG:443/a/b?x=1#frag\nhttps://example.org/a/b?x=1\n")
    items = read_manifest(listing)
    assert items == [
        Item(
            "HTTPS://Example.ORG:443/a/b?x=1#frag",
            _expected_url_key("https://example.org/a/b?x=1"),
            {},
        )
    ]


def test_csv_manifest_carries_meta_and_drops_duplicates(tmp_path):
    a = _file(tmp_path / "a.wav")
    _file(tmp_path / "b.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text("site,source,depth\nnorth,a.wav,3\nsouth,b.wav,\nagain,./a.wav,9\n")
    items = read_manifest(manifest)
    assert [(Path(i.source).name, i.meta) for i in items] == [
        ("a.wav", {"site": "north", "depth": "3"}),
        ("b.wav", {"site": "south", "depth": None}),
    ]
    assert items[0].key == _expected_file_key(a)


def test_jsonl_manifest_gives_every_item_the_same_meta_columns(tmp_path):
    _file(tmp_path / "a.wav")
    _file(tmp_path / "b.wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"source": "a.wav", "site": "north"}\n\n{"source": "b.wav", "depth": 2.5, "ok": true}\n'
    )
    items = read_manifest(manifest)
    assert [i.meta for i in items] == [
        {"site": "north", "depth": None, "ok": None},
        {"site": None, "depth": 2.5, "ok": True},
    ]


def test_parquet_manifest(tmp_path):
    _file(tmp_path / "a.wav")
    manifest = tmp_path / "m.parquet"
    pd.DataFrame({"source": ["a.wav"], "station": [7], "note": [None]}).to_parquet(manifest)
    (item,) = read_manifest(manifest)
    assert item.source == str((tmp_path / "a.wav").resolve())
    assert item.meta == {"station": 7, "note": None}
    assert type(item.meta["station"]) is int  # a JSON value, not a numpy scalar


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("m.csv", "path,site\na.wav,x\n", "no 'source' column"),
        ("m.jsonl", '{"path": "a.wav"}\n', "no 'source' column"),
        ("m.txt", "# nothing yet\n\n", "lists nothing"),
        ("m.csv", "source,site\n", "lists nothing"),
        ("m.jsonl", "[1, 2]\n", "not a JSON object"),
        ("m.txt", "a.wav\nmissing.wav\n", "missing.wav"),
    ],
)
def test_bad_manifests_are_refused_with_what_to_do(tmp_path, name, text, needle):
    _file(tmp_path / "a.wav")
    (tmp_path / name).write_text(text)
    with pytest.raises(BatchError, match=needle):
        read_manifest(tmp_path / name)


def test_missing_and_empty_manifests(tmp_path):
    with pytest.raises(BatchError, match="No such manifest"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    _file(tmp_path / "empty" / "readme.txt")
    with pytest.raises(BatchError, match="No audio or video files"):
        read_manifest(tmp_path / "empty")


def test_key_is_stable_and_follows_the_file(tmp_path):
    audio = _file(tmp_path / "a.wav", b"1234")
    first = read_manifest(tmp_path)[0].key
    assert read_manifest(tmp_path)[0].key == first
    st = audio.stat()
    os.utime(audio, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # touched, same size
    touched = read_manifest(tmp_path)[0].key
    assert touched != first
    audio.write_bytes(b"12345")
    assert read_manifest(tmp_path)[0].key not in (first, touched)


# ---------------------------------------------------------------- the output folder


def test_a_committed_item_reads_back(tmp_path):
    out = open_output(tmp_path / "out", SPEC)
    emb, timeline, events = _result(1)
    tables = item_tables(
        "k1", "/audio/a.wav", {"site": "north", "n": 3}, emb, timeline, events,
        title="a", content_id="c" * 64,
    )  # fmt: skip
    assert out.commit("k1", tables)
    assert out.done_keys() == {"k1"}
    assert [p.name for p in (tmp_path / "out" / "parts").iterdir()] == ["k1.parquet"]

    got = read_events(tmp_path / "out")
    want = events.assign(key="k1", source="/audio/a.wav", meta_site="north", meta_n="3")
    pd.testing.assert_frame_equal(
        got[list(want.columns)], want, check_dtype=False, check_exact=True
    )

    frames = read_table(tmp_path / "out", "frames")
    assert len(frames) == 2 * 40
    bird = frames[frames.label == "bird song"].sort_values("frame")
    assert bird.frame.tolist() == list(range(40))
    assert bird.time_s.iloc[3] == 3 * 0.3125
    assert np.array_equal(bird.probability.to_numpy(), timeline.probabilities[1])

    windows = read_table(tmp_path / "out", "embeddings").sort_values("window")
    assert windows.start_s.tolist() == [0.0, 2.5]  # 120 000 samples at 48 kHz
    stored = np.stack(windows.embedding.to_list()).reshape(2, 32, 512)
    assert stored.dtype == np.float16
    assert np.array_equal(stored, emb.features.astype(np.float16))

    (item,) = read_items(tmp_path / "out")
    assert item == ItemRecord("k1", "/audio/a.wav", "a", "c" * 64, emb.n_samples, emb.hop)
    back = read_embeddings(tmp_path / "out", "k1")  # what the Library reads when attached
    assert back.features.dtype == np.float16
    assert np.array_equal(back.features, emb.features.astype(np.float16))
    assert np.array_equal(back.starts, emb.starts)
    assert (back.n_samples, back.hop) == (emb.n_samples, emb.hop)

    schema = pq.read_schema(tmp_path / "out" / "parts" / "k1.parquet")
    assert str(schema.field("probability").type) == "float"
    assert str(schema.field("embedding").type) == "list<element: halffloat>"


def test_committing_a_key_twice_keeps_one_part(tmp_path):
    out = open_output(tmp_path / "out", SPEC)
    assert _commit(out, "k1", seed=1)
    part = tmp_path / "out" / "parts" / "k1.parquet"
    before = part.read_bytes()
    again = open_output(tmp_path / "out", SPEC)  # a retried task on another worker
    assert not _commit(again, "k1", seed=2)
    assert part.read_bytes() == before
    assert sorted(p.name for p in part.parent.iterdir()) == ["k1.parquet"]  # no temp left
    events = read_events(tmp_path / "out")
    assert len(events) == 2 and not events.duplicated().any()


def test_a_retry_that_raced_past_the_done_check_keeps_the_first_part(tmp_path, monkeypatch):
    """Two tries of one item both found it not done; the second to publish loses."""
    out = open_output(tmp_path / "out", SPEC)
    assert _commit(out, "k1", seed=1)
    part = tmp_path / "out" / "parts" / "k1.parquet"
    before = part.read_bytes()
    monkeypatch.setattr(type(out), "_is_done", lambda self, key: False)
    assert not _commit(out, "k1", seed=2, n_events=1)
    assert part.read_bytes() == before
    assert sorted(p.name for p in part.parent.iterdir()) == ["k1.parquet"]
    assert len(read_events(tmp_path / "out")) == 2


def test_a_killed_writers_temp_file_is_never_a_part(tmp_path):
    out = open_output(tmp_path / "out", SPEC)
    _commit(out, "k1", seed=1)
    # a writer killed mid-write: a whole valid parquet file still under its temp name
    parts = tmp_path / "out" / "parts"
    killed = parts / ".k2.4242.deadbeef.tmp"
    killed.write_bytes((parts / "k1.parquet").read_bytes())
    (tmp_path / "out" / "errors" / ".k3.4242.cafe.tmp").write_text("{")
    assert out.done_keys() == {"k1"}
    assert len(read_events(tmp_path / "out")) == 2
    assert sweep_temporaries(tmp_path / "out") == 2
    assert not killed.exists()
    assert out.failed() == {}


def test_another_spec_is_refused_naming_the_field(tmp_path):
    open_output(tmp_path / "out", SPEC)
    open_output(tmp_path / "out", BatchSpec.from_json(SPEC.to_json()))  # same: resumes
    changed = BatchSpec(**{**SPEC.__dict__, "labels": ("dog barking", "rain")})
    with pytest.raises(BatchError, match="labels") as err:
        open_output(tmp_path / "out", changed)
    assert "new -o folder" in str(err.value)
    hop = BatchSpec(**{**SPEC.__dict__, "hop_s": 2.5, "checkpoint_sha256": "cd" * 32})
    with pytest.raises(BatchError, match="checkpoint_sha256.*hop_s"):
        open_output(tmp_path / "out", hop)


def test_spec_round_trips_and_a_damaged_one_is_refused(tmp_path):
    assert BatchSpec.from_json(SPEC.to_json()) == SPEC
    assert json.loads(SPEC.to_json())["labels"] == ["dog barking", "bird song"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "_batch.json").write_text('{"model": "x"}')
    with pytest.raises(BatchError, match="damaged"):
        open_output(tmp_path / "out", SPEC)


def test_a_folder_that_is_not_a_batch_output_is_refused(tmp_path):
    _file(tmp_path / "home" / "thesis.docx")
    with pytest.raises(BatchError, match="not a SonoTag batch output"):
        open_output(tmp_path / "home", SPEC)
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["thesis.docx"]


def test_fail_then_commit_clears_the_error(tmp_path):
    out = open_output(tmp_path / "out", SPEC)
    assert out.fail("k1", "/audio/k1.wav", "could not be read as audio")
    assert out.failed() == {"k1": "could not be read as audio"}
    record = json.loads((tmp_path / "out" / "errors" / "k1.json").read_text())
    assert record["source"] == "/audio/k1.wav"
    assert _commit(out, "k1", seed=1)
    assert out.failed() == {}
    assert not (tmp_path / "out" / "errors" / "k1.json").exists()
    assert not out.fail("k1", "/audio/k1.wav", "a late duplicate try failed")
    assert out.failed() == {}


def test_keys_that_could_escape_the_folder_are_refused(tmp_path):
    out = open_output(tmp_path / "out", SPEC)
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            out.fail(bad, "s", "m")


def test_compact_keeps_every_row_once(tmp_path):
    root = tmp_path / "out"
    out = open_output(root, SPEC)
    for i in range(3):
        _commit(out, f"k{i}", seed=i, meta={"site": f"s{i}"})
    _commit(out, "k3", seed=3)  # no meta at all: its rows have null meta_site
    before = _sorted(read_events(root))
    frames_before = len(read_table(root, "frames"))
    # each part holds 1 item + 2 events + 80 frame rows + 2 windows = 85 rows: two per file
    made = compact(root, max_rows_per_file=170)
    assert [p.name for p in made] == ["c000001.parquet", "c000002.parquet"]
    assert list((root / "parts").iterdir()) == []
    assert out.done_keys() == {"k0", "k1", "k2", "k3"}
    pd.testing.assert_frame_equal(_sorted(read_events(root)), before)
    assert len(read_table(root, "frames")) == frames_before == 4 * 80
    assert before.meta_site.isna().sum() == 2  # k3's two events
    assert sorted(i.key for i in read_items(root)) == ["k0", "k1", "k2", "k3"]
    emb, _, _ = _result(2)  # an attached output reads the same embeddings once compacted
    assert np.array_equal(read_embeddings(root, "k2").features, emb.features.astype(np.float16))

    assert not _commit(out, "k1", seed=9)  # compacted counts as done
    _commit(out, "k4", seed=4)
    compact(root)
    events = read_events(root)
    assert len(events) == 5 * 2 and not events.duplicated().any()
    assert sorted(set(events.key)) == ["k0", "k1", "k2", "k3", "k4"]


def test_a_crashed_compact_never_doubles_rows(tmp_path):
    root = tmp_path / "out"
    out = open_output(root, SPEC)
    _commit(out, "k0", seed=0)
    _commit(out, "k1", seed=1)
    saved = (root / "parts" / "k0.parquet").read_bytes()
    (compacted,) = compact(root)
    # crash after _keys.json listed the file but before the part was deleted ...
    (root / "parts" / "k0.parquet").write_bytes(saved)
    # ... and a later compact killed after writing a file it never listed
    (root / "compacted" / "c000099.parquet").write_bytes(compacted.read_bytes())
    events = read_events(root)
    assert len(events) == 4 and not events.duplicated().any()
    assert compact(root) == []
    assert sorted(p.name for p in (root / "compacted").iterdir()) == [
        "_keys.json",
        "c000001.parquet",
    ]
    assert list((root / "parts").iterdir()) == []
    assert len(read_events(root)) == 4


def test_an_empty_output_reads_as_empty_tables(tmp_path):
    open_output(tmp_path / "out", SPEC)
    events = read_events(tmp_path / "out")
    assert list(events.columns) == ["key", "source", "label", "onset_s", "offset_s", "peak", "mean"]
    assert events.empty


def test_the_batch_meter_says_files_hours_rate_time_left_and_failures():
    """A fake clock: 3 files in 30 s (two of 30 min, one failed) -> 0.1 files/s, 1 h."""
    from sonotag_core.batch.runner import BatchMeter

    now = [100.0]
    seen = []
    meter = BatchMeter(4, seen.append, clock=lambda: now[0])
    assert (seen[0].done, seen[0].total, seen[0].unit) == (0, 4, "files")
    for failed in (False, True, False):
        now[0] += 10.0
        meter.step(1800.0 if not failed else 0.0, failed=failed)
    last = seen[-1]
    assert (last.done, last.total) == (3, 4)
    assert last.message == "1.00 h of audio · 0.10 files/s · 10 s left · 1 failed"
    now[0] += 10.0
    meter.step(1800.0, failed=False)
    assert "left" not in seen[-1].message  # finished: no time left to show

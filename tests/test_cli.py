"""The ``sonotag`` command: real runs on generated audio, clean errors on bad input."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from audiogen import make_audio

from sonotag_core.cli import main
from sonotag_core.domain.timefmt import clock

SONOTAG = str(Path(sys.executable).parent / "sonotag")
FIVE_LABELS = "dog barking; siren; a tone; speech; -music"


@pytest.fixture
def cli(monkeypatch, cli_env):
    for key, value in cli_env.items():
        if key.startswith("SONOTAG_") or key.startswith("HF_"):
            monkeypatch.setenv(key, value)

    def run(*args: str, capsys=None) -> int:
        return main(list(args))

    return run


def test_five_minute_file_writes_every_format(tmp_path, cli_env):
    clip = make_audio(tmp_path / "five.mp3", 300.0, kind="mix", freq=500)
    out = tmp_path / "out"
    proc = subprocess.run(
        [SONOTAG, "analyze", str(clip), "--labels", FIVE_LABELS, "--format", "all", "-o", str(out)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "5 label(s)" in proc.stderr and "30 window(s)" in proc.stderr
    files = {
        p.suffix if not p.name.endswith(".frames.csv") else ".frames.csv": p for p in out.iterdir()
    }
    assert len(list(out.iterdir())) == 6, sorted(p.name for p in out.iterdir())

    doc = json.loads(next(out.glob("*.json")).read_text())
    assert doc["labels"] == ["dog barking", "siren", "a tone", "speech", "music"]
    assert doc["negatives"] == ["music"]
    assert len(doc["frame_times_s"]) == 960 and doc["frame_times_s"][1] == 0.3125
    assert [len(row) for row in doc["probabilities"]] == [960] * 5
    assert (
        doc["model"]["name"] == "openflam-v1-base" and len(doc["model"]["checkpoint_sha256"]) == 64
    )
    assert doc["source"]["file_name"] == "five.mp3"

    frames = pd.read_csv(files[".frames.csv"])
    assert list(frames.columns) == ["time_s", "label", "probability"] and len(frames) == 5 * 960
    events = pd.read_csv(next(p for p in out.glob("*.csv") if not p.name.endswith(".frames.csv")))
    assert list(events.columns) == [
        "label",
        "onset_s",
        "offset_s",
        "peak",
        "mean",
        "status",
        "reviewed_label",
    ]
    assert "music" not in set(events.label)  # negative prompt: never an event
    assert (events.offset_s <= 300.0 + 1e-9).all()
    assert len(events) == len(doc["events"])
    for line in (out / "five.audacity.txt").read_text().splitlines():  # Audacity label track
        onset, offset, label = line.split("\t")
        assert float(onset) < float(offset) and label != "music"
    dcase = pd.read_csv(out / "five.dcase.tsv", sep="\t")
    assert list(dcase.columns) == ["filename", "onset", "offset", "event_label"]
    assert len(dcase) == len(events) and set(dcase.filename) <= {"five.mp3"}
    raven = (out / "five.Table.1.selections.txt").read_text().splitlines()
    assert raven[0].split("\t")[:5] == [
        "Selection",
        "View",
        "Channel",
        "Begin Time (s)",
        "End Time (s)",
    ]
    assert len(raven) == len(events) + 1


def test_stdout_csv_and_progress_on_stderr(tmp_path, cli, capsys):
    clip = make_audio(tmp_path / "c.wav", 12.0, kind="mix")
    assert cli("analyze", str(clip), "--labels", "a tone; siren", "--threshold", "0.3") == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert rows and set(rows[0]) == {
        "label",
        "onset_s",
        "offset_s",
        "peak",
        "mean",
        "status",
        "reviewed_label",
    }
    assert {row["status"] for row in rows} == {""}  # a fresh run: nothing reviewed yet
    assert "encode" in captured.err and "2 window(s)" in captured.err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("https://vimeo.com/123456", "Links to 'vimeo.com' are not supported"),
        ("file:///etc/passwd", "only http(s)"),
        ("http://127.0.0.1:8000/a.mp3", "port"),
        ("http://169.254.169.254/latest/meta-data/", "IP addresses"),
        ("https://www.youtube.com/playlist?list=PL1234567890", "playlist"),
    ],
)
def test_refused_links_fail_cleanly(cli, capsys, source, message):
    assert cli("analyze", source, "--labels", "siren") == 1
    err = capsys.readouterr().err
    assert err.startswith("sonotag: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message.lower() in err.lower()
    assert "YouTube video link" in err and "SoundCloud track link" in err


def test_bad_files_fail_cleanly(tmp_path, cli, capsys):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    for path, fragment in [
        (empty, "empty"),
        (text, "notes.wav"),
        (tmp_path / "missing.mp3", "missing.mp3"),
    ]:
        assert cli("analyze", str(path), "--labels", "siren") == 1
        err = capsys.readouterr().err
        assert err.startswith("sonotag: error: ") and fragment in err and "Traceback" not in err


def test_duration_cap(tmp_path, cli, capsys, monkeypatch):
    monkeypatch.setenv("SONOTAG_MAX_DURATION_S", "5")
    clip = make_audio(tmp_path / "long.wav", 8.0)
    assert cli("analyze", str(clip), "--labels", "siren") == 1
    assert "SONOTAG_MAX_DURATION_S" in capsys.readouterr().err


def test_bad_options(tmp_path, cli, capsys):
    clip = make_audio(tmp_path / "c.wav", 2.0)
    assert cli("analyze", str(clip), "--labels", "siren", "--label-threshold", "oops") == 1
    assert "LABEL=VALUE" in capsys.readouterr().err
    assert cli("analyze", str(clip), "--labels", " ; ") == 1
    assert "at least one label" in capsys.readouterr().err
    assert cli("analyze", str(clip), "--labels", "siren", "--hop", "3") == 1
    assert "Hop" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli("analyze", str(clip), "--labels", "x", "--format", "mp4")
    assert exit_info.value.code == 2


def test_missing_weights_console_script(tmp_path, cli_env):
    clip = make_audio(tmp_path / "c.wav", 2.0)
    env = dict(cli_env, SONOTAG_MODEL_DIR=str(tmp_path / "no-model"))
    proc = subprocess.run(
        [SONOTAG, "analyze", str(clip), "--labels", "siren"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "sonotag fetch-model" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- the result store


@pytest.fixture
def library_cli(cli, monkeypatch, tmp_path, encoder_calls):
    """The in-process CLI with its own SONOTAG_DATA_DIR, counting audio-encoder windows."""
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    cli.encoded = encoder_calls
    return cli


def test_analyze_reuses_stored_embeddings_and_saves_each_run(tmp_path, library_cli, capsys):
    clip = make_audio(tmp_path / "c.wav", 12.0, kind="mix")
    out = tmp_path / "first.csv"
    assert library_cli("analyze", str(clip), "--labels", "a tone; siren", "-o", str(out)) == 0
    err = capsys.readouterr().err
    first_id = re.search(r"analysis ([0-9a-f]{32})", err).group(1)
    assert "reused" not in err and sum(library_cli.encoded) == 2
    # same audio, hop and model: no audio encoding at all, a new analysis with new labels
    assert library_cli("analyze", str(clip), "--labels", "rain", "--format", "json") == 0
    captured = capsys.readouterr()
    assert "reused stored embeddings" in captured.err and sum(library_cli.encoded) == 2
    second_id = re.search(r"analysis ([0-9a-f]{32})", captured.err).group(1)
    assert second_id != first_id and json.loads(captured.out)["labels"] == ["rain"]
    # --no-store: neither reused nor saved
    assert library_cli("analyze", str(clip), "--labels", "rain", "--no-store") == 0
    err = capsys.readouterr().err
    assert "analysis" not in err and "reused" not in err and sum(library_cli.encoded) == 4
    assert library_cli("library", "list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["id", "date", "title", "duration", "labels", "model"]
    assert [line.split()[0] for line in listed[1:]] == [second_id, first_id]  # newest first
    assert "0:00:12" in listed[2] and "a tone; siren" in listed[2]


def test_library_search_export_delete_round_trip(tmp_path, library_cli, capsys):
    clip = make_audio(tmp_path / "tone.wav", 25.0, kind="mix")
    assert library_cli("analyze", str(clip), "--labels", "a tone; -music", "-q") == 0
    capsys.readouterr()
    assert library_cli("library", "list") == 0
    [aid] = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]

    assert library_cli("library", "search", "a tone", "--top", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line in lines:
        when, prob, title, hit_id = line.split("\t")
        assert re.fullmatch(r"0:00:\d\d\.\d\d", when) and 0.0 <= float(prob) <= 1.0
        assert (title, hit_id) == ("tone", aid)
    assert [float(line.split("\t")[1]) for line in lines] == sorted(
        (float(line.split("\t")[1]) for line in lines), reverse=True
    )

    out = tmp_path / "stored.json"
    assert library_cli("library", "export", aid, "--format", "json", "-o", str(out)) == 0
    doc = json.loads(out.read_text())
    assert doc["labels"] == ["a tone", "music"] and doc["negatives"] == ["music"]
    assert len(doc["frame_times_s"]) == 80 and doc["settings"]["analysis_id"] == aid
    # relabelled from the stored embeddings, with another threshold
    frames = tmp_path / "relabel.frames.csv"
    assert (
        library_cli(
            "library",
            "export",
            aid,
            "--format",
            "frames-csv",
            "-o",
            str(frames),
            "--labels",
            "siren; rain",
            "--threshold",
            "0.3",
        )
        == 0
    )
    table = pd.read_csv(frames)
    assert list(table.label.unique()) == ["siren", "rain"] and len(table) == 2 * 80
    assert (
        library_cli("library", "export", aid, "--format", "all", "-o", str(tmp_path / "all")) == 0
    )
    assert len(list((tmp_path / "all").iterdir())) == 6
    capsys.readouterr()

    assert library_cli("library", "delete", aid) == 0
    assert library_cli("library", "list") == 0
    assert "empty" in capsys.readouterr().err
    for args in (("export", aid), ("delete", aid)):
        assert library_cli("library", *args) == 1
        err = capsys.readouterr().err
        assert err.startswith("sonotag: error: ") and err.count("\n") == 1
        assert "no stored analysis" in err and "library list" in err


def test_a_broken_store_still_writes_the_export(tmp_path, library_cli, capsys, monkeypatch):
    data = tmp_path / "broken"
    (data / "sonotag.db").mkdir(parents=True)  # a folder where the database should be
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(data))
    clip = make_audio(tmp_path / "c.wav", 5.0, kind="mix")
    out = tmp_path / "events.csv"
    assert library_cli("analyze", str(clip), "--labels", "a tone", "-o", str(out)) == 0
    assert out.read_text().startswith("label,onset_s,offset_s,peak,mean")
    err = capsys.readouterr().err
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert "result store" in warning and "export was written" in warning
    assert "Traceback" not in err and "analysis " not in err


def test_a_stored_link_is_neither_downloaded_nor_encoded(
    tmp_path, library_cli, capsys, monkeypatch, model, settings
):
    """`sonotag analyze LINK` for a link the store holds (audio and embeddings for this hop
    and checkpoint) answers from the store; any other link is downloaded."""
    import dataclasses

    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.media import sources
    from sonotag_core.service import library
    from sonotag_core.store.database import Store

    data = tmp_path / "data"
    (tmp_path / "dl").mkdir()
    clip = make_audio(tmp_path / "dl" / "clip.m4a", 12.0, kind="mix")
    link = "https://youtu.be/abcdefghijk"
    src = dataclasses.replace(sources.from_path(clip), kind="url", url=link, title="Stored video")
    library.run(
        model,
        src,
        LabelSet(("a tone",)),
        hop_s=10.0,
        settings=settings.with_(data_dir=str(data)),
        store=Store(data),
    )
    assert sum(library_cli.encoded) == 2
    fetched: list[str] = []

    def no_network(url, *a, **kw):
        fetched.append(url)
        raise sources.SourceError("This test has no network.")

    monkeypatch.setattr(sources, "from_url", no_network)
    # another spelling of the same video, with a start time
    out = tmp_path / "stored.json"
    assert (
        library_cli(
            "analyze",
            "https://www.youtube.com/watch?v=abcdefghijk&t=5",
            "--labels",
            "siren; rain",
            "--format",
            "json",
            "-o",
            str(out),
        )
        == 0
    )
    err = capsys.readouterr().err
    assert fetched == [] and sum(library_cli.encoded) == 2 and "reused stored embeddings" in err
    doc = json.loads(out.read_text())
    assert doc["labels"] == ["siren", "rain"] and doc["source"]["title"] == "Stored video"
    # hop 5 was never encoded for it, and another video was never stored: both fetched
    assert library_cli("analyze", link, "--labels", "siren", "--hop", "5") == 1
    assert library_cli("analyze", "https://youtu.be/zyxwvutsrqp", "--labels", "siren") == 1
    err = capsys.readouterr().err
    assert fetched == [
        "https://www.youtube.com/watch?v=abcdefghijk",
        "https://www.youtube.com/watch?v=zyxwvutsrqp",
    ]
    assert err.count("sonotag: error: This test has no network.") == 2


# ---------------------------------------------------------------- review


def _middle_threshold(row) -> float:
    """A threshold in the widest gap between the middle half of a row's probabilities, so
    about half the frames are above it and no frame sits near it."""
    import numpy as np

    values = np.unique(np.asarray(row, dtype=np.float64))
    quarter = len(values) // 4
    middle = values[quarter : len(values) - quarter]
    i = int(np.argmax(np.diff(middle)))
    return float((middle[i] + middle[i + 1]) / 2)


@pytest.fixture
def no_model_load(monkeypatch) -> list[tuple]:
    """Records every model load (and refuses it): usage mistakes must fail before."""
    from sonotag_core.inference import model

    loads: list[tuple] = []

    def refuse(*args, **kwargs):
        loads.append(args)
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(model, "load_model", refuse)
    return loads


@pytest.fixture
def reviewable(tmp_path, model, text_cache):
    """A stored analysis (random embeddings, 96 frames) whose stored per-label thresholds
    give several events per label; returns its id, the store and its events as the
    dashboard computes them at those settings."""
    import numpy as np

    from sonotag_core.domain.embeddings import AudioEmbeddings
    from sonotag_core.domain.events import EventParams, detect_events
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.media.sources import SourceInfo
    from sonotag_core.service.analysis import score
    from sonotag_core.store.database import Store

    rng = np.random.default_rng(5)
    feats = rng.standard_normal((3, 32, 512)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
    emb = AudioEmbeddings(np.arange(3, dtype=np.int64) * 480_000, feats, 3 * 480_000, 480_000)
    store = Store(tmp_path / "data")
    labels = LabelSet(("a tone", "siren", "music"), frozenset({"music"}))
    src = SourceInfo("file", Path(""), "Review clip", "e" * 64, "review.wav", 30.0)
    aid = store.add_analysis(
        src, emb, labels, hop_s=10.0, model_name="m", checkpoint_sha256=model.info.checkpoint_sha256
    )
    timeline = score(text_cache, store.get_analysis(aid).embeddings, labels)
    params = EventParams(
        label_thresholds={
            label: _middle_threshold(row)
            for label, row in zip(labels.labels, timeline.probabilities, strict=True)
            if label != "music"
        }
    )
    assert store.update_analysis(aid, labels, settings={"hop_s": 10.0, **params.as_settings()})
    events = detect_events(timeline, params)
    counts = events["label"].value_counts()
    assert counts["a tone"] >= 2 and counts["siren"] >= 1, counts  # enough to review
    return aid, store, events


def test_library_review_counts_and_set_round_trip(library_cli, capsys, reviewable, tmp_path):
    aid, store, events = reviewable
    tones = events[events.label == "a tone"].reset_index(drop=True)
    siren = events[events.label == "siren"].reset_index(drop=True)
    n_tone, n_siren = len(tones), len(siren)

    def review(*args: str) -> tuple[list[str], str]:
        assert library_cli("library", "review", aid, *args) == 0
        out = capsys.readouterr()
        return out.out.splitlines(), out.err

    lines, _ = review()
    assert lines == [
        f"a tone: 0 of {n_tone} reviewed (0 accepted, 0 rejected)",
        f"siren: 0 of {n_siren} reviewed (0 accepted, 0 rejected)",
    ]

    first, second = float(tones.onset_s[0]), float(tones.onset_s[1])
    _, err = review("--set", "accepted", "--label", "a tone", "--onset", str(first))
    assert "accepted" in err and clock(first, hours=True) in err
    review(
        "--set", "rejected", "--label", "a tone", "--onset", clock(second, hours=True)
    )  # h:mm:ss.ss
    review("--label", "siren", "--onset", str(siren.onset_s[0]), "--relabel", "beep")
    lines, _ = review()
    assert lines == [
        f"a tone: 2 of {n_tone} reviewed (1 accepted, 1 rejected)",
        f"siren: 1 of {n_siren} reviewed (1 accepted, 0 rejected; 1 relabelled)",
    ]
    # a second verdict on an event replaces the first
    lines, _ = review("--set", "accepted", "--label", "a tone", "--onset", str(second))
    assert lines[0] == f"a tone: 2 of {n_tone} reviewed (2 accepted, 0 rejected)"
    stored = {(r.label, r.onset_s): (r.status, r.relabel) for r in store.get_reviews(aid)}
    assert stored == {
        ("a tone", first): ("accepted", None),
        ("a tone", second): ("accepted", None),
        ("siren", float(siren.onset_s[0])): ("accepted", "beep"),
    }

    # exports of the stored analysis carry the verdicts; --reviewed keeps the accepted only
    out = tmp_path / "all.csv"
    assert library_cli("library", "export", aid, "-o", str(out)) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == len(events)
    assert (table.status != "").sum() == 3 and table.reviewed_label.tolist().count("beep") == 1
    dcase = tmp_path / "reviewed.tsv"
    assert (
        library_cli("library", "export", aid, "--format", "dcase", "-o", str(dcase), "--reviewed")
        == 0
    )
    assert "3 accepted event(s)" in capsys.readouterr().err
    got = pd.read_csv(dcase, sep="\t", keep_default_na=False)
    want = sorted([(first, "a tone"), (second, "a tone"), (float(siren.onset_s[0]), "beep")])
    assert list(zip(got.onset, got.event_label, strict=True)) == want
    audacity = tmp_path / "reviewed.txt"
    assert (
        library_cli(
            "library", "export", aid, "--format", "audacity", "-o", str(audacity), "--reviewed"
        )
        == 0
    )
    assert [line.split("\t")[2] for line in audacity.read_text().splitlines()] == [
        label for _on, label in want
    ]

    lines, err = review("--clear", "--label", "a tone", "--onset", str(first))
    assert "unreviewed again" in err
    assert lines[0] == f"a tone: 1 of {n_tone} reviewed (1 accepted, 0 rejected)"
    assert len(store.get_reviews(aid)) == 2


def test_library_review_errors_are_one_line(library_cli, capsys, reviewable, no_model_load):
    aid, store, events = reviewable
    for args, fragment in [
        (("library", "review", "f" * 32), "no stored analysis"),
        (("library", "review", aid, "--set", "accepted", "--label", "a tone"), "--onset"),
        (("library", "review", aid, "--label", "a tone", "--onset", "1"), "--set or --clear"),
        (
            (
                "library",
                "review",
                aid,
                "--set",
                "rejected",
                "--relabel",
                "x",
                "--label",
                "a tone",
                "--onset",
                "1",
            ),
            "--relabel accepts",
        ),
        (
            ("library", "review", aid, "--set", "accepted", "--label", "a tone", "--onset", "1:x"),
            "--onset expects",
        ),
    ]:
        assert library_cli(*args) == 1, args
        err = capsys.readouterr().err
        assert err.startswith("sonotag: error: ") and err.count("\n") == 1, err
        assert fragment in err
    assert no_model_load == []  # every one of them failed before the model loaded
    with pytest.raises(SystemExit) as exit_info:
        library_cli("library", "review", aid, "--set", "maybe")
    assert exit_info.value.code == 2
    assert store.get_reviews(aid) == []


def test_library_review_of_a_missing_event_names_the_nearest(library_cli, capsys, reviewable):
    aid, store, events = reviewable
    onsets = set(events.onset_s[events.label == "a tone"])
    nowhere = next(t * 0.3125 for t in range(96) if t * 0.3125 not in onsets)
    assert (
        library_cli(
            "library",
            "review",
            aid,
            "--set",
            "accepted",
            "--label",
            "a tone",
            "--onset",
            str(nowhere),
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no 'a tone' event starting at" in err and "nearest" in err
    assert (
        library_cli(
            "library", "review", aid, "--set", "accepted", "--label", "rain", "--onset", "0"
        )
        == 1
    )
    assert "no label 'rain'" in capsys.readouterr().err
    assert store.get_reviews(aid) == []


# ---------------------------------------------------------------- evaluate / calibrate


def _truth_of(events, filename: str) -> str:
    """A DCASE tsv of exactly these events (what the detector finds at its thresholds)."""
    rows = ["filename\tonset\toffset\tevent_label"]
    rows += [f"{filename}\t{e.onset_s}\t{e.offset_s}\t{e.label}" for e in events.itertuples()]
    return "\n".join(rows) + "\n"


def test_evaluate_prints_the_per_label_table_and_calibrate_stores_thresholds(
    library_cli, capsys, reviewable, tmp_path
):
    aid, store, events = reviewable
    truth = tmp_path / "truth.tsv"
    truth.write_text(_truth_of(events, "review.wav").replace("\tsiren\n", "\tSiren\n"))
    assert library_cli("evaluate", aid, "--truth", str(truth), "--format", "json") == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    by_label = {row["label"]: row for row in doc["labels"]}
    assert set(by_label) == {"a tone", "siren"}  # "Siren" matched case-insensitively
    assert by_label["a tone"]["n_truth"] == int((events.label == "a tone").sum())
    for row in by_label.values():
        for key in ("f1", "segment_f1", "psds1", "auroc", "best_f1"):
            assert row[key] is None or 0.0 <= row[key] <= 1.0, (key, row)
    # the truth is what the detector finds at these thresholds: segment F1 is perfect
    assert by_label["a tone"]["segment_f1"] == pytest.approx(1.0)

    assert library_cli("evaluate", aid, "--truth", str(truth)) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["label", "n_truth", "threshold"]
    assert table[-1].startswith("macro")
    # -o: the same result in a file, nothing on stdout
    written = tmp_path / "ev.json"
    args = ("evaluate", aid, "--truth", str(truth), "--format", "json", "-o", str(written))
    assert library_cli(*args) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(written.read_text(encoding="utf-8"))["labels"] == doc["labels"]

    from sonotag_core.store.database import Store

    thresholds = tmp_path / "thresholds.tsv"
    args = ("calibrate", aid, "--truth", str(truth), "--apply", "-o", str(thresholds))
    assert library_cli(*args) == 0
    out = capsys.readouterr()
    assert "stored 2 calibrated threshold(s)" in out.err and out.out == ""
    rows = [line.split("\t") for line in thresholds.read_text(encoding="utf-8").splitlines()]
    assert sorted(row[0] for row in rows) == ["a tone", "siren"]
    sha = store.get_analysis(aid).checkpoint_sha256
    kept = Store(tmp_path / "data").get_calibrations(["a tone", "siren"], sha)
    assert set(kept) == {"a tone", "siren"}
    assert all(0.0 < c.threshold < 1.0 and c.origin == "ground truth" for c in kept.values())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("filename\tonset\toffset\tevent_label\nreview.wav\t5\t2\tsiren\n", "offset"),
        ("filename\tstart\tend\tevent_label\nreview.wav\t1\t2\tsiren\n", "onset"),
        (
            "filename\tonset\toffset\tevent_label\nother.wav\t1\t2\tsiren\nthird.wav\t1\t2\tx\n",
            "review.wav",
        ),
        ("filename\tonset\toffset\tevent_label\nreview.wav\t1\t99\tsiren\n", "end"),
    ],
)
def test_bad_ground_truth_is_one_clear_line(
    library_cli, capsys, reviewable, tmp_path, content, message
):
    aid, _, _ = reviewable
    truth = tmp_path / "truth.tsv"
    truth.write_text(content)
    assert library_cli("evaluate", aid, "--truth", str(truth)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [x for x in err.replace("\r", "\n").splitlines() if x.startswith("sonotag: error:")]
    assert message in line


def test_evaluate_a_folder_scores_every_file_a_multi_file_truth_names(
    library_cli, capsys, tmp_path
):
    """A DCASE tsv naming several files + the folder that holds them: each is analysed
    (and kept), then scored in one table. "a tone" lasts the whole of each file, so a
    threshold under every frame's probability finds both exactly: best event F1 is 1."""
    folder = tmp_path / "archive"
    (folder / "day2").mkdir(parents=True)
    one = make_audio(folder / "one.wav", 12.0, kind="mix")
    two = make_audio(folder / "day2" / "two.flac", 8.0, kind="sine", freq=800)
    truth = tmp_path / "truth.tsv"
    truth.write_text(
        "filename\tonset\toffset\tevent_label\n"
        "one.wav\t0\t12\ta tone\n"
        "recordings/two.flac\t0\t8\ta tone\n"  # found by its base name under day2/
        "lost.wav\t1\t2\ta tone\n"
    )
    args = ("evaluate", str(folder), "--truth", str(truth), "--labels", "a tone; siren")
    assert library_cli(*args, "--format", "json") == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert sorted(doc["files"]) == ["one.wav", "recordings/two.flac"]
    assert "lost.wav" in out.err and "left out" in out.err
    rows = {row["label"]: row for row in doc["labels"]}
    assert rows["a tone"]["n_truth"] == 2
    assert rows["a tone"]["best_f1"] == pytest.approx(1.0)
    assert rows["siren"]["n_truth"] == 0 and rows["siren"]["f1"] is None
    assert library_cli("library", "list") == 0
    titles = [line.split()[3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert sorted(titles) == [one.stem, two.stem]  # both analyses were kept
    encoded = sum(library_cli.encoded)
    assert library_cli(*args, "--format", "csv") == 0  # again: stored embeddings reused
    assert sum(library_cli.encoded) == encoded
    csv_rows = capsys.readouterr().out.splitlines()
    assert csv_rows[0].startswith("label,n_truth") and csv_rows[-1].startswith("macro,")


def test_evaluate_a_folder_without_the_files_or_labels_says_so(library_cli, capsys, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    truth = tmp_path / "truth.tsv"
    truth.write_text("filename\tonset\toffset\tevent_label\nx.wav\t0\t1\tdog\n")
    assert library_cli("evaluate", str(folder), "--truth", str(truth), "--labels", "dog") == 1
    assert "None of the 1 file(s)" in capsys.readouterr().err
    assert library_cli("evaluate", str(folder), "--truth", str(truth)) == 1
    assert "needs --labels" in capsys.readouterr().err
    assert sum(library_cli.encoded) == 0  # refused before any audio was encoded


def test_evaluate_reviews_scores_the_reviewed_spans_only(library_cli, capsys, reviewable):
    """One a-tone event accepted, one rejected, at the thresholds they were found at:
    one truth event for "a tone" over two spans; siren has no verdicts (an empty row)."""
    aid, _, events = reviewable
    tones = events[events.label == "a tone"].reset_index(drop=True)
    for status, onset in (("accepted", tones.onset_s[0]), ("rejected", tones.onset_s[1])):
        args = ("--set", status, "--label", "a tone", "--onset", str(float(onset)))
        assert library_cli("library", "review", aid, *args) == 0
    capsys.readouterr()
    assert library_cli("evaluate", aid, "--reviews", "--format", "json") == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {row["label"]: row for row in doc["labels"]}
    assert rows["a tone"]["n_truth"] == 1 and rows["siren"]["n_truth"] == 0
    # (the hand-worked numbers are in test_review_truth.py: frame scores with gaps the
    # event merging filled make collar matches here depend on the random model)
    for key in ("precision", "recall", "f1", "best_f1"):
        assert 0.0 <= rows["a tone"][key] <= 1.0
    assert len(doc["files"]) == 2  # two reviewed spans, nothing else
    assert library_cli("evaluate", aid) == 1
    assert "needs --truth FILE or --reviews" in capsys.readouterr().err


# ---------------------------------------------------------------- -o on every result


# the commands that print a result a user keeps (a table, events, thresholds, moments),
# and those that print a status for the terminal; a new command must be put in one
RESULT_COMMANDS = {
    "analyze",
    "evaluate",
    "calibrate",
    "batch",
    "library export",
    "library search",
    "library similar",
    "detector export",
    "detector next",
}
STATUS_COMMANDS = {
    "fetch-model",
    "settings",
    "library list",
    "library review",
    "library delete",
    "library attach",
    "library detach",
    "library attached",
    "detector list",
    "detector show",
    "detector import",
    "detector refine",
    "detector delete",
}


def _commands(parser, prefix: str = "") -> dict[str, object]:
    """Every (sub)command of the parser: its name -> its own parser."""
    import argparse

    out: dict[str, object] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = _commands(sub, f"{prefix}{name} ")
                out.update(inner or {f"{prefix}{name}": sub})
    return out


def test_every_command_that_writes_a_result_takes_o() -> None:
    from sonotag_core.cli import _parser

    commands = _commands(_parser())
    assert set(commands) == RESULT_COMMANDS | STATUS_COMMANDS
    for name in RESULT_COMMANDS:
        flags = {s for a in commands[name]._actions for s in a.option_strings}
        assert {"-o", "--output"} <= flags, name


@pytest.fixture
def fast_cli(monkeypatch, tmp_path, no_model_load):
    """The CLI without a model (any load fails the test): for what fails before it."""
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    return lambda *args: main(list(args))


@pytest.mark.parametrize(
    ("command", "where", "message"),
    [
        (("evaluate", "abc", "--truth", "t.tsv"), "nowhere/ev.json", "No such directory"),
        (("evaluate", "abc", "--reviews"), ".", "is a directory"),
        (("calibrate", "abc", "--truth", "t.tsv"), "nowhere/cal.tsv", "No such directory"),
        (("library", "search", "siren"), "nowhere/hits.tsv", "No such directory"),
    ],
)
def test_o_refuses_a_bad_path_before_any_work(
    fast_cli, capsys, tmp_path, no_model_load, command, where, message
):
    """The same refusals as `analyze -o`, before the analysis id, the truth or the model
    is even looked at (the id "abc" does not exist, nor does t.tsv)."""
    assert fast_cli(*command, "-o", str(tmp_path / where)) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("sonotag: error: ") and message in line
    assert str(tmp_path) in line  # the path (or its missing folder), named
    assert not no_model_load
    assert not (tmp_path / "nowhere").exists()

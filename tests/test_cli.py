"""The ``sonotag`` command: real runs on generated audio, clean errors on bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from audiogen import make_audio

from sonotag_core.cli import main

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
    assert list(events.columns) == ["label", "onset_s", "offset_s", "peak", "mean"]
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
    assert rows and set(rows[0]) == {"label", "onset_s", "offset_s", "peak", "mean"}
    assert "encode" in captured.err and "2 window(s)" in captured.err


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("https://vimeo.com/123456", "vimeo.com are not supported"),
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

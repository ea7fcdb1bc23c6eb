"""Every export format, read back by its target's own conventions, equals the report it
was written from. Reports are built by hand (no model): a seeded random timeline with
planted events, awkward label texts, a negative label and a clipped last frame."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pytest

from sonotag_core import exports
from sonotag_core.domain.events import EVENT_COLUMNS, EventParams, detect_events
from sonotag_core.domain.report import ModelInfo, Report
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import ConfigError
from sonotag_core.exports import FORMATS, ExportFormat

DURATION_S = 10.1  # 32.32 frames: frame 32 covers [10.0, 10.1), clipped to the audio
N_FRAMES = 33
NEGATIVE = "music"
LABELS = ("dog, barking", 'say "hi"', "café", "bird\tsong", NEGATIVE)
# what tab/line-based formats (audacity, dcase, raven) may write instead of the label
CLEANED = {"bird\tsong": "bird song"}
# label -> planted runs of frames [start, end); everything else stays below 0.3
PLANTED = {
    "dog, barking": [(4, 12), (20, 23)],
    'say "hi"': [(15, 18)],
    "café": [(28, 33)],  # touches the end: offset is clipped to DURATION_S
    "bird\tsong": [(8, 10)],
    NEGATIVE: [(0, 33)],  # loud everywhere, but a negative never makes an event
}
# (label, onset_s, offset_s), sorted by onset: what detect_events must find
EXPECTED_EVENTS = [
    ("dog, barking", 4 * FRAME_S, 12 * FRAME_S),
    ("bird\tsong", 8 * FRAME_S, 10 * FRAME_S),
    ('say "hi"', 15 * FRAME_S, 18 * FRAME_S),
    ("dog, barking", 20 * FRAME_S, 23 * FRAME_S),
    ("café", 28 * FRAME_S, DURATION_S),
]
MODEL = ModelInfo("v1-base", "0.1.2", "ab" * 32)
RAVEN_COLUMNS = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Label",
    "Peak",
    "Mean",
    "Annotation",
    "Review",
]
EVENTS_CSV_COLUMNS = ["label", "onset_s", "offset_s", "peak", "mean", "status", "reviewed_label"]
EVENT_FORMATS = ("csv", "json", "audacity", "dcase", "raven")


def make_probabilities(seed: int = 1234, planted: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.0, 0.3, size=(len(LABELS), N_FRAMES))
    if planted:
        for row, label in enumerate(LABELS):
            for start, end in PLANTED[label]:
                probs[row, start:end] = rng.uniform(0.6, 0.99, size=end - start)
    else:
        probs[LABELS.index(NEGATIVE)] = rng.uniform(0.6, 0.99, size=N_FRAMES)
    return probs.astype(np.float32)


def make_report(
    probs: np.ndarray | None = None, *, file_name: str = "park café, take 2.wav"
) -> Report:
    probs = make_probabilities() if probs is None else probs
    timeline = Timeline(LABELS, probs, DURATION_S, frozenset({NEGATIVE}))
    source = {
        "kind": "file",
        "path": Path("/data/field recordings") / file_name,
        "title": "Park",
        "content_id": "cd" * 32,
        "file_name": file_name,
        "duration_s": np.float64(DURATION_S),
    }
    settings = {
        "hop_s": np.float32(2.5),
        "threshold": np.float64(0.5),
        "median_frames": np.int64(1),
        "label_thresholds": {"café": np.float32(0.25)},
        "model_dir": Path("/models/openflam"),
        "not_measured": float("nan"),
        "tags": ("a", "b"),
    }
    return Report(
        source=source,
        model=MODEL,
        settings=settings,
        timeline=timeline,
        events=detect_events(timeline, EventParams(threshold=0.5)),
        extra={"gain_db": np.float32(-3.0)},
    )


@pytest.fixture(scope="module")
def report() -> Report:
    return make_report()


@pytest.fixture(scope="module")
def quiet_report() -> Report:
    """Nothing above threshold except the negative label: zero events."""
    return make_report(make_probabilities(seed=99, planted=False))


@pytest.fixture
def files(report: Report, tmp_path: Path) -> dict[str, Path]:
    return dict(zip(FORMATS, exports.export_all(report, tmp_path, "clip"), strict=True))


@pytest.fixture
def quiet_files(quiet_report: Report, tmp_path: Path) -> dict[str, Path]:
    return dict(zip(FORMATS, exports.export_all(quiet_report, tmp_path, "quiet"), strict=True))


def read(path: Path) -> str:
    """The file as its target reads it: UTF-8, "\\n" line ends, a newline at the end."""
    text = path.read_bytes().decode("utf-8")
    assert "\r" not in text
    assert text == "" or text.endswith("\n")
    return text


def strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def assert_no_nan(obj: Any, where: str = "$") -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj), where
    elif isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str), where
            assert_no_nan(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            assert_no_nan(v, f"{where}[{i}]")
    else:
        assert obj is None or isinstance(obj, (str, int, bool)), f"{where}: {obj!r}"


def events(report: Report) -> list[tuple[str, float, float, float, float]]:
    return list(report.events[list(EVENT_COLUMNS)].itertuples(index=False, name=None))


# ---------------------------------------------------------------- the hand-made report


def test_report_has_the_planted_events(report: Report) -> None:
    assert report.timeline.duration_s / FRAME_S % 1 != 0  # last frame really is clipped
    assert report.timeline.n_frames == N_FRAMES
    got = [(label, on, off) for label, on, off, _pk, _mn in events(report)]
    assert got == EXPECTED_EVENTS
    probs = report.timeline.probabilities.astype(np.float64)
    for label, on, off, pk, mn in events(report):
        row = probs[LABELS.index(label), round(on / FRAME_S) : math.ceil(off / FRAME_S)]
        assert pk == pytest.approx(row.max()) and mn == pytest.approx(row.mean())
        assert pk >= 0.6


# ---------------------------------------------------------------- one test per format


def test_events_csv_round_trip(report: Report, files: dict[str, Path]) -> None:
    text = read(files["csv"])
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == EVENTS_CSV_COLUMNS
    assert len(rows) == len(report.events)
    assert {(row["status"], row["reviewed_label"]) for row in rows} == {("", "")}  # unreviewed
    for row, (label, on, off, pk, mn) in zip(rows, events(report), strict=True):
        assert row["label"] == label  # commas, quotes, tabs and unicode all survive
        assert float(row["onset_s"]) == on and float(row["offset_s"]) == off
        assert abs(float(row["peak"]) - pk) <= 1e-6
        assert abs(float(row["mean"]) - mn) <= 1e-6

    df = pd.read_csv(files["csv"], encoding="utf-8", dtype={"label": str})
    src = report.events
    assert df["label"].tolist() == src["label"].tolist()
    assert df["onset_s"].tolist() == src["onset_s"].tolist()
    assert df["offset_s"].tolist() == src["offset_s"].tolist()
    assert df["offset_s"].max() == DURATION_S
    np.testing.assert_allclose(df["peak"], src["peak"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(df["mean"], src["mean"], rtol=0, atol=1e-6)


def test_frames_csv_round_trip(report: Report, files: dict[str, Path]) -> None:
    tl = report.timeline
    df = pd.read_csv(
        files["frames-csv"],
        encoding="utf-8",
        dtype={"label": str},
        keep_default_na=False,
    )
    assert list(df.columns) == ["time_s", "label", "probability"]
    assert len(df) == len(LABELS) * N_FRAMES
    got = df.pivot(index="label", columns="time_s", values="probability")
    assert sorted(got.index) == sorted(LABELS)
    assert got.columns.tolist() == tl.frame_times_s.tolist()
    np.testing.assert_allclose(
        got.loc[list(LABELS)].to_numpy(), tl.probabilities, rtol=0, atol=1e-6
    )
    # every label carries every frame time, in order
    for label in LABELS:
        assert df.loc[df["label"] == label, "time_s"].tolist() == tl.frame_times_s.tolist()


def test_json_round_trip(report: Report, files: dict[str, Path]) -> None:
    obj = strict_json(read(files["json"]))
    assert_no_nan(obj)
    tl = report.timeline
    assert obj["labels"] == list(LABELS)
    assert obj["negatives"] == [NEGATIVE]
    assert obj["frame_times_s"] == tl.frame_times_s.tolist()
    assert obj["frame_s"] == FRAME_S
    assert obj["duration_s"] == DURATION_S
    probs = np.asarray(obj["probabilities"], dtype=np.float64)
    assert probs.shape == (len(LABELS), N_FRAMES)
    np.testing.assert_allclose(probs, tl.probabilities, rtol=0, atol=1e-6)

    clip = {c["label"]: c for c in obj["clip_scores"]}
    assert set(clip) == set(LABELS)
    for row, label in enumerate(LABELS):
        assert abs(clip[label]["max"] - float(tl.probabilities[row].max())) <= 1e-6
        assert abs(clip[label]["mean"] - float(tl.probabilities[row].astype(float).mean())) <= 1e-6
        assert clip[label]["negative"] is (label == NEGATIVE)
    maxes = [c["max"] for c in obj["clip_scores"]]
    assert maxes == sorted(maxes, reverse=True)

    assert len(obj["events"]) == len(report.events)
    for got, (label, on, off, pk, mn) in zip(obj["events"], events(report), strict=True):
        assert set(got) == {*EVENT_COLUMNS, "status"} and got["status"] == ""  # unreviewed
        assert (got["label"], got["onset_s"], got["offset_s"]) == (label, on, off)
        assert abs(got["peak"] - pk) <= 1e-6 and abs(got["mean"] - mn) <= 1e-6

    assert obj["model"] == dataclasses.asdict(MODEL)
    assert obj["model"].keys() == {"name", "openflam_version", "checkpoint_sha256"}
    assert obj["settings"] == {
        "hop_s": 2.5,
        "threshold": 0.5,
        "median_frames": 1,
        "label_thresholds": {"café": 0.25},
        "model_dir": "/models/openflam",
        "not_measured": None,  # NaN: strict JSON has none
        "tags": ["a", "b"],
    }
    assert obj["source"] == {  # no "path": exports never name where the audio is kept
        "kind": "file",
        "title": "Park",
        "content_id": "cd" * 32,
        "file_name": "park café, take 2.wav",
        "duration_s": DURATION_S,
    }
    assert obj["extra"] == {"gain_db": -3.0}
    assert isinstance(obj["sonotag_version"], str) and obj["created"]


def test_json_nan_probabilities_become_null() -> None:
    probs = make_probabilities()
    probs[0, 32] = np.nan  # after the last "dog, barking" event
    probs[4, 0] = np.inf
    obj = strict_json(exports.export_text(make_report(probs), "json"))
    assert_no_nan(obj)
    assert obj["probabilities"][0][32] is None and obj["probabilities"][4][0] is None
    assert obj["probabilities"][0][31] == pytest.approx(float(probs[0, 31]), abs=1e-6)
    assert len(obj["events"]) == len(EXPECTED_EVENTS)
    clip = {c["label"]: c for c in obj["clip_scores"]}
    assert clip["dog, barking"]["max"] is None  # max over a NaN row is NaN -> null
    assert clip[NEGATIVE]["max"] is None  # inf -> null too


def test_audacity_round_trip(report: Report, files: dict[str, Path]) -> None:
    lines = read(files["audacity"]).splitlines()
    assert len(lines) == len(report.events)  # no header: Audacity would import it as a label
    for line, (label, on, off, _pk, _mn) in zip(lines, events(report), strict=True):
        fields = line.split("\t")
        assert len(fields) == 3
        assert abs(float(fields[0]) - on) <= 1e-6 and abs(float(fields[1]) - off) <= 1e-6
        assert fields[2] == CLEANED.get(label, label)
    assert lines[-1].split("\t") == ["8.750000", "10.100000", "café"]


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("park café, take 2.wav", "park café, take 2.wav"),
        ("recordings/2024/park.wav", "park.wav"),
        ("C:\\Users\\me\\park.flac", "park.flac"),
    ],
)
def test_dcase_round_trip(tmp_path: Path, file_name: str, expected: str) -> None:
    rep = make_report(file_name=file_name)
    path = exports.write_export(rep, "dcase", tmp_path / "clip.dcase.tsv")
    read(path)
    df = pd.read_csv(
        path,
        sep="\t",
        encoding="utf-8",
        dtype={"filename": str, "event_label": str},
        keep_default_na=False,
    )
    assert list(df.columns) == ["filename", "onset", "offset", "event_label"]
    assert df["filename"].tolist() == [expected] * len(rep.events)
    assert df["event_label"].tolist() == [CLEANED.get(x, x) for x in rep.events["label"]]
    assert df["onset"].tolist() == rep.events["onset_s"].tolist()
    assert df["offset"].tolist() == rep.events["offset_s"].tolist()
    # sed_eval-style reading: the csv module with a tab delimiter
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert rows[0] == ["filename", "onset", "offset", "event_label"]
    assert [(r[0], float(r[1]), float(r[2]), r[3]) for r in rows[1:]] == list(
        df.itertuples(index=False, name=None)
    )


def test_raven_round_trip(report: Report, files: dict[str, Path]) -> None:
    lines = read(files["raven"]).split("\n")
    assert lines[-1] == ""
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:-1]]
    assert header == RAVEN_COLUMNS
    assert len(rows) == len(report.events)
    assert all(len(row) == len(header) for row in rows)
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    for row, (label, on, off, pk, mn) in zip(rows, events(report), strict=True):
        rec = dict(zip(header, row, strict=True))
        assert rec["View"] == "Spectrogram 1" and rec["Channel"] == "1"
        assert float(rec["Begin Time (s)"]) == on and float(rec["End Time (s)"]) == off
        # decimals, as Raven writes them (readers that check types want floats)
        assert (rec["Low Freq (Hz)"], rec["High Freq (Hz)"]) == ("0.0", "24000.0")
        assert "." in rec["Begin Time (s)"] and "." in rec["End Time (s)"]
        assert rec["Label"] == CLEANED.get(label, label)  # verbatim: Raven does no quoting
        assert rec["Annotation"] == rec["Label"] and rec["Review"] == ""  # not reviewed
        assert abs(float(rec["Peak"]) - pk) <= 1e-6 and abs(float(rec["Mean"]) - mn) <= 1e-6


def test_raven_whole_second_times_are_decimals() -> None:
    """Events on whole seconds (frame 16 = 5 s): Raven's own form is ``5.0``, not ``5``."""
    probs = np.zeros((len(LABELS), N_FRAMES), np.float32)
    probs[0, 16:32] = 0.9  # "dog, barking" from 5.0 s to 10.0 s
    rows = exports.export_text(make_report(probs), "raven").splitlines()[1:]
    assert [row.split("\t")[3:7] for row in rows] == [["5.0", "10.0", "0.0", "24000.0"]]


# ---------------------------------------------------------------- across formats


def event_labels(fmt: str, path: Path) -> list[str]:
    """Event labels of one event export, parsed by that format's own convention."""
    text = read(path)
    if fmt == "csv":
        return [r["label"] for r in csv.DictReader(io.StringIO(text, newline=""))]
    if fmt == "json":
        return [e["label"] for e in strict_json(text)["events"]]
    if fmt == "audacity":
        return [line.split("\t")[2] for line in text.splitlines()]
    if fmt == "dcase":
        return [r["event_label"] for r in csv.DictReader(io.StringIO(text), delimiter="\t")]
    if fmt == "raven":
        return [line.split("\t")[7] for line in text.splitlines()[1:]]
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt", EVENT_FORMATS)
def test_negative_labels_never_in_event_exports(
    fmt: str, report: Report, files: dict[str, Path]
) -> None:
    labels = event_labels(fmt, files[fmt])
    assert NEGATIVE not in labels
    verbatim = fmt in ("csv", "json")  # the others clean tabs out of labels
    expected = [x if verbatim else CLEANED.get(x, x) for x, _on, _off in EXPECTED_EVENTS]
    assert labels == expected


def test_every_event_format_is_covered() -> None:
    assert set(FORMATS) == {*EVENT_FORMATS, "frames-csv"}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_zero_events_still_parse(
    fmt: str, quiet_report: Report, quiet_files: dict[str, Path]
) -> None:
    assert len(quiet_report.events) == 0
    assert quiet_report.timeline.probabilities[LABELS.index(NEGATIVE)].min() >= 0.6
    path = quiet_files[fmt]
    text = read(path)
    if fmt == "csv":
        df = pd.read_csv(path)
        assert list(df.columns) == EVENTS_CSV_COLUMNS
        assert len(df) == 0
    elif fmt == "frames-csv":  # frames are written whether or not there are events
        df = pd.read_csv(path, dtype={"label": str}, keep_default_na=False)
        assert len(df) == len(LABELS) * N_FRAMES
    elif fmt == "json":
        obj = strict_json(text)
        assert obj["events"] == [] and len(obj["probabilities"]) == len(LABELS)
    elif fmt == "audacity":
        assert text == ""
    elif fmt == "dcase":
        df = pd.read_csv(path, sep="\t")
        assert list(df.columns) == ["filename", "onset", "offset", "event_label"]
        assert len(df) == 0
    elif fmt == "raven":
        assert text.split("\n") == ["\t".join(RAVEN_COLUMNS), ""]
    else:
        raise AssertionError(f"untested format {fmt}")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_zero_frames_still_parse(fmt: str) -> None:
    tl = Timeline(LABELS, np.zeros((len(LABELS), 0), np.float32), 0.0, frozenset({NEGATIVE}))
    rep = Report({}, MODEL, {}, tl, detect_events(tl, EventParams()))
    text = exports.export_text(rep, fmt)
    if fmt == "json":
        obj = strict_json(text)
        assert obj["probabilities"] == [[]] * len(LABELS) and obj["frame_times_s"] == []
    elif fmt == "audacity":
        assert text == ""
    else:
        lines = text.split("\n")
        assert len(lines) == 2 and lines[1] == "" and lines[0]


# ---------------------------------------------------------------- files on disk


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_write_export_is_atomic(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    def broken(rep: Report, out: TextIO) -> None:
        out.write("label,onset_s\nhalf a row" * 1000)
        out.flush()
        raise error("writer failed midway")

    monkeypatch.setitem(FORMATS, "csv", dataclasses.replace(FORMATS["csv"], write=broken))
    target = tmp_path / "clip.events.csv"
    target.write_text("the good old export\n", encoding="utf-8")
    with pytest.raises(error):
        exports.write_export(report, "csv", target)
    assert target.read_text(encoding="utf-8") == "the good old export\n"
    assert sorted(os.listdir(tmp_path)) == ["clip.events.csv"]

    fresh = tmp_path / "new.events.csv"  # no file before: still none after
    with pytest.raises(error):
        exports.write_export(report, "csv", fresh)
    assert sorted(os.listdir(tmp_path)) == ["clip.events.csv"]


def test_write_export_via_custom_format(
    report: Report, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half(rep: Report, out: TextIO) -> None:
        exports.write_events_csv(rep, out)
        raise ValueError("disk full, say")

    monkeypatch.setitem(FORMATS, "half", ExportFormat("half", ".half.csv", "text/csv", "", half))
    target = tmp_path / "x.half.csv"
    target.write_bytes(b"\x00old")
    with pytest.raises(ValueError, match="disk full"):
        exports.write_export(report, "half", target)
    assert target.read_bytes() == b"\x00old"
    assert os.listdir(tmp_path) == ["x.half.csv"]


def test_write_export_replaces_and_keeps_permissions(report: Report, tmp_path: Path) -> None:
    target = tmp_path / "clip.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o640)
    assert exports.write_export(report, "json", target) == target
    assert strict_json(read(target))["labels"] == list(LABELS)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = exports.write_export(report, "csv", tmp_path / "new.events.csv")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # readable by others, unlike mkstemp
    assert sorted(os.listdir(tmp_path)) == ["clip.json", "new.events.csv"]


def test_export_all_one_file_per_format(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir"
    paths = exports.export_all(report, out, "café clip")
    assert len(paths) == len(FORMATS) == len({p.name for p in paths})
    assert sorted(os.listdir(out)) == sorted(p.name for p in paths)
    for path, (name, fmt) in zip(paths, FORMATS.items(), strict=True):
        assert path == out / f"café clip{fmt.suffix}"
        text = read(path)
        if name == "json":  # "created" is a timestamp; everything else must match
            got, want = strict_json(text), strict_json(exports.export_text(report, name))
            got.pop("created"), want.pop("created")
            assert got == want
        else:
            assert text == exports.export_text(report, name)


@pytest.mark.parametrize("stem", ["../x", "a/b", "a\\b", "/abs", "", ".", "..", "a\x00b"])
def test_export_all_refuses_path_like_stems(report: Report, tmp_path: Path, stem: str) -> None:
    with pytest.raises(ConfigError, match="plain file name"):
        exports.export_all(report, tmp_path / "out", stem)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("bad", ["nope", "CSV", "", None, ["csv"]])
def test_get_format_unknown_names_valid_ones(bad: Any) -> None:
    with pytest.raises(ConfigError) as info:
        exports.get_format(bad)
    for name in FORMATS:
        assert name in str(info.value)
    with pytest.raises(ConfigError):
        exports.export_text(make_report(), bad)


def test_get_format_known() -> None:
    for name, fmt in FORMATS.items():
        assert exports.get_format(name) is fmt and fmt.name == name
    assert len({f.suffix for f in FORMATS.values()}) == len(FORMATS)


# ---------------------------------------------------------------- reviews

# verdicts on EXPECTED_EVENTS: a relabel that begins like a formula (sheet-safety applies),
# a rejection, one event left open, and a verdict on an event that does not exist
REVIEWED = [
    ("dog, barking", 4 * FRAME_S, 12 * FRAME_S, "accepted", None),
    ("bird\tsong", 8 * FRAME_S, 10 * FRAME_S, "rejected", None),
    ('say "hi"', 15 * FRAME_S, 18 * FRAME_S, "accepted", "+speech"),
    ("café", 28 * FRAME_S, DURATION_S, "accepted", None),
    ("café", 2 * FRAME_S, 3 * FRAME_S, "rejected", None),  # no such event: matches nothing
]
STATUSES = ["accepted", "rejected", "accepted", "", "accepted"]  # per EXPECTED_EVENTS row


def reviewed_report() -> Report:
    from sonotag_core.domain.review import Review, with_reviews

    reviews = [
        Review.of_event(label, on, off, status, relabel=relabel)
        for label, on, off, status, relabel in REVIEWED
    ]
    return with_reviews(make_report(), reviews)


def test_events_carry_their_review_in_csv_json_and_raven(tmp_path: Path) -> None:
    rep = reviewed_report()
    files = dict(zip(FORMATS, exports.export_all(rep, tmp_path, "clip"), strict=True))
    rows = list(csv.DictReader(io.StringIO(read(files["csv"]), newline="")))
    assert list(rows[0]) == EVENTS_CSV_COLUMNS
    assert [r["label"] for r in rows] == [label for label, _on, _off in EXPECTED_EVENTS]
    assert [r["status"] for r in rows] == STATUSES
    assert [r["reviewed_label"] for r in rows] == ["", "", "'+speech", "", ""]  # sheet-safe

    doc = strict_json(read(files["json"]))
    assert [e["status"] for e in doc["events"]] == STATUSES
    assert [e.get("reviewed_label") for e in doc["events"]] == [None, None, "+speech", None, None]
    assert "reviewed_only" not in doc["settings"]

    lines = read(files["raven"]).splitlines()
    header = lines[0].split("\t")
    assert header[-2:] == ["Annotation", "Review"]
    records = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    # the class where Raven readers look for it (the correction, sheet-safe), the status apart
    assert [r["Annotation"] for r in records] == [
        "dog, barking",
        "bird song",
        "'+speech",
        "dog, barking",
        "café",
    ]
    assert [r["Label"] for r in records] == [
        label.replace("\t", " ") for label, _on, _off in EXPECTED_EVENTS
    ]
    assert [r["Review"] for r in records] == STATUSES


# accepted events, under their corrected labels, as each format writes a label
ACCEPTED_EVENTS = [
    ("dog, barking", 4 * FRAME_S, 12 * FRAME_S),
    ("+speech", 15 * FRAME_S, 18 * FRAME_S),
    ("café", 28 * FRAME_S, DURATION_S),
]
SHEET_SAFE = {"csv": "'+speech", "dcase": "'+speech", "raven": "'+speech"}


@pytest.mark.parametrize("fmt", EVENT_FORMATS)
def test_reviewed_exports_hold_accepted_events_only(fmt: str, tmp_path: Path) -> None:
    rep = reviewed_report()
    path = exports.write_export(rep, fmt, tmp_path / f"x{FORMATS[fmt].suffix}", reviewed=True)
    want = [
        SHEET_SAFE.get(fmt, label) if label == "+speech" else label
        for label, _on, _off in ACCEPTED_EVENTS
    ]
    assert event_labels(fmt, path) == want
    assert read(path) == exports.export_text(rep, fmt, reviewed=True)
    if fmt == "audacity":
        times = [float(t) for line in read(path).splitlines() for t in line.split("\t")[:2]]
        assert times == pytest.approx([t for _l, on, off in ACCEPTED_EVENTS for t in (on, off)])
    if fmt == "dcase":
        df = pd.read_csv(path, sep="\t", keep_default_na=False)
        assert list(zip(df.onset, df.offset, strict=True)) == [
            (on, off) for _l, on, off in ACCEPTED_EVENTS
        ]
    if fmt == "json":
        doc = strict_json(read(path))
        assert doc["settings"]["reviewed_only"] is True
        assert {e["status"] for e in doc["events"]} == {"accepted"}


def test_reviewed_export_of_an_unreviewed_report_has_no_events() -> None:
    rep = make_report()
    assert len(rep.events) == len(EXPECTED_EVENTS)
    assert exports.export_text(rep, "audacity", reviewed=True) == ""
    assert exports.export_text(rep, "dcase", reviewed=True).splitlines() == [
        "filename\tonset\toffset\tevent_label"
    ]
    # frames are not events: the same with or without reviewed
    assert exports.export_text(rep, "frames-csv", reviewed=True) == exports.export_text(
        rep, "frames-csv"
    )


def test_export_zip_holds_every_format_and_is_deterministic(monkeypatch) -> None:
    import zipfile
    from datetime import datetime

    rep = reviewed_report()
    data = exports.export_zip(rep, stem="café clip")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert [i.filename for i in infos] == [f"café clip{f.suffix}" for f in FORMATS.values()]
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        for name, info in zip(FORMATS, infos, strict=True):
            assert zf.read(info).decode("utf-8") == exports.export_text(rep, name)

    class LaterClock(datetime):  # the JSON must not take its time from the clock
        @classmethod
        def now(cls, tz=None):
            return datetime(2099, 1, 1, tzinfo=tz)

    monkeypatch.setattr(exports, "datetime", LaterClock)
    assert exports.export_zip(rep, stem="café clip") == data
    reviewed = exports.export_zip(rep, stem="café clip", reviewed=True)
    assert reviewed != data
    with zipfile.ZipFile(io.BytesIO(reviewed)) as zf:
        for name, fmt in FORMATS.items():
            got = zf.read(f"café clip{fmt.suffix}").decode("utf-8")
            assert got == exports.export_text(rep, name, reviewed=True)
    with pytest.raises(ConfigError, match="plain file name"):
        exports.export_zip(rep, stem="../x")

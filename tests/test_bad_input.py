"""Untrusted text, hostile on purpose: labels (the label box, the CLI, share links), upload
names and links with invisible or direction-changing characters, huge lengths and counts,
shell and path syntax. Bounded work, clean messages, and nothing reaching a path or a
shell. (Link forms, hostile query values and control characters in labels that other
tests already cover are not repeated here.)"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from audiogen import make_audio

from sonotag_core import exports
from sonotag_core.dashboard import share
from sonotag_core.domain.labels import LabelSet, parse_labels, text_limit
from sonotag_core.errors import DecodeError, LimitError, SourceError
from sonotag_core.media import sources
from sonotag_core.settings import Settings
from sonotag_core.store.database import Store
from sonotag_core.untrusted import one_line, shown

S = Settings()
SONOTAG = str(Path(sys.executable).parent / "sonotag")
INVISIBLE = {
    "rtl override": "\u202e",
    "ltr override": "\u202d",
    "pop direction": "\u202c",
    "rtl isolate": "\u2067",
    "pop isolate": "\u2069",
    "zero-width joiner": "\u200d",
    "zero-width space": "\u200b",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "nul": "\x00",
    "escape": "\x1b",
    "delete": "\x7f",
    "c1 control": "\x9b",
}


def limits(text, **kw):
    return parse_labels(text, max_labels=S.max_labels, max_chars=S.max_label_chars, **kw)


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_and_direction_characters_are_dropped_from_labels(char):
    parsed = limits(f"{char}dog{char} barking; si{char}ren{char}; -{char}music")
    assert parsed.labels == ("dog barking", "siren", "music")
    assert parsed.negatives == {"music"}


def test_a_reversed_label_stays_what_it_says():
    """An RTL override would show "siren" while the text is "neris": the override goes,
    so what is scored and exported is what the user sees."""
    assert limits("\u202eneris\u202c").labels == ("neris",)
    with pytest.raises(LimitError, match="at least one label"):
        limits("\u2067\u202e\u200d\ufeff ; \x00\x1b")


@pytest.fixture
def cleaned_chars(monkeypatch) -> list[int]:
    """Characters that went through the per-character label cleaning (the slow part of
    parsing): a bound on this is a bound on the work, with no clock in the test."""
    from sonotag_core.domain import labels as labels_module

    counts: list[int] = []
    real = labels_module._clean

    def counting(text: str) -> str:
        counts.append(len(text))
        return real(text)

    monkeypatch.setattr(labels_module, "_clean", counting)
    return counts


def test_a_10000_character_label_is_refused_with_a_short_message(cleaned_chars):
    with pytest.raises(LimitError, match=f"limit is {S.max_label_chars}") as err:
        limits("a" * 10_000)
    assert len(str(err.value)) < 300 and "10000 characters" in str(err.value)
    assert sum(cleaned_chars) == 0  # refused on its raw length, before any cleaning


@pytest.mark.parametrize(
    "text",
    ["a" * 120_000, "a" * 1_000_000, "dog; " + "b" * 1_000_000, "a;" * 500_000],
    ids=["120kB-label", "1MB-label", "1MB-second-label", "500000-labels"],
)
def test_huge_label_text_is_refused_after_bounded_work(cleaned_chars, text):
    """A 1 MB label text took over a minute (duplicates were looked up in a list, and
    every character was cleaned): now it is refused on its size, the label shortened."""
    with pytest.raises(LimitError) as err:
        limits(text)
    message = str(err.value)
    assert len(message) < 300 and "\n" not in message
    assert ("characters long" in message) or ("labels given" in message), message
    assert sum(cleaned_chars) <= text_limit(S.max_labels, S.max_label_chars)


def test_10000_labels_are_refused_after_bounded_work(cleaned_chars):
    with pytest.raises(LimitError, match=f"10000 labels given; the limit is {S.max_labels}"):
        limits(";".join(f"label {i}" for i in range(10_000)))
    with pytest.raises(LimitError, match="10000 labels"):
        limits([f"label {i}" for i in range(10_000)])
    # the list is cleaned only up to one label past the limit; the rest is only counted
    assert len(cleaned_chars) <= S.max_labels + 1


def test_limits_still_hold_just_under_the_text_bound():
    many = "; ".join(f"label {i}" for i in range(S.max_labels))
    assert len(limits(many).labels) == S.max_labels
    padded = "\n" * 5000 + "siren" + " " * 5000  # blank lines and spaces are not labels
    assert len(padded) < text_limit(S.max_labels, S.max_label_chars)
    assert limits(padded).labels == ("siren",)


def test_shell_and_path_syntax_is_only_text():
    text = "$(touch /tmp/x); `id`; ../../etc/passwd; a|b && c > /dev/null"
    parsed = limits(text)
    assert parsed.labels == ("$(touch /tmp/x)", "`id`", "../../etc/passwd", "a|b && c > /dev/null")


# ---------------------------------------------------------------- share links


def test_10000_labels_and_thresholds_in_a_link_are_cut(cleaned_chars):
    params = {
        "l": [f"\u202elabel {i}" for i in range(10_000)],
        "lt": [f"label {i}:0.3" for i in range(10_000)],
    }
    state, warnings = share.from_query_params(params, settings=S, example_ids=())
    assert state.labels == tuple(f"label {i}" for i in range(S.max_labels))
    assert len(state.label_thresholds) == S.max_labels
    assert 1 <= len(warnings) <= 3 and all(len(w) <= 300 for w in warnings)
    assert len(cleaned_chars) < 10 * S.max_labels  # the cut comes before the work


def test_direction_characters_in_link_labels_are_dropped():
    state, warnings = share.from_query_params(
        {"l": ["\u202eneris", "dog\u200d barking", "\u2067\u2069"]}, settings=S, example_ids=()
    )
    assert state.labels == ("neris", "dog barking") and warnings == []
    again, _ = share.from_query_params(
        share.to_query_params(state, settings=S), settings=S, example_ids=()
    )
    assert again == state


# ---------------------------------------------------------------- links


@pytest.mark.parametrize(
    "link",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ\u202e",
        "https://youtu.be/dQw4w9WgXcQ\x00",
        "https://www.youtube.com\u200b/watch?v=dQw4w9WgXcQ",
        "\ufeffhttps://youtu.be/dQw4w9WgXcQ",
    ],
)
def test_links_with_invisible_characters_are_refused(link):
    with pytest.raises(SourceError, match="control characters"):
        sources.parse_link(link)


def test_lookalike_hosts_are_refused():
    for link in (
        "https://ｙｏｕｔｕｂｅ.com/watch?v=dQw4w9WgXcQ",  # fullwidth letters
        "https://www.youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
        "https://xn--yutube-wqf.com/watch?v=dQw4w9WgXcQ",
    ):
        with pytest.raises(SourceError, match="not supported"):
            sources.parse_link(link)


# ---------------------------------------------------------------- upload names


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd\x00.wav",
        "..\\..\\windows\\evil.wav",
        "/etc/cron.d/job.wav",
        "\u202evaw.exe",
        "clip.wav\x00.sh",
        "x" * 10_000 + ".wav",
        "....wav",
        "",
    ],
    ids=["traversal+nul", "backslashes", "absolute", "rtl", "nul-suffix", "10000", "dots", "empty"],
)
def test_upload_names_never_reach_a_path(tmp_path, name):
    data = make_audio(tmp_path / "src.wav", 1.0).read_bytes()
    uploads = tmp_path / "uploads"
    info = sources.from_upload(data, name, uploads)
    assert info.path.parent == uploads and info.path.resolve().parent == uploads.resolve()
    assert info.path.name.startswith(hashlib.sha256(data).hexdigest()[:16])
    assert all(c.isalnum() or c == "." for c in info.path.name)
    assert [p.name for p in uploads.iterdir()] == [info.path.name]
    for text in (info.title, info.file_name):
        assert len(text) <= 200 and not any(c in text for c in "\x00\u202e\n")


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli(cli_here):
    return cli_here


def test_cli_refuses_huge_labels_in_one_short_line(tmp_path, cli, capsys):
    clip = make_audio(tmp_path / "c.wav", 2.0)
    for labels in ("x" * 10_000, ";".join(["y"] * 5 + [f"l{i}" for i in range(10_000)])):
        assert cli("analyze", str(clip), "--labels", labels, "-q") == 1
        err = capsys.readouterr().err
        assert err.startswith("sonotag: error: ") and err.count("\n") == 1 and len(err) < 300


def test_cli_labels_and_file_names_are_only_data(tmp_path, cli, capsys, monkeypatch):
    """Shell syntax in labels is scored and exported as text; a file whose name has no
    usable stem ("...wav") still gets its exports, named "sonotag.*", inside -o."""
    monkeypatch.chdir(tmp_path)
    clip = make_audio(tmp_path / "...wav", 12.0, kind="mix")  # its stem: ".."
    labels = "$(touch pwned); ../../escape; `touch pwned2`"
    out = tmp_path / "out"
    assert (
        cli("analyze", str(clip), "--labels", labels, "--format", "all", "-o", str(out), "-q") == 0
    )
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6 and all(name.startswith("sonotag.") for name in written), written
    frames = (out / "sonotag.frames.csv").read_text()
    assert "$(touch pwned)" in frames and "../../escape" in frames
    assert not list(tmp_path.glob("pwned*")) and not (tmp_path.parent / "escape").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["...wav", "data", "out"]
    assert Path(out / "sonotag.json").stat().st_size > 0


# ---------------------------------------------------------------- where -o points (#14.1, #14.2)


def report_for_files():
    from test_exports import make_report

    return make_report()


def null_device(folder: Path) -> Path:
    """A character device like /dev/null, made in the test's own folder (needs root), so a
    regression replaces this node and never the machine's real /dev/null."""
    node = folder / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root; the FIFO case still runs")
    return node


def test_export_onto_a_character_device_writes_in_place(tmp_path):
    node = null_device(tmp_path)
    exports.write_export(report_for_files(), "json", node)
    assert stat.S_ISCHR(os.lstat(node).st_mode)  # still the device, not a 1 kB file
    assert sorted(os.listdir(tmp_path)) == ["null"]  # and no temp file beside it


def test_export_into_a_fifo_is_read_by_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    report = report_for_files()
    exports.write_export(report, "csv", fifo)
    reader.join(timeout=60)
    assert got == [exports.export_text(report, "csv").encode()]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["pipe"]


def test_export_through_a_symlink_keeps_the_link(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    report = report_for_files()
    exports.write_export(report, "csv", link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == exports.export_text(report, "csv")
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real.csv"]


def test_cli_output_to_a_symlink_to_its_own_stdout(tmp_path, cli_env):
    """``-o`` a link to /proc/self/fd/1: the export reaches stdout and the link stays."""
    link = tmp_path / "out.csv"
    link.symlink_to("/proc/self/fd/1")
    clip = make_audio(tmp_path / "c.wav", 3.0)
    env = dict(cli_env, SONOTAG_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [SONOTAG, "analyze", str(clip), "--labels", "a tone", "-q", "-o", str(link)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("label,onset_s,offset_s,peak,mean,status,reviewed_label\n")
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


@pytest.mark.parametrize("dash", ["-", None])
def test_cli_dash_or_no_output_is_stdout(tmp_path, cli, capsys, monkeypatch, dash):
    monkeypatch.chdir(tmp_path)
    clip = make_audio(tmp_path / "c.wav", 3.0)
    args = ["analyze", str(clip), "--labels", "a tone", "-q"] + (["-o", dash] if dash else [])
    assert cli(*args) == 0
    assert capsys.readouterr().out.startswith(
        "label,onset_s,offset_s,peak,mean,status,reviewed_label\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.wav", "data"]  # no file "-"


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if the model is loaded: a bad -o must be refused before any work."""
    from sonotag_core.inference import model

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded for a run that could never be written")

    monkeypatch.setattr(model, "load_model", refuse)


@pytest.mark.parametrize(
    "where, message",
    [
        ("missing/dir/x.csv", "No such directory: '{tmp}/missing/dir'. Create it or choose"),
        (".", "'{tmp}' is a directory: give a file name inside it"),
        ("/proc/sonotag-x.csv", "Cannot write '/proc/sonotag-x.csv'"),
        ("afile/x.csv", "'{tmp}/afile' is not a directory"),
    ],
    ids=["missing-dir", "a-directory", "proc", "under-a-file"],
)
def test_cli_bad_output_paths_get_one_clear_line(tmp_path, cli, capsys, no_model, where, message):
    (tmp_path / "afile").write_text("x")
    clip = make_audio(tmp_path / "c.wav", 3.0)
    target = where if where.startswith("/") else str(tmp_path / where)
    before = sorted(os.listdir(tmp_path))
    assert cli("analyze", str(clip), "--labels", "a tone", "-q", "-o", target) == 1
    err = capsys.readouterr().err
    assert err.startswith("sonotag: error: ") and err.count("\n") == 1, err
    assert message.format(tmp=tmp_path) in err and "internal error" not in err
    assert sorted(os.listdir(tmp_path)) == before + (["data"] if "data" not in before else [])
    assert not [p for p in Path("/proc").glob(".sonotag-x*")]


def test_cli_format_all_onto_a_file_is_refused(tmp_path, cli, capsys, no_model):
    clip = make_audio(tmp_path / "c.wav", 3.0)
    (tmp_path / "taken").write_text("keep me")
    assert (
        cli("analyze", str(clip), "--labels", "x", "--format", "all", "-o", str(tmp_path / "taken"))
        == 1
    )
    assert "is a file; --format all writes one file per format" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == "keep me"


# ---------------------------------------------------------------- formula injection (#14.3)

FORMULAS = ('=HYPERLINK("http://127.0.0.1/x","x")', "+cmd", "@SUM(1+1)", "=1+2")


def formula_report(tmp_path: Path):
    """Real labels through the parser ("-" marks a negative), events planted in every
    frame of the positives, and a file name that starts like a formula too."""
    import numpy as np

    from sonotag_core.domain.events import EventParams, detect_events
    from sonotag_core.domain.report import ModelInfo, Report
    from sonotag_core.domain.timeline import Timeline

    parsed = limits("; ".join(FORMULAS) + "; -=NEG()")
    probs = np.full((len(parsed.labels), 32), 0.9, dtype=np.float32)
    tl = Timeline(parsed.labels, probs, 10.0, parsed.negatives)
    source = {
        "kind": "file",
        "path": tmp_path / "-2+3.wav",
        "title": "x",
        "content_id": "0" * 64,
        "file_name": "-2+3.wav",
        "duration_s": 10.0,
    }
    return parsed, Report(
        source=source,
        model=ModelInfo("v1-base", "1", "ab" * 32),
        settings={},
        timeline=tl,
        events=detect_events(tl, EventParams()),
    )


def cells(text: str, delimiter: str) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


@pytest.mark.parametrize(
    "fmt, delimiter, columns",
    [("csv", ",", [0]), ("frames-csv", ",", [1]), ("dcase", "\t", [0, 3]), ("raven", "\t", [7])],
)
def test_spreadsheet_exports_neutralise_formulas(tmp_path, fmt, delimiter, columns):
    parsed, report = formula_report(tmp_path)
    rows = cells(exports.export_text(report, fmt), delimiter)[1:]
    assert rows
    seen = {row[c] for row in rows for c in columns}
    for cell in seen:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # the leading quote is the only change: strip it and the labels come back exactly
    text_cells = {c[1:] if c.startswith("'") else c for c in seen}
    assert text_cells & set(parsed.labels)
    assert text_cells <= set(parsed.labels) | {"-2+3.wav"}


def test_formula_labels_round_trip_where_formats_are_not_spreadsheets(tmp_path):
    parsed, report = formula_report(tmp_path)
    obj = json.loads(exports.export_text(report, "json"))
    assert obj["labels"] == list(parsed.labels) and obj["negatives"] == ["=NEG()"]
    # our own "-" syntax still round-trips: the negative keeps its meaning
    again = limits(LabelSet(tuple(obj["labels"]), frozenset(obj["negatives"])).to_text())
    assert again == parsed
    audacity = [
        line.split("\t")[2] for line in exports.export_text(report, "audacity").splitlines()
    ]
    assert set(audacity) == set(FORMULAS)  # Audacity shows label text literally


# ---------------------------------------------------------------- NaN / inf samples (#14.4)


def float_wav(path: Path, samples, rate: int = 48_000, channels: int = 1) -> Path:
    import numpy as np
    import soundfile

    data = np.asarray(samples, dtype=np.float32)
    soundfile.write(
        path, np.stack([data] * channels, 1) if channels > 1 else data, rate, subtype="FLOAT"
    )
    return path


@pytest.mark.parametrize("case", ["one-nan", "inf-resampled-stereo", "all-nan", "minus-inf"])
def test_non_finite_samples_are_refused(tmp_path, case):
    import numpy as np

    from sonotag_core.media import decode

    tone = np.sin(np.arange(3 * 48_000) / 10.0).astype(np.float32)
    if case == "one-nan":
        tone[48_000] = np.nan
        path = float_wav(tmp_path / "x.wav", tone)
    elif case == "inf-resampled-stereo":
        tone = np.sin(np.arange(3 * 44_100) / 10.0)
        tone[2 * 44_100] = np.inf
        path = float_wav(tmp_path / "x.wav", tone, rate=44_100, channels=2)
    elif case == "all-nan":
        path = float_wav(tmp_path / "x.wav", np.full(48_000, np.nan))
    else:
        tone[-1] = -np.inf
        path = float_wav(tmp_path / "x.wav", tone)
    with pytest.raises(DecodeError, match="not numbers \\(NaN or infinity\\)") as err:
        decode.decode_all(path)
    assert "'x.wav'" in str(err.value) and "Export it again" in str(err.value)


def test_cli_refuses_nan_audio_and_stores_nothing(tmp_path, cli, capsys):
    import numpy as np

    clip = float_wav(tmp_path / "nan.wav", np.full(48_000 * 2, np.nan))
    assert cli("analyze", str(clip), "--labels", "a tone", "-q") == 1
    err = capsys.readouterr().err
    assert err.startswith("sonotag: error: 'nan.wav' contains samples that are not numbers")
    assert Store(tmp_path / "data").list_analyses() == []


# ---------------------------------------------------------------- terminal injection (#14.5)


@pytest.mark.parametrize(
    "name",
    ["a\nsonotag: all good.wav", "\u202evaw.exe", "bell\x07\x1b[31m.wav"],
    ids=["newline", "rtl-override", "escape-sequence"],
)
def test_untrusted_names_are_escaped_in_one_line_messages(tmp_path, cli, capsys, name):
    bad = tmp_path / name
    bad.write_text("not audio")
    assert cli("analyze", str(bad), "--labels", "x", "-q") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sonotag: error: "), err
    assert not any(c in err[:-1] for c in "\n\u202e\x07\x1b"), err
    assert shown(name) in err  # escaped, still recognisable: \n, \u202e, \x1b
    log = (tmp_path / "data" / "logs" / "sonotag.log").read_text()
    assert all(
        line[:4].isdigit() or line.startswith(("Traceback", " ", "sonotag_core"))
        for line in log.splitlines()
        if line
    ), log
    assert "\u202e" not in log and "\x1b" not in log


@pytest.mark.parametrize("kind", ["link", "path"])
def test_a_100kb_argument_is_shortened_in_the_message(tmp_path, cli, capsys, kind):
    huge = ("https://www.youtube.com/watch?v=" if kind == "link" else "") + "a" * 100_000
    assert cli("analyze", huge, "--labels", "x", "-q") == 1
    err = capsys.readouterr().err
    assert err.startswith("sonotag: error: ") and err.count("\n") == 1 and len(err) < 400, err
    assert "internal error" not in err


def test_shown_escapes_and_bounds():
    assert shown("a\nb\u202ec\x00") == "a\\nb\\u202ec\\x00"
    assert shown("x" * 1000) == "x" * 80 + "…"
    assert one_line("two\nlines\u2028") == "two\\nlines\\u2028"
    assert shown("café ✓ 狗") == "café ✓ 狗"  # ordinary text is left alone


# ---------------------------------------------------------------- a file named like a URL (#14.6)


@pytest.mark.parametrize("name", ["file:victim.wav", "pipe:victim.wav"])
def test_a_protocol_looking_file_name_reads_that_file(tmp_path, cli, capsys, monkeypatch, name):
    """``file:victim.wav`` (a text file) next to a real ``victim.wav``: ffmpeg must read
    the text file the user named, fail on it, and store nothing under its id."""
    monkeypatch.chdir(tmp_path)
    make_audio(tmp_path / "victim.wav", 3.0)
    (tmp_path / name).write_text("just text, not audio\n" * 50)
    assert cli("analyze", name, "--labels", "a tone", "-q") == 1
    err = capsys.readouterr().err
    assert f"'{name}' could not be read as audio" in err, err
    assert Store(tmp_path / "data").list_analyses() == []


def test_a_protocol_looking_audio_file_is_its_own_audio(tmp_path, monkeypatch):
    from sonotag_core.media import decode

    monkeypatch.chdir(tmp_path)
    make_audio(tmp_path / "victim.wav", 3.0)
    make_audio(tmp_path / "file:victim.wav", 1.0)
    assert decode.decode_all(Path("file:victim.wav")).size == 48_000
    assert decode.probe(Path("file:victim.wav")).duration_s == pytest.approx(1.0, abs=0.05)


def test_messages_name_the_users_upload_not_the_servers_copy(
    tmp_path, standin_model, standin_settings
):
    """An upload is kept as <sha256>.<ext>; every message still says what the user chose."""
    import numpy as np

    from sonotag_core.service import library

    with pytest.raises(DecodeError) as err:
        sources.from_upload(b"not audio at all " * 100, "garbage.mp3", tmp_path / "up")
    assert str(err.value).startswith("'garbage.mp3' could not be read as audio")
    data = float_wav(tmp_path / "src.wav", np.full(48_000, np.nan)).read_bytes()
    src = sources.from_upload(data, "field take 3.wav", tmp_path / "up")
    assert src.path.name != "field take 3.wav"
    with pytest.raises(DecodeError) as err:
        library.run(
            standin_model, src, limits("a tone"), hop_s=10.0, settings=standin_settings, store=None
        )
    assert str(err.value).startswith("'field take 3.wav' contains samples that are not numbers")

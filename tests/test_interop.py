"""Every export read back by the tool it is for, not by our own parsing (issue 25):
crowsetta for Raven and Audacity, sed_eval / dcase_util for DCASE, DuckDB for the batch
parts, pandas for the CSVs, and SonoTag's own truth reader for the DCASE and Raven files
Evaluate takes back. The labels are hostile but legal: a comma, double quotes, non-ASCII,
a leading ``=``/``+``/``-``/``@`` (a leading ``-`` is a negative prompt in our label
syntax, so the reports are built by hand, as tests/test_exports.py builds them; no model).

What each tool gets for a label that begins like a formula (or, in the unquoted
tab-separated files, with ``"``) is the label with a leading ``'`` (the README's
"Spreadsheet formulas"); Audacity's track and the Parquet parts keep the text as it is.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import crowsetta
import duckdb
import numpy as np
import pandas as pd
import pytest
import sed_eval

from sonotag_core import exports
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.events import EventParams, detect_events
from sonotag_core.domain.report import ModelInfo, Report
from sonotag_core.domain.review import Review, with_reviews
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.truth import parse_truth

# one event each, in this order: a comma, a quoted word, non-ASCII with an apostrophe,
# the four formula starts, a double quote after a digit, and a label that begins with "
HOSTILE = (
    "dog, barking",
    'say "hi"',
    "Müller's café ü",
    "=1+2",
    "+speech",
    "-2 dB hum",
    "@sum",
    '12" record',
    '"quoted" start',
)
FILE_NAME = "Müller's park, take 2.wav"
N_FRAMES = 40  # 12.5 s of 0.3125-s frames
DURATION_S = 12.5
MODEL = ModelInfo("v1-base", "1.0.2", "ab" * 32)


def sheet_safe(text: str) -> str:
    """What a spreadsheet-like export writes for ``text`` (the README's rule)."""
    return "'" + text if text.startswith(("=", "+", "-", "@")) else text


def tab_safe(text: str) -> str:
    """The same in the unquoted tab-separated files (DCASE, Raven): a leading " too."""
    return "'" + text if text.startswith(("=", "+", "-", "@", '"')) else text


def probabilities(labels: tuple[str, ...]) -> np.ndarray:
    """Label i is loud on frames [4i + 1, 4i + 3): one event each, in label order."""
    probs = np.zeros((len(labels), N_FRAMES), np.float32)
    for i in range(len(labels)):
        probs[i, 4 * i + 1 : 4 * i + 3] = 0.9
    return probs


def make_report(labels: tuple[str, ...] = HOSTILE, file_name: str = FILE_NAME) -> Report:
    timeline = Timeline(labels, probabilities(labels), DURATION_S, frozenset())
    return Report(
        source={"kind": "file", "file_name": file_name, "title": "park"},
        model=MODEL,
        settings={},
        timeline=timeline,
        events=detect_events(timeline, EventParams(threshold=0.5)),
    )


@pytest.fixture(scope="module")
def report() -> Report:
    rep = make_report()
    assert rep.events["label"].tolist() == list(HOSTILE)  # one event per label, in order
    return rep


@pytest.fixture
def files(report: Report, tmp_path: Path) -> dict[str, Path]:
    return dict(zip(exports.FORMATS, exports.export_all(report, tmp_path, "clip"), strict=True))


def times(report: Report) -> list[tuple[float, float]]:
    return list(zip(report.events["onset_s"], report.events["offset_s"], strict=True))


# ---------------------------------------------------------------- Raven: crowsetta


def test_raven_opens_in_crowsetta(report: Report, files: dict[str, Path]) -> None:
    raven = crowsetta.Transcriber(format="raven").from_file(files["raven"])  # annot_col Annotation
    boxes = raven.to_annot().bboxes
    assert [b.label for b in boxes] == [tab_safe(x) for x in HOSTILE]
    assert [(b.onset, b.offset) for b in boxes] == times(report)  # exact: plain decimals
    assert {(b.low_freq, b.high_freq) for b in boxes} == {(0.0, 24_000.0)}
    assert raven.df["begin_time_s"].dtype == np.float64
    assert raven.df["low_freq_hz"].dtype == np.float64


def test_raven_whole_seconds_open_in_crowsetta(tmp_path: Path) -> None:
    """Every time a whole second: written ``5.0``, they still read as floats."""
    probs = np.zeros((1, N_FRAMES), np.float32)
    probs[0, 16:32] = 0.9  # 5.0 s to 10.0 s
    timeline = Timeline(("siren",), probs, DURATION_S, frozenset())
    rep = Report(
        {"file_name": "a.wav"}, MODEL, {}, timeline, detect_events(timeline, EventParams())
    )
    path = exports.write_export(rep, "raven", tmp_path / "a.Table.1.selections.txt")
    [box] = crowsetta.Transcriber(format="raven").from_file(path).to_annot().bboxes
    assert (box.onset, box.offset, box.label) == (5.0, 10.0, "siren")


def reviewed(report: Report) -> Report:
    """The first event accepted as a corrected label, the second rejected, the rest open."""
    (on0, off0), (on1, off1) = times(report)[:2]
    return with_reviews(
        report,
        [
            Review.of_event(HOSTILE[0], on0, off0, "accepted", relabel="=dog (corrected)"),
            Review.of_event(HOSTILE[1], on1, off1, "rejected"),
        ],
    )


def test_raven_review_in_its_own_column_for_crowsetta(report: Report, tmp_path: Path) -> None:
    path = exports.write_export(reviewed(report), "raven", tmp_path / "r.Table.1.selections.txt")
    raven = crowsetta.Transcriber(format="raven").from_file(path)
    labels = [b.label for b in raven.to_annot().bboxes]
    assert labels == ["'=dog (corrected)", *(tab_safe(x) for x in HOSTILE[1:])]
    statuses = raven.df["Review"].fillna("").tolist()
    assert statuses == ["accepted", "rejected"] + [""] * (len(HOSTILE) - 2)
    assert raven.df["Label"].tolist() == [tab_safe(x) for x in HOSTILE]  # what detected it


def test_raven_in_opensoundscape(files: dict[str, Path]) -> None:
    boxed = pytest.importorskip(
        "opensoundscape.annotations",
        reason="OpenSoundscape 0.13 does not import here: it needs a torchaudio build that "
        "matches torch, and none matches torch 2.13",
    ).BoxedAnnotations
    table = boxed.from_raven_files([str(files["raven"])], "Annotation").df
    assert table["annotation"].tolist() == [tab_safe(x) for x in HOSTILE]


# ---------------------------------------------------------------- Audacity: crowsetta


def test_audacity_opens_in_crowsetta(report: Report, tmp_path: Path) -> None:
    """Audacity's track is literal (no sheet-safety); crowsetta keeps times to 1 ms. A
    label that begins with ``"`` is left out: Audacity shows it as it is, but crowsetta
    reads the track with pandas, which takes that ``"`` for a quote (see the README)."""
    labels = HOSTILE[:-1]
    rep = make_report(labels)
    path = exports.write_export(rep, "audacity", tmp_path / "clip.audacity.txt")
    segments = crowsetta.Transcriber(format="aud-seq").from_file(path).to_annot().seq.segments
    assert [s.label for s in segments] == list(labels)
    got = [(s.onset_s, s.offset_s) for s in segments]
    np.testing.assert_allclose(got, times(rep), rtol=0, atol=1e-3)


# ---------------------------------------------------------------- DCASE: sed_eval


def load_event_list(path: Path, **kwargs) -> list[tuple]:
    logging.getLogger("dcase_util").setLevel(logging.CRITICAL)  # it logs, then raises
    events = sed_eval.io.load_event_list(str(path), **kwargs)
    return [(e.filename, e.onset, e.offset, e.event_label) for e in events]


def test_dcase_is_plain_tab_separated_text(report: Report, files: dict[str, Path]) -> None:
    lines = files["dcase"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "filename\tonset\toffset\tevent_label"
    rows = [line.split("\t") for line in lines[1:]]
    assert [row[3] for row in rows] == [tab_safe(x) for x in HOSTILE]  # no CSV quoting
    assert {row[0] for row in rows} == {FILE_NAME}
    assert [(float(r[1]), float(r[2])) for r in rows] == times(report)


def test_dcase_tsv_loads_in_sed_eval_with_a_tab_delimiter(
    report: Report, files: dict[str, Path]
) -> None:
    """Every hostile label, non-ASCII included. dcase_util does not know ``.tsv``: it asks
    libmagic, which calls non-ASCII text no CSV, so the file format is given (README)."""
    want = [
        (FILE_NAME, on, off, tab_safe(x))
        for x, (on, off) in zip(HOSTILE, times(report), strict=True)
    ]
    assert load_event_list(files["dcase"], file_format="CSV", delimiter="\t") == want


@pytest.mark.parametrize("file_name", [FILE_NAME, "park, take 2.wav", "=x.wav"])
def test_dcase_tsv_loads_in_sed_eval_with_the_delimiter_sniffed(
    tmp_path: Path, file_name: str
) -> None:
    """No delimiter given: dcase_util sniffs it (csv.Sniffer). Commas, apostrophes,
    non-ASCII, the formula quote and a leading or lone ``"`` leave tab its choice."""
    labels = tuple(x for x in HOSTILE if x != 'say "hi"')
    rep = make_report(labels, file_name)
    path = exports.write_export(rep, "dcase", tmp_path / "clip.dcase.tsv")
    want = [
        (tab_safe(file_name), on, off, tab_safe(x))
        for x, (on, off) in zip(labels, times(rep), strict=True)
    ]
    assert load_event_list(path, file_format="CSV") == want


def test_dcase_tsv_loads_in_sed_scores_eval(report: Report, files: dict[str, Path]) -> None:
    """The DCASE library SonoTag scores with reads ground truth with pandas."""
    from sed_scores_eval.base_modules.io import read_ground_truth_events

    got = read_ground_truth_events(files["dcase"])
    want = [[on, off, tab_safe(x)] for x, (on, off) in zip(HOSTILE, times(report), strict=True)]
    assert got == {FILE_NAME.removesuffix(".wav"): want}


def test_dcase_ascii_tsv_loads_in_sed_eval_as_it_is(tmp_path: Path) -> None:
    """An ASCII file needs neither the format nor the delimiter."""
    labels = ("dog, barking", "dog's bark", "=1+2", "-2 dB hum", '12" record', '"quoted" x')
    rep = make_report(labels, "park, take 2.wav")
    path = exports.write_export(rep, "dcase", tmp_path / "clip.dcase.tsv")
    assert [row[3] for row in load_event_list(path)] == [tab_safe(x) for x in labels]


def test_a_quoted_word_needs_the_tab_delimiter_in_sed_eval(tmp_path: Path) -> None:
    """The README's one caveat: csv.Sniffer takes `` "hi"`` for a field quoted between
    spaces and picks a space as the delimiter; given the tab, sed_eval reads it exactly."""
    rep = make_report(('say "hi"',), "park.wav")
    path = exports.write_export(rep, "dcase", tmp_path / "clip.dcase.tsv")
    sample = path.read_text(encoding="utf-8")
    assert csv.Sniffer().sniff(sample).delimiter == " "  # why the README says give "\t"
    [row] = load_event_list(path, file_format="CSV", delimiter="\t")
    assert row[3] == 'say "hi"'


def test_batch_events_dcase_to_a_file_loads_in_sed_eval(tmp_path: Path, capsys) -> None:
    """`sonotag batch events OUT --format dcase -o FILE` over parts with hostile labels."""
    from sonotag_core.cli import main

    out = batch_output(tmp_path / "out", {"k1": "/audio/Müller's park.wav", "k2": "/b/=x.wav"})
    target = tmp_path / "all.dcase.tsv"
    assert main(["batch", "events", str(out), "--format", "dcase", "-o", str(target)]) == 0
    assert "event(s) of 2 file(s)" in capsys.readouterr().err
    got = load_event_list(target, file_format="CSV", delimiter="\t")
    names = [("Müller's park.wav", x) for x in HOSTILE] + [("'=x.wav", x) for x in HOSTILE]
    assert [(row[0], row[3]) for row in got] == [(f, tab_safe(x)) for f, x in names]


# ---------------------------------------------------------------- DuckDB: batch parts


def batch_output(out: Path, sources: dict[str, str]) -> Path:
    """A batch output with one committed part per source (keys sorted as given)."""
    from sonotag_core.archive.parts import BatchSpec, item_tables, open_output

    spec = BatchSpec(
        model="v1-base",
        checkpoint_sha256="ab" * 32,
        labels=HOSTILE,
        negatives=(),
        hop_s=10.0,
        events={"threshold": 0.5},
    )
    output = open_output(out, spec)
    rep = make_report()
    rng = np.random.default_rng(0)
    emb = AudioEmbeddings(
        starts=np.array([0], dtype=np.int64),
        features=rng.standard_normal((1, 32, 512)).astype(np.float32),
        n_samples=600_000,
        hop=480_000,
    )
    for i, (key, source) in enumerate(sources.items()):
        tables = item_tables(
            key, source, {}, emb, rep.timeline, rep.events, title=key, content_id=f"{i:064x}"
        )
        assert output.commit(key, tables)
    return out


def test_batch_parts_read_back_in_duckdb(report: Report, tmp_path: Path) -> None:
    out = batch_output(tmp_path / "out", {"k1": "/audio/Müller's park.wav"})
    parts = str(out / "parts" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    events = con.sql(
        f"SELECT label, onset_s, offset_s FROM read_parquet('{parts}', union_by_name = true) "
        "WHERE kind = 'events' ORDER BY onset_s"
    ).fetchall()
    assert events == [(x, on, off) for x, (on, off) in zip(HOSTILE, times(report), strict=True)]
    frames = con.sql(
        f"SELECT label, count(*) FROM read_parquet('{parts}', union_by_name = true) "
        "WHERE kind = 'frames' GROUP BY label"
    ).fetchall()
    assert dict(frames) == dict.fromkeys(HOSTILE, N_FRAMES)


def test_batch_query_to_a_file_reads_back_in_pandas(tmp_path: Path, capsys) -> None:
    """`sonotag batch query OUT SQL -o FILE`: DuckDB's answer as CSV, in the file only."""
    from sonotag_core.cli import main

    out = batch_output(tmp_path / "out", {"k1": "/audio/park.wav"})
    target = tmp_path / "first.csv"
    sql = "SELECT label, onset_s FROM events WHERE onset_s < 3 ORDER BY onset_s"
    assert main(["batch", "query", str(out), sql, "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    table = pd.read_csv(target, dtype={"label": str}, keep_default_na=False)
    assert table["label"].tolist() == list(HOSTILE[:3])  # a comma, quotes, non-ASCII


def test_batch_events_refuse_a_bad_o_before_reading(tmp_path: Path, capsys) -> None:
    from sonotag_core.cli import main

    out = batch_output(tmp_path / "out", {"k1": "/audio/park.wav"})
    for command in (["events", str(out)], ["query", str(out), "SELECT 1"]):
        assert main(["batch", *command, "-o", str(tmp_path / "nowhere" / "x.csv")]) == 1
        [line] = capsys.readouterr().err.splitlines()
        assert line.startswith("sonotag: error: No such directory")


# ---------------------------------------------------------------- CSV: pandas


def test_events_and_frames_csv_read_back_in_pandas(report: Report, files: dict[str, Path]) -> None:
    """CSV quoting carries commas and quotes, a leading " included; formulas get the '."""
    events = pd.read_csv(files["csv"], dtype={"label": str}, keep_default_na=False)
    assert events["label"].tolist() == [sheet_safe(x) for x in HOSTILE]
    assert list(zip(events["onset_s"], events["offset_s"], strict=True)) == times(report)
    frames = pd.read_csv(files["frames-csv"], dtype={"label": str}, keep_default_na=False)
    assert sorted(set(frames["label"])) == sorted(sheet_safe(x) for x in HOSTILE)
    assert len(frames) == len(HOSTILE) * N_FRAMES


# ---------------------------------------------------------------- our own truth reader


def test_dcase_and_raven_read_back_as_ground_truth(report: Report, files: dict[str, Path]) -> None:
    """What Evaluate reads back is what was written: the formula quote is dropped again."""
    want = [(FILE_NAME, on, off, x) for x, (on, off) in zip(HOSTILE, times(report), strict=True)]
    for fmt in ("dcase", "raven"):
        path = files[fmt]
        truth = parse_truth(path.read_bytes(), name=path.name, filename=FILE_NAME)
        got = list(truth.events.itertuples(index=False, name=None))
        assert sorted(got) == sorted(want), fmt


def test_reviewed_raven_reads_back_with_the_corrected_label(report: Report) -> None:
    text = exports.export_text(reviewed(report), "raven")
    truth = parse_truth(text, name="park.Table.1.selections.txt")
    assert truth.events["event_label"].tolist()[:2] == ["=dog (corrected)", 'say "hi"']


def test_an_older_sonotag_raven_table_reads_its_label_not_its_status() -> None:
    """Before the Review column, Annotation held the status (or the corrected label)."""
    old = (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
        "High Freq (Hz)\tLabel\tPeak\tMean\tAnnotation\n"
        "1\tSpectrogram 1\t1\t1.25\t2.5\t0\t24000\tdog\t0.9\t0.8\taccepted\n"
        "2\tSpectrogram 1\t1\t3\t4\t0\t24000\tsiren\t0.9\t0.8\trejected\n"
        "3\tSpectrogram 1\t1\t5\t6\t0\t24000\tdog\t0.9\t0.8\tpuppy\n"
        "4\tSpectrogram 1\t1\t7\t8\t0\t24000\t'+speech\t0.9\t0.8\t\n"
    )
    truth = parse_truth(old, name="park.Table.1.selections.txt")
    assert truth.events["event_label"].tolist() == ["dog", "siren", "puppy", "+speech"]
    # a table that is not SonoTag's keeps an Annotation called "accepted" as its class
    other = "Begin Time (s)\tEnd Time (s)\tLabel\tAnnotation\n1\t2\tdog\taccepted\n"
    assert parse_truth(other).events["event_label"].tolist() == ["accepted"]


def test_older_csv_quoted_dcase_still_reads_back() -> None:
    old = 'filename\tonset\toffset\tevent_label\npark.wav\t1\t2\t"say ""hi"""\n'
    assert parse_truth(old).events["event_label"].tolist() == ['say "hi"']

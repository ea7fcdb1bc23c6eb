"""Ground truth in: each format parses to the right table, every bad file is refused with
a message that says where, truth is checked against the audio, classes are matched to
labels, and what SonoTag's own exporters write parses back to the same events. Files are
built as strings (no model, no browser); no test measures time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sonotag_core import exports
from sonotag_core.domain.events import EventParams, detect_events
from sonotag_core.domain.report import ModelInfo, Report
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.truth import (
    MAX_TRUTH_BYTES,
    MAX_TRUTH_ROWS,
    TRUTH_COLUMNS,
    ClassMatch,
    GroundTruth,
    check_against,
    events_for_labels,
    match_classes,
    parse_truth,
)
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import TruthError

HEADER = "filename\tonset\toffset\tevent_label\n"


def dcase(*rows: str) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


def refused(text: str | bytes, **kwargs: str) -> str:
    with pytest.raises(TruthError) as info:
        parse_truth(text, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def rows(truth: GroundTruth) -> list[tuple[str, float, float, str]]:
    return list(truth.events.itertuples(index=False, name=None))


# ---------------------------------------------------------------- formats


def test_dcase_reordered_header_and_extra_columns() -> None:
    text = (
        "event_label\tnote\tOffset\tfilename\t onset \n"
        "dog\tloud\t2.5\tb.wav\t1.0\n"
        "cat\t\t1.5\ta.wav\t0.5\n"
        "dog\tx\t0.75\tb.wav\t0.25\n"
    )
    truth = parse_truth(text, name="truth.tsv")
    assert truth.format == "dcase"
    assert list(truth.events.columns) == list(TRUTH_COLUMNS)
    assert rows(truth) == [
        ("a.wav", 0.5, 1.5, "cat"),
        ("b.wav", 0.25, 0.75, "dog"),
        ("b.wav", 1.0, 2.5, "dog"),
    ]
    assert truth.events["onset"].dtype == np.float64
    assert truth.files() == ["a.wav", "b.wav"]
    assert truth.classes() == ["cat", "dog"]


def test_dcase_rows_for_files_without_events() -> None:
    text = dcase("quiet.wav", "also quiet.wav\t\t\t", "dog.wav\t1\t2\tbark", "dog.wav\t\t\t")
    truth = parse_truth(text)
    assert rows(truth) == [("dog.wav", 1.0, 2.0, "bark")]
    assert truth.empty_files == ("also quiet.wav", "quiet.wav")  # dog.wav has events
    assert truth.files() == ["also quiet.wav", "dog.wav", "quiet.wav"]
    assert truth.as_sed_scores() == {
        "also quiet.wav": [],
        "dog.wav": [(1.0, 2.0, "bark")],
        "quiet.wav": [],
    }
    assert truth.for_file("quiet.wav").files() == ["quiet.wav"]
    assert truth.for_file("quiet.wav").events.empty


def test_dcase_only_files_without_events_is_valid() -> None:
    truth = parse_truth(dcase("a.wav", "b.wav"))
    assert truth.events.empty and truth.files() == ["a.wav", "b.wav"] and truth.classes() == []


def test_bom_crlf_trailing_blank_lines_and_quoted_fields_in_bytes() -> None:
    text = '\ufefffilename\tonset\toffset\tevent_label\r\na.wav\t1\t2\t"say ""hi"""\r\n\r\n\r\n'
    truth = parse_truth(text.encode("utf-8"))
    assert rows(truth) == [("a.wav", 1.0, 2.0, 'say "hi"')]


def test_audacity_with_frequency_lines_and_crlf() -> None:
    text = "3.5\t4.25\tcat\r\n\\\t100.0\t2000.0\r\n1.000000\t2.000000\tdog barking\r\n\\\t0\t1\r\n"
    truth = parse_truth(text.encode(), name="labels.txt", filename="park.wav")
    assert truth.format == "audacity"
    assert rows(truth) == [("park.wav", 1.0, 2.0, "dog barking"), ("park.wav", 3.5, 4.25, "cat")]


def test_audacity_without_filename_uses_the_names_stem() -> None:
    line = "1\t2\tdog\n"
    assert parse_truth(line, name="dir/park.audacity.txt").files() == ["park"]
    assert parse_truth(line, name="park.txt").files() == ["park"]
    assert parse_truth(line).files() == ["truth"]


RAVEN = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tLabel\tAnnotation"


def test_raven_annotation_wins_over_label_when_filled_in() -> None:
    text = (
        RAVEN + "\n"
        "1\tSpectrogram 1\t1\t1.0\t2.0\t0\tdog\t\n"
        "2\tSpectrogram 1\t1\t3.0\t4.0\t0\tdog\tpuppy\n"
        "3\tSpectrogram 1\t1\t5.0\t6.0\t0\t\twolf\n"
    )
    truth = parse_truth(text, name="park.Table.1.selections.txt")
    assert truth.format == "raven"
    assert rows(truth) == [
        ("park", 1.0, 2.0, "dog"),
        ("park", 3.0, 4.0, "puppy"),
        ("park", 5.0, 6.0, "wolf"),
    ]
    assert parse_truth(text, filename="park.wav").files() == ["park.wav"]


def test_raven_begin_file_species_and_one_row_per_selection() -> None:
    text = (
        "Selection\tView\tBegin Time (s)\tEnd Time (s)\tSpecies\tBegin File\n"
        "1\tWaveform 1\t1.0\t2.0\tAMRO\ta.wav\n"
        "1\tSpectrogram 1\t1.0\t2.0\tAMRO\ta.wav\n"  # the same selection in another view
        "2\tSpectrogram 1\t0.5\t0.75\tBLJA\tb.wav\n"
        "3\tSpectrogram 1\t1.0\t2.0\tAMRO\ta.wav\n"  # same times, another selection: kept
    )
    truth = parse_truth(text, filename="unused.wav")
    assert rows(truth) == [
        ("a.wav", 1.0, 2.0, "AMRO"),
        ("a.wav", 1.0, 2.0, "AMRO"),
        ("b.wav", 0.5, 0.75, "BLJA"),
    ]


def test_raven_begin_path_and_class_column() -> None:
    text = "Begin Time (s)\tEnd Time (s)\tClass\tBegin Path\n1\t2\towl\tC:\\rec\\a.wav\n"
    truth = parse_truth(text)
    assert rows(truth) == [("C:\\rec\\a.wav", 1.0, 2.0, "owl")]
    assert check_against(truth, {"a.wav": 10.0}).files() == ["a.wav"]


def test_sorted_by_file_then_onset_and_classes_in_order() -> None:
    truth = parse_truth(dcase("b\t5\t6\tz", "a\t3\t4\ty", "b\t1\t2\tx", "a\t0\t1\tz"))
    assert [(f, on) for f, on, _, _ in rows(truth)] == [("a", 0), ("a", 3), ("b", 1), ("b", 5)]
    assert truth.classes() == ["z", "y", "x"]
    assert truth.for_file("dir/b").as_sed_scores() == {"b": [(1.0, 2.0, "x"), (5.0, 6.0, "z")]}
    with pytest.raises(TruthError, match="'c'.*'a', 'b'"):
        truth.for_file("c")


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (dcase("a\tx1\t2\tdog"), ["Line 2", "onset 'x1' is not a number"]),
        (dcase("a\t1\t2\tdog", "a\t1,5\t2\tdog"), ["Line 3", "'1,5'", "dot"]),
        (dcase("a\t1\tnan\tdog"), ["Line 2", "offset is 'nan'", "finite"]),
        (dcase("a\tinf\t2\tdog"), ["Line 2", "onset is 'inf'"]),
        (dcase("a\t-1\t2\tdog"), ["Line 2", "onset -1.0 s is negative"]),
        (
            dcase("a\t1\t2\tdog", "a\t1\t2\tdog", "a\t4.0\t3.2\tdog"),
            ["Line 4: offset 3.2 s is before onset 4.0 s; every event needs offset > onset."],
        ),
        (dcase("a\t75.5\t75.5\tdog"), ["Line 2", "equals onset (75.5 s (1:15.50))", "empty span"]),
        (dcase("a\t1\t2\t"), ["Line 2", "event_label is empty"]),
        (dcase("a\t1\t\tdog"), ["Line 2", "offset is empty"]),
        (dcase("\t1\t2\tdog"), ["Line 2", "filename is empty"]),
        (dcase("a\t1\t2\tdog\tmore"), ["Line 2", "5 tab-separated fields", "header has 4"]),
        (dcase('a\t1\t2\t"dog'), ["Line 2", "never closed"]),
        (dcase('a\t1\t2\t"dog', 'b\t1\t2\tcat"'), ["Line 2", "several lines"]),
        (dcase("a\t1\x1b[2J\t2\tdog"), ["Line 2", "'1\\x1b[2J'"]),  # quoted, escaped
        ("\n\n" + dcase("a\t2\t1\tdog"), ["Line 4", "before onset"]),  # blank lines count
        ("1\t2\tdog\n3\t4\n", ["Line 2", "label is empty"]),
        ("1\t2\tdog\n3\t4\tcat\textra\n", ["Line 2", "4 tab-separated fields", "Audacity"]),
        ("1\t2\tdog\n3\tfour\tcat\n", ["Line 2", "offset 'four' is not a number"]),
        (
            "Begin Time (s)\tEnd Time (s)\tLabel\n1\t2\tdog\n3\t-4\tdog\n",
            ["Line 3", "End Time (s) -4.0 s is negative"],
        ),
        ("Begin Time (s)\tEnd Time (s)\tLabel\tAnnotation\n1\t2\t\t\n", ["Line 2", "label"]),
    ],
)
def test_bad_rows_name_the_line(text: str, expected: list[str]) -> None:
    message = refused(text)
    for part in expected:
        assert part in message


def test_the_earliest_bad_line_is_reported_with_a_count() -> None:
    message = refused(dcase("a\t1\t2\tdog", "a\t5\t4\tdog", "a\t-1\t2\tdog", "a\t7\t6\tdog"))
    assert message.startswith("Line 3: offset 4.0 s is before onset 5.0 s")
    assert "1 more line like it" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "filename\tonset\toffset\tlabel\na\t1\t2\tdog\n",
            ["Line 1", "filename, onset, offset, event_label", "found", "'label'"],
        ),
        (
            "\nfilename\tonset\n",
            ["Line 2", "event_label", "found 'filename', 'onset'"],
        ),
        (
            "Selection\tBegin Time (s)\tEnd Time (s)\n1\t1\t2\n",
            ["Line 1", "Raven", "Annotation, Label, Species or Class", "'Selection'"],
        ),
        (
            "Selection\tBegin Time (s)\tLabel\n1\t1\tdog\n",
            ["Line 1", "End Time (s)", "found 'Selection', 'Begin Time (s)', 'Label'"],
        ),
        ("foo\tbar\n1\t2\n", ["Line 1", "DCASE header", "Raven header", "found 'foo', 'bar'"]),
        ("a.wav\t1\t2\tdog\n", ["no header row", "filename<TAB>onset"]),
        (HEADER.replace("\t", ","), ["comma-separated"]),
    ],
)
def test_wrong_columns_say_what_is_needed_and_found(text: str, expected: list[str]) -> None:
    message = refused(text)
    for part in expected:
        assert part in message


def test_the_names_suffix_narrows_what_the_message_asks_for() -> None:
    message = refused("foo\tbar\n", name="mine.tsv")
    assert "DCASE header" in message and "Raven" not in message and "'mine.tsv'" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        (b"", "is empty"),
        (" \n\t\n\n", "is empty"),
        (HEADER, "has no rows"),
        (HEADER + "\n\n", "has no rows"),
        ("Begin Time (s)\tEnd Time (s)\tLabel\n", "has no rows"),
        ("\\\t100\t200\n", "has no rows"),
        (b"filename\tonset\n\xff\xfe", "not UTF-8 text (line 2 has byte 0xff)"),
        ("filename\x00\tonset", "NUL"),
    ],
)
def test_empty_and_unreadable_files(text: str | bytes, expected: str) -> None:
    assert expected in refused(text, name="mine.tsv")


def test_a_full_table_parses_and_one_row_more_is_refused() -> None:
    body = "".join(f"f{i % 50}.wav\t{i}.5\t{i}.75\tc{i % 7}\n" for i in range(MAX_TRUTH_ROWS))
    truth = parse_truth(HEADER + body)
    assert len(truth.events) == MAX_TRUTH_ROWS
    assert len(truth.files()) == 50 and len(truth.classes()) == 7
    message = refused(HEADER + body + "x.wav\t1\t2\tdog\n")
    assert "100,001 rows" in message and "limit is 100,000" in message


def test_far_too_many_lines_are_refused_before_parsing() -> None:
    message = refused("1\t2\tdog\n" * (2 * MAX_TRUTH_ROWS + 2))
    assert "more than 100,000 rows" in message


@pytest.mark.parametrize("as_bytes", [True, False])
def test_too_many_bytes_are_refused_before_parsing(as_bytes: bool) -> None:
    text = "x" * (MAX_TRUTH_BYTES + 1)
    message = refused(text.encode() if as_bytes else text, name="big.tsv")
    assert "'big.tsv'" in message and "limited to 20 MiB" in message


def test_multibyte_text_counts_its_utf8_bytes() -> None:
    assert "limited to 20 MiB" in refused("é" * (MAX_TRUTH_BYTES // 2 + 1))


# ---------------------------------------------------------------- against the audio


TRUTH = dcase(
    "audio/dog.wav\t1\t10.4\tbark",
    "cat.wav\t0.5\t1\tmeow",
    "quiet.wav",
)


def test_check_against_clips_small_overshoots_and_renames_to_the_audio() -> None:
    durations = {"dog.wav": 10.0, "recordings/cat.wav": 5.0, "quiet.wav": 3.0}
    truth = check_against(parse_truth(TRUTH), durations)
    assert rows(truth) == [
        ("dog.wav", 1.0, 10.0, "bark"),  # 0.4 s past the end: clipped
        ("recordings/cat.wav", 0.5, 1.0, "meow"),
    ]
    assert truth.empty_files == ("quiet.wav",)
    assert truth.files() == ["dog.wav", "quiet.wav", "recordings/cat.wav"]


def test_check_against_refuses_events_far_past_the_end() -> None:
    truth = parse_truth(TRUTH)
    with pytest.raises(TruthError) as info:
        check_against(truth, {"dog.wav": 9.8, "cat.wav": 5.0, "quiet.wav": 3.0})
    message = str(info.value)
    assert "'dog.wav'" in message and "'bark'" in message
    assert "0:10.40" in message and "0:09.80" in message and "0.5 s" in message
    with pytest.raises(TruthError, match="'meow' starts at 0:00.50.*ends at 0:00.40"):
        check_against(truth, {"dog.wav": 11.0, "cat.wav": 0.4, "quiet.wav": 3.0})


def test_check_against_names_unknown_and_known_files() -> None:
    truth = parse_truth(TRUTH)
    durations = {f"take {i}.wav": 60.0 for i in range(8)} | {"cat.wav": 5.0}
    with pytest.raises(TruthError) as info:
        check_against(truth, durations)
    message = str(info.value)
    unknown, known = message.split("Files here:")
    assert "'audio/dog.wav', 'quiet.wav'" in unknown and "'cat.wav'" not in unknown
    assert "'take 0.wav', 'take 1.wav', 'take 2.wav', 'take 3.wav', 'take 4.wav'" in known
    assert "and 4 more" in known


def test_check_against_at_most_five_unknown_names() -> None:
    truth = parse_truth(dcase(*(f"f{i}.wav\t1\t2\tx" for i in range(7))))
    with pytest.raises(TruthError, match=r"'f4.wav' and 2 more\. Files here: 'g.wav'\."):
        check_against(truth, {"g.wav": 5.0})


def test_check_against_matches_basenames_either_way_and_stems() -> None:
    truth = parse_truth(dcase("dog.wav\t1\t2\tbark"))
    assert check_against(truth, {"/data/dog.wav": 5.0}).files() == ["/data/dog.wav"]
    track = parse_truth("1\t2\tbark\n", name="dog.audacity.txt")
    assert check_against(track, {"x/dog.wav": 5.0, "cat.wav": 5.0}).files() == ["x/dog.wav"]
    with pytest.raises(TruthError, match="'dog.wav' could be any of 'a/dog.wav', 'b/dog.wav'"):
        check_against(truth, {"a/dog.wav": 5.0, "b/dog.wav": 5.0})


# ---------------------------------------------------------------- classes and labels


def test_match_classes_exact_then_case_and_spacing() -> None:
    match = match_classes(["dog", "Big  Cat", "owl"], ["Dog", "dog", "big cat", "wind"])
    assert match == ClassMatch(
        pairs={"dog": "dog", "Big  Cat": "big cat"},
        unmatched_classes=["owl"],
        unmatched_labels=["Dog", "wind"],
    )


def test_match_classes_mapping_overrides_and_may_share_a_label() -> None:
    match = match_classes(
        ["dog", "puppy", "owl"], ["dog", "hound"], {"dog": "hound", "puppy": "hound"}
    )
    assert match.pairs == {"dog": "hound", "puppy": "hound"}
    assert match.unmatched_classes == ["owl"] and match.unmatched_labels == ["dog"]


def test_match_classes_refuses_a_mapping_to_an_unknown_label_or_from_an_unknown_class() -> None:
    with pytest.raises(TruthError, match="'hound', not a label here; the labels are 'dog'"):
        match_classes(["puppy"], ["dog"], {"puppy": "hound"})
    with pytest.raises(TruthError, match="'kitten', not a class.*classes are 'puppy'"):
        match_classes(["puppy"], ["dog"], {"kitten": "dog"})


def test_events_for_labels_renames_merges_and_leaves_out_unmatched() -> None:
    truth = parse_truth(
        dcase(
            "a\t1\t3\tdog",
            "a\t2\t4\tpuppy",  # overlaps the dog: one event under "dog"
            "a\t5\t6\tdog",
            "a\t5.2\t5.8\tCat",
            "a\t5.5\t5.7\tCat",  # one class, overlapping: kept as two events
            "b\t0\t1\towl",
            "c",
        )
    )
    match = match_classes(truth.classes(), ["dog", "cat"], {"puppy": "dog"})
    assert match.unmatched_classes == ["owl"]
    assert events_for_labels(truth, match) == {
        "a": [(1.0, 4.0, "dog"), (5.0, 6.0, "dog"), (5.2, 5.8, "cat"), (5.5, 5.7, "cat")],
        "b": [],
        "c": [],
    }


# ---------------------------------------------------------------- SonoTag's own exports


DURATION_S = 10.1
N_FRAMES = 33
LABELS = ("dog, barking", 'say "hi"', "café", "bird\tsong", "music")
PLANTED = {
    "dog, barking": [(4, 12), (20, 23)],
    'say "hi"': [(15, 18)],
    "café": [(28, 33)],  # touches the end: offset is clipped to DURATION_S
    "bird\tsong": [(8, 10)],
}
EXPECTED = sorted(
    [
        ("dog, barking", 4 * FRAME_S, 12 * FRAME_S),
        ("bird song", 8 * FRAME_S, 10 * FRAME_S),  # the tab is cleaned in line formats
        ('say "hi"', 15 * FRAME_S, 18 * FRAME_S),
        ("dog, barking", 20 * FRAME_S, 23 * FRAME_S),
        ("café", 28 * FRAME_S, DURATION_S),
    ],
    key=lambda e: e[1],
)


def make_report(file_name: str = "park café, take 2.wav") -> Report:
    """Copied in spirit from tests/test_exports.py: a seeded timeline, planted events."""
    rng = np.random.default_rng(1234)
    probs = rng.uniform(0.0, 0.3, size=(len(LABELS), N_FRAMES))
    for row, label in enumerate(LABELS):
        for start, end in PLANTED.get(label, []):
            probs[row, start:end] = rng.uniform(0.6, 0.99, size=end - start)
    timeline = Timeline(LABELS, probs.astype(np.float32), DURATION_S, frozenset({"music"}))
    source = {
        "kind": "file",
        "path": Path("/data/field recordings") / file_name,
        "title": "Park",
        "content_id": "cd" * 32,
        "file_name": file_name,
        "duration_s": DURATION_S,
    }
    return Report(
        source=source,
        model=ModelInfo("v1-base", "0.1.2", "ab" * 32),
        settings={"threshold": 0.5},
        timeline=timeline,
        events=detect_events(timeline, EventParams(threshold=0.5)),
    )


@pytest.mark.parametrize("fmt", ["dcase", "audacity", "raven"])
def test_sonotags_exports_parse_back_to_the_same_events(fmt: str) -> None:
    report = make_report()
    suffix = exports.FORMATS[fmt].suffix
    text = exports.export_text(report, fmt)
    truth = parse_truth(text, name=f"park{suffix}", filename="park café, take 2.wav")
    assert truth.format == fmt
    assert truth.files() == ["park café, take 2.wav"]
    got = [(label, on, off) for _, on, off, label in rows(truth)]
    assert [g[0] for g in got] == [e[0] for e in EXPECTED]
    times = np.array([g[1:] for g in got])
    expected = np.array([e[1:] for e in EXPECTED])
    if fmt == "audacity":  # Audacity's own 6-decimal form
        np.testing.assert_allclose(times, expected, rtol=0, atol=5e-7)
    else:  # plain, exact times
        assert times.tolist() == expected.tolist()
    checked = check_against(truth, {"park café, take 2.wav": DURATION_S})
    assert rows(checked) == rows(truth)

"""Ground truth: a user's annotations, parsed into one checked events table.

Three formats, told apart by their content (the name's suffix is only a hint, for the
message when the content is neither):

* ``dcase``: DCASE event-list TSV, a header with ``filename``, ``onset``, ``offset`` and
  ``event_label`` (any order, any case; other columns ignored). A row with a filename and
  nothing else (or empty onset, offset and label) is a file known to have no events: it
  is kept in :meth:`GroundTruth.files` (``empty_files``) and has no event row.
  Fields may be quoted as the ``csv`` module does (older SonoTag exports quoted
  ``"``; they now write plain fields).
* ``audacity``: an Audacity label track, ``onset<TAB>offset<TAB>label`` and no header;
  the ``\\`` lines Audacity writes for spectral selections are skipped.
* ``raven``: a Raven selection table, a header with ``Begin Time (s)`` and
  ``End Time (s)``. The label is ``Annotation`` where it is filled in, else ``Label``,
  else ``Species``, else ``Class``. The file is ``Begin File``, else ``Begin Path``.
  Raven repeats a selection once per view (waveform, spectrogram): rows that repeat an
  earlier row's selection number, file and times are the same event and kept once.
  SonoTag's own tables put the class in ``Annotation`` and the review in ``Review``;
  older ones (``Label``, ``Peak``, ``Mean``, ``Annotation`` and no ``Review``) held the
  status there: an ``accepted``/``rejected`` Annotation in such a table is not a class,
  and ``Label`` is read instead.

SonoTag's exports give a cell that begins with ``= + - @`` (a formula to a spreadsheet),
or in a tab-separated file ``"``, a leading ``'``: in a DCASE or Raven label or file name
that ``'`` is dropped again, so SonoTag's own exports read back as the labels they hold.

Audacity has no file column, nor has a Raven table without ``Begin File``/``Begin Path``:
their events belong to ``filename``, or, when that is None, to the ``name``'s stem
without the suffixes the tools add (``dog.Table.1.selections.txt``, ``dog.audacity.txt``
and ``dog.txt`` all mean ``dog``); :func:`check_against` matches such an extension-less
name to ``dog.wav``.

Every refusal is a :class:`TruthError` that says what is wrong and where: lines are
numbered as an editor numbers the user's file (1-based, blank lines counted). Size is
bounded before any parsing (``MAX_TRUTH_BYTES``, ``MAX_TRUTH_ROWS``) and the checks are
vectorised, so a 100 000-row table parses in a fraction of a second.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonotag_core.domain.spans import merge_overlapping
from sonotag_core.domain.timefmt import clock
from sonotag_core.errors import TruthError
from sonotag_core.untrusted import quoted, shown

TRUTH_COLUMNS = ("filename", "onset", "offset", "event_label")
TRUTH_FORMATS = ("dcase", "audacity", "raven")
MAX_TRUTH_ROWS = 100_000  # refuse more, with a message, in bounded time/memory
MAX_TRUTH_BYTES = 20 * 2**20  # refuse bigger text before parsing
END_TOLERANCE_S = 0.5  # an offset this far past the audio's end is clipped, not refused
SHOWN_NAMES = 5  # how many names a message lists before "and N more"

RAVEN_TIMES = ("Begin Time (s)", "End Time (s)")
RAVEN_LABELS = ("Annotation", "Label", "Species", "Class")  # first filled-in one wins
RAVEN_FILES = ("Begin File", "Begin Path")
# SonoTag's Raven tables before the Review column: review status in Annotation
OLD_SONOTAG_RAVEN = ("Label", "Peak", "Mean", "Annotation")
OLD_REVIEW_STATUSES = ("accepted", "rejected")
AUDACITY_FIELDS = ("onset", "offset", "label")
_AUDACITY_ROOM = 16  # fields read on an Audacity line; more is a tokenizer error

Events = dict[str, list[tuple[float, float, str]]]

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}
_BLANK_LINE_END = re.compile(r"^[^\S\n]*\S", re.MULTILINE)
_SHEET_QUOTE = re.compile(r"^'(?=[=+\-@\"])")  # the ' SonoTag's exports add, see the module
_TOOL_SUFFIX = re.compile(
    r"(\.table\.\d+)?(\.selections|\.audacity|\.raven|\.labels?)?\.(txt|tsv|csv)$", re.I
)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Checked ground truth: ``events`` has ``TRUTH_COLUMNS`` (filename str, onset and
    offset float seconds, event_label str), sorted by filename, then onset (file order
    on ties). ``empty_files``: files the truth names with no events, which still count:
    a detection there is a false alarm. Compared by identity (``eq=False``): a
    DataFrame has no single truth value to compare by."""

    events: pd.DataFrame
    format: str
    empty_files: tuple[str, ...] = ()

    def files(self) -> list[str]:
        """Every file the truth knows, with events or without, sorted."""
        return sorted(set(self.events["filename"].tolist()) | set(self.empty_files))

    def classes(self) -> list[str]:
        """Distinct event labels, in order of first appearance in ``events``."""
        return list(dict.fromkeys(self.events["event_label"].tolist()))

    def for_file(self, filename: str) -> GroundTruth:
        """One file's truth; ``filename`` is matched as :func:`check_against` matches
        (same name, else same basename, ...), so ``dog.wav`` finds ``audio/dog.wav``."""
        name = _resolve(filename, self.files())
        if name is None:
            raise TruthError(
                f"The ground truth has no file {quoted(filename)}; it has {_listed(self.files())}."
            )
        rows = self.events[self.events["filename"] == name]
        empty = (name,) if name in self.empty_files else ()
        return _truth(rows, self.format, empty)

    def only(self, files: Sequence[str]) -> GroundTruth:
        """The truth of these files (exact names, as :meth:`files` gives them)."""
        keep = set(files)
        rows = self.events[self.events["filename"].isin(keep)]
        return _truth(rows, self.format, [f for f in self.empty_files if f in keep])

    def as_sed_scores(self) -> Events:
        """``{filename: [(onset, offset, label), ...]}``, the form sed_scores_eval takes;
        files without events map to ``[]``."""
        return _grouped(self.events, self.files())


def _truth(events: pd.DataFrame, fmt: str, empty: Sequence[str] = ()) -> GroundTruth:
    """A GroundTruth with normalised dtypes and order; a file with events is not empty."""
    table = pd.DataFrame(
        {
            "filename": events["filename"].astype(str).to_numpy(),
            "onset": events["onset"].astype(np.float64).to_numpy(),
            "offset": events["offset"].astype(np.float64).to_numpy(),
            "event_label": events["event_label"].astype(str).to_numpy(),
        }
    )
    table = table.sort_values(["filename", "onset"], kind="stable").reset_index(drop=True)
    have = set(table["filename"].tolist())
    return GroundTruth(table, fmt, tuple(sorted({f for f in empty if f not in have})))


def _grouped(events: pd.DataFrame, files: Sequence[str]) -> Events:
    out: Events = {f: [] for f in files}
    for f, on, off, label in zip(
        events["filename"].tolist(),
        events["onset"].tolist(),
        events["offset"].tolist(),
        events["event_label"].tolist(),
        strict=True,
    ):
        out.setdefault(f, []).append((float(on), float(off), str(label)))
    return out


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Names:
    """What the user's file calls the onset, offset and label (for messages)."""

    onset: str
    offset: str
    label: str


def parse_truth(
    text: str | bytes, *, name: str = "truth", filename: str | None = None
) -> GroundTruth:
    """Parse and check a ground-truth file (DCASE, Audacity or Raven, see the module).

    ``name``: the file's name, for messages and the format hint; ``filename``: the audio
    file the events belong to when the format has no file column (Audacity, Raven
    without ``Begin File``); None means ``name``'s stem.
    """
    body = _decoded(text, name)
    skipped, body = _without_leading_blank_lines(body)
    if not body.strip():
        raise TruthError(f"{quoted(name)} is empty; a ground-truth file needs one row per event.")
    _check_line_count(body, name)
    first = body.split("\n", 1)[0]
    fmt = _detect(first, name)
    rows = _read(body, fmt, skipped + 1)
    audio = filename if filename is not None else _stem(name)
    if fmt == "dcase":
        table, names = _dcase_rows(rows)
    elif fmt == "raven":
        table, names = _raven_rows(rows, audio)
    else:
        table, names = _audacity_rows(rows, audio)
    return _checked(table, fmt, names, name)


def _decoded(text: str | bytes, name: str) -> str:
    """The text, size-checked before anything else, BOM dropped, line ends as ``\\n``."""
    size = len(text) if isinstance(text, bytes) else _utf8_size(text)
    if size > MAX_TRUTH_BYTES:
        raise TruthError(
            f"{quoted(name)} is {size / 2**20:.1f} MiB; ground truth is limited to "
            f"{MAX_TRUTH_BYTES // 2**20} MiB. Split it into smaller files."
        )
    if isinstance(text, bytes):
        text = _utf8(text, name)
    if "\x00" in text:
        raise TruthError(f"{quoted(name)} contains NUL bytes: it is not a text table.")
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TruthError(
            f"{quoted(name)} is not UTF-8 text (line {line} has byte "
            f"0x{raw[exc.start]:02x}); save it as UTF-8 and load it again."
        ) from None


def _utf8_size(text: str) -> int:
    """Bytes ``text`` takes as UTF-8, without encoding a huge text first."""
    if len(text) > MAX_TRUTH_BYTES:
        return len(text)  # at least one byte a character: already too big
    return len(text.encode("utf-8", errors="surrogatepass"))


def _without_leading_blank_lines(text: str) -> tuple[int, str]:
    """(number of blank lines dropped, the rest), so line numbers stay the user's."""
    match = _BLANK_LINE_END.search(text)
    if match is None:
        return 0, ""
    start = match.start()  # the regex matches from the start of a line
    return text.count("\n", 0, start), text[start:]


def _check_line_count(text: str, name: str) -> None:
    """Refuse before parsing when even two lines a row (Audacity's spectral labels)
    would give more than ``MAX_TRUTH_ROWS`` rows; the exact count is checked after."""
    cap = 2 * MAX_TRUTH_ROWS + 1
    for count, _ in enumerate(_BLANK_LINE_END.finditer(text), start=1):
        if count > cap:
            raise TruthError(
                f"{quoted(name)} has more than {MAX_TRUTH_ROWS:,} rows (over {cap:,} "
                f"lines); the limit is {MAX_TRUTH_ROWS:,}. Split it into smaller files."
            )


def _fields(line: str) -> list[str]:
    return [f.strip() for f in line.split("\t")]


def _key(text: str) -> str:
    """Case and spacing do not matter in a column name or a class name."""
    return " ".join(text.split()).casefold()


def _detect(first: str, name: str) -> str:
    """The format, from the first non-blank line (see the module)."""
    keys = {_key(f) for f in _fields(first)}
    if {"onset", "offset", "filename", "event_label"} & keys:
        return "dcase"
    if {_key(c) for c in (*RAVEN_TIMES, "Selection")} & keys:
        return "raven"
    head = _fields(first)[0]
    if head == "\\" or _NUMBER.fullmatch(head):
        return "audacity"
    raise TruthError(_unknown_format(first, name))


def _unknown_format(first: str, name: str) -> str:
    found = ", ".join(quoted(f) for f in _fields(first)[:SHOWN_NAMES])
    fields = _fields(first)
    if len(fields) >= 4 and _NUMBER.fullmatch(fields[1]) and _NUMBER.fullmatch(fields[2]):
        return (
            f"{quoted(name)} has no header row: a DCASE file starts with the line "
            "filename<TAB>onset<TAB>offset<TAB>event_label."
        )
    comma = ""
    if "\t" not in first and "," in first:
        comma = " It looks comma-separated; these formats are tab-separated."
    if name.lower().endswith((".tsv", ".csv")):
        needed = "a DCASE header (filename, onset, offset, event_label)"
    else:
        needed = (
            "a DCASE header (filename, onset, offset, event_label), a Raven header "
            "(Begin Time (s), End Time (s), Annotation or Label) or an Audacity label "
            "line (onset, offset, label)"
        )
    return f"Line 1 of {quoted(name)} should be {needed}; found {found}.{comma}"


def _read(text: str, fmt: str, start: int) -> pd.DataFrame:
    """Every line a row of stripped strings, with its 1-based ``line`` in the user's file
    (``start`` is the line ``text`` begins on). Blank rows are dropped."""
    quoting = csv.QUOTE_MINIMAL if fmt == "dcase" else csv.QUOTE_NONE
    # no header to size the table: room for stray fields, so they are reported, not lost
    names = list(range(_AUDACITY_ROOM)) if fmt == "audacity" else None
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            sep="\t",
            header=None,
            names=names,
            index_col=False,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            quoting=quoting,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise TruthError(_parser_message(str(exc), fmt, start)) from None
    rows = raw.fillna("").apply(lambda col: col.str.strip())
    rows.columns = list(range(rows.shape[1]))
    _check_one_line_fields(rows, start)
    if fmt == "audacity":
        _check_audacity_width(rows, start)
    rows["line"] = np.arange(start, start + len(rows))
    blank = (rows.drop(columns="line") == "").all(axis=1)
    return rows[~blank.to_numpy()].reset_index(drop=True)


def _check_one_line_fields(rows: pd.DataFrame, start: int) -> None:
    """A quoted field holding a line break shifts every line number after it: refuse it
    at its own (still right) line."""
    multi = rows.apply(lambda col: col.str.contains("\n", regex=False)).any(axis=1)
    hits = np.flatnonzero(multi.to_numpy())
    if hits.size:
        raise TruthError(
            f'Line {start + int(hits[0])}: a quote (") opens a field that runs over several '
            'lines; remove the quote or close it with another ".'
        )


def _check_audacity_width(rows: pd.DataFrame, start: int) -> None:
    extra = (rows.iloc[:, len(AUDACITY_FIELDS) :] != "").to_numpy()
    hits = np.flatnonzero(extra.any(axis=1))
    if hits.size:
        row = int(hits[0])
        width = len(AUDACITY_FIELDS) + int(np.flatnonzero(extra[row])[-1]) + 1
        raise TruthError(_too_many_fields(start + row, width, "audacity", 0))


def _parser_message(message: str, fmt: str, start: int) -> str:
    """pandas' tokenizer error, in the user's line numbers and words."""
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        expected, line, saw = (int(g) for g in fields.groups())
        return _too_many_fields(start - 1 + line, saw, fmt, expected)
    unclosed = re.search(r"EOF inside string starting at row (\d+)", message)
    if unclosed:
        return (
            f'Line {start + int(unclosed.group(1))}: a quote (") opens a field that is '
            'never closed; remove it or close it with another ".'
        )
    return f"The file could not be read as tab-separated text: {shown(message)}."


def _line(rows: pd.DataFrame) -> int:
    """The line of the first row (the header's, for a table with one)."""
    return int(rows["line"].iloc[0])


def _too_many_fields(line: int, saw: int, fmt: str, expected: int) -> str:
    where = (
        "an Audacity label line has 3 (onset, offset, label)"
        if fmt == "audacity"
        else f"the header has {expected}"
    )
    return f"Line {line}: {saw} tab-separated fields, but {where}."


def _header(rows: pd.DataFrame) -> tuple[dict[str, int], list[str], pd.DataFrame]:
    """(column key -> position, the header as written, the data rows)."""
    header = [str(v) for v in rows.drop(columns="line").iloc[0].tolist()]
    positions: dict[str, int] = {}
    for i, column in enumerate(header):
        if column:
            positions.setdefault(_key(column), i)
    return positions, header, rows.iloc[1:].reset_index(drop=True)


def _missing_columns(fmt: str, needed: str, header: Sequence[str], line: int) -> TruthError:
    found = ", ".join(quoted(c) for c in header if c) or "none"
    return TruthError(f"Line {line}: a {fmt} file needs the columns {needed}; found {found}.")


def _dcase_rows(rows: pd.DataFrame) -> tuple[pd.DataFrame, _Names]:
    positions, header, data = _header(rows)
    if any(_key(c) not in positions for c in TRUTH_COLUMNS):
        raise _missing_columns("DCASE", ", ".join(TRUTH_COLUMNS), header, _line(rows))
    table = pd.DataFrame({c: data[positions[c]] for c in TRUTH_COLUMNS} | {"line": data["line"]})
    table["filename"] = _without_sheet_quote(table["filename"])
    table["event_label"] = _without_sheet_quote(table["event_label"])
    return table, _Names("onset", "offset", "event_label")


def _without_sheet_quote(column: pd.Series) -> pd.Series:
    """The text without the ``'`` SonoTag's exports put before ``= + - @ "``."""
    return column.str.replace(_SHEET_QUOTE, "", regex=True)


def _without_old_statuses(data: pd.DataFrame, positions: dict[str, int]) -> pd.DataFrame:
    """An older SonoTag Raven table (see the module) with its review statuses taken out of
    ``Annotation``, so its ``Label`` is read there; any other table as it is."""
    keys = {_key(c) for c in OLD_SONOTAG_RAVEN}
    if _key("Review") in positions or not keys <= positions.keys():
        return data
    at = positions[_key("Annotation")]
    data = data.copy()
    data[at] = data[at].where(~data[at].isin(OLD_REVIEW_STATUSES), "")
    return data


def _raven_rows(rows: pd.DataFrame, audio: str) -> tuple[pd.DataFrame, _Names]:
    positions, header, data = _header(rows)
    times = [positions[_key(c)] for c in RAVEN_TIMES if _key(c) in positions]
    labels = [(c, positions[_key(c)]) for c in RAVEN_LABELS if _key(c) in positions]
    if len(times) < len(RAVEN_TIMES) or not labels:
        needed = (
            f"{RAVEN_TIMES[0]}, {RAVEN_TIMES[1]} and a label column "
            f"({', '.join(RAVEN_LABELS[:-1])} or {RAVEN_LABELS[-1]})"
        )
        raise _missing_columns("Raven", needed, header, _line(rows))
    data = _without_old_statuses(data, positions)
    label = data[labels[-1][1]]
    for _, position in reversed(labels[:-1]):
        label = data[position].where(data[position] != "", label)
    file_column = next((positions[_key(c)] for c in RAVEN_FILES if _key(c) in positions), None)
    table = pd.DataFrame(
        {
            "filename": audio
            if file_column is None
            else _without_sheet_quote(data[file_column]).where(data[file_column] != "", audio),
            "onset": data[times[0]],
            "offset": data[times[1]],
            "event_label": _without_sheet_quote(label),
            "line": data["line"],
        }
    )
    selection = positions.get(_key("Selection"))
    if selection is not None:
        same = pd.concat([data[selection], table[["filename", "onset", "offset"]]], axis=1)
        table = table[~(same.duplicated() & (data[selection] != "")).to_numpy()]
    names = _Names(header[times[0]], header[times[1]], " / ".join(c for c, _ in labels))
    return table.reset_index(drop=True), names


def _audacity_rows(rows: pd.DataFrame, audio: str) -> tuple[pd.DataFrame, _Names]:
    data = rows[(rows[0] != "\\").to_numpy()]
    table = pd.DataFrame(
        {
            "filename": audio,
            "onset": data[0],
            "offset": data[1],
            "event_label": data[2],
            "line": data["line"],
        }
    )
    return table.reset_index(drop=True), _Names("onset", "offset", "label")


def _stem(name: str) -> str:
    """The audio a label file is named after: ``dog.Table.1.selections.txt`` -> ``dog``."""
    base = _basename(name)
    return _TOOL_SUFFIX.sub("", base) or base


# ---------------------------------------------------------------- checks


@dataclass(frozen=True)
class _Problem:
    """Rows that break one rule, and how to say it for the first of them."""

    mask: np.ndarray
    say: Callable[[int], str]  # row position -> message after "Line N: "


def _checked(table: pd.DataFrame, fmt: str, names: _Names, name: str) -> GroundTruth:
    """Every rule checked on whole columns; the first offending line is reported."""
    if table.empty:
        raise TruthError(f"{quoted(name)} has no rows; add one row per event.")
    if len(table) > MAX_TRUTH_ROWS:
        raise TruthError(
            f"{quoted(name)} has {len(table):,} rows; the limit is {MAX_TRUTH_ROWS:,}. "
            "Split it into smaller files."
        )
    onset_text = table["onset"].astype(str)
    offset_text = table["offset"].astype(str)
    label = table["event_label"].astype(str)
    no_event = ((onset_text == "") & (offset_text == "") & (label == "")).to_numpy()
    empty_file = no_event & (table["filename"] != "").to_numpy() if fmt == "dcase" else None
    events = ~empty_file if empty_file is not None else np.ones(len(table), dtype=bool)
    onset = pd.to_numeric(onset_text, errors="coerce").to_numpy(dtype=np.float64)
    offset = pd.to_numeric(offset_text, errors="coerce").to_numpy(dtype=np.float64)
    problems = [
        *_time_problems(onset_text, onset, names.onset, events),
        *_time_problems(offset_text, offset, names.offset, events),
        *_span_problems(onset, offset, names, events),
        _Problem(
            events & (label == "").to_numpy(),
            lambda _: f"{names.label} is empty; every event needs a label.",
        ),
    ]
    if fmt == "dcase":
        problems.append(
            _Problem(
                (table["filename"] == "").to_numpy(),
                lambda _: "filename is empty; every row needs the audio file it belongs to.",
            )
        )
    _raise_first(problems, table["line"].to_numpy())
    kept = table[events].assign(onset=onset[events], offset=offset[events])
    empty = table["filename"][empty_file].tolist() if empty_file is not None else []
    return _truth(kept, fmt, empty)


def _time_problems(
    text: pd.Series, value: np.ndarray, column: str, events: np.ndarray
) -> list[_Problem]:
    texts = text.tolist()
    missing = events & (text == "").to_numpy()
    named_nan = text.str.casefold().isin(_NOT_FINITE).to_numpy()
    not_number = events & ~missing & np.isnan(value) & ~named_nan
    not_finite = events & ~missing & ~not_number & ~np.isfinite(value)
    negative = events & np.isfinite(value) & (value < 0)

    def bad_number(i: int) -> str:
        hint = " (use a dot for decimals)" if "," in texts[i] else ""
        return f"{column} {quoted(texts[i])} is not a number; write seconds like 12.5{hint}."

    return [
        _Problem(missing, lambda _: f"{column} is empty; every event needs a time in seconds."),
        _Problem(not_number, bad_number),
        _Problem(
            not_finite,
            lambda i: f"{column} is {quoted(texts[i])}; times must be finite seconds.",
        ),
        _Problem(
            negative,
            lambda i: (
                f"{column} {_seconds(value[i])} is negative; times are seconds "
                "from the start of the file."
            ),
        ),
    ]


def _span_problems(
    onset: np.ndarray, offset: np.ndarray, names: _Names, events: np.ndarray
) -> list[_Problem]:
    with np.errstate(invalid="ignore"):
        valid = events & np.isfinite(onset) & np.isfinite(offset) & (onset >= 0)
        reversed_ = valid & (offset < onset)
        zero = valid & (offset == onset)
    need = f"every event needs {names.offset} > {names.onset}."
    return [
        _Problem(
            reversed_,
            lambda i: (
                f"{names.offset} {_seconds(offset[i])} is before {names.onset} "
                f"{_seconds(onset[i])}; {need}"
            ),
        ),
        _Problem(
            zero,
            lambda i: (
                f"{names.offset} equals {names.onset} ({_seconds(onset[i])}), an empty span; {need}"
            ),
        ),
    ]


def _raise_first(problems: Sequence[_Problem], lines: np.ndarray) -> None:
    """Raise for the earliest line that breaks a rule (ties: the first rule listed)."""
    first: tuple[int, int, _Problem] | None = None
    for order, problem in enumerate(problems):
        hits = np.flatnonzero(problem.mask)
        if hits.size and (first is None or (hits[0], order) < (first[0], first[1])):
            first = (int(hits[0]), order, problem)
    if first is None:
        return
    row, _, problem = first
    more = int(np.count_nonzero(problem.mask)) - 1
    tail = f" {more:,} more line{'s' if more > 1 else ''} like it." if more else ""
    raise TruthError(f"Line {int(lines[row])}: {problem.say(row)}{tail}")


def _seconds(value: float) -> str:
    """A time as the file wrote it, with a clock once it is past a minute."""
    seconds = float(value)
    return f"{seconds!r} s" + (f" ({clock(seconds)})" if seconds >= 60 else "")


# ---------------------------------------------------------------- against the audio


def _basename(name: str) -> str:
    """Last path component, whether the name uses / or \\."""
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1] or name


def _without_extension(name: str) -> str:
    base = _basename(name)
    dot = base.rfind(".")
    return base[:dot] if dot > 0 else base


def _candidates(name: str, known: Sequence[str]) -> list[str]:
    """The names in ``known`` that ``name`` may mean: the same name, else the same
    basename (directories ignored, either way round), else, for a name without an
    extension (an Audacity track's), the same basename without extension."""
    if name in known:
        return [name]
    base = _basename(name)
    same = [k for k in known if _basename(k) == base]
    if not same and "." not in base:
        same = [k for k in known if _without_extension(k) == base]
    return same


def _resolve(name: str, known: Sequence[str]) -> str | None:
    """The one name in ``known`` that ``name`` means, or None (none, or several)."""
    same = _candidates(name, known)
    return same[0] if len(same) == 1 else None


def check_against(truth: GroundTruth, durations: Mapping[str, float]) -> GroundTruth:
    """The truth for exactly the audio in ``durations`` (file -> seconds), under the
    ``durations``' file names. A truth file matches the audio of the same name, else of
    the same basename (``audio/dog.wav`` and ``dog.wav`` match, either way round), else,
    for a truth name without an extension (an Audacity track's ``dog``), the audio whose
    basename without extension is that name; a match must be unique.

    Refused: truth files with no (or no unique) audio, events that start at or after
    the audio's end or end more than ``END_TOLERANCE_S`` past it (a wrong file or wrong
    times). Offsets up to ``END_TOLERANCE_S`` past the end are clipped to it.
    """
    known = list(durations)
    options = {f: _candidates(f, known) for f in truth.files()}
    unknown = [f for f, found in options.items() if not found]
    if unknown:
        raise TruthError(
            f"The ground truth names files that are not here: {_listed(unknown)}. "
            f"Files here: {_listed(known)}. Rename them in the truth file or add the audio."
        )
    twice = next((f for f, found in options.items() if len(found) > 1), None)
    if twice is not None:
        raise TruthError(
            f"The ground truth's {quoted(twice)} could be any of {_listed(options[twice])}; "
            "write the file's path as it is here."
        )
    names = {f: found[0] for f, found in options.items()}
    events = truth.events.assign(filename=truth.events["filename"].map(names))
    end = events["filename"].map({k: float(v) for k, v in durations.items()}).to_numpy(float)
    onset = events["onset"].to_numpy(np.float64)
    offset = events["offset"].to_numpy(np.float64)
    _check_ends(events, onset >= end, "starts", onset, end)
    _check_ends(events, offset > end + END_TOLERANCE_S, "ends", offset, end)
    clipped = events.assign(offset=np.minimum(offset, end))
    return _truth(clipped, truth.format, [names[f] for f in truth.empty_files])


def _check_ends(
    events: pd.DataFrame, bad: np.ndarray, verb: str, at: np.ndarray, end: np.ndarray
) -> None:
    hits = np.flatnonzero(bad)
    if not hits.size:
        return
    i = int(hits[0])
    more = f" {hits.size - 1:,} more like it." if hits.size > 1 else ""
    raise TruthError(
        f"{quoted(events['filename'].iloc[i])}: event {quoted(events['event_label'].iloc[i])} "
        f"{verb} at {clock(at[i])}, but the audio ends at {clock(end[i])}; check the times "
        f"and the file name (up to {END_TOLERANCE_S} s past the end is clipped).{more}"
    )


def _listed(names: Sequence[str]) -> str:
    """At most ``SHOWN_NAMES`` quoted names, then "and N more"."""
    if not names:
        return "none"
    shown_names = ", ".join(quoted(n) for n in names[:SHOWN_NAMES])
    rest = len(names) - SHOWN_NAMES
    return shown_names + (f" and {rest} more" if rest > 0 else "")


# ---------------------------------------------------------------- classes and labels


@dataclass(frozen=True)
class ClassMatch:
    """Which truth class is scored as which label; nothing is dropped silently: what
    found no partner is listed. Two classes may share a label (their events merge)."""

    pairs: dict[str, str]  # truth class -> label
    unmatched_classes: list[str]
    unmatched_labels: list[str]


def match_classes(
    classes: Sequence[str],
    labels: Sequence[str],
    mapping: Mapping[str, str] | None = None,
) -> ClassMatch:
    """Pair truth classes with labels: the same name, else the same name ignoring case
    and spacing (the first such label), and ``mapping`` (class -> label) over both.

    A mapping from a class the truth does not have, or to a label not in ``labels``, is
    a TruthError: it is a typo, and ignoring it would score the wrong thing.
    """
    classes = list(dict.fromkeys(classes))
    labels = list(dict.fromkeys(labels))
    mapping = dict(mapping or {})
    _check_mapping(mapping, classes, labels)
    by_key: dict[str, str] = {}
    for label in labels:
        by_key.setdefault(_key(label), label)
    pairs: dict[str, str] = {}
    for cls in classes:
        to = mapping.get(cls) or (cls if cls in labels else by_key.get(_key(cls)))
        if to is not None:
            pairs[cls] = to
    used = set(pairs.values())
    return ClassMatch(
        pairs,
        [c for c in classes if c not in pairs],
        [label for label in labels if label not in used],
    )


def _check_mapping(mapping: Mapping[str, str], classes: list[str], labels: list[str]) -> None:
    strange = [c for c in mapping if c not in classes]
    if strange:
        raise TruthError(
            f"The class mapping names {_listed(strange)}, not a class of the ground truth; "
            f"its classes are {_listed(classes)}."
        )
    missing = list(dict.fromkeys(to for to in mapping.values() if to not in labels))
    if missing:
        raise TruthError(
            f"The class mapping maps to {_listed(missing)}, not a label here; "
            f"the labels are {_listed(labels)}."
        )


def events_for_labels(truth: GroundTruth, match: ClassMatch) -> Events:
    """The truth in sed_scores_eval's form, classes renamed to their labels; classes
    without a label are left out (``match`` lists them). Where two classes share a
    label, that label's overlapping or touching events in a file become one event, so
    one sound annotated twice is not counted twice."""
    events = truth.events[truth.events["event_label"].isin(list(match.pairs))]
    events = events.assign(event_label=events["event_label"].map(match.pairs))
    shared = {label for label, n in Counter(match.pairs.values()).items() if n > 1}
    out = _grouped(events, truth.files())
    for f, rows in out.items():
        out[f] = sorted(_merged(rows, shared))
    return out


def _merged(
    rows: list[tuple[float, float, str]], shared: set[str]
) -> list[tuple[float, float, str]]:
    """``rows`` with overlapping events of each ``shared`` label joined."""
    kept = [r for r in rows if r[2] not in shared]
    for label in shared:
        joined = merge_overlapping((on, off) for on, off, lab in rows if lab == label)
        kept.extend((on, off, label) for on, off in joined)
    return kept

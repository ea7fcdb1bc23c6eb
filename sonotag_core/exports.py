"""Write a :class:`Report` in formats other tools read: a registry of text writers.

Every writer follows its target's own conventions, so the file opens as-is there:

* ``csv`` / ``frames-csv``: RFC 4180-style CSV (``csv`` module quoting), UTF-8, header row.
* ``json``: one strict-JSON object (no NaN/Infinity) with the whole analysis and provenance.
* ``audacity``: Audacity label track (File > Import > Labels): ``onset<TAB>offset<TAB>label``.
* ``dcase``: DCASE event-list TSV (``filename onset offset event_label``): plain
  tab-separated text, fields unquoted, as read by sed_eval / dcase_util, sed_scores_eval
  and psds_eval (the ``csv`` module or pandas with a tab delimiter).
* ``raven``: Raven Pro selection table (File > Open Selection Table), plain tab-separated
  text with decimal times and frequencies, the event's class in ``Annotation`` (where
  Raven, crowsetta and OpenSoundscape look for it) and its review in ``Review``.

Tab-separated formats (Audacity, DCASE, Raven) cannot hold a tab or a line break in a
field: there each becomes a space (a label is never refused for it).

Numbers: times are printed plainly and exactly (frame times are multiples of 0.3125 s,
exact in binary), except Audacity, which uses its own 6-decimal form; probabilities have
6 decimals, which is finer than the model's meaningful precision.
Files are written atomically (temp file in the same directory, then ``os.replace``), so a
failed export never leaves a half-written file where a good one was; devices and pipes
(``/dev/null``, a FIFO) are written in place instead, never renamed over.

Reviews (:mod:`.review`): the events CSV has ``status`` (``accepted``, ``rejected``, empty
for unreviewed) and ``reviewed_label`` (the corrected label, empty unless relabelled)
columns, each JSON event a ``status`` and, when relabelled, a ``reviewed_label``; Raven
puts the corrected label in ``Annotation`` (``Label`` keeps the detected one) and the
status in ``Review``.

Marked spans (:class:`~.review.Span`, rows after the detected events): an ``added`` span
is an event the model missed, written in every event format with status ``added`` (and
kept by ``reviewed=True``: the sound is there); a ``negative`` span ("checked: no <label>
here") is written only where a file can say "not there": the events CSV (status
``negative``) and the JSON (``negative_spans``, apart from ``events``); Audacity, DCASE and
Raven list sounds, so it is left out there. Their ``peak``/``mean`` is the model's
probability over the span (empty when the label was not scored). ``reviewed=True`` on
:func:`export_text`, :func:`write_export`, :func:`export_all` and :func:`export_zip`
writes the accepted events only, under their corrected labels, in every event format
(CSV, JSON, Audacity, DCASE, Raven); the frame table is the same either way.

Spreadsheet safety: a cell of a CSV-like export (events and frames CSV, DCASE tsv, Raven)
that begins with ``= + - @``, a tab or a CR would run as a formula when the file is opened
in a spreadsheet, so it gets a leading ``'`` (OWASP's advice). Audacity's label track is
read by Audacity only, which shows label text literally: there it stays as it is. In the
unquoted tab-separated files (DCASE, Raven) a field that begins with ``"`` gets the same
``'``: every CSV reader (the ``csv`` module, pandas) would take that ``"`` as an opening
quote and drop it, or run the field on into the next rows.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import math
import os
import re
import stat
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path, PurePath
from typing import Any, NamedTuple, TextIO

import numpy as np

from sonotag_core import __version__
from sonotag_core.domain.evaluation import Evaluation
from sonotag_core.domain.report import Report
from sonotag_core.domain.review import NEGATIVE, RELABEL_COLUMN, STATUS_COLUMN, accepted_only
from sonotag_core.errors import ConfigError, ExportError
from sonotag_core.untrusted import quoted

PROB_DECIMALS = 6
RAVEN_HIGH_FREQ_HZ = 24_000  # Nyquist at OpenFLAM's 48 kHz input
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: same report, same bytes


@dataclass(frozen=True)
class ExportFormat:
    """One output format: file suffix, MIME type for downloads, and its writer."""

    name: str
    suffix: str
    mime: str
    description: str
    write: Callable[[Report, TextIO], None]


# ---------------------------------------------------------------- formatting helpers

_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]+")


def _clean_label(label: Any) -> str:
    """Labels in line/tab-based formats: tabs and line breaks would split rows or columns."""
    return _LINE_BREAKS.sub(" ", str(label)).strip()


def _csv_text(text: str) -> str:
    """``csv`` quotes only the characters of its line terminator ("\\n"), so a bare CR would
    end the row for every reader; CR and CRLF become LF, which is quoted and survives."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _sheet_safe(text: str) -> str:
    """A cell a spreadsheet will show as text: one that begins like a formula
    (``=HYPERLINK(…)``, ``+cmd``, ``@SUM(…)``, ``-2+3``, a tab or CR) gets a leading ``'``,
    which Excel, LibreOffice and Google Sheets take as "this is text" (OWASP's advice)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _tab_field(text: Any) -> str:
    """A field of an unquoted tab-separated export (DCASE, Raven): tabs and line breaks
    become spaces, a formula start gets its ``'`` (:func:`_sheet_safe`), and so does a
    leading ``"``, which a CSV reader would take for an opening quote."""
    field = _sheet_safe(_clean_label(text))
    return "'" + field if field.startswith('"') else field


def _time(x: Any) -> str:
    """Seconds, plainly and exactly (shortest round-trip decimal, never ``1e-05``)."""
    return np.format_float_positional(float(x), trim="-")


def _decimal(x: Any) -> str:
    """A number that reads as a decimal (``5.0``, ``24000.0``, ``0.3125``), exactly: Raven
    writes its times and frequencies so, and readers that check column types (crowsetta's
    schema) refuse a column of whole numbers as integers."""
    return np.format_float_positional(float(x), trim="0")


def _prob(x: Any) -> str:
    value = float(x)
    return f"{value:.{PROB_DECIMALS}f}" if math.isfinite(value) else ""  # a span's unscored label


class _Event(NamedTuple):
    label: str
    onset: float
    offset: float
    peak: float
    mean: float
    status: str  # "accepted", "rejected", "added", "negative", "" = unreviewed
    relabel: str  # the corrected label, "" = not relabelled


def _sounds(report: Report) -> list[_Event]:
    """The rows that say a sound is there (every row but the ``negative`` spans)."""
    return [e for e in _event_rows(report) if e.status != NEGATIVE]


def _event_rows(report: Report) -> list[_Event]:
    ev = report.events
    if ev is None or len(ev) == 0:
        return []

    def text(column: str) -> list[str]:
        if column not in ev.columns:
            return [""] * len(ev)
        return ev[column].fillna("").astype(str).tolist()

    return [
        _Event(*row)
        for row in zip(
            ev["label"].astype(str).tolist(),
            ev["onset_s"].astype(float).tolist(),
            ev["offset_s"].astype(float).tolist(),
            ev["peak"].astype(float).tolist(),
            ev["mean"].astype(float).tolist(),
            text(STATUS_COLUMN),
            text(RELABEL_COLUMN),
            strict=True,
        )
    ]


def _basename(name: str) -> str:
    """Last path component, whether the name uses / or \\ (DCASE wants no directories)."""
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1] or name


# ---------------------------------------------------------------- writers


def write_events_csv(report: Report, out: TextIO) -> None:
    """Events table; quoting follows the ``csv`` module so commas and quotes survive."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["label", "onset_s", "offset_s", "peak", "mean", STATUS_COLUMN, RELABEL_COLUMN])
    w.writerows(
        (
            _sheet_safe(_csv_text(e.label)),
            _time(e.onset),
            _time(e.offset),
            _prob(e.peak),
            _prob(e.mean),
            _sheet_safe(_csv_text(e.status)),
            _sheet_safe(_csv_text(e.relabel)),
        )
        for e in _event_rows(report)
    )


def write_frames_csv(report: Report, out: TextIO) -> None:
    """Tidy frame table (time_s, label, probability): one row per frame and label."""
    tl = report.timeline
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["time_s", "label", "probability"])
    df = tl.to_frame_df()
    # format each distinct frame time once; the table repeats them for every label
    time_text = {t: _time(t) for t in tl.frame_times_s.tolist()}
    times = [time_text.get(t) or _time(t) for t in df["time_s"].tolist()]
    probs = [_prob(p) for p in df["probability"].tolist()]
    safe = {label: _sheet_safe(_csv_text(label)) for label in map(str, tl.labels)}
    labels = [safe.get(label) or _sheet_safe(_csv_text(label)) for label in df["label"].astype(str)]
    w.writerows(zip(times, labels, probs, strict=True))


def write_json(report: Report, out: TextIO) -> None:
    """The whole analysis as one strict-JSON object (provenance included)."""
    json.dump(
        report_to_json_obj(report), out, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    out.write("\n")


def write_audacity(report: Report, out: TextIO) -> None:
    """Audacity "Import Labels" format: no header, 6-decimal seconds, tab-separated."""
    for e in _sounds(report):
        out.write(f"{e.onset:.6f}\t{e.offset:.6f}\t{_clean_label(e.label)}\n")


DCASE_HEADER = ("filename", "onset", "offset", "event_label")


def _dcase_line(filename: str, onset: float, offset: float, label: str) -> str:
    """One DCASE row: plain tab-separated fields, never CSV-quoted (see :func:`_tab_field`);
    ``filename`` is the base name, as DCASE lists name files."""
    fields = (_tab_field(_basename(filename)), _time(onset), _time(offset), _tab_field(label))
    return "\t".join(fields) + "\n"


def write_dcase(report: Report, out: TextIO) -> None:
    """DCASE event list: plain tab-separated text with a header row, fields unquoted."""
    out.write("\t".join(DCASE_HEADER) + "\n")
    for e in _sounds(report):
        out.write(_dcase_line(report.file_name, e.onset, e.offset, e.label))


def write_events_table(events: Any, out: TextIO, fmt: str = "csv") -> None:
    """Events of many files (a batch output's combined table, one row per event with
    ``source``) as CSV (every column; text cells spreadsheet-safe) or a DCASE tsv whose
    ``filename`` is each source's base name."""
    if fmt == "dcase":
        out.write("\t".join(DCASE_HEADER) + "\n")
        for r in events.itertuples(index=False):
            out.write(_dcase_line(str(r.source), r.onset_s, r.offset_s, str(r.label)))
        return
    if fmt != "csv":
        raise ConfigError(f"Combined events are written as csv or dcase, not {quoted(fmt)}.")
    w = csv.writer(out, lineterminator="\n")
    columns = list(events.columns)
    w.writerow(columns)
    for row in events.itertuples(index=False):
        w.writerow(_table_cell(v) for v in row)


def _table_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, str):
        return _sheet_safe(_csv_text(value))
    return repr(float(value)) if isinstance(value, float) else str(value)


RAVEN_HEADER = (
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
)


def write_raven(report: Report, out: TextIO) -> None:
    """Raven Pro selection table: plain tab-separated text (Raven does no CSV quoting, so
    fields are written verbatim, see :func:`_tab_field`), times and frequencies as
    decimals as Raven writes them. ``Annotation`` is the event's class, the column Raven,
    crowsetta and OpenSoundscape read by default: the corrected label when relabelled,
    else the label; ``Label`` is the label that detected it, ``Review`` the status
    (accepted, rejected, empty)."""
    out.write("\t".join(RAVEN_HEADER) + "\n")
    for i, e in enumerate(_sounds(report), start=1):
        row = (
            str(i),
            "Spectrogram 1",
            "1",
            _decimal(e.onset),
            _decimal(e.offset),
            _decimal(0),
            _decimal(RAVEN_HIGH_FREQ_HZ),
            _tab_field(e.label),
            _prob(e.peak),
            _prob(e.mean),
            _tab_field(e.relabel or e.label),
            _tab_field(e.status),
        )
        out.write("\t".join(row) + "\n")


# ---------------------------------------------------------------- JSON


def evaluation_csv(evaluation: Evaluation) -> str:
    """The per-label evaluation table and a closing ``macro`` row as CSV (empty cells
    where a metric does not apply); labels are user text, so their cells are
    spreadsheet-safe like every other export's."""
    columns = list(evaluation.per_label.columns)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for row in evaluation.per_label.itertuples(index=False):
        w.writerow(_evaluation_cell(c, v) for c, v in zip(columns, row, strict=True))
    macro = {"label": "macro", **evaluation.macro}
    w.writerow(_evaluation_cell(c, macro.get(c)) for c in columns)
    return out.getvalue()


def _evaluation_cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if column == "label":
        return _sheet_safe(_csv_text(_clean_label(value)))
    return repr(float(value)) if isinstance(value, float) else str(value)


def report_to_json_obj(report: Report) -> dict[str, Any]:
    """The JSON export as Python objects (only str/int/float/bool/None/list/dict)."""
    tl = report.timeline
    probs = np.asarray(tl.probabilities, dtype=np.float64)
    prob_lists: list[Any] = np.round(probs, PROB_DECIMALS).tolist()
    if probs.size and not np.isfinite(probs).all():
        prob_lists = _jsonable(prob_lists)  # NaN/inf -> null: strict JSON has neither
    negatives = [label for label in tl.labels if label in tl.negatives]
    negatives += sorted(str(n) for n in tl.negatives if n not in tl.labels)
    clip = report.clip_scores
    obj: dict[str, Any] = {
        "labels": [str(label) for label in tl.labels],
        "negatives": negatives,
        "frame_times_s": tl.frame_times_s.tolist(),
        "frame_s": float(tl.frame_s),
        "duration_s": float(tl.duration_s),
        "probabilities": prob_lists,
        "clip_scores": [
            {
                "label": str(label),
                "max": round(float(mx), PROB_DECIMALS),
                "mean": round(float(mn), PROB_DECIMALS),
                "negative": bool(neg),
            }
            for label, mx, mn, neg in zip(
                clip["label"], clip["max"], clip["mean"], clip["negative"], strict=True
            )
        ],
        "events": [_json_event(e) for e in _sounds(report)],
        "negative_spans": [
            {"label": e.label, "onset_s": e.onset, "offset_s": e.offset}
            for e in _event_rows(report)
            if e.status == NEGATIVE
        ],
        "model": dataclasses.asdict(report.model),
        "settings": report.settings,
        # the user's file name or link, never where this server keeps the audio
        "source": {k: v for k, v in report.source.items() if k != "path"},
        "sonotag_version": __version__,
        "created": report.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "extra": report.extra,
    }
    return {k: (v if k == "probabilities" else _jsonable(v)) for k, v in obj.items()}


def _json_event(e: _Event) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "label": e.label,
        "onset_s": e.onset,
        "offset_s": e.offset,
        "peak": round(e.peak, PROB_DECIMALS),
        "mean": round(e.mean, PROB_DECIMALS),
        STATUS_COLUMN: e.status,
    }
    if e.relabel:
        obj[RELABEL_COLUMN] = e.relabel
    return obj


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars/arrays unwrapped, NaN/inf -> None, paths -> str."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((_jsonable(v) for v in obj), key=str)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    return str(obj)


# ---------------------------------------------------------------- registry and API

FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("csv", ".events.csv", "text/csv", "Events table (CSV)", write_events_csv),
        ExportFormat(
            "frames-csv",
            ".frames.csv",
            "text/csv",
            "Frame probabilities, one row per frame and label (CSV)",
            write_frames_csv,
        ),
        ExportFormat(
            "json",
            ".json",
            "application/json",
            "Everything: probabilities, events, scores, settings, provenance (JSON)",
            write_json,
        ),
        ExportFormat(
            "audacity",
            ".audacity.txt",
            "text/plain",
            "Audacity label track (File > Import > Labels)",
            write_audacity,
        ),
        ExportFormat(
            "dcase",
            ".dcase.tsv",
            "text/tab-separated-values",
            "DCASE event list (filename, onset, offset, event_label)",
            write_dcase,
        ),
        ExportFormat(
            "raven",
            ".Table.1.selections.txt",
            "text/plain",
            "Raven Pro selection table",
            write_raven,
        ),
    )
}


def get_format(fmt: str) -> ExportFormat:
    """The registered format, or a :class:`ConfigError` naming the valid ones."""
    try:
        return FORMATS[fmt]
    except (KeyError, TypeError):
        valid = ", ".join(FORMATS)
        raise ConfigError(f"Unknown export format {quoted(fmt)}; choose one of: {valid}.") from None


def reviewed_report(report: Report) -> Report:
    """The report a ``reviewed=True`` export writes: accepted events only, relabels
    applied, and ``reviewed_only`` in its settings (the JSON says what it holds)."""
    return dataclasses.replace(
        report,
        events=accepted_only(report.events),
        settings={**report.settings, "reviewed_only": True},
    )


def _as_asked(report: Report, reviewed: bool) -> Report:
    return reviewed_report(report) if reviewed else report


def export_text(report: Report, fmt: str, *, reviewed: bool = False) -> str:
    """The export as a string (for download buttons and tests); ``reviewed``: accepted
    events only, relabels applied."""
    buf = io.StringIO(newline="")
    get_format(fmt).write(_as_asked(report, reviewed), buf)
    return buf.getvalue()


# Where an export may go. A regular file (or a new name) is replaced atomically; a
# character device or a FIFO (/dev/null, /dev/stdout, a named pipe) is written in place,
# as a shell redirect would: renaming over it would replace the device with a file.
# Paths under these folders are never renamed over, whatever they point at.
_IN_PLACE_ROOTS = ("/proc/", "/dev/fd/", "/dev/std")


@dataclass(frozen=True)
class Target:
    """A checked export destination: ``path`` as the user typed it, ``real`` the file that
    will be written, and whether it is written in place (a device or a pipe)."""

    path: Path
    real: Path
    in_place: bool


def _cannot(path: Path, exc: OSError) -> ExportError:
    reasons: dict[int | None, str] = {  # exc.errno is None for an OSError built without one
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is used up",
        errno.ENAMETOOLONG: "the name is too long",
        errno.ENOENT: "that folder does not accept new files",
    }
    why = reasons.get(exc.errno, (exc.strerror or type(exc).__name__).lower())
    return ExportError(f"Cannot write {quoted(path)}: {why}. Choose another path.")


def check_target(path: Path) -> Target:
    """Check an export path before any work is done, so a typo in ``-o`` fails at once
    with a message naming it: no such directory, a folder in the way, a block device
    or a socket (refused), a device or FIFO (written in place), a place that takes no
    new file (a read-only mount, /proc: tried with a probe file)."""
    return _writable(_target(path))


def check_directory(directory: Path) -> None:
    """``--format all``'s destination: a directory, or a name one can be made at."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ExportError(
            f"{quoted(directory)} is a file; --format all writes one file per format into a "
            "directory. Choose a directory."
        )


def _target(path: Path) -> Target:
    """Where an export to ``path`` goes and how (see :func:`check_target`), from ``stat``
    alone."""
    path = Path(path)
    shown_path = quoted(path)
    try:
        st = os.stat(path)  # follows symlinks: what would really be written
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        raise _cannot(path, exc) from None
    if st is None:
        parent = Path(os.path.realpath(path)).parent
        if not parent.exists():
            raise ExportError(
                f"No such directory: {quoted(path.parent)}. Create it or choose another path."
            )
        if not parent.is_dir():
            raise ExportError(f"{quoted(path.parent)} is not a directory. Choose another path.")
        if str(path.absolute()).startswith(_IN_PLACE_ROOTS):  # /proc makes no new files
            raise _cannot(path, FileNotFoundError(errno.ENOENT, "no such file"))
        return Target(path, Path(os.path.realpath(path)), in_place=False)
    if stat.S_ISDIR(st.st_mode):
        raise ExportError(
            f"{shown_path} is a directory: give a file name inside it, or use --format all "
            "to write every format into it."
        )
    if stat.S_ISBLK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        kind = "a block device" if stat.S_ISBLK(st.st_mode) else "a socket"
        raise ExportError(f"{shown_path} is {kind}; refused. Choose a file name.")
    in_place = not stat.S_ISREG(st.st_mode) or str(path.absolute()).startswith(_IN_PLACE_ROOTS)
    return Target(path, path if in_place else Path(os.path.realpath(path)), in_place)


def _writable(target: Target) -> Target:
    """An atomic replace needs a new file beside the target: make (and remove) one now, so
    a read-only place or a folder like /proc fails before the work, not after it."""
    if target.in_place:
        return target
    try:
        fd, probe = tempfile.mkstemp(dir=target.real.parent, prefix=f".{target.real.name}.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _cannot(target.path, exc) from None
    return target


def write_export(report: Report, fmt: str, path: Path, *, reviewed: bool = False) -> Path:
    """Write one export to ``path`` (``reviewed``: accepted events only, relabelled). A
    regular file is replaced atomically (temp file in the same directory, fsync, rename),
    so a crash or a writer error midway leaves any existing file untouched and no temp
    file behind; a device or FIFO is written in place. Every failure is an
    :class:`ExportError` naming the path."""
    spec = get_format(fmt)
    report = _as_asked(report, reviewed)
    return _write_file(path, lambda out: spec.write(report, out))


def is_stdout(output: Path | str | None) -> bool:
    """Whether ``-o`` means standard output: not given, or ``-``."""
    return output is None or str(output) == "-"


def check_output(output: Path | str | None) -> None:
    """A command's ``-o`` checked before any work (see :func:`check_target`); stdout
    needs no check."""
    if output is not None and not is_stdout(output):
        check_target(Path(output))


def write_output(write: Callable[[TextIO], object], output: Path | str | None) -> str:
    """A command's result (``write`` puts the text on the stream it is given): to stdout
    when ``output`` is None or ``-``, else to that file as :func:`write_export` writes one
    (atomically, or in place for a device or FIFO). Returns where it went, for messages."""
    if output is None or is_stdout(output):
        write(sys.stdout)
        sys.stdout.flush()
        return "stdout"
    return str(_write_file(Path(output), write))


def _write_file(path: Path, write: Callable[[TextIO], object]) -> Path:
    """``write``'s text into ``path``: see :func:`write_export`."""
    target = _target(path)  # a failed write names the path anyway: no probe file first
    try:
        if target.in_place:
            with open(target.path, "w", encoding="utf-8", newline="") as out:
                write(out)
        else:
            _replace_atomically(write, target.real)
    except OSError as exc:
        raise _cannot(target.path, exc) from None
    return target.path


def _replace_atomically(write: Callable[[TextIO], object], path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)  # replacing a file keeps its permissions
    except FileNotFoundError:
        mode = 0o644  # mkstemp's 0600 would hide the export from other users/tools
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        out = open(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_stem(stem: str) -> None:
    """A bad name is a bad option (:class:`ConfigError`), not a place that refused the file."""
    if not stem or stem in (".", "..") or re.search(r"[\\/\x00]", stem):
        raise ConfigError(f"Export name must be a plain file name, not {quoted(stem)}.")


def export_all(report: Report, directory: Path, stem: str, *, reviewed: bool = False) -> list[Path]:
    """Every format into ``directory`` as ``<stem><suffix>``; returns the paths written."""
    _check_stem(stem)
    report = _as_asked(report, reviewed)
    directory = Path(directory)
    check_directory(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cannot(directory, exc) from None
    return [
        write_export(report, name, directory / f"{stem}{f.suffix}") for name, f in FORMATS.items()
    ]


def export_zip(report: Report, *, stem: str, reviewed: bool = False) -> bytes:
    """Every format in one zip (``<stem><suffix>`` each), built in memory for a "download
    all" button. Deterministic: fixed entry times and order, so the same report gives the
    same bytes (the JSON's ``created`` is the report's own time)."""
    _check_stem(stem)
    report = _as_asked(report, reviewed)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, spec in FORMATS.items():
            info = zipfile.ZipInfo(f"{stem}{spec.suffix}", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # a plain file, readable by everyone
            zf.writestr(info, export_text(report, name).encode("utf-8"))
    return buf.getvalue()

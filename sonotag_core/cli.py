"""``sonotag`` command line: analyse a file or link, browse and search the library, fetch
the model.

Errors print one line and exit non-zero (1: the input or environment, 2: usage);
tracebacks go to the log file only (``--verbose`` prints them too).

``sonotag analyze`` keeps every run in the result store under ``SONOTAG_DATA_DIR``
(``--no-store`` skips it): stored embeddings of the same audio, hop and model are reused
instead of running the audio encoder. The export comes first: if the store then cannot be
written (a full disk), the command prints a one-line warning and still exits 0, because
what the user asked for, the export, was written.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sonotag_core import __version__, cli_batch, cli_evaluate, cli_teach
from sonotag_core.cli_args import add_event_flags, given_event_values
from sonotag_core.domain.event_params import event_params
from sonotag_core.domain.progress import Progress, ProgressFn
from sonotag_core.domain.timefmt import clock
from sonotag_core.errors import ConfigError, SonoTagError
from sonotag_core.media import workdirs
from sonotag_core.settings import Settings, settings_table_markdown
from sonotag_core.untrusted import one_line, quoted, shown

log = logging.getLogger("sonotag")

FORMAT_CHOICES = ("csv", "frames-csv", "json", "audacity", "dcase", "raven", "all")
REVIEW_CHOICES = ("accepted", "rejected")  # review.STATUSES, without importing pandas here
TMP_PREFIX = "sonotag-"  # the per-run temp folder under SONOTAG_DATA_DIR (downloads)


class StderrProgress:
    """One tqdm bar per stage on stderr (bytes for downloads, seconds for decoding, windows)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: Any = None  # a tqdm.tqdm (tqdm ships no type information)
        self._stage: str | None = None

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if p.stage != self._stage:
            self.close()
            self._stage = p.stage
            scale = p.unit == "bytes"
            self._bar = tqdm(
                total=p.total,
                desc=p.stage,
                unit="B" if scale else (p.unit or "it"),
                unit_scale=scale,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        bar = self._bar
        if p.total and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.message:
            bar.set_postfix_str(p.message, refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sonotag", description="Find when sounds happen in audio, from words alone (OpenFLAM)."
    )
    parser.add_argument("--version", action="version", version=f"sonotag {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print tracebacks and debug logs"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse a file or a YouTube/SoundCloud link")
    a.add_argument("source", help="audio/video file path, or a YouTube or SoundCloud link")
    a.add_argument(
        "--labels",
        required=True,
        help='labels separated by ";" (a leading "-" marks a negative prompt)',
    )
    a.add_argument(
        "--negative",
        action="append",
        default=[],
        help="a negative label (scored, never an event); repeatable",
    )
    a.add_argument(
        "--hop",
        type=float,
        default=None,
        help="window hop in seconds: 10 (default) or 5 for 50%% overlap",
    )
    add_event_flags(a, ["threshold"])
    cli_batch.add_fast_flag(a)
    a.add_argument(
        "--label-threshold",
        action="append",
        default=[],
        metavar="LABEL=T",
        help="per-label threshold; repeatable",
    )
    add_event_flags(a, [row.name for row in event_params() if row.name != "threshold"])
    a.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default="csv",
        help="csv = events; all = every format into -o DIR",
    )
    a.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file (or directory with --format all); - or none: stdout",
    )
    cli_teach.add_detector_flag(a)
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    a.add_argument(
        "--no-store",
        action="store_true",
        help="neither reuse stored embeddings nor save this run in the library",
    )

    _library_parser(sub)
    cli_evaluate.add_parsers(sub)
    cli_batch.add_parser(sub)
    cli_teach.add_parser(sub)
    sub.add_parser(
        "fetch-model", help="download the OpenFLAM weights and roberta-base into SONOTAG_MODEL_DIR"
    )
    sub.add_parser("settings", help="print every SONOTAG_* setting with its default")
    return parser


def _library_parser(sub: argparse._SubParsersAction) -> None:
    lib = sub.add_parser(
        "library", help="stored analyses: list, search, similar, export, review, delete"
    )
    cmds = lib.add_subparsers(dest="library_command", required=True)
    cmds.add_parser("list", help="every stored analysis, newest first")
    s = cmds.add_parser("search", help="find a sound in all stored audio")
    s.add_argument("label", help='one label, e.g. "siren"')
    s.add_argument("--top", type=int, default=20, help="how many moments (default 20)")
    s.add_argument("-o", "--output", type=Path, help="output file; - or none: stdout")
    sim = cmds.add_parser(
        "similar", help="find the moments of all stored audio most like a stretch of one"
    )
    sim.add_argument("id", help="the analysis the example is in (see `sonotag library list`)")
    sim.add_argument("--at", required=True, help="the example's start: seconds or [h:]mm:ss(.ss)")
    sim.add_argument("--to", required=True, help="the example's end")
    sim.add_argument("--not", dest="not_text", metavar="TEXT", help='"...but not TEXT"')
    sim.add_argument("--top", type=int, default=20, help="how many moments (default 20)")
    sim.add_argument("-o", "--output", type=Path, help="output file; - or none: stdout")
    e = cmds.add_parser("export", help="export a stored analysis (optionally relabelled)")
    e.add_argument("id", help="analysis id (see `sonotag library list`)")
    e.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default="csv",
        help="csv = events; all = every format into -o DIR",
    )
    e.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output file (or directory with --format all); - or none: stdout",
    )
    e.add_argument("--labels", help="score these labels instead of the stored ones")
    add_event_flags(e, ["threshold"], default_note="the stored one")
    e.add_argument(
        "--reviewed", action="store_true", help="accepted events only, under their corrected labels"
    )
    r = cmds.add_parser(
        "review", help="review counts per label; --set records a verdict, --add/--negative a span"
    )
    r.add_argument("id", help="analysis id (see `sonotag library list`)")
    verdict = r.add_mutually_exclusive_group()
    verdict.add_argument(
        "--set",
        dest="verdict",
        choices=REVIEW_CHOICES,
        help="accept or reject the event given by --label and --onset",
    )
    verdict.add_argument("--clear", action="store_true", help="forget the verdict on that event")
    verdict.add_argument(
        "--add",
        dest="span",
        action="store_const",
        const="added",
        help="mark an event the model missed: --label, --onset and --offset",
    )
    verdict.add_argument(
        "--negative",
        dest="span",
        action="store_const",
        const="negative",
        help='mark "checked: no LABEL here" from --onset to --offset',
    )
    verdict.add_argument(
        "--delete-span", type=int, metavar="N", help="forget marked span N (see --spans)"
    )
    r.add_argument("--label", help="the event's (or span's) label")
    r.add_argument("--onset", help="the event's onset: seconds (3.75) or [h:]mm:ss(.ss)")
    r.add_argument("--offset", help="the span's end (with --add/--negative)")
    r.add_argument(
        "--relabel", metavar="TEXT", help="the correct label of that event (implies --set accepted)"
    )
    r.add_argument("--spans", action="store_true", help="also list the marked spans")
    d = cmds.add_parser("delete", help="delete a stored analysis")
    d.add_argument("id", help="analysis id (see `sonotag library list`)")
    at = cmds.add_parser(
        "attach", help="list a `sonotag batch` output's items in the library (no copying)"
    )
    at.add_argument("out", type=Path, help="the batch's -o folder")
    de = cmds.add_parser("detach", help="remove an attached batch output's analyses")
    de.add_argument("out", help="the attached folder (see `sonotag library attached`)")
    cmds.add_parser("attached", help="the attached batch outputs")


def _label_thresholds(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        label, sep, value = item.rpartition("=")
        try:
            if not sep or not label.strip():
                raise ValueError
            out[label.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"--label-threshold expects LABEL=VALUE, e.g. 'siren=0.3', not {quoted(item)}."
            ) from None
    return out


def _analyze(args: argparse.Namespace, settings: Settings, progress: ProgressFn) -> int:
    from sonotag_core.domain.labels import parse_labels
    from sonotag_core.inference.model import load_model
    from sonotag_core.media import sources
    from sonotag_core.service.api import Service

    labels = parse_labels(
        args.labels,
        max_labels=settings.max_labels,
        max_chars=settings.max_label_chars,
        negatives=args.negative,
    )
    params = _event_params(args, settings)
    hop_s = settings.hop_s if args.hop is None else args.hop
    settings = settings.with_(hop_s=hop_s, fast=settings.fast or args.fast)
    _check_output(args.format, args.output)  # a typo in -o fails now, not after the work
    t0 = time.perf_counter()
    problems: list[str] = []
    work_parent = _work_parent(Path(settings.data_dir), problems)
    store = None
    if not args.no_store and not problems:
        store = _try_store(lambda: _store(settings), problems)
    sources.sweep_stale(work_parent, TMP_PREFIX)  # left by killed runs
    with workdirs.run_folder(work_parent, TMP_PREFIX) as tmp:
        # the source first: a bad file or link fails in milliseconds, before the model loads
        link = sources.parse_link(args.source) if sources.looks_like_url(args.source) else None
        if link is None:
            source = sources.resolve_source(
                args.source, Path(tmp), max_duration_s=settings.max_duration_s, progress=progress
            )
        service = Service(load_model(settings, progress), settings, store)
        if args.detector:
            from sonotag_core.service.detectors import resolve_detectors

            chosen = resolve_detectors(
                args.detector, service.model.info.checkpoint_sha256, store=store
            )
            service = service.with_detectors(chosen)
            missing = tuple(dict.fromkeys(d.label for d in chosen if d.label not in labels.labels))
            labels = dataclasses.replace(labels, labels=labels.labels + missing)
        if link is not None:  # a link whose audio and embeddings are stored is not fetched
            source = service.link_source(link.url, Path(tmp), hop_s=hop_s, progress=progress)
        done = service.analyse(
            source, labels, hop_s=hop_s, params=params, save=True, progress=progress
        )
        if done.unsaved:  # the store could not keep it: the export is still written below
            problems.append(
                f"{done.unsaved} The export was written; this run is not in the library."
            )
        elif done.warning:
            problems.append(done.warning)
        _close(progress)
        report = service.report(done, labels, params)
        written = _write(report, args.format, args.output, source.title)
    if not args.quiet:
        reused = " (reused stored embeddings)" if done.reused else ""
        saved = f", analysis {done.analysis_id}" if done.analysis_id else ""
        print(
            f"sonotag: {len(report.events)} event(s) for {len(labels.labels)} label(s) in "
            f"{report.timeline.duration_s:.1f} s of audio, {done.embeddings.n_windows} "
            f"window(s){reused}, {time.perf_counter() - t0:.1f} s -> {written}{saved}",
            file=sys.stderr,
        )
    for problem in problems:
        print(f"sonotag: warning: {one_line(problem)}", file=sys.stderr)
    return 0


def _work_parent(data_dir: Path, problems: list[str]) -> Path:
    """Where this run's working folder goes: the data directory, or the system's temp
    folder when the data directory cannot be written (a read-only mount). Then the run
    still writes its export, but cannot be kept in the library: a warning says so."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        writable = os.access(data_dir, os.W_OK | os.X_OK)
    except OSError:
        writable = False
    if writable:
        return data_dir
    problems.append(
        f"The data directory {quoted(data_dir)} (SONOTAG_DATA_DIR) is read-only or cannot be "
        "created: the export was written, but this run is not kept in the library. Point "
        "SONOTAG_DATA_DIR at a writable directory to keep results."
    )
    return Path(tempfile.gettempdir())


def _is_stdout(output: Path | None) -> bool:
    return output is None or str(output) == "-"


def _check_output(fmt: str, output: Path | None) -> None:
    """The export's destination, checked before any work (see exports.check_target)."""
    from sonotag_core.exports import check_directory, check_target

    if fmt == "all":
        if output is None or _is_stdout(output):
            raise ConfigError(
                "--format all writes one file per format: give a directory with -o DIR."
            )
        check_directory(output)
    elif output is not None and not _is_stdout(output):
        check_target(output)


def _event_params(args: argparse.Namespace, settings: Settings):
    from sonotag_core.domain.events import EventParams

    return EventParams.from_settings(
        settings,
        label_thresholds=_label_thresholds(args.label_threshold),
        **given_event_values(args),
    )


def _store(settings: Settings):
    from sonotag_core.store.database import Store

    return Store(settings.data_dir, media_cap_bytes=settings.media_cap_bytes)


def _try_store(fn, problems: list[str]):
    """A store step that may fail without costing the user the export: the failure
    becomes a warning (and no further store step runs)."""
    from sonotag_core.store.database import StoreError

    try:
        return fn()
    except StoreError as exc:
        log.warning("store step failed", exc_info=True)
        problems.append(f"{exc} The export was written; this run is not in the library.")
        return None


def _write(report, fmt: str, output: Path | None, title: str, *, reviewed: bool = False) -> str:
    """Write the export(s); returns where they went, for the summary line. ``reviewed``:
    accepted events only, relabels applied."""
    from sonotag_core import exports

    if fmt == "all":
        _check_output(fmt, output)  # -o missing: the one message that says what to give
        assert output is not None  # _check_output raised ConfigError for a missing -o
        paths = exports.export_all(report, output, _stem(title), reviewed=reviewed)
        return ", ".join(str(p) for p in paths)
    if output is not None and not _is_stdout(output):
        return str(exports.write_export(report, fmt, output, reviewed=reviewed))
    sys.stdout.write(exports.export_text(report, fmt, reviewed=reviewed))
    sys.stdout.flush()
    return "stdout"


def _stem(title: str) -> str:
    """File name stem for ``--format all`` from an untrusted title (a file name, a link's
    title): "sonotag" when it is not a plain name ("...wav" has the stem "..")."""
    stem = Path(title or "").stem.strip()
    if stem in ("", ".", "..") or any(c in stem for c in "\\/\x00"):
        return "sonotag"
    return stem


def _close(progress: ProgressFn) -> None:
    if isinstance(progress, StderrProgress):
        progress.close()


# ---------------------------------------------------------------- sonotag library


def _library(args: argparse.Namespace, settings: Settings, progress: ProgressFn) -> int:
    store = _store(settings)
    command = args.library_command
    if command == "list":
        return _library_list(store)
    if command in ("attach", "detach", "attached"):
        return _library_attachments(store, args)
    if command == "delete":
        if not store.delete_analysis(args.id):
            raise _unknown(args.id)
        print(f"sonotag: deleted analysis {args.id}", file=sys.stderr)
        return 0
    stored = None
    if command == "review":
        _check_review_args(args)  # a usage mistake fails before anything is read
    if command == "similar":  # a bad time or -o fails before the model loads
        args.at_s, args.to_s = _seconds(args.at, "--at"), _seconds(args.to, "--to")
        _check_output("text", args.output)
    if (
        command in ("export", "review", "similar")
        and (stored := store.get_analysis(args.id)) is None
    ):
        raise _unknown(args.id)  # before the model loads: a typo fails at once
    if command == "export":
        _check_output(args.format, args.output)
    if command == "search":  # a bad label or -o fails before the model loads
        from sonotag_core.domain.labels import parse_labels

        parse_labels(args.label, max_labels=settings.max_labels, max_chars=settings.max_label_chars)
        _check_output("text", args.output)
    from sonotag_core.inference.model import load_model
    from sonotag_core.service.api import Service

    service = Service(load_model(settings, progress), settings, store)
    _close(progress)
    if command == "search":
        return _library_search(service, args, settings)
    if command == "similar":
        return _library_similar(service, args)
    if command == "review":
        return _library_review(service, stored, args, settings)
    return _library_export(service, stored, args, settings)


def _library_attachments(store: Any, args: argparse.Namespace) -> int:
    from sonotag_core.service.attach import attach_output, detach_output

    if args.library_command == "attach":
        done = attach_output(store, args.out)
        print(
            f"sonotag: attached {done.out}: {done.added} new, {done.listed} analyses listed "
            "(embeddings stay in its files; `sonotag library list` shows them)",
            file=sys.stderr,
        )
    elif args.library_command == "detach":
        gone = detach_output(store, args.out)
        print(f"sonotag: detached {args.out}: {gone} analyses removed", file=sys.stderr)
    else:
        for out, items, when in store.attachments():
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
            print(f"{out}\t{items}\t{stamp}")
    return 0


def _evaluate(args: argparse.Namespace, settings: Settings, progress: ProgressFn) -> int:
    """`sonotag evaluate` / `calibrate` (:mod:`.cli_evaluate`): on a stored analysis, or
    on an audio file or a folder of the files a multi-file truth names (analysed first,
    each kept in the Library as `sonotag analyze` keeps it)."""
    _check_output("table", args.output)  # a typo in -o fails now, not after the work
    store = _store(settings)
    target = Path(args.id)
    audio = target.is_dir() or target.is_file()
    stored = None if audio else store.get_analysis(args.id)
    if not audio and stored is None:
        raise _unknown(args.id)
    if args.truth is None and not args.reviews:  # a usage mistake fails before the model loads
        raise ConfigError(f"{args.command} needs --truth FILE or --reviews.")
    # read once, before the model loads: a bad file fails at once
    truth = cli_evaluate.read_truth(args.truth) if args.truth is not None else None
    paths = cli_evaluate.audio_for(args, truth, target, settings) if audio else {}
    from sonotag_core.inference.model import load_model
    from sonotag_core.service.api import Service

    service = Service(load_model(settings, progress), settings, store)
    if stored is not None:
        _close(progress)
        params = _stored_params(settings, stored.settings, args.threshold)
        return cli_evaluate.run(args, settings, service, params, truth, stored=stored)
    params = _stored_params(settings, {}, args.threshold)
    labels = cli_evaluate.labels_of(args, settings)
    analysed = _analyse_paths(service, paths, labels, params, progress)
    _close(progress)
    return cli_evaluate.run(args, settings, service, params, truth, analysed=analysed)


def _analyse_paths(service, paths: Mapping[str, Path], labels, params, progress) -> dict:
    """Each truth file's audio analysed through the service (stored embeddings reused)."""
    from sonotag_core.media import sources

    hop_s = service.settings.hop_s
    out = {}
    for i, (name, path) in enumerate(paths.items(), 1):
        if len(paths) > 1:
            print(f"sonotag: [{i}/{len(paths)}] {name}", file=sys.stderr)
        source = sources.from_path(str(path))
        out[name] = service.analyse(
            source, labels, hop_s=hop_s, params=params, save=True, progress=progress
        )
    return out


def _library_list(store) -> int:
    rows = store.list_analyses()
    if not rows:
        print("sonotag: the library is empty; `sonotag analyze` adds to it.", file=sys.stderr)
        return 0
    table = [("id", "date", "title", "duration", "labels", "model")]
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        duration = clock(r.duration_s, 0, hours=True) if r.duration_s else "?"
        table.append(
            (
                r.id,
                when,
                _cut(shown(r.title, 40), 40),
                duration,
                _cut(shown(r.labels_text, 50), 50),
                r.model_name,
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _library_search(service, args, settings: Settings) -> int:
    from sonotag_core.exports import write_output

    hits = service.search(args.label, top_k=args.top)
    if not hits:
        print(
            "sonotag: no stored audio for this model yet; `sonotag analyze` adds to the library.",
            file=sys.stderr,
        )
    lines = [
        f"{clock(hit.time_s, hours=True)}\t{hit.probability:.4f}\t{shown(hit.title, 200)}\t{hit.analysis_id}\n"
        for hit in hits
    ]
    write_output(lambda out: out.writelines(lines), args.output)
    return 0


def _library_similar(service, args) -> int:
    from sonotag_core.exports import write_output

    hits = service.similar(args.id, args.at_s, args.to_s, not_text=args.not_text, top_k=args.top)
    if not hits:
        print("sonotag: no other stored audio for this model yet.", file=sys.stderr)
    lines = [
        f"{clock(hit.time_s, hours=True)}\t{hit.similarity:.4f}\t{shown(hit.title, 200)}\t"
        f"{hit.analysis_id}\t{clock(hit.end_s, hours=True)}\n"
        for hit in hits
    ]
    write_output(lambda out: out.writelines(lines), args.output)
    return 0


def _stored_report(service, stored, settings: Settings, labels, threshold):
    """The report of a stored analysis from its embeddings, with its stored event settings
    (or ``threshold``) and its stored reviews applied: what the dashboard shows for it."""
    params = _stored_params(settings, stored.settings, threshold)
    return service.report(service.open(stored.id), labels, params, extra={"analysis_id": stored.id})


def _library_export(service, stored, args, settings: Settings) -> int:
    from sonotag_core.domain.labels import parse_labels
    from sonotag_core.domain.review import accepted_only

    labels = stored.labels
    if args.labels is not None:
        labels = parse_labels(
            args.labels, max_labels=settings.max_labels, max_chars=settings.max_label_chars
        )
    report = _stored_report(service, stored, settings, labels, args.threshold)
    written = _write(report, args.format, args.output, stored.source.title, reviewed=args.reviewed)
    events = (
        f"{len(accepted_only(report.events))} accepted event(s)"
        if args.reviewed
        else f"{len(report.events)} event(s)"
    )
    print(
        f"sonotag: analysis {stored.id} ({len(labels.labels)} label(s), {events}) -> {written}",
        file=sys.stderr,
    )
    return 0


def _check_review_args(args: argparse.Namespace) -> None:
    """``--set``/``--clear``/``--relabel`` need the event (``--label``, ``--onset``), and the
    event options need one of them; ``--relabel`` alone means accepted as that label."""
    if args.span is not None or args.delete_span is not None:
        _check_span_args(args)
        return
    if args.offset is not None:
        raise ConfigError("--offset ends a marked span: add --add or --negative.")
    if args.relabel is not None and args.verdict is None and not args.clear:
        args.verdict = "accepted"
    if args.relabel is not None and args.verdict != "accepted":
        raise ConfigError(
            "--relabel accepts the event as the new label; drop --set rejected/--clear."
        )
    changing = args.verdict is not None or args.clear
    if changing and (args.label is None or args.onset is None):
        raise ConfigError(
            "--set and --clear need the event: --label LABEL --onset SECONDS "
            "(its onset as `sonotag library export ID` prints it)."
        )
    if not changing and (args.label is not None or args.onset is not None):
        raise ConfigError("--label and --onset name the event for --set or --clear; add one.")
    if changing:
        args.onset_s = _seconds(args.onset)


def _check_span_args(args: argparse.Namespace) -> None:
    """``--add``/``--negative`` need --label, --onset and --offset; ``--delete-span`` none."""
    if args.relabel is not None:
        raise ConfigError("--relabel corrects a detected event; a marked span has its --label.")
    if args.delete_span is not None:
        if args.label is not None or args.onset is not None or args.offset is not None:
            raise ConfigError("--delete-span N takes the span's number only (see --spans).")
        return
    if args.label is None or args.onset is None or args.offset is None:
        raise ConfigError(
            f"--{'add' if args.span == 'added' else 'negative'} marks a span: give --label "
            "LABEL --onset START --offset END (seconds or [h:]mm:ss(.ss))."
        )
    args.onset_s = _seconds(args.onset)
    args.offset_s = _seconds(args.offset, "--offset")


def _seconds(text: str, flag: str = "--onset") -> float:
    """``3.75``, ``0:03.75`` or ``0:00:03.75`` -> seconds."""
    parts = str(text).strip().split(":")
    try:
        if len(parts) > 3 or any(not p.strip() for p in parts):
            raise ValueError
        values = [float(p) for p in parts]
        seconds = sum(v * 60**i for i, v in enumerate(reversed(values)))
        if not (seconds >= 0.0 and seconds < float("inf")) or any(v < 0 for v in values):
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"{flag} expects seconds (3.75) or [h:]mm:ss(.ss) (0:03.75), not {quoted(text)}."
        ) from None
    return seconds


def _library_review(service, stored, args, settings: Settings) -> int:
    """Print per-label review counts of a stored analysis at its stored settings, after
    recording the verdict of ``--set``/``--clear`` when given (the CLI is the operator)."""
    store = service.store
    from sonotag_core.access import OPERATOR
    from sonotag_core.domain.review import (
        Review,
        add_spans,
        apply_reviews,
        event_key,
        review_counts,
    )

    positives = stored.labels.positives
    report = _stored_report(service, stored, settings, stored.labels, None)
    label = " ".join(str(args.label).split())
    if args.span is not None or args.delete_span is not None:
        _review_span(store, stored, args, label)
        report = _stored_report(service, stored, settings, stored.labels, None)
    elif args.clear:  # also a verdict whose event the stored settings no longer make
        key = event_key(label, args.onset_s)
        gone = store.clear_review(stored.id, *key)
        print(
            f"sonotag: analysis {stored.id}: {quoted(label)} at {clock(args.onset_s, hours=True)} "
            + ("is unreviewed again" if gone else "had no verdict"),
            file=sys.stderr,
        )
    elif args.verdict is not None:
        if label not in positives:
            raise ConfigError(
                f"Analysis {stored.id} has no label {quoted(label)}; its labels with "
                f"events are: {shown('; '.join(positives), 200)}."
            )
        key = event_key(label, args.onset_s)
        events = report.events
        match = [
            (on, off)
            for name, on, off in zip(
                events["label"], events["onset_s"], events["offset_s"], strict=True
            )
            if event_key(name, on) == key
        ]
        if not match:
            raise ConfigError(_no_event(stored.id, label, args.onset_s, events))
        onset, offset = float(match[0][0]), float(match[0][1])
        review = Review.of_event(key[0], onset, offset, args.verdict, relabel=args.relabel)
        if not store.set_review(stored.id, review, reviewer=OPERATOR):
            raise _unknown(stored.id)  # deleted meanwhile
        what = f"accepted as {quoted(review.relabel)}" if review.relabel else review.status
        print(
            f"sonotag: analysis {stored.id}: {quoted(key[0])} at {clock(onset, hours=True)}–"
            f"{clock(offset, hours=True)} {what}",
            file=sys.stderr,
        )
    events = apply_reviews(report.events, store.get_reviews(stored.id))
    events = add_spans(events, store.get_spans(stored.id), report.timeline)
    for count in review_counts(events, positives).values():
        print(shown(count.summary(), 400))
    if args.spans:
        for span in store.get_spans(stored.id):
            print(
                f"span {span.id}\t{span.kind}\t{clock(span.onset_s, hours=True)}\t"
                f"{clock(span.offset_s, hours=True)}\t{shown(span.label, 200)}"
            )
    return 0


def _review_span(store, stored, args: argparse.Namespace, label: str) -> None:
    """``--add``/``--negative``/``--delete-span`` on a stored analysis (as the operator)."""
    from sonotag_core.access import OPERATOR_VIEWER
    from sonotag_core.domain.review import Span
    from sonotag_core.service.spans import delete_span, mark_span

    if args.delete_span is not None:
        gone = delete_span(store, OPERATOR_VIEWER, stored.id, args.delete_span)
        print(
            f"sonotag: analysis {stored.id}: span {args.delete_span} "
            + ("deleted" if gone else "was not there (see --spans)"),
            file=sys.stderr,
        )
        return
    span = mark_span(
        store, OPERATOR_VIEWER, stored.id, Span(label, args.onset_s, args.offset_s, args.span)
    )
    what = "added (missed by the model)" if span.kind == "added" else "checked: not there"
    print(
        f"sonotag: analysis {stored.id}: {quoted(span.label)} {clock(span.onset_s, hours=True)}–"
        f"{clock(span.offset_s, hours=True)} {what} (span {span.id})",
        file=sys.stderr,
    )


def _no_event(analysis_id: str, label: str, onset_s: float, events) -> str:
    onsets = events.loc[events["label"] == label, "onset_s"].astype(float).tolist()
    near = sorted(onsets, key=lambda t: abs(t - onset_s))[:3]
    hint = (
        f"; the nearest {quoted(label)} onsets are "
        + ", ".join(clock(t, hours=True) for t in sorted(near))
        if near
        else f"; {quoted(label)} has no events at the stored settings"
    )
    return f"Analysis {analysis_id} has no {quoted(label)} event starting at {clock(onset_s, hours=True)}{hint}."


def _stored_params(settings: Settings, stored: Mapping, threshold: float | None):
    """Event parameters: the analysis's stored ones where valid, then --threshold."""
    from sonotag_core.service.api import stored_params

    params = stored_params(settings, stored)
    if threshold is not None:
        params = dataclasses.replace(params, threshold=threshold)
    return params


def _unknown(analysis_id: str) -> SonoTagError:
    from sonotag_core.errors import NotFoundError

    return NotFoundError(
        f"There is no stored analysis {quoted(analysis_id)}; `sonotag library list` shows the ids."
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fetch(settings: Settings, progress: ProgressFn) -> int:
    from sonotag_core.inference.model import fetch_model

    path = fetch_model(settings, progress)
    print(f"sonotag: model files ready in {settings.model_dir} ({path.name})", file=sys.stderr)
    return 0


class _OneLineFormatter(logging.Formatter):
    """Log records stay one line each: a file name with a newline in a message cannot
    forge a second log line (tracebacks, added after the message, keep their lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


class _LogFile(logging.FileHandler):
    """The log file. A log line that cannot be written (a full disk) is dropped: otherwise
    logging prints a traceback for every line, burying the one-line message."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _setup_logging(settings: Settings, verbose: bool) -> None:
    handlers: list[logging.Handler] = []
    try:
        log_dir = Path(settings.data_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(_LogFile(log_dir / "sonotag.log"))
    except OSError:
        pass
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    formatter = _OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        handler.setFormatter(formatter)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        handlers=handlers or [logging.NullHandler()],
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SonoTagError as exc:
        print(f"sonotag: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    _setup_logging(settings, args.verbose)
    if args.command == "settings":
        print(settings_table_markdown())
        return 0
    progress = StderrProgress(enabled=not getattr(args, "quiet", False))
    try:
        if args.command == "fetch-model":
            return _fetch(settings, progress)
        if args.command == "library":
            return _library(args, settings, progress)
        if args.command in ("evaluate", "calibrate"):
            return _evaluate(args, settings, progress)
        if args.command == "batch":
            return cli_batch.run(args, settings, progress)
        if args.command == "detector":
            return cli_teach.run(args, settings, progress, _store(settings))
        return _analyze(args, settings, progress)
    except SonoTagError as exc:
        progress.close()
        log.info("user error", exc_info=True)
        print(f"sonotag: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        progress.close()
        print("sonotag: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for the user, the traceback in the log
        progress.close()
        log.exception("unexpected error")
        if args.verbose:
            raise
        print(
            f"sonotag: internal error ({type(exc).__name__}: {shown(exc, 300)}); details in "
            f"{Path(settings.data_dir) / 'logs' / 'sonotag.log'}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

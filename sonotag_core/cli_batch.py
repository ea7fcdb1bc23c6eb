"""`sonotag batch`: a folder, a list or a table of files and links, analysed into an
output folder any tool reads (:mod:`.batch`); `sonotag batch compact OUT` merges its parts.

Kept apart from :mod:`.cli` (one file, one command family), one front end over the
service like the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from sonotag_core.cli_args import add_event_flags
from sonotag_core.errors import ConfigError, ModelError
from sonotag_core.settings import Settings
from sonotag_core.untrusted import quoted

ENGINES = ("local", "dask")


def add_fast_flag(parser: argparse.ArgumentParser) -> None:
    """``--fast``: the audio encoder in bf16 for this run (as SONOTAG_FAST=1)."""
    parser.add_argument(
        "--fast",
        action="store_true",
        help="fast mode: the audio encoder in bf16, about 2x faster where the CPU has "
        "AMX/AVX512-BF16, probabilities within 0.01 of exact (as SONOTAG_FAST=1)",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "batch",
        help="analyse a folder, a list or a table of files/links into OUT (resumable)",
        description="sonotag batch MANIFEST -o OUT --labels ... | sonotag batch compact OUT",
    )
    b.add_argument(
        "target",
        nargs="+",
        metavar="MANIFEST",
        help="MANIFEST; or: compact OUT | events OUT | query OUT 'SELECT ...'",
    )
    b.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output folder (parts, errors, _batch.json); for `batch events` and `batch "
        "query`: the output file (- or none: stdout)",
    )
    b.add_argument("--labels", help="labels, e.g. 'dog barking; siren; -music'")
    b.add_argument("--hop", type=float, default=None, help="window hop in seconds (10 or 5)")
    add_event_flags(b, ["threshold"])
    add_fast_flag(b)
    b.add_argument(
        "--detector",
        action="append",
        default=[],
        metavar="FILE.json|NAME",
        help="score a label by a refined detector instead of its text (card file or stored "
        "name); repeatable. Dask workers get the card itself",
    )
    b.add_argument("--engine", choices=ENGINES, default="local", help="local loop or Dask")
    b.add_argument("--address", help="a running Dask scheduler, e.g. tcp://host:8786")
    b.add_argument("--workers", type=int, default=2, help="local Dask workers (2)")
    b.add_argument("--threads", type=int, default=1, help="torch threads per Dask worker (1)")
    b.add_argument("--dry-run", action="store_true", help="list what would run, run nothing")
    b.add_argument(
        "--format",
        choices=("csv", "dcase"),
        default="csv",
        help="`batch events`: every file's events as CSV or one DCASE tsv",
    )


def run(args: argparse.Namespace, settings: Settings, progress) -> int:
    """The command (see :mod:`.cli` for the error handling around it)."""
    if args.target[0] == "compact":
        return _compact(args)
    if args.target[0] == "events":
        return _events(args)
    if args.target[0] == "query":
        return _query(args)
    if len(args.target) != 1:
        raise ConfigError("sonotag batch takes one MANIFEST (or: sonotag batch compact OUT).")
    if args.output is None:
        raise ConfigError("sonotag batch needs -o OUT, the folder results go to.")
    if args.labels is None:
        raise ConfigError("sonotag batch needs --labels 'dog barking; siren'.")
    from sonotag_core.batch.manifest import read_manifest
    from sonotag_core.domain.events import EventParams
    from sonotag_core.domain.labels import parse_labels

    labels = parse_labels(
        args.labels, max_labels=settings.max_labels, max_chars=settings.max_label_chars
    )
    hop_s = settings.hop_s if args.hop is None else args.hop
    settings = settings.with_(hop_s=hop_s, fast=settings.fast or args.fast)
    overrides = {} if args.threshold is None else {"threshold": args.threshold}
    params = EventParams.from_settings(settings, **overrides)
    items = read_manifest(Path(args.target[0]))
    if args.dry_run:
        return _dry_run(items, args.output)
    if args.engine == "dask":
        _need_dask()
    from sonotag_core.archive.parts import open_output, sweep_temporaries
    from sonotag_core.domain.embeddings import embedding_key
    from sonotag_core.inference.fast_mode import check_fast_mode
    from sonotag_core.inference.model import known_checkpoint_sha256, load_model
    from sonotag_core.service.api import Service

    # the workers load the model under Dask: this process only needs its checkpoint's hash
    model = load_model(settings, progress) if args.engine == "local" else None
    sha = model.info.checkpoint_sha256 if model else known_checkpoint_sha256(settings)
    if sha is None:
        raise ModelError("The OpenFLAM weights are not here yet: run `sonotag fetch-model`.")
    if model is not None and settings.fast:
        check_fast_mode(model)  # refused before any work, not once per file
    chosen = []
    if args.detector:
        from sonotag_core.service.detectors import resolve_detectors

        chosen = resolve_detectors(args.detector, sha, data_dir=settings.data_dir)
        missing = tuple(dict.fromkeys(d.label for d in chosen if d.label not in labels.labels))
        labels = dataclasses.replace(labels, labels=labels.labels + missing)
    spec = batch_spec(embedding_key(sha, settings.fast), labels, hop_s, params, chosen)
    output = open_output(args.output, spec)  # a changed spec is refused before any work
    sweep_temporaries(args.output)
    if model is None:
        from sonotag_core.batch.dask_engine import run_dask

        summary = run_dask(
            settings,
            items,
            args.output,
            spec,
            labels,
            params,
            address=args.address,
            workers=args.workers,
            threads=args.threads,
            progress=progress,
            cards=[d.card() for d in chosen],
        )
    else:
        from sonotag_core.batch.runner import run_local

        summary = run_local(
            Service(model, settings).with_detectors(chosen),
            items,
            output,
            labels,
            params,
            hop_s=hop_s,
            work_parent=args.output,
            progress=progress,
        )
    print(
        f"sonotag: {summary.done} analysed, {summary.skipped} already done, "
        f"{len(summary.failed)} failed ({summary.audio_s / 3600:.2f} h of audio in "
        f"{summary.seconds:.1f} s) -> {args.output}",
        file=sys.stderr,
    )
    for key, message in list(summary.failed.items())[:20]:
        print(f"sonotag: failed {key}: {message}", file=sys.stderr)
    return 1 if summary.failed else 0


def batch_spec(checkpoint_sha256: str, labels, hop_s: float, params, detectors=()):
    """What every part of this output is made with (``_batch.json``). ``checkpoint_sha256``
    is the embedding key (:func:`~.embeddings.embedding_key`): tagged ``+bf16`` in fast
    mode, so a rerun in the other mode is refused and an attached output opens as fast.
    The detectors that score labels are named (and versioned) with the event settings, so
    a rerun with other detectors is refused too."""
    from sonotag_core.archive.parts import SCHEMA_VERSION, BatchSpec
    from sonotag_core.inference.model import MODEL_NAME

    return BatchSpec(
        model=MODEL_NAME,
        checkpoint_sha256=checkpoint_sha256,
        labels=tuple(labels.labels),
        negatives=tuple(sorted(labels.negatives)),
        hop_s=float(hop_s),
        events={
            **params.as_settings(),
            **({"detectors": {d.label: d.ref for d in detectors}} if detectors else {}),
        },
        schema_version=SCHEMA_VERSION,
    )


def _dry_run(items, output: Path) -> int:
    from sonotag_core.archive.parts import BATCH_FILE, BatchSpec, Output

    done: set[str] = set()
    if (output / BATCH_FILE).is_file():
        spec = BatchSpec.from_json((output / BATCH_FILE).read_text(encoding="utf-8"))
        done = Output(output, spec).done_keys()
    for item in items:
        mark = "done" if item.key in done else "todo"
        print(f"{mark}\t{item.key}\t{item.source}")
    left = sum(i.key not in done for i in items)
    print(f"sonotag: {left} of {len(items)} item(s) would run", file=sys.stderr)
    return 0


def _output_arg(args: argparse.Namespace, usage: str, n: int = 2) -> Path:
    if len(args.target) != n:
        raise ConfigError(f"Usage: sonotag batch {usage}")
    out = Path(args.target[1])
    if not (out / "_batch.json").is_file():
        raise ConfigError(f"{quoted(str(out))} is not a batch output (no _batch.json).")
    return out


def _events(args: argparse.Namespace) -> int:
    """Every file's events in one table, to -o FILE or stdout."""
    from sonotag_core.archive.parts import read_events
    from sonotag_core.exports import check_output, write_events_table, write_output

    out = _output_arg(args, "events OUT [--format csv|dcase] [-o FILE]")
    check_output(args.output)  # before reading every part
    events = read_events(out).sort_values(["source", "onset_s", "label"], kind="stable")
    write_output(lambda fh: write_events_table(events, fh, args.format), args.output)
    print(f"sonotag: {len(events)} event(s) of {events['key'].nunique()} file(s)", file=sys.stderr)
    return 0


def _query(args: argparse.Namespace) -> int:
    """SQL over the output's views (events, frames, embeddings) with DuckDB."""
    from sonotag_core.batch.query import query
    from sonotag_core.exports import check_output, write_output

    out = _output_arg(args, "query OUT 'SELECT ...' [-o FILE]", n=3)
    check_output(args.output)
    table = query(out, args.target[2])
    write_output(lambda fh: fh.write(table.to_csv(index=False, lineterminator="\n")), args.output)
    return 0


def _compact(args: argparse.Namespace) -> int:
    from sonotag_core.archive.parts import compact

    out = _output_arg(args, "compact OUT")
    written = compact(out)
    print(f"sonotag: compacted into {len(written)} file(s) in {out / 'compacted'}", file=sys.stderr)
    return 0


def _need_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--engine dask needs the dask extra: pip install 'sonotag[dask]' "
            "(or: bash scripts/install.sh dask)."
        ) from None

"""`sonotag evaluate` and `sonotag calibrate`: a stored analysis against ground truth (or
its reviews), printed as the per-label table; calibrated thresholds stored with --apply.

Kept apart from :mod:`.cli` (the analysis and Library commands) so each stays readable;
both are one front end over the service.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sonotag_core.cli_args import add_event_flags
from sonotag_core.errors import ConfigError, TruthError
from sonotag_core.settings import Settings
from sonotag_core.untrusted import quoted

TABLE_FORMATS = ("table", "json", "csv")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="score a stored analysis against ground truth")
    _common(e, truth_required=False)
    e.add_argument("--format", choices=TABLE_FORMATS, default="table", help="output form")
    e.add_argument(
        "--reviews",
        action="store_true",
        help="score against the analysis's reviewed events (accepted = there, rejected = "
        "not there; only the reviewed spans count) instead of --truth",
    )
    c = sub.add_parser("calibrate", help="per-label thresholds from ground truth or reviews")
    _common(c, truth_required=False)
    c.add_argument(
        "--reviews",
        action="store_true",
        help="fit the analysis's reviewed events (accepted vs rejected) instead of --truth",
    )
    c.add_argument(
        "--precision", type=float, default=0.9, help="target precision for --reviews (0.9)"
    )
    c.add_argument("--apply", action="store_true", help="store the thresholds for these labels")


def _common(p: argparse.ArgumentParser, *, truth_required: bool = True) -> None:
    p.add_argument(
        "id",
        help="analysis id (see `sonotag library list`), an audio file, or a folder holding "
        "the files a multi-file DCASE truth names",
    )
    p.add_argument(
        "--truth",
        type=Path,
        required=truth_required,
        help="ground truth: DCASE tsv, Audacity labels or a Raven selection table",
    )
    p.add_argument("--labels", help="score these labels instead of the stored ones")
    p.add_argument("-o", "--output", type=Path, help="output file; - or none: stdout")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="CLASS=LABEL",
        help="map a ground-truth class to a label (repeatable)",
    )
    add_event_flags(p, ["threshold"])


def mapping(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        cls, sep, label = item.partition("=")
        if not sep or not cls.strip() or not label.strip():
            raise ConfigError(
                f"--map expects CLASS=LABEL, e.g. 'Dog=dog barking', not {quoted(item)}."
            )
        out[cls.strip()] = label.strip()
    return out


def read_truth(path: Path):
    from sonotag_core.domain.truth import MAX_TRUTH_BYTES, parse_truth

    try:
        size = path.stat().st_size
        if size > MAX_TRUTH_BYTES:
            raise TruthError(
                f"{quoted(path.name)} is {size / 2**20:.1f} MB; ground truth is limited to "
                f"{MAX_TRUTH_BYTES / 2**20:.0f} MB."
            )
        data = path.read_bytes()
    except OSError as exc:
        raise TruthError(
            f"Cannot read the ground truth {quoted(str(path))}: {exc.strerror}."
        ) from None
    return parse_truth(data, name=path.name)


def labels_of(args: argparse.Namespace, settings: Settings):
    """--labels, required where no stored analysis brings its own."""
    from sonotag_core.domain.labels import parse_labels

    if args.labels is None:
        raise ConfigError("Evaluating audio files needs --labels 'dog barking; siren'.")
    return parse_labels(
        args.labels, max_labels=settings.max_labels, max_chars=settings.max_label_chars
    )


def audio_for(args: argparse.Namespace, truth, target: Path, settings: Settings) -> dict[str, Path]:
    """The truth's file name -> the audio to analyse: ``target`` itself (a file), or each
    file the truth names, found in the folder ``target``. Checked before the model
    loads; files the truth names that the folder lacks are listed on stderr."""
    from sonotag_core.service.evaluate import rows_for

    if args.reviews:
        raise ConfigError("--reviews works on a stored analysis: give its id, not a path.")
    if truth is None:
        raise ConfigError("Evaluating audio files needs --truth FILE.")
    labels_of(args, settings)
    if target.is_file():
        return {rows_for(truth, target.name).files()[0]: target}
    found, missing = locate(truth.files(), target)
    if missing:
        shown = ", ".join(quoted(x) for x in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        print(f"sonotag: not in {quoted(str(target))}, left out: {shown}{more}", file=sys.stderr)
    if not found:
        raise TruthError(
            f"None of the {len(missing)} file(s) the ground truth names is in "
            f"{quoted(str(target))}."
        )
    return found


def locate(names: Sequence[str], folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Each name found under ``folder``: the same relative path, else the one file of
    that base name anywhere below it (two such files: not found, it is ambiguous)."""
    by_base: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            by_base.setdefault(path.name, []).append(path)
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        direct = folder / name
        if direct.is_file():
            found[name] = direct
        elif len(same := by_base.get(Path(name).name, [])) == 1:
            found[name] = same[0]
        else:
            missing.append(name)
    return found, missing


def run(
    args: argparse.Namespace,
    settings: Settings,
    service,
    params,
    truth,
    *,
    stored=None,
    analysed: Mapping[str, Any] | None = None,
) -> int:
    """The command once the model is loaded: on a ``stored`` analysis, or on
    ``analysed`` audio (truth file name -> its analysis; see :mod:`.cli`)."""
    from sonotag_core.service import evaluate as ev

    if stored is not None:
        labels = labels_of(args, settings) if args.labels is not None else stored.labels
        one = service.open(stored.id)
    else:
        labels = labels_of(args, settings)
    thresholds = {x: params.threshold_for(x) for x in labels.labels}
    if args.command == "evaluate" and args.reviews:
        done = ev.evaluate_from_reviews(service, one, labels, params)
        _emit(render(done.evaluation, args.format), args.output)
        return 0
    if args.command == "calibrate" and args.reviews:
        cals, skipped = ev.calibrate_from_reviews(service, one, labels, params, args.precision)
        for label, why in skipped.items():
            print(f"sonotag: {quoted(label)} not calibrated: {why}", file=sys.stderr)
    else:
        if truth is None:
            raise ConfigError(f"{args.command} needs --truth FILE or --reviews.")
        if stored is not None:
            done = ev.evaluate_analysis(
                service, one, labels, truth, thresholds, mapping=mapping(args.map)
            )
        else:
            assert analysed is not None
            done = ev.evaluate_files(
                service, analysed, labels, truth, thresholds, mapping=mapping(args.map)
            )
        _say_unmatched(done.match)
        if args.command == "evaluate":
            _emit(render(done.evaluation, args.format), args.output)
            return 0
        cals = ev.calibrate_from_truth(done, args.truth.name)
    _emit("".join(f"{c.label}\t{c.threshold:.3f}\t{c.origin}\n" for c in cals), args.output)
    if args.apply and cals:
        n = service.store.save_calibrations(cals, service.model.info.checkpoint_sha256, owner="cli")
        print(
            f"sonotag: stored {n} calibrated threshold(s); the dashboard offers them",
            file=sys.stderr,
        )
    return 0


def _emit(text: str, output: Path | None) -> None:
    """The command's result: to ``-o`` (checked before the work), else stdout."""
    from sonotag_core.exports import write_output

    write_output(lambda out: out.write(text), output)


def _say_unmatched(match) -> None:
    if match.unmatched_classes:
        names = ", ".join(quoted(x) for x in match.unmatched_classes)
        print(f"sonotag: ground-truth classes with no label (use --map): {names}", file=sys.stderr)
    if match.unmatched_labels:
        names = ", ".join(quoted(x) for x in match.unmatched_labels)
        print(f"sonotag: labels with no ground-truth class: {names}", file=sys.stderr)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def render(evaluation, fmt: str) -> str:
    """The per-label table as a text table, CSV or strict JSON."""
    if fmt == "json":
        return json.dumps(evaluation.as_dict(), indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        from sonotag_core.exports import evaluation_csv

        return evaluation_csv(evaluation)
    rows = [list(evaluation.per_label.columns)] + [
        [_cell(v) for v in r] for r in evaluation.per_label.itertuples(index=False)
    ]
    macro: Mapping[str, float] = evaluation.macro
    rows.append(["macro", "", ""] + [_cell(macro.get(c, math.nan)) for c in rows[0][3:]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows
    )

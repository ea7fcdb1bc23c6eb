"""``sonotag`` command line: analyse a file or link, fetch the model.

Errors print one line and exit non-zero (1: the input or environment, 2: usage);
tracebacks go to the log file only (``--verbose`` prints them too).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from . import __version__
from .errors import SonoTagError
from .progress import Progress, ProgressFn
from .settings import Settings, settings_table_markdown

log = logging.getLogger("sonotag")

FORMAT_CHOICES = ("csv", "frames-csv", "json", "audacity", "dcase", "raven", "all")


class StderrProgress:
    """One tqdm bar per stage on stderr (bytes for downloads, seconds for decoding, windows)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar = None
        self._stage = None

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
    a.add_argument("--threshold", type=float, default=None, help="event threshold (default 0.5)")
    a.add_argument(
        "--label-threshold",
        action="append",
        default=[],
        metavar="LABEL=T",
        help="per-label threshold; repeatable",
    )
    a.add_argument(
        "--median-frames",
        type=int,
        default=None,
        help="median filter length in frames (odd, 1 = off)",
    )
    a.add_argument(
        "--fill-gap", type=float, default=None, help="fill gaps shorter than this many seconds"
    )
    a.add_argument(
        "--min-event", type=float, default=None, help="drop events shorter than this many seconds"
    )
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
        help="output file (or directory with --format all); default stdout",
    )
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")

    sub.add_parser(
        "fetch-model", help="download the OpenFLAM weights and roberta-base into SONOTAG_MODEL_DIR"
    )
    sub.add_parser("settings", help="print every SONOTAG_* setting with its default")
    return parser


def _label_thresholds(items: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        label, sep, value = item.rpartition("=")
        try:
            if not sep or not label.strip():
                raise ValueError
            out[label.strip()] = float(value)
        except ValueError:
            raise SonoTagError(
                f"--label-threshold expects LABEL=VALUE, e.g. 'siren=0.3', not {item!r}."
            ) from None
    return out


def _analyze(args: argparse.Namespace, settings: Settings, progress: ProgressFn) -> int:
    from . import exports, sources
    from .analysis import analyze, build_report
    from .events import EventParams
    from .labels import parse_labels
    from .model import load_model
    from .scoring import TextCache

    labels = parse_labels(
        args.labels,
        max_labels=settings.max_labels,
        max_chars=settings.max_label_chars,
        negatives=args.negative,
    )
    overrides = {
        k: v
        for k, v in {
            "threshold": args.threshold,
            "median_frames": args.median_frames,
            "fill_gap_s": args.fill_gap,
            "min_event_s": args.min_event,
        }.items()
        if v is not None
    }
    params = EventParams.from_settings(
        settings, label_thresholds=_label_thresholds(args.label_threshold), **overrides
    )
    hop_s = settings.hop_s if args.hop is None else args.hop
    settings = settings.with_(hop_s=hop_s)
    if args.format == "all" and args.output is None:
        raise SonoTagError("--format all writes one file per format: give a directory with -o DIR.")
    t0 = time.perf_counter()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sonotag-", dir=settings.data_dir) as tmp:
        # the source first: a bad file or link fails in milliseconds, before the model loads
        source = sources.resolve_source(
            args.source, Path(tmp), max_duration_s=settings.max_duration_s, progress=progress
        )
        model = load_model(settings, progress)
        analysis = analyze(
            model,
            TextCache(model),
            source,
            labels,
            settings=settings,
            hop_s=hop_s,
            progress=progress,
        )
    if isinstance(progress, StderrProgress):
        progress.close()
    report = build_report(analysis, model, params)
    if args.format == "all":
        paths = exports.export_all(
            report, args.output, Path(source.title or "sonotag").stem or "sonotag"
        )
        written = ", ".join(str(p) for p in paths)
    elif args.output is not None:
        written = str(exports.write_export(report, args.format, args.output))
    else:
        sys.stdout.write(exports.export_text(report, args.format))
        sys.stdout.flush()
        written = "stdout"
    if not args.quiet:
        n_events = len(report.events)
        print(
            f"sonotag: {n_events} event(s) for {len(labels.labels)} label(s) in "
            f"{analysis.timeline.duration_s:.1f} s of audio, {analysis.embeddings.n_windows} window(s), "
            f"{time.perf_counter() - t0:.1f} s -> {written}",
            file=sys.stderr,
        )
    return 0


def _fetch(settings: Settings, progress: ProgressFn) -> int:
    from .model import fetch_model

    path = fetch_model(settings, progress)
    print(f"sonotag: model files ready in {settings.model_dir} ({path.name})", file=sys.stderr)
    return 0


def _setup_logging(settings: Settings, verbose: bool) -> None:
    handlers: list[logging.Handler] = []
    try:
        log_dir = Path(settings.data_dir) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_dir / "sonotag.log"))
    except OSError:
        pass
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers or [logging.NullHandler()],
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SonoTagError as exc:
        print(f"sonotag: error: {exc}", file=sys.stderr)
        return 1
    _setup_logging(settings, args.verbose)
    if args.command == "settings":
        print(settings_table_markdown())
        return 0
    progress = StderrProgress(enabled=not getattr(args, "quiet", False))
    try:
        if args.command == "fetch-model":
            return _fetch(settings, progress)
        return _analyze(args, settings, progress)
    except SonoTagError as exc:
        progress.close()
        log.info("user error", exc_info=True)
        print(f"sonotag: error: {exc}", file=sys.stderr)
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
            f"sonotag: internal error ({type(exc).__name__}: {exc}); details in "
            f"{Path(settings.data_dir) / 'logs' / 'sonotag.log'}",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

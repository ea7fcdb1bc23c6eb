"""`sonotag detector`: labels refined from reviews (list, show, export, import, refine,
next, delete), and ``--detector FILE.json|NAME`` for `sonotag analyze` and `sonotag batch`.

Kept apart from :mod:`.cli` (one file, one command family), one front end over the
service like the others (:mod:`.service.teach`, :mod:`.service.detectors`). The CLI is the
operator: it sees and changes every detector.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sonotag_core.access import OPERATOR_VIEWER
from sonotag_core.domain.timefmt import clock
from sonotag_core.exports import check_output, write_output
from sonotag_core.settings import Settings
from sonotag_core.untrusted import shown


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "detector", help="labels refined from reviews: list, show, export, import, refine, next"
    )
    cmds = d.add_subparsers(dest="detector_command", required=True)
    cmds.add_parser("list", help="every stored detector and version")
    s = cmds.add_parser("show", help="one detector's card, without its weights")
    s.add_argument("name", help="NAME, or NAME@VERSION (default: the newest)")
    e = cmds.add_parser("export", help="write a detector's JSON card")
    e.add_argument("name", help="NAME, or NAME@VERSION (default: the newest)")
    e.add_argument("-o", "--output", type=Path, help="card file (.json); - or none: stdout")
    i = cmds.add_parser("import", help="keep a JSON card (made with this model) as a detector")
    i.add_argument("card", type=Path, help="the card file (JSON; never pickle)")
    i.add_argument("--name", help="store it under this name (default: the card's)")
    r = cmds.add_parser("refine", help="refine LABEL from every review of it into a detector")
    r.add_argument("label", help='the label text, e.g. "siren"')
    r.add_argument("--name", help="the detector's name (default: the label)")
    n = cmds.add_parser("next", help="the unreviewed moments whose verdict would teach most")
    n.add_argument("label", help='the label text, e.g. "siren"')
    n.add_argument("--detector", help="rank by this detector (default: the label's text)")
    n.add_argument("--count", type=int, default=20, help="how many moments (default 20)")
    n.add_argument("-o", "--output", type=Path, help="output file; - or none: stdout")
    x = cmds.add_parser("delete", help="delete a detector (every version, or NAME@VERSION)")
    x.add_argument("name", help="NAME, or NAME@VERSION")


def add_detector_flag(parser: argparse.ArgumentParser) -> None:
    """``--detector FILE.json|NAME``: score that detector's label by it (repeatable)."""
    parser.add_argument(
        "--detector",
        action="append",
        default=[],
        metavar="FILE.json|NAME",
        help="score a label by a refined detector instead of its text: a card file or a "
        "stored detector's name (NAME@VERSION for an older one); repeatable",
    )


def run(args: argparse.Namespace, settings: Settings, progress: Any, store: Any) -> int:
    """The command (see :mod:`.cli` for the error handling around it)."""
    from sonotag_core.service import detectors

    command = args.detector_command
    if command in ("export", "next"):
        check_output(args.output)  # a typo in -o fails now, not after the work
    if command == "list":
        return _list(detectors.list_detectors(store, OPERATOR_VIEWER))
    if command in ("show", "export", "delete"):
        if command == "delete":
            gone = detectors.delete_detector(store, OPERATOR_VIEWER, args.name)
            print(f"sonotag: deleted {gone} version(s) of {shown(args.name, 100)}", file=sys.stderr)
            return 0
        detector = detectors.find_detector(store, OPERATOR_VIEWER, args.name)
        if command == "show":
            card = detector.card()
            card["probe"] = {k: v for k, v in card["probe"].items() if k != "weights"}
            print(json.dumps(card, ensure_ascii=False, indent=1))
            return 0
        text = detectors.card_json(detector)
        where = write_output(lambda out: out.write(text), args.output)
        print(f"sonotag: {shown(detector.ref, 100)} -> {where}", file=sys.stderr)
        return 0
    from sonotag_core.inference.model import load_model
    from sonotag_core.service.api import Service

    service = Service(load_model(settings, progress), settings, store)
    if hasattr(progress, "close"):
        progress.close()
    sha = service.model.info.checkpoint_sha256
    if command == "import":
        detector = detectors.detector_from_file(args.card, sha)
        if args.name:
            detector = detectors.replace_name(detector, args.name)
        kept = detectors.save_detector(store, detector, OPERATOR_VIEWER)
        print(
            f"sonotag: imported {shown(kept.ref, 100)} ({shown(kept.label, 100)})", file=sys.stderr
        )
        return 0
    if command == "refine":
        refined = service.refine(args.label, name=args.name)
        print(shown(refined.summary(), 400))
        counts = ", ".join(f"{v} {k}" for k, v in refined.detector.examples.items())
        print(f"sonotag: examples: {counts}", file=sys.stderr)
        return 0
    chosen = (
        detectors.find_detector(store, OPERATOR_VIEWER, args.detector) if args.detector else None
    )
    items = service.review_next(args.label, detector=chosen, count=args.count)
    lines = [
        f"{clock(i.onset_s, hours=True)}\t{i.probability:.4f}\t{shown(i.title, 200)}\t"
        f"{i.analysis_id}\t{shown(i.label, 200)}\n"
        for i in items
    ]
    write_output(lambda out: out.writelines(lines), args.output)
    return 0


def _list(found: list[Any]) -> int:
    if not found:
        print(
            "sonotag: no detectors yet; `sonotag detector refine LABEL` makes one from reviews.",
            file=sys.stderr,
        )
        return 0
    table = [("name", "version", "label", "threshold", "F1 (cv)", "text F1", "examples", "date")]
    for d in found:
        f1, text_f1 = d.metrics.get("f1_mean"), d.metrics.get("text_f1_mean")
        examples = sum(v for k, v in d.examples.items() if k not in ("weak", "analyses"))
        table.append(
            (
                shown(d.name, 40),
                str(d.version),
                shown(d.label, 40),
                "-" if d.threshold is None else f"{d.threshold:.3f}",
                "-" if f1 is None else f"{f1:.2f}",
                "-" if text_f1 is None else f"{text_f1:.2f}",
                str(examples),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(d.created)),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0

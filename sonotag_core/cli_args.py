"""The event parameters' command-line flags, from the event-parameter table: every
command that takes one (``analyze``, ``library export``, ``batch``, ``evaluate``) adds it
here, so a flag is spelt once (:data:`.domain.event_params.EVENT_PARAMS`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sonotag_core.domain.event_params import event_param, event_params


def add_event_flags(
    parser: argparse.ArgumentParser,
    names: Sequence[str] | None = None,
    *,
    default_note: str = "",
) -> None:
    """Add the flags of the rows called ``names`` (all rows when None), each stored under
    the row's name (``args.min_event_s``), None when not given. ``default_note`` replaces
    the help's "(default: ...)" (e.g. "the stored one")."""
    rows = list(event_params()) if names is None else [event_param(n) for n in names]
    for row in rows:
        note = default_note or f"{row.type(row.default):g}"
        parser.add_argument(
            row.cli_flag,
            dest=row.name,
            type=row.type,
            default=None,
            metavar=row.type.__name__.upper(),
            help=f"{_lower_first(row.help)} (default: {note})",
        )


def given_event_values(args: argparse.Namespace) -> dict[str, Any]:
    """name -> value of every event flag given on the command line."""
    values = {row.name: getattr(args, row.name, None) for row in event_params()}
    return {k: v for k, v in values.items() if v is not None}


def _lower_first(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].lower() + text[1:]

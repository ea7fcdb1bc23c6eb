"""The event parameters, one row each: how frame probabilities become events.

Every reader takes a parameter's name, type, default, valid values, range, help, share-link
key and CLI flag from :data:`EVENT_PARAMS`, never restates them: :class:`.events.EventParams`
(its defaults and checks), the settings table (``SONOTAG_THRESHOLD`` ...), the share link
(:mod:`sonotag_core.dashboard.share`), the dashboard's sidebar sliders and the CLI's
``analyze`` flags. Adding a parameter is one row here (plus the code in :mod:`.events` that
uses it); a test adds a fake row and finds it in the CLI help, a link round trip and the
sidebar.

``low``/``high`` bound what a link or a slider may set (the sidebar's range); the row's
check is what any value must satisfy (a ``SONOTAG_*`` default or a CLI flag may go past
the slider's range, never past the check).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sonotag_core.errors import ConfigError
from sonotag_core.untrusted import quoted


def _threshold(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Threshold must be a number between 0 and 1, not {quoted(value)}."
        ) from None
    if not 0.0 < v < 1.0:  # also rejects NaN
        raise ConfigError(f"Threshold must be between 0 and 1 (exclusive), not {value}.")
    return v


def _odd_frames(value: Any) -> int:
    try:
        n = operator.index(value)
    except TypeError:
        raise ConfigError(
            f"Median filter length must be a whole number of frames, not {value!r}."
        ) from None
    if n < 1 or n % 2 == 0:
        raise ConfigError(
            f"Median filter length must be an odd number of frames (1 = off), not {n}."
        )
    return int(n)


def _seconds(what: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not (v >= 0.0 and math.isfinite(v)):  # also rejects NaN
            raise ConfigError(f"{what} must be a finite number of seconds >= 0, not {value}.")
        return v

    return check


@dataclass(frozen=True)
class EventParam:
    """One event parameter (see the module doc)."""

    name: str  #: field of EventParams and Settings; key in a stored analysis' settings
    type: type  #: int or float
    default: float
    check: Callable[[Any], Any]  #: the value, normalised, or ConfigError
    low: float  #: lowest value a link or the sidebar may set
    high: float  #: highest value a link or the sidebar may set
    step: float  #: the sidebar slider's step (an int row's values go low, low+step, ...)
    help: str  #: one line, for the settings table, the CLI and the sidebar's tooltip
    ui_label: str  #: the sidebar widget's label
    what: str  #: how a warning about a bad link value names it
    share_key: str  #: its query-parameter key in a share link
    cli_flag: str  #: its ``sonotag analyze`` option

    def choices(self) -> list[float]:
        """The values a link or the sidebar may set, for an int row (e.g. odd frames)."""
        n = int(round((self.high - self.low) / self.step))
        return [self.type(self.low + i * self.step) for i in range(n + 1)]

    def allowed(self, value: float) -> bool:
        """Whether a link or the sidebar may set ``value``."""
        if not self.low <= value <= self.high:
            return False
        if self.type is int:
            return value in self.choices()
        return True

    def clamp(self, value: float) -> Any:
        """``value`` (a default from the environment) brought into the link's range; an
        int row falls back to its own default where the value is not one of its choices."""
        if self.type is int:
            return self.type(value) if self.allowed(value) else self.type(self.default)
        return self.type(min(max(value, self.low), self.high))


EVENT_PARAMS: tuple[EventParam, ...] = (
    EventParam(
        "threshold",
        float,
        0.5,
        _threshold,
        0.01,
        0.99,
        0.01,
        "Event threshold on the frame probability.",
        "Event threshold",
        "threshold",
        "thr",
        "--threshold",
    ),
    EventParam(
        "median_frames",
        int,
        1,
        _odd_frames,
        1,
        15,
        2,
        "Median-filter length in frames before thresholding (odd; 1 = off; 3 removes "
        "one-frame spikes).",
        "Smoothing (median frames)",
        "smoothing",
        "med",
        "--median-frames",
    ),
    EventParam(
        "min_event_s",
        float,
        0.0,
        _seconds("min_event_s"),
        0.0,
        60.0,
        0.1,
        "Events shorter than this many seconds are dropped.",
        "Minimum event length (s)",
        "minimum event length",
        "min",
        "--min-event",
    ),
    EventParam(
        "fill_gap_s",
        float,
        0.32,
        _seconds("fill_gap_s"),
        0.0,
        10.0,
        0.05,
        "Gaps between events shorter than this many seconds are filled (the default fills "
        "one 0.3125-s frame).",
        "Fill gaps shorter than (s)",
        "gap filling",
        "gap",
        "--fill-gap",
    ),
)


def event_params() -> Iterator[EventParam]:
    """The rows, read at call time (so a row added in a test is seen everywhere)."""
    return iter(EVENT_PARAMS)


def event_param(name: str) -> EventParam:
    """The row called ``name``."""
    for row in EVENT_PARAMS:
        if row.name == name:
            return row
    raise KeyError(name)


def event_defaults() -> dict[str, Any]:
    """name -> default, for every row."""
    return {row.name: row.type(row.default) for row in EVENT_PARAMS}


def checked(values: Mapping[str, Any]) -> dict[str, Any]:
    """Each known row's value normalised by its check (ConfigError for a bad one)."""
    return {row.name: row.check(values[row.name]) for row in EVENT_PARAMS if row.name in values}

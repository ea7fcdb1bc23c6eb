"""Progress reporting shared by every stage, so the UI and the CLI drive one bar from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress update.

    ``stage`` is one of "download", "queue", "decode", "encode", "labels", "model";
    ``done`` and ``total`` are in ``unit`` (bytes, windows, labels); ``total`` is None when unknown.
    """

    stage: str
    done: float
    total: float | None = None
    unit: str = ""
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """Default callback: ignore updates."""

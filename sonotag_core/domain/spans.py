"""(start, end) spans: one place that joins overlapping ones (truth events of a label,
weight ranges in memory)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T", int, float)


def merge_overlapping(spans: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    """``spans`` sorted, with overlapping or touching ones joined into one."""
    joined: list[list[T]] = []
    for start, end in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    return [(a, b) for a, b in joined]

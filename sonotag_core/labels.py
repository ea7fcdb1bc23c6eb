"""Free-text label lists from users: parsing, negatives and limits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import LimitError

_SPLIT = re.compile(r"[;\n\r]+")


@dataclass(frozen=True)
class LabelSet:
    """Labels in display order; ``negatives`` are scored and shown but never produce events."""

    labels: tuple[str, ...]
    negatives: frozenset[str] = frozenset()

    @property
    def positives(self) -> tuple[str, ...]:
        return tuple(label for label in self.labels if label not in self.negatives)

    def to_text(self) -> str:
        """Inverse of :func:`parse_labels` (negatives get a leading ``-``)."""
        return "; ".join(("-" + t) if t in self.negatives else t for t in self.labels)


def _clean(text: str) -> str:
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())


def parse_labels(
    text: str | Iterable[str],
    *,
    max_labels: int,
    max_chars: int,
    negatives: Iterable[str] = (),
) -> LabelSet:
    """Split "dog barking; siren\\n-music" into labels; a leading ``-`` marks a negative prompt.

    Labels are whitespace-normalised, control characters dropped, duplicates removed
    (first one wins). Empty input, too many labels or a too-long label raise LimitError.
    """
    parts = _SPLIT.split(text) if isinstance(text, str) else list(text)
    extra_neg = {_clean(n).lstrip("-").strip() for n in negatives}
    labels: list[str] = []
    neg: set[str] = set()
    for part in parts:
        item = _clean(part)
        is_neg = item.startswith("-")
        item = item.lstrip("-").strip()
        if not item:
            continue
        if len(item) > max_chars:
            raise LimitError(
                f"The label '{item[:40]}…' is {len(item)} characters long; the limit is {max_chars}. "
                'Short descriptions work best ("dog barking", "siren").'
            )
        if item in labels:
            continue
        labels.append(item)
        if is_neg or item in extra_neg:
            neg.add(item)
    if not labels:
        raise LimitError('Type at least one label, e.g. "dog barking; siren; applause".')
    if len(labels) > max_labels:
        raise LimitError(
            f"{len(labels)} labels given; the limit is {max_labels} (SONOTAG_MAX_LABELS). Remove some and try again."
        )
    return LabelSet(tuple(labels), frozenset(neg))

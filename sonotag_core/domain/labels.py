"""Free-text label lists from users: parsing, negatives and limits."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sonotag_core.errors import LimitError
from sonotag_core.untrusted import quoted

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


def text_limit(max_labels: int, max_chars: int) -> int:
    """The longest label text worth parsing: every label at its limit, with room for
    separators, spacing and a leading ``-``. Longer text is refused before it is parsed,
    so the work done on hostile input is bounded by the limits, not by its size."""
    return 4 * max_labels * (max_chars + 2) + 1024


def _too_long(label: str, n_chars: int, max_chars: int) -> LimitError:
    return LimitError(
        f"The label {quoted(label.strip(), 40)} is {n_chars} characters long; the limit is "
        f'{max_chars}. Short descriptions work best ("dog barking", "siren").'
    )


def _too_many(n_labels: int, max_labels: int) -> LimitError:
    return LimitError(
        f"{n_labels} labels given; the limit is {max_labels} (SONOTAG_MAX_LABELS). "
        "Remove some and try again."
    )


def _refuse_oversized(text: str, max_labels: int, max_chars: int) -> LimitError:
    """Why a text over :func:`text_limit` is refused, found with C-speed string work only
    (a split and lengths; no per-character Python)."""
    parts = [p for p in _SPLIT.split(text) if p and not p.isspace()]
    if len(parts) > max_labels:
        return _too_many(len(parts), max_labels)
    longest = max(parts, key=len, default=text)
    return _too_long(longest, len(longest.strip()), max_chars)


def parse_labels(
    text: str | Iterable[str],
    *,
    max_labels: int,
    max_chars: int,
    negatives: Iterable[str] = (),
) -> LabelSet:
    """Split "dog barking; siren\\n-music" into labels; a leading ``-`` marks a negative prompt.

    Labels are whitespace-normalised, control characters dropped, duplicates removed
    (first one wins). Empty input, too many labels or a too-long label raise LimitError,
    after work bounded by the limits whatever the size of the input.
    """
    if isinstance(text, str):
        if len(text) > text_limit(max_labels, max_chars):
            raise _refuse_oversized(text, max_labels, max_chars)
        parts = _SPLIT.split(text)
    else:
        parts = list(text)
    raw_limit = 4 * max_chars + 64  # room for invisible characters that cleaning drops
    extra_neg = {_clean(n[:raw_limit]).lstrip("-").strip() for n in negatives}
    labels: list[str] = []
    seen: set[str] = set()
    neg: set[str] = set()
    for i, part in enumerate(parts):
        part = str(part)
        if len(part) > raw_limit:  # spacing collapses (C-speed); what is left must be short
            part = " ".join(part.split())
            if len(part) > raw_limit:
                raise _too_long(part, len(part), max_chars)
        item = _clean(part)
        is_neg = item.startswith("-")
        item = item.lstrip("-").strip()
        if not item:
            continue
        if len(item) > max_chars:
            raise _too_long(item, len(item), max_chars)
        if item in seen:
            continue
        if len(labels) == max_labels:  # one too many: count the rest without cleaning them
            rest = sum(1 for p in parts[i:] if str(p).strip(" \t-"))
            raise _too_many(len(labels) + rest, max_labels)
        labels.append(item)
        seen.add(item)
        if is_neg or item in extra_neg:
            neg.add(item)
    if not labels:
        raise LimitError('Type at least one label, e.g. "dog barking; siren; applause".')
    return LabelSet(tuple(labels), frozenset(neg))

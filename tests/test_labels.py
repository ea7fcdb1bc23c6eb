"""Label parsing: separators, negatives, control characters and the limits."""

from __future__ import annotations

import pytest

from sonotag_core.domain.labels import parse_labels
from sonotag_core.errors import LimitError


def test_parse_labels_splits_negatives_and_dedupes():
    ls = parse_labels(
        "dog barking; siren\n-music ;  dog   barking;;\t", max_labels=10, max_chars=50
    )
    assert ls.labels == ("dog barking", "siren", "music")
    assert ls.negatives == {"music"}
    assert ls.positives == ("dog barking", "siren")
    assert parse_labels(ls.to_text(), max_labels=10, max_chars=50) == ls


def test_negative_by_option_and_control_chars():
    ls = parse_labels(["rain\x00", "wind"], max_labels=5, max_chars=20, negatives=["wind"])
    assert ls.labels == ("rain", "wind") and ls.negatives == {"wind"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one label"),
        (" ; \n -", "at least one label"),
        ("a" * 101, "100"),
        (";".join(f"l{i}" for i in range(33)), "limit is 32"),
    ],
)
def test_label_limits(text, message):
    with pytest.raises(LimitError, match=message):
        parse_labels(text, max_labels=32, max_chars=100)

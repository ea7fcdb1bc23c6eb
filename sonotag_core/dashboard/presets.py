"""Label presets: short, concrete AudioSet-style descriptions that text-audio models read well."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

PRESETS: dict[str, tuple[str, ...]] = {
    "Everyday & urban": (
        "a man speaking",
        "footsteps",
        "car horn",
        "traffic noise",
        "siren",
        "dog barking",
        "door slam",
        "construction drilling",
    ),
    "Speech & music": (
        "a man speaking",
        "a woman speaking",
        "laughter",
        "applause",
        "singing",
        "acoustic guitar",
        "piano",
        "drums",
    ),
    "Animals": (
        "dog barking",
        "cat meowing",
        "bird chirping",
        "rooster crowing",
        "cow mooing",
        "horse neighing",
        "frog croaking",
        "insects buzzing",
    ),
    "Vehicles & alarms": (
        "car engine",
        "motorcycle",
        "train horn",
        "airplane",
        "helicopter",
        "siren",
        "fire alarm",
        "car alarm",
    ),
    "Household": (
        "door knock",
        "doorbell",
        "vacuum cleaner",
        "microwave beep",
        "water running",
        "dishes clattering",
        "kettle whistle",
        "telephone ringing",
    ),
}
_SPLIT = re.compile(r"[;\n\r]+")  # the label box's separators (as parse_labels)


def preset_text(name: str) -> str:
    """The preset as the label box takes it ("a; b; c"); KeyError for unknown names."""
    return "; ".join(PRESETS[name])


def _key(label: str) -> str:
    """What makes two labels the same for the label box: case, spacing, invisible
    characters and a leading '-' (negative) aside."""
    visible = (
        label
        if label.isprintable()
        else "".join(ch for ch in label if unicodedata.category(ch)[0] != "C" or ch.isspace())
    )
    return " ".join(visible.split()).lstrip("-").strip().casefold()


def merge_labels(current_text: str, new_labels: Sequence[str]) -> str:
    """The label box after adding ``new_labels``: the user's labels first, as they typed
    them (order and '-' negatives kept), then each new label not already there (ignoring
    case and spacing, so "Dog  barking" and "-dog barking" both count as "dog barking"),
    one label per line."""
    lines = [" ".join(part.split()) for part in _SPLIT.split(current_text)]
    kept = [line for line in lines if _key(line)]
    seen = {_key(line) for line in kept}
    for label in new_labels:
        key = _key(label)
        if key and key not in seen:
            seen.add(key)
            kept.append(" ".join(label.split()))
    return "\n".join(kept)

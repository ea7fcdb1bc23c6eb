"""Label presets: short, concrete AudioSet-style descriptions that text-audio models read well."""

from __future__ import annotations

PRESETS: dict[str, tuple[str, ...]] = {
    "Everyday & urban": ("a man speaking", "footsteps", "car horn", "traffic noise", "siren",
                         "dog barking", "door slam", "construction drilling"),
    "Speech & music": ("a man speaking", "a woman speaking", "laughter", "applause", "singing",
                       "acoustic guitar", "piano", "drums"),
    "Animals": ("dog barking", "cat meowing", "bird chirping", "rooster crowing", "cow mooing",
                "horse neighing", "frog croaking", "insects buzzing"),
    "Vehicles & alarms": ("car engine", "motorcycle", "train horn", "airplane", "helicopter",
                          "siren", "fire alarm", "car alarm"),
    "Household": ("door knock", "doorbell", "vacuum cleaner", "microwave beep", "water running",
                  "dishes clattering", "kettle whistle", "telephone ringing"),
}  # fmt: skip


def preset_text(name: str) -> str:
    """The preset as the label box takes it ("a; b; c"); KeyError for unknown names."""
    return "; ".join(PRESETS[name])

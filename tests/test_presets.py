"""Presets (sonotag_core.dashboard.presets): short concrete label lists, added to the label box with
the suggested labels (issue 9 A9): what is there stays as typed, and a label already there
is not added again."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonotag_core.dashboard.presets import PRESETS, merge_labels, preset_text
from sonotag_core.domain.labels import parse_labels
from sonotag_core.settings import Settings

LIMITS = {"max_labels": 1000, "max_chars": 1000}
S = Settings().validated()


def test_a_preset_adds_only_the_labels_not_yet_in_the_box():
    box = "Dog  Barking; -siren\n\nmy own label"
    merged = merge_labels(box, PRESETS["Everyday & urban"])
    lines = merged.split("\n")
    # the user's labels first, in their order, their negative kept, spacing tidied
    assert lines[:3] == ["Dog Barking", "-siren", "my own label"]
    # then the preset minus "dog barking" and "siren" (there already, in another case/sign)
    rest = [x for x in PRESETS["Everyday & urban"] if x not in ("dog barking", "siren")]
    assert lines[3:] == rest
    parsed = parse_labels(merged, **LIMITS)
    assert parsed.negatives == {"siren"} and len(parsed.labels) == 3 + len(rest)


def test_adding_the_same_preset_twice_changes_nothing():
    once = merge_labels("", PRESETS["Animals"])
    assert once == "\n".join(PRESETS["Animals"])
    assert merge_labels(once, PRESETS["Animals"]) == once
    # two presets sharing "a man speaking" and "siren": each appears once
    both = merge_labels(merge_labels("", PRESETS["Everyday & urban"]), PRESETS["Speech & music"])
    assert both.split("\n").count("a man speaking") == 1
    assert len(parse_labels(both, **LIMITS).labels) == len(both.split("\n"))


def test_duplicates_ignore_case_spacing_invisible_characters_and_sign():
    assert merge_labels("siren", ["SIREN", " siren ", "si\u200bren", "-siren", "Siren"]) == "siren"
    assert merge_labels("-music", ["music", "applause", "Applause"]) == "-music\napplause"
    assert merge_labels("", ["a\tb", "a b", "", "  ", "-"]) == "a b"


def test_the_users_own_text_is_kept_even_when_it_repeats_itself():
    # the box is the user's: merge never rewrites or drops what they typed
    assert merge_labels("siren;siren; car horn", ["horn"]) == "siren\nsiren\ncar horn\nhorn"


@given(
    st.lists(st.text(alphabet="aAbB -;\n\t", max_size=12), max_size=6),
    st.lists(st.text(alphabet="aAbBc -\t", max_size=8), max_size=6),
)
def test_merge_keeps_every_label_once_and_never_loses_one(typed, new):
    box = ";".join(typed)
    merged = merge_labels(box, new)
    assert merge_labels(merged, new) == merged  # idempotent

    def key(s: str) -> str:
        return " ".join(s.split()).lstrip("-").strip().casefold()

    had = [key(p) for p in box.replace("\n", ";").split(";") if key(p)]
    got = [key(p) for p in merged.split("\n")] if merged else []
    assert got[: len(had)] == had  # the user's labels, in their order
    assert all(got)  # no empty lines
    added = got[len(had) :]
    assert len(set(added)) == len(added) and not set(added) & set(had)
    assert set(got) == set(had) | {key(n) for n in new if key(n)}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_merges_into_an_empty_box_as_itself(name):
    assert parse_labels(merge_labels("", PRESETS[name]), **LIMITS).labels == PRESETS[name]


def test_presets_are_short_concrete_label_lists():
    assert set(PRESETS) == {
        "Everyday & urban",
        "Speech & music",
        "Animals",
        "Vehicles & alarms",
        "Household",
    }
    for name, labels in PRESETS.items():
        assert 6 <= len(labels) <= 10, name
        assert len(set(labels)) == len(labels)
        text = preset_text(name)
        assert text == "; ".join(labels)
        parsed = parse_labels(text, max_labels=S.max_labels, max_chars=S.max_label_chars)
        assert parsed.labels == labels and not parsed.negatives
        assert all(len(x) <= 30 for x in labels)
    with pytest.raises(KeyError):
        preset_text("no such preset")

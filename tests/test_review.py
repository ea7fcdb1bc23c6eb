"""Event review (accept / reject / relabel): keys that survive recomputation, the status
columns a table gets, per-label counts, and the accepted-only view exports write.
No model: timelines are built by hand with planted events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sonotag_core.domain.events import EVENT_COLUMNS, EventParams, detect_events
from sonotag_core.domain.review import (
    ACCEPTED,
    REJECTED,
    UNREVIEWED,
    Review,
    ReviewCount,
    accepted_only,
    apply_reviews,
    event_key,
    review_counts,
)
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import ConfigError, SonoTagError

LABELS = ("dog barking", "siren", "music")
NEGATIVE = "music"
# label -> planted runs of frames [start, end) above 0.6; the rest stays below 0.3
PLANTED = {"dog barking": [(3, 7), (20, 26), (40, 41)], "siren": [(10, 15)], NEGATIVE: []}
N_FRAMES = 64


def timeline(seed: int = 7, noise: float = 0.0) -> Timeline:
    """A timeline with the planted events; ``noise`` perturbs every probability a little,
    as float16 storage or another thread count would."""
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.0, 0.3, size=(len(LABELS), N_FRAMES))
    for row, label in enumerate(LABELS):
        for start, end in PLANTED[label]:
            probs[row, start:end] = rng.uniform(0.6, 0.99, size=end - start)
    if noise:
        probs += np.random.default_rng(seed + 1).uniform(-noise, noise, size=probs.shape)
    return Timeline(LABELS, probs.astype(np.float32), N_FRAMES * FRAME_S, frozenset({NEGATIVE}))


def events(**kw) -> pd.DataFrame:
    return detect_events(timeline(**kw), EventParams(threshold=0.5))


def verdicts(ev: pd.DataFrame) -> list[Review]:
    """Accept the first dog, reject the siren, relabel the second dog; the third stays open."""
    rows = list(ev.itertuples(index=False))
    dogs = [r for r in rows if r.label == "dog barking"]
    [siren] = [r for r in rows if r.label == "siren"]
    return [
        Review.of_event(dogs[0].label, dogs[0].onset_s, dogs[0].offset_s, ACCEPTED),
        Review.of_event(siren.label, siren.onset_s, siren.offset_s, REJECTED),
        Review.of_event(
            dogs[1].label, dogs[1].onset_s, dogs[1].offset_s, ACCEPTED, relabel="dog growling"
        ),
    ]


def test_planted_events() -> None:
    ev = events()
    got = list(ev[["label", "onset_s"]].itertuples(index=False, name=None))
    assert got == [
        ("dog barking", 3 * FRAME_S),
        ("siren", 10 * FRAME_S),
        ("dog barking", 20 * FRAME_S),
        ("dog barking", 40 * FRAME_S),
    ]


def test_event_key_is_label_and_onset_frame() -> None:
    assert event_key("siren", 10 * FRAME_S) == ("siren", 10)
    # float noise in an onset does not move the key; another frame does
    assert event_key("siren", 10 * FRAME_S + 1e-7) == event_key("siren", 10 * FRAME_S - 1e-7)
    assert event_key("siren", 11 * FRAME_S) != event_key("siren", 10 * FRAME_S)
    assert event_key("dog", 10 * FRAME_S) != event_key("siren", 10 * FRAME_S)
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="onset"):
            event_key("siren", bad)


def test_keys_survive_recomputation() -> None:
    """Events recomputed from new frame probabilities (a reload, float16 embeddings) get
    the same verdicts; other settings that move an onset lose it, and getting the
    settings back brings it back."""
    first = events()
    reviews = verdicts(first)
    expected = [ACCEPTED, REJECTED, ACCEPTED, UNREVIEWED]
    assert apply_reviews(first, reviews)["status"].tolist() == expected
    again = events(noise=1e-3)  # not bit-identical, same events
    assert not np.array_equal(timeline(noise=1e-3).probabilities, timeline().probabilities)
    assert apply_reviews(again, reviews)["status"].tolist() == expected
    # a siren threshold above its peak drops it; the dog verdicts stay; back again, it is back
    high = detect_events(timeline(), EventParams(threshold=0.5, label_thresholds={"siren": 0.995}))
    assert "siren" not in set(high.label)
    assert apply_reviews(high, reviews)["status"].tolist() == [ACCEPTED, ACCEPTED, UNREVIEWED]
    assert apply_reviews(events(), reviews)["status"].tolist() == expected
    # an onset one frame later (other smoothing, say) is another event: no verdict
    moved = first.copy()
    moved.loc[0, "onset_s"] = 4 * FRAME_S
    assert apply_reviews(moved, reviews)["status"].tolist() == [UNREVIEWED, *expected[1:]]


def test_apply_reviews_adds_columns_and_changes_nothing_else() -> None:
    ev = events()
    before = ev.copy()
    out = apply_reviews(ev, verdicts(ev))
    pd.testing.assert_frame_equal(ev, before)  # the input is not modified
    assert list(out.columns) == [*EVENT_COLUMNS, "status", "reviewed_label"]
    pd.testing.assert_frame_equal(out[list(EVENT_COLUMNS)], before)
    assert out["reviewed_label"].tolist() == ["", "", "dog growling", ""]
    # applying again (other verdicts) replaces the columns instead of adding more
    rejected_all = [
        Review.of_event(r.label, r.onset_s, r.offset_s, REJECTED) for r in ev.itertuples()
    ]
    twice = apply_reviews(out, rejected_all)
    assert list(twice.columns) == list(out.columns)
    assert twice["status"].tolist() == [REJECTED] * 4 and set(twice["reviewed_label"]) == {""}
    empty = apply_reviews(ev.iloc[0:0], verdicts(ev))
    assert list(empty.columns) == list(out.columns) and len(empty) == 0


def test_latest_verdict_wins() -> None:
    ev = events()
    first = Review("siren", 10, 10 * FRAME_S, 15 * FRAME_S, ACCEPTED, updated=1.0)
    second = Review("siren", 10, 10 * FRAME_S, 15 * FRAME_S, REJECTED, updated=2.0)
    for order in ([first, second], [second, first]):
        got = apply_reviews(ev, order)
        assert got.loc[got.label == "siren", "status"].tolist() == [REJECTED]


def test_review_counts_per_label() -> None:
    ev = apply_reviews(events(), verdicts(events()))
    counts = review_counts(ev, ("dog barking", "siren", "rain"))
    assert list(counts) == ["dog barking", "siren", "rain"]  # labels without events too
    assert counts["dog barking"] == ReviewCount("dog barking", 3, 2, 0, 1)
    assert counts["dog barking"].reviewed == 2
    assert counts["siren"] == ReviewCount("siren", 1, 0, 1, 0)
    assert counts["rain"] == ReviewCount("rain", 0, 0, 0, 0)
    assert counts["dog barking"].summary() == (
        "dog barking: 2 of 3 reviewed (2 accepted, 0 rejected; 1 relabelled)"
    )
    assert counts["siren"].summary() == "siren: 1 of 1 reviewed (0 accepted, 1 rejected)"
    # a table without status columns: nothing reviewed yet
    plain = review_counts(events())
    assert list(plain) == ["dog barking", "siren"] and plain["dog barking"].reviewed == 0


def test_accepted_only_applies_relabels() -> None:
    ev = events()
    got = accepted_only(apply_reviews(ev, verdicts(ev)))
    assert got[["label", "onset_s", "offset_s"]].values.tolist() == [
        ["dog barking", 3 * FRAME_S, 7 * FRAME_S],
        ["dog growling", 20 * FRAME_S, 26 * FRAME_S],
    ]
    assert set(got["status"]) == {ACCEPTED}
    assert accepted_only(ev).empty  # never reviewed: nothing accepted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "maybe"}, "'accepted' or 'rejected', not 'maybe'"),
        ({"status": "Accepted"}, "not 'Accepted'"),
        ({"status": REJECTED, "relabel": "cat"}, "cannot also be rejected"),
        ({"label": " "}, "needs the label"),
        ({"onset_frame": 11}, "does not match"),
        ({"offset_s": 0.0}, "ends at or after"),
        ({"relabel": "x" * 201}, "limit is 200"),
    ],
)
def test_invalid_reviews_are_clear_errors(kwargs: dict, message: str) -> None:
    base = {
        "label": "siren",
        "onset_frame": 10,
        "onset_s": 10 * FRAME_S,
        "offset_s": 15 * FRAME_S,
        "status": ACCEPTED,
    }
    with pytest.raises(ConfigError, match=message) as info:
        Review(**{**base, **kwargs})
    assert isinstance(info.value, SonoTagError)


def test_relabel_text_is_cleaned() -> None:
    review = Review.of_event("siren", 0.0, 1.0, ACCEPTED, relabel="  police\u202e\n siren ")
    assert review.relabel == "police siren"
    assert Review.of_event("siren", 0.0, 1.0, ACCEPTED, relabel="siren").relabel is None
    assert Review.of_event("siren", 0.0, 1.0, ACCEPTED, relabel="  ").relabel is None


def test_the_cli_offers_exactly_the_statuses() -> None:
    from sonotag_core import cli
    from sonotag_core.domain import review

    assert cli.REVIEW_CHOICES == review.STATUSES  # cli keeps a copy so it needs no pandas

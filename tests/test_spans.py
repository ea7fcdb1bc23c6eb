"""Marked spans ("mark what the model missed"): kept with their analysis, migrated into
old databases, under the access rules of reviews, listed and counted with the verdicts,
exported, and taken as truth by Evaluate's "reviews as truth"."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from standin import STANDIN_SHA256

from sonotag_core import exports
from sonotag_core.access import OPERATOR_VIEWER, AccessError, Viewer
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.review import (
    ADDED,
    NEGATIVE,
    Review,
    Span,
    accepted_only,
    review_counts,
)
from sonotag_core.domain.review_truth import reviewed_territory
from sonotag_core.errors import ConfigError, NotFoundError
from sonotag_core.media.sources import SourceInfo
from sonotag_core.service import spans as span_service
from sonotag_core.service.api import Service
from sonotag_core.store.database import MIGRATIONS, Store

ALICE = Viewer("visitor:alice")
BOB = Viewer("visitor:bob")


def source(name: str) -> SourceInfo:
    cid = hashlib.sha256(name.encode()).hexdigest()
    return SourceInfo("upload", Path(""), name, cid, f"{name}.wav", 30.0)


def embeddings(n: int = 3, seed: int = 0) -> AudioEmbeddings:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, 32, 512)).astype(np.float32)
    f /= np.linalg.norm(f, axis=-1, keepdims=True)
    return AudioEmbeddings(np.arange(n, dtype=np.int64) * 480_000, f, n * 480_000, 480_000)


def stored(store: Store, name: str = "clip", owner: str = "visitor:alice", seed: int = 0) -> str:
    return store.add_analysis(
        source(name),
        embeddings(seed=seed),
        LabelSet(("siren", "dog")),
        hop_s=10.0,
        checkpoint_sha256=STANDIN_SHA256,
        model_name="standin",
        owner=owner,
    )


# ---------------------------------------------------------------- the value


def test_a_span_is_checked_and_cleaned():
    span = Span("  police \n siren ", 1.0, 2.5, ADDED)
    assert (span.label, span.first_frame, span.stop_frame) == ("police siren", 3, 8)
    assert Span("x", 0.0, 0.1, NEGATIVE).stop_frame == 1  # at least one frame
    for bad in (
        lambda: Span("x", 2.0, 1.0, ADDED),
        lambda: Span("x", -1.0, 1.0, ADDED),
        lambda: Span("x", 0.0, math.nan, ADDED),
        lambda: Span("", 0.0, 1.0, ADDED),
        lambda: Span("x", 0.0, 1.0, "maybe"),
        lambda: Span("x", 0.0, 601.0, ADDED),
    ):
        with pytest.raises(ConfigError):
            bad()
    assert span.within(2.0).offset_s == 2.0
    with pytest.raises(ConfigError, match="after the end"):
        span.within(0.5)


# ---------------------------------------------------------------- the store


def test_spans_survive_reopen_replace_and_go_with_their_analysis(tmp_path):
    store = Store(tmp_path)
    aid, other = stored(store), stored(store, "other", seed=1)
    first = store.add_span(aid, Span("siren", 12.5, 14.0, ADDED), reviewer="visitor:alice")
    no = store.add_span(aid, Span("dog", 3.0, 6.0, NEGATIVE), reviewer="visitor:alice")
    assert first is not None and no is not None and first.id != no.id
    store.add_span(other, Span("siren", 1.0, 2.0, ADDED), reviewer="operator")
    reopened = Store(tmp_path)
    assert [(s.label, s.kind, s.onset_s) for s in reopened.get_spans(aid)] == [
        ("dog", NEGATIVE, 3.0),
        ("siren", ADDED, 12.5),
    ]
    # the same label, kind and onset frame again: replaced (a corrected end), same id
    again = reopened.add_span(aid, Span("siren", 12.5, 15.0, ADDED), reviewer="visitor:alice")
    assert again.id == first.id and len(reopened.get_spans(aid)) == 2
    assert reopened.get_spans(aid)[1].offset_s == 15.0
    assert store.spans_of([aid, other, "nope"], "siren").keys() == {aid, other}
    assert store.add_span("0" * 32, Span("x", 0, 1, ADDED), reviewer="operator") is None
    assert store.delete_span(aid, no.id) and not store.delete_span(aid, no.id)
    assert not store.delete_span(other, first.id)  # another analysis's span number
    assert store.delete_analysis(aid)
    assert store.get_spans(aid) == [] and len(store.get_spans(other)) == 1


def test_an_old_database_migrates_and_gains_spans(tmp_path):
    """A database of the version before spans (schema 6) keeps its analyses and
    verdicts, and takes spans."""
    db = sqlite3.connect(tmp_path / "sonotag.db")
    db.executescript(";".join(MIGRATIONS[:6]) + "; PRAGMA user_version = 6;")
    db.close()
    # rows written by the store itself, then the version wound back to 6 and what the
    # later migrations made dropped: exactly a schema-6 database with data in it
    old = Store(tmp_path)
    aid = stored(old)
    review = Review.of_event("siren", 2.5, 3.75, "accepted")
    assert old.set_review(aid, review, reviewer="visitor:alice")
    db = sqlite3.connect(tmp_path / "sonotag.db")
    db.executescript("DROP TABLE spans; DROP TABLE detectors;")
    db.execute("PRAGMA user_version = 6")
    db.commit()
    db.close()
    store = Store(tmp_path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.get_reviews(aid) == [review] and store.get_spans(aid) == []
    assert store.add_span(aid, Span("siren", 1, 2, ADDED), reviewer="visitor:alice")
    assert len(Store(tmp_path).get_spans(aid)) == 1


# ---------------------------------------------------------------- access rules


def test_only_the_owner_marks_spans_and_anyone_reads_them(tmp_path):
    store = Store(tmp_path)
    aid = stored(store)
    span = span_service.mark_span(store, ALICE, aid, Span("siren", 25.0, 40.0, ADDED))
    assert span.offset_s == 30.0  # clipped to the audio
    with pytest.raises(AccessError):
        span_service.mark_span(store, BOB, aid, Span("siren", 1.0, 2.0, ADDED))
    with pytest.raises(AccessError):
        span_service.delete_span(store, BOB, aid, span.id)
    with pytest.raises(AccessError):
        span_service.set_verdict(store, BOB, aid, Review.of_event("siren", 0, 1, "accepted"))
    assert span_service.list_spans(store, aid) == [span]  # read-only for a share link
    with pytest.raises(NotFoundError):
        span_service.mark_span(store, ALICE, "0" * 32, Span("siren", 1.0, 2.0, ADDED))
    with pytest.raises(ConfigError, match="after the end"):
        span_service.mark_span(store, ALICE, aid, Span("siren", 31.0, 32.0, ADDED))
    span_service.set_verdict(store, ALICE, aid, Review.of_event("siren", 0, 1, "accepted"))
    assert span_service.clear_verdict(store, OPERATOR_VIEWER, aid, "siren", 0)
    assert span_service.delete_span(store, OPERATOR_VIEWER, aid, span.id)


# ---------------------------------------------------------------- report, counts, exports


@pytest.fixture
def marked(tmp_path, standin_model, standin_settings):
    """A stored analysis with one verdict, an added span and a negative span, its report."""
    store = Store(tmp_path)
    aid = stored(store)
    service = Service(standin_model, standin_settings, store)
    params = EventParams(threshold=0.5)
    before = service.report(service.open(aid), LabelSet(("siren", "dog")), params)
    detected = len(before.events)
    span_service.mark_span(store, ALICE, aid, Span("siren", 12.5, 14.0, ADDED))
    span_service.mark_span(store, ALICE, aid, Span("dog", 3.0, 6.0, NEGATIVE))
    span_service.mark_span(store, ALICE, aid, Span("cat", 20.0, 21.0, ADDED))  # not scored
    report = service.report(service.open(aid), LabelSet(("siren", "dog")), params)
    return report, detected


def test_spans_follow_the_detected_events_in_the_report(marked):
    report, detected = marked
    events = report.events
    assert len(events) == detected + 3
    tail = events.iloc[detected:]
    assert tail["status"].tolist() == [NEGATIVE, ADDED, ADDED]  # time order
    assert tail["label"].tolist() == ["dog", "siren", "cat"]
    siren = report.timeline.probabilities[0, 40:45]  # 12.5 s .. 14.0 s
    assert tail["peak"].iloc[1] == pytest.approx(siren.max())
    assert math.isnan(tail["peak"].iloc[2])  # "cat" is not scored
    counts = review_counts(events, ["siren", "dog"])
    assert (counts["siren"].added, counts["dog"].negative) == (1, 1)
    assert counts["siren"].events == int((events.iloc[:detected]["label"] == "siren").sum())
    assert "1 added" in counts["siren"].summary()
    assert "1 checked absent" in counts["dog"].summary()
    kept = accepted_only(events)
    assert set(kept["label"]) == {"siren", "cat"} and len(kept) == 2


def test_spans_are_exported(marked):
    report, detected = marked
    rows = list(csv.DictReader(io.StringIO(exports.export_text(report, "csv"))))
    assert [r["status"] for r in rows[detected:]] == [NEGATIVE, ADDED, ADDED]
    assert rows[-1]["peak"] == ""  # unscored label: empty, never "nan"
    obj = json.loads(exports.export_text(report, "json"))
    assert obj["negative_spans"] == [{"label": "dog", "onset_s": 3.0, "offset_s": 6.0}]
    assert [e["status"] for e in obj["events"][detected:]] == [ADDED, ADDED]
    for fmt in ("raven", "dcase", "audacity"):
        text = exports.export_text(report, fmt)
        assert text.count("siren") >= 1
        lines = text.strip().splitlines()
        assert len(lines) == detected + 2 + (fmt != "audacity")  # header; no negative
    raven = exports.export_text(report, "raven").splitlines()
    assert raven[-1].endswith("\tadded")
    reviewed = json.loads(exports.export_text(report, "json", reviewed=True))
    assert [e["label"] for e in reviewed["events"]] == ["siren", "cat"]


def test_spans_are_truth_for_evaluate_from_reviews(marked):
    report, detected = marked
    territory = reviewed_territory(report.timeline, report.events, ["siren", "dog"])
    added = [n for n in territory.spans if n.endswith("(added)")]
    negative = [n for n in territory.spans if n.endswith("(negative)")]
    assert len(added) == 1 and len(negative) == 1  # "cat" is not scored: left out
    assert territory.truth[added[0]] == [(0.0, 1.5, "siren")]
    assert territory.truth[negative[0]] == []
    assert territory.files_of["dog"] == negative
    assert (12.5, 14.0, "siren") in territory.accepted


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def cli(monkeypatch, tmp_path, standin_model):
    """``sonotag`` in this process on the stand-in model, with its own data dir."""
    from sonotag_core.cli import main
    from sonotag_core.inference import model

    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(model, "load_model", lambda *a, **k: standin_model)
    return lambda *args: main(list(args))


def test_library_review_marks_lists_and_deletes_spans(cli, tmp_path, capsys):
    store = Store(tmp_path / "data")
    aid = stored(store, owner="operator")
    assert cli("library", "review", aid, "--add", "--label", "siren", "--onset", "0:12.5",
               "--offset", "14") == 0  # fmt: skip
    assert "added (missed by the model) (span 1)" in capsys.readouterr().err
    assert cli("library", "review", aid, "--negative", "--label", "dog", "--onset", "3",
               "--offset", "6", "--spans") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "siren: 0 of" in out and "1 added" in out and "1 checked absent" in out
    assert "span 1\tadded\t0:00:12.5" in out and "span 2\tnegative\t0:00:03" in out
    assert cli("library", "review", aid, "--delete-span", "2") == 0
    assert [s.kind for s in store.get_spans(aid)] == [ADDED]
    for bad in (
        ["--add", "--label", "siren", "--onset", "3"],  # no --offset
        ["--add", "--label", "siren", "--onset", "3", "--offset", "2"],  # ends before
        ["--set", "accepted", "--label", "siren", "--onset", "3", "--offset", "4"],
        ["--delete-span", "1", "--label", "siren"],
    ):
        assert cli("library", "review", aid, *bad) != 0, bad

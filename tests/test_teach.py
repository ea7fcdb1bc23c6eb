"""Teaching a label: examples gathered from verdicts and marked spans (only the viewer's
analyses), weak negatives, a refine that says what is missing, a detector that learns a
planted sound, and the Review next queue (unreviewed, spread, round-robin)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from standin import STANDIN_SHA256

from sonotag_core.access import OPERATOR_VIEWER, Viewer
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.probe import WEAK_NEGATIVE_WEIGHT, auroc
from sonotag_core.domain.review import ADDED, NEGATIVE, Review, Span
from sonotag_core.domain.windows import FRAME_S, hop_samples, window_starts
from sonotag_core.errors import DetectorError
from sonotag_core.media.sources import SourceInfo
from sonotag_core.service import teach
from sonotag_core.service.api import Service
from sonotag_core.service.detectors import list_detectors
from sonotag_core.service.frames import probe_frames
from sonotag_core.store.database import Store

ALICE = Viewer("visitor:alice")
BOB = Viewer("visitor:bob")
LABEL = "siren"
RNG = np.random.default_rng(11)
SOUND = RNG.standard_normal(512)  # the label's sound: frames near this direction
OTHER = RNG.standard_normal(512)  # a look-alike the text confuses it with


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def scene(seconds: float, sounds: dict[int, np.ndarray], seed: int, length: int = 6):
    """Random frames with ``length``-frame sounds planted at the given frames."""
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * 48_000)
    frames = rng.standard_normal((int(np.ceil(n_samples / 15_000)) + 32, 512))
    for at, direction in sounds.items():
        frames[at : at + length] = direction + 0.6 * rng.standard_normal((length, 512))
    frames = unit(frames).astype(np.float32)
    starts = np.asarray(window_starts(n_samples, hop_samples(10.0)), np.int64)
    feats = np.stack([frames[s // 15_000 : s // 15_000 + 32] for s in starts])
    return AudioEmbeddings(starts, feats, n_samples, hop_samples(10.0))


def add(store, name, emb, owner):
    cid = hashlib.sha256(name.encode()).hexdigest()
    src = SourceInfo("upload", Path(""), name, cid, f"{name}.wav", emb.duration_s)
    return store.add_analysis(
        src, emb, LabelSet((LABEL,)), hop_s=10.0, checkpoint_sha256=STANDIN_SHA256,
        model_name="standin", owner=owner,
    )  # fmt: skip


@pytest.fixture
def taught(tmp_path, standin_model, standin_settings):
    """Alice's library: 4 scenes, each with two sirens (frames 20 and 100) and one
    look-alike (frame 60); she accepted/added the sirens of the first three and
    rejected / marked negative the look-alikes. Bob has one scene she cannot learn from."""
    store = Store(tmp_path)
    ids = []
    for k in range(4):
        emb = scene(40.0, {20: SOUND, 60: OTHER, 100: SOUND}, seed=k)
        ids.append(add(store, f"scene{k}", emb, ALICE.owner))
    bob = add(store, "bobs", scene(40.0, {20: OTHER}, seed=9), BOB.owner)
    for aid in ids[:3]:
        store.set_review(aid, Review.of_event(LABEL, 20 * FRAME_S, 26 * FRAME_S, "accepted"),
                         reviewer=ALICE.owner)  # fmt: skip
        store.add_span(aid, Span(LABEL, 100 * FRAME_S, 106 * FRAME_S, ADDED), reviewer="a")
        store.set_review(aid, Review.of_event(LABEL, 60 * FRAME_S, 66 * FRAME_S, "rejected"),
                         reviewer=ALICE.owner)  # fmt: skip
    store.add_span(ids[0], Span(LABEL, 80 * FRAME_S, 84 * FRAME_S, NEGATIVE), reviewer="a")
    # bob's verdict: an accepted look-alike, which must not teach alice's detector
    store.set_review(bob, Review.of_event(LABEL, 20 * FRAME_S, 26 * FRAME_S, "accepted"),
                     reviewer=BOB.owner)  # fmt: skip
    service = Service(standin_model, standin_settings, store)
    return store, service, ids, bob


def test_examples_come_from_verdicts_and_spans_of_the_viewers_analyses(taught):
    store, service, ids, bob = taught
    ex = teach.gather_examples(store, LABEL, embedding_key=STANDIN_SHA256, viewer=ALICE)
    assert ex.counts == {"accepted": 3, "relabelled": 0, "added": 3, "rejected": 3,
                         "negative": 1, "weak": ex.counts["weak"]}  # fmt: skip
    assert ex.analyses == 3 and ex.positives == 6 and ex.negatives == 4
    n_pos = int(ex.y.sum())
    assert n_pos == 36  # six events of six frames
    weak = ex.weak
    assert weak.sum() == max(teach.WEAK_PER_POSITIVE * n_pos, teach.WEAK_MIN)
    assert (ex.y[weak] == 0).all() and (ex.weight[weak] == WEAK_NEGATIVE_WEIGHT).all()
    assert len(set(ex.groups[~weak])) == 10  # one event id per example
    # the operator learns from everyone's analyses, bob's included
    every = teach.gather_examples(store, LABEL, embedding_key=STANDIN_SHA256,
                                  viewer=OPERATOR_VIEWER)  # fmt: skip
    assert every.counts["accepted"] == 4 and every.analyses == 4


def test_a_relabel_teaches_both_labels(taught):
    store, _, ids, _ = taught
    store.set_review(ids[3], Review.of_event(LABEL, 60 * FRAME_S, 66 * FRAME_S, "accepted",
                     relabel="car horn"), reviewer=ALICE.owner)  # fmt: skip
    siren = teach.gather_examples(store, LABEL, embedding_key=STANDIN_SHA256, viewer=ALICE)
    horn = teach.gather_examples(store, "car horn", embedding_key=STANDIN_SHA256, viewer=ALICE)
    assert siren.counts["rejected"] == 4  # relabelled away: not a siren
    assert horn.counts["relabelled"] == 1 and horn.positives == 1 and horn.negatives == 0


def test_refine_says_what_is_missing(taught, standin_model):
    store, service, ids, _ = taught
    with pytest.raises(DetectorError, match="no positive example .* and no negative example"):
        service.refine("dog", viewer=ALICE)
    store.add_span(ids[0], Span("dog", 1.0, 2.0, ADDED), reviewer=ALICE.owner)
    with pytest.raises(DetectorError) as err:
        service.refine("dog", viewer=ALICE)
    assert "no negative example" in str(err.value) and "no positive" not in str(err.value)
    # bob's only verdict on his own analysis: an accept, no negative
    with pytest.raises(DetectorError, match="no negative example"):
        service.refine(LABEL, viewer=BOB)


def test_refined_detector_learns_the_planted_sound_and_is_versioned(taught):
    store, service, ids, bob = taught
    refined = service.refine(LABEL, viewer=ALICE)
    detector = refined.detector
    assert (detector.name, detector.version, detector.owner) == (LABEL, 1, ALICE.owner)
    assert detector.examples["accepted"] == 3 and detector.examples["analyses"] == 3
    v = refined.validation
    assert v.n_events == 10 and v.folds >= 2 and v.f1_mean >= v.text_f1_mean
    assert "event F1" in refined.summary() and "text alone" in refined.summary()
    # on the scene nobody reviewed, the sirens stand out from the look-alike and the rest
    emb = store.get_analysis(ids[3]).embeddings
    probs = probe_frames(detector.probe, emb)
    truth = np.zeros(probs.shape[0], bool)
    truth[20:26] = truth[100:106] = True
    text = probe_frames(teach.text_prior(service.texts, LABEL), emb)
    assert auroc(probs, truth) > 0.95 > auroc(text, truth)
    assert probs[20:26].min() > probs[60:66].max()
    unsaved = service.refine(LABEL, viewer=ALICE, save=False).detector  # a refit between
    assert unsaved.version == 0 and len(list_detectors(store, ALICE)) == 1  # verdicts
    again = service.refine(LABEL, viewer=ALICE, name="my siren")
    assert (again.detector.name, again.detector.version) == ("my siren", 1)
    assert service.refine(LABEL, viewer=ALICE).detector.version == 2
    assert [d.ref for d in list_detectors(store, ALICE)] == ["my siren v1", "siren v1", "siren v2"]
    assert list_detectors(store, BOB) == []


def test_review_next_asks_about_unreviewed_uncertain_moments_spread_out(taught):
    store, service, ids, bob = taught
    detector = service.refine(LABEL, viewer=ALICE).detector
    items = service.review_next(LABEL, detector=detector, count=8, viewer=ALICE)
    assert len(items) == 8 and all(i.label == LABEL for i in items)
    assert {i.analysis_id for i in items} <= set(ids)  # alice's library only
    for i in items:  # nothing she already judged
        frame = round(i.onset_s / FRAME_S)
        if i.analysis_id in ids[:3]:
            assert not (20 <= frame < 26 or 60 <= frame < 66 or 100 <= frame < 106)
    # spread: at least 5 s apart within a file; round-robin: the first four are 4 files
    for a in items:
        for b in items:
            if a is not b and a.analysis_id == b.analysis_id:
                assert abs(a.onset_s - b.onset_s) >= 5.0 - 1e-9
    assert len({i.analysis_id for i in items[:4]}) == 4
    # without a detector the text's probabilities are ranked at the settings' threshold
    bobs = service.review_next(LABEL, count=3, viewer=BOB)
    assert len(bobs) == 3 and {i.analysis_id for i in bobs} == {bob}  # his own only


def test_rescore_library_without_the_encoder(taught, standin_model):
    store, service, ids, bob = taught
    detector = service.refine(LABEL, viewer=ALICE).detector
    standin_model.net.audio_calls = 0
    rows = dict(teach.rescore_library(store, detector, embedding_key=STANDIN_SHA256,
                                      viewer=ALICE))  # fmt: skip
    assert set(rows) == set(ids) and standin_model.net.audio_calls == 0
    timeline = service.with_detectors([detector]).timeline(service.open(ids[0]), LabelSet((LABEL,)))
    np.testing.assert_allclose(timeline.probabilities[0], rows[ids[0]], atol=2e-3)  # float16


def test_a_verdict_on_a_queued_moment_teaches_and_leaves_the_queue(taught):
    from sonotag_core.service.spans import answer_moment

    store, service, ids, _ = taught
    first = service.review_next(LABEL, count=1, viewer=ALICE)[0]
    span = answer_moment(store, ALICE, first.analysis_id, LABEL, first.onset_s,
                         first.offset_s, present=False)  # fmt: skip
    assert span.kind == NEGATIVE
    again = service.review_next(LABEL, count=5, viewer=ALICE)
    assert (first.analysis_id, first.onset_s) not in {(i.analysis_id, i.onset_s) for i in again}
    ex = teach.gather_examples(store, LABEL, embedding_key=STANDIN_SHA256, viewer=ALICE)
    assert ex.counts["negative"] == 2

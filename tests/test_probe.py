"""The probe a label is refined into (sonotag_core.domain.probe): with no reviews it is the
text-only detector, it learns from a few reviewed events, its card round-trips exactly
and a damaged card is refused, and its cross-validation splits by event. Fast tier: random
embeddings, no model (openflam's map function is called on random tensors)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sonotag_core.domain import probe as P
from sonotag_core.errors import ConfigError, DetectorError

DIM = P.FEATURE_DIM


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _encoding(rng: np.random.Generator, scales, biases):
    from sonotag_core.inference.scoring import LabelEncoding

    feats = _unit(rng.standard_normal((len(scales), DIM))).astype(np.float32)
    return LabelEncoding(
        tuple(f"label {i}" for i in range(len(scales))),
        feats,
        np.asarray(scales, np.float32),
        np.asarray(biases, np.float32),
    )


def test_no_reviews_gives_the_text_only_probabilities():
    from sonotag_core.inference.scoring import frame_probabilities

    rng = np.random.default_rng(0)
    enc = _encoding(rng, [10.7, 40.0, 120.0], [-7.9, -3.0, 2.0])
    audio = rng.standard_normal((5, 32, DIM)).astype(np.float32) * 3  # not normalised
    reference = frame_probabilities(audio, enc)  # openflam's own unbiased map
    for i in range(3):
        text = P.text_probe(enc.features[i], float(enc.scale[i]), float(enc.bias[i]))
        assert np.abs(text.scores(audio) - reference[:, i, :]).max() < 1e-6
        # a refine with no reviews (or only examples of no weight) is that detector
        assert P.fit_probe(text, np.zeros((0, DIM)), np.zeros(0)) is text
        zero = P.fit_probe(text, audio[0], np.ones(32), sample_weight=np.zeros(32))
        assert np.abs(zero.scores(audio) - reference[:, i, :]).max() < 1e-6
        # float16 frames (as stored) stay within their own rounding
        assert np.abs(text.scores(audio.astype(np.float16)) - reference[:, i, :]).max() < 2e-3


def _planted(rng: np.random.Generator, n_events: int, frames: int, direction, yes):
    """Frames of events around one shared mean (cosine ~0.99, as the encoder's are),
    shifted along ``direction`` when the event is the label; (X, y, event ids)."""
    mean = _unit(np.ones(DIM))
    xs, ys, gs = [], [], []
    for e in range(n_events):
        centre = mean + 0.05 * _unit(rng.standard_normal(DIM)) + (0.05 * direction if yes[e] else 0)
        xs.append(_unit(centre + 0.01 * rng.standard_normal((frames, DIM))))
        ys.append(np.full(frames, float(yes[e])))
        gs.append(np.full(frames, e))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def test_a_probe_learns_a_planted_direction_from_a_few_events():
    rng = np.random.default_rng(1)
    direction = _unit(rng.standard_normal(DIM))
    prior = P.text_probe(rng.standard_normal(DIM), 10.7, -7.9)  # a text that knows nothing
    X, y, _ = _planted(rng, 10, 5, direction, [i % 2 == 0 for i in range(10)])  # 5 yes, 5 no
    held_X, held_y, _ = _planted(rng, 200, 3, direction, rng.random(200) < 0.3)
    before = P.auroc(prior.scores(held_X), held_y)
    refined = P.fit_probe(prior, X, y)
    after = P.auroc(refined.scores(held_X), held_y)
    assert before < 0.7 and after > 0.95, (before, after)
    assert refined.prior_bias == prior.prior_bias  # the unbiased correction stays the text's
    # the threshold of even odds separates them too: the scores are not all near 1
    assert np.mean(refined.scores(held_X)[held_y == 0] < refined.even_odds) > 0.9


def test_weak_negatives_count_by_their_weight():
    rng = np.random.default_rng(2)
    direction = _unit(rng.standard_normal(DIM))
    prior = P.text_probe(rng.standard_normal(DIM), 10.0, -5.0)
    X, y, _ = _planted(rng, 6, 4, direction, [True, False] * 3)
    extra = _unit(rng.standard_normal((50, DIM)))
    both = np.concatenate([X, extra])
    labels = np.concatenate([y, np.zeros(50)])
    ignored = P.fit_probe(prior, both, labels, sample_weight=np.r_[np.ones(len(y)), np.zeros(50)])
    alone = P.fit_probe(prior, X, y)
    assert np.allclose(ignored.weights, alone.weights) and math.isclose(ignored.bias, alone.bias)
    weak = P.fit_probe(prior, both, labels, sample_weight=np.r_[np.ones(len(y)), np.full(50, 0.1)])
    strong = P.fit_probe(prior, both, labels)
    # the more the extra negatives count, the lower the probe puts them
    assert strong.logits(extra).mean() < weak.logits(extra).mean() < alone.logits(extra).mean()


def test_the_fit_stays_near_the_text_when_the_pull_is_strong():
    rng = np.random.default_rng(3)
    direction = _unit(rng.standard_normal(DIM))
    prior = P.text_probe(rng.standard_normal(DIM), 10.0, -5.0)
    X, y, _ = _planted(rng, 8, 4, direction, [True, False] * 4)
    near = P.fit_probe(prior, X, y, strength=1e4)
    far = P.fit_probe(prior, X, y, strength=1e-3)
    dist = lambda p: np.linalg.norm(p.weights - prior.weights)  # noqa: E731
    assert dist(near) < 0.01 * dist(far)


def test_card_round_trip_gives_identical_probabilities():
    rng = np.random.default_rng(4)
    direction = _unit(rng.standard_normal(DIM))
    prior = P.text_probe(rng.standard_normal(DIM), 10.7, -7.9)
    X, y, _ = _planted(rng, 10, 5, direction, [i % 2 == 0 for i in range(10)])
    probe = P.fit_probe(prior, X, y)
    text = json.dumps(P.probe_to_card(probe), allow_nan=False)  # strict JSON
    back = P.card_to_probe(json.loads(text))
    frames = rng.standard_normal((100, DIM)).astype(np.float32)
    assert np.array_equal(back.scores(frames), probe.scores(frames))
    assert np.array_equal(back.weights, probe.weights) and back.bias == probe.bias


def _card(**change):
    card = P.probe_to_card(P.text_probe(np.ones(DIM), 10.0, -5.0))
    card.update(change)
    return card


@pytest.mark.parametrize(
    "card, words",
    [
        (_card(weights=[float("nan")] + [0.0] * (DIM - 1)), "weight 0 is not a finite number"),
        (_card(weights=[0.0] * (DIM - 1) + [float("inf")]), "not a finite number"),
        (_card(bias=float("nan")), "bias is not a finite number"),
        (_card(weights=[0.0] * (DIM - 1)), f"has {DIM - 1} weights"),
        (_card(weights=[[0.0] * DIM]), "has 1 weights"),
        (_card(weights=[1e6] + [0.0] * (DIM - 1)), "beyond"),
        (_card(prior_bias=-5e4), "beyond"),
        (_card(weights=["1"] * DIM), "not a number"),
        (_card(bias=True), "not a number"),
        (_card(weights="0,0"), "no list of weights"),
        (_card(format="pickle"), "not a SonoTag detector card"),
        (_card(version=99), "version 99"),
        ([0.0] * DIM, "JSON object"),
    ],
)
def test_a_damaged_card_is_refused_with_what_is_wrong(card, words):
    with pytest.raises(DetectorError, match=words) as caught:
        P.card_to_probe(card)
    assert isinstance(caught.value, ConfigError)  # front ends show it like a bad setting


def test_a_probe_checks_its_shape():
    with pytest.raises(ValueError):
        P.Probe(np.zeros(511), 0.0, 0.0)
    probe = P.text_probe(np.ones(DIM), 10.0, -5.0)
    with pytest.raises(ValueError):
        probe.scores(np.zeros((3, 511)))
    assert probe.scores(np.ones((2, 4, DIM), np.float16)).shape == (2, 4)


def test_cross_validation_splits_by_event():
    """Every frame of an event is a copy of one vector and the answers are coin flips: a
    split by frame would see each held-out frame's twin in training and score ~1; split
    by event, nothing can be learnt and the estimate says so."""
    rng = np.random.default_rng(5)
    n_events, frames = 40, 6
    centres = _unit(np.ones(DIM) + 0.05 * _unit(rng.standard_normal((n_events, DIM))))
    X = np.repeat(centres, frames, axis=0)
    yes = rng.permutation(np.r_[np.ones(20, bool), np.zeros(20, bool)])
    y = np.repeat(yes, frames).astype(float)
    groups = np.repeat(np.arange(n_events), frames)
    prior = P.text_probe(rng.standard_normal(DIM), 10.0, -5.0)
    cv = P.cross_validate(prior, X, y, groups)
    assert cv.n_events == 40 and cv.n_positive == 20 and cv.folds == 5
    assert cv.auroc < 0.8, cv
    # and where events do differ, it finds it, beside the text alone on the same events
    direction = _unit(rng.standard_normal(DIM))
    X, y, groups = _planted(rng, 30, 4, direction, [i % 3 == 0 for i in range(30)])
    weak_X = _unit(np.ones(DIM) + 0.05 * _unit(rng.standard_normal((100, DIM))))
    cv = P.cross_validate(
        prior,
        np.concatenate([X, weak_X]),
        np.r_[y, np.zeros(100)],
        np.r_[groups, -1 - np.arange(100)],
        sample_weight=np.r_[np.ones(len(y)), np.full(100, P.WEAK_NEGATIVE_WEIGHT)],
        weak=np.r_[np.zeros(len(y), bool), np.ones(100, bool)],
    )
    assert cv.n_events == 30 and (cv.n_positive, cv.n_negative) == (10, 20)  # weak: not scored
    assert cv.f1_mean > 0.8 and cv.auroc > 0.95 and 0 < cv.threshold < 1
    assert cv.text_auroc < 0.8
    assert cv.summary().startswith(f"event F1 {cv.f1_mean:.2f} ± ")
    assert "text alone" in cv.summary()
    json.dumps(cv.as_dict(), allow_nan=False)


def test_cross_validation_with_too_few_events_says_so():
    prior = P.text_probe(np.ones(DIM), 10.0, -5.0)
    X = _unit(np.random.default_rng(6).standard_normal((3, DIM)))
    cv = P.cross_validate(prior, X, np.array([1.0, 0.0, 0.0]), np.arange(3))
    assert math.isnan(cv.f1_mean) and cv.n_positive == 1
    assert "too few" in cv.summary()
    assert json.dumps(cv.as_dict(), allow_nan=False)


def test_margin_ranking_puts_the_least_sure_first():
    scores = np.array([0.01, 0.45, 0.99, 0.55, 0.5, 0.2])
    order = P.margin_ranking(scores, 0.5)
    assert order[0] == 4 and set(order[1:3]) == {1, 3} and order[-1] in (0, 2)
    reviewed = np.zeros(6, bool)
    reviewed[4] = True
    assert 4 not in P.margin_ranking(scores, 0.5, exclude=reviewed)
    assert list(P.margin_ranking(scores, 0.5, top=2)) == list(order[:2])
    # on a probe's scores the margin is taken on its logits: even odds is where
    # logits + offset = 0, and the logits on either side of it come next, alike
    probe = P.text_probe(np.ones(DIM), 10.0, -5.0)
    s = probe.probability(-probe.offset + np.arange(-6.0, 7.0))
    order = P.margin_ranking(s, probe.even_odds, prior_bias=probe.prior_bias)
    assert order[0] == 6 and set(order[1:3]) == {5, 7} and set(order[-2:]) == {0, 12}


def test_spread_out_keeps_picks_apart():
    order = np.arange(8)
    sources = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    frames = np.array([0, 3, 40, 0, 50, 0, 1, 2])
    picked = P.spread_out(order, sources, frames, count=10, min_gap=16, per_source=2)
    assert list(picked) == [0, 2, 3, 4, 5]


def test_the_fit_is_scikit_learns_logistic_regression_when_the_text_is_flat():
    """With a text of zero weights the prior-centred penalty is scikit-learn's own
    (``C = 1 / strength``, free intercept): the two fits agree. scikit-learn cannot centre
    its penalty on the text's weights (no offset, and ``warm_start`` only moves the
    starting point), hence the fit's own 20 lines of L-BFGS."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    direction = _unit(rng.standard_normal(DIM))
    X, y, _ = _planted(rng, 16, 5, direction, [i % 2 == 0 for i in range(16)])
    X = np.concatenate([X, _unit(np.ones(DIM) + 0.05 * _unit(rng.standard_normal((40, DIM))))])
    y = np.r_[y, rng.random(40) < 0.2].astype(float)  # some answers the embeddings cannot fit
    weight = rng.uniform(0.1, 1.0, y.size)
    flat = P.Probe(np.zeros(DIM), -5.0, -5.0)
    ours = P.fit_probe(flat, X, y, sample_weight=weight, strength=0.1, bias_pull=0.0)
    sk = LogisticRegression(C=10.0, tol=1e-10, max_iter=10_000).fit(X, y, sample_weight=weight)
    held = _unit(np.ones(DIM) + 0.05 * _unit(rng.standard_normal((200, DIM))))
    theirs = sk.decision_function(held)
    mine = ours.logits(held) + ours.offset  # the offset is in scikit-learn's intercept
    assert np.abs(mine - theirs).max() < 1e-3 * max(1.0, np.abs(theirs).max())

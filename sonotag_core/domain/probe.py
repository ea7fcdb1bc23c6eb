"""A label's detector as a linear probe on frame embeddings, learnt from reviews.

FLAM's frame score is ``p = sigmoid(alpha(t) * cos(a, t) + beta(t))`` followed by the
"unbiased" correction ``s = p / (p + sigmoid(beta(t)))`` (openflam
``get_unbiased_framewise_act_map``). On the L2-normalised frame embedding ``a_hat`` that
is a logistic model with weights ``alpha(t) * t_hat`` and bias ``beta(t)``:
:func:`text_probe` builds exactly that detector, and :func:`fit_probe` moves it only as
far as the reviews justify (a logistic regression whose penalty is centred on the text's
weights, not on zero), keeping the correction term ``sigmoid(beta(t))`` fixed. A probe with
no reviews *is* the text-only detector.

Also here: a cross-validated estimate split by event (:func:`cross_validate`), the
"Review next" uncertainty order (:func:`margin_ranking`, :func:`spread_out`), and the
JSON-safe card form of a probe with its checks (:func:`probe_to_card`,
:func:`card_to_probe`). numpy and scipy (threadpoolctl to keep BLAS on one thread):
no torch.

Why not scikit-learn's ``LogisticRegression`` for the fit: its penalty is
``||w||^2 / 2`` around zero and it takes no offset (``warm_start`` only moves the starting
point), so it cannot keep a probe near the text's weights. Measured in bench/agile.py
(``--compare``): this prior-centred fit equals scikit-learn's from scratch (``C = 1 /
strength``) when the text knows nothing, and keeps what a text knows from 2-5 examples
where scikit-learn from scratch loses it (chirp 0.81 vs 0.64 held-out AUROC from 2
examples); scikit-learn with the text's logit as an extra feature is about as good with
a knowing text, worse with a useless one (noise band 0.88 vs 0.97 from 2 examples) and
cannot give the text back exactly with no reviews. tests/test_probe.py checks the fit
against scikit-learn where the two objectives coincide.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from sonotag_core.errors import DetectorError

#: the frame embedding's size (OpenFLAM's joint space)
FEATURE_DIM = 512
#: a card's weights and biases must stay within this. The text's own weights are
#: alpha(t) * t_hat (a few tens); a fitted probe's stay within sqrt(2 * n * log 2 /
#: strength) of them (its objective cannot exceed the text's), ~260 for 500 examples and
#: ~830 for 5 000 at the default strength, and its bias within that plus a few tens
MAX_MAGNITUDE = 1e4
#: what a card's ``format`` says, and the version of its layout
CARD_FORMAT = "sonotag-probe"
CARD_VERSION = 1
#: the pull toward the text's weights (``strength / 2 * ||w - w_text||^2`` against the
#: summed, weighted log-loss); chosen by measurement (bench/agile.py)
DEFAULT_STRENGTH = 0.01
#: the bias's pull toward the text's, relative to the weights' (next to nothing: how
#: common a label is in the user's audio is what the reviews tell)
BIAS_PULL = 1e-3
#: how much one weak negative (an unreviewed frame taken as "not this label") counts
#: against one reviewed frame: it is probably right, but nobody checked it
WEAK_NEGATIVE_WEIGHT = 0.1
#: frames scored per block (bounded memory for hours of stored float16 frames)
BLOCK = 32768


#: one probe computation at a time under the BLAS limit: threadpoolctl sets a process-wide
#: thread count and puts back what it found, so two interleaved limits could leave numpy
#: on one thread for good
_BLAS_LOCK = threading.RLock()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread for a while: a probe's matrix-vector products gain
    nothing from more, and OpenBLAS threads that spin against each other on a busy
    machine made a 3 000-example fit 15x slower (L-BFGS-B's own small steps took 1.0 of
    1.3 s) and re-scoring 100 hours 2x slower. torch's own threads are not touched."""
    with _BLAS_LOCK, threadpool_limits(limits=1, user_api="blas"):
        yield


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return np.asarray(expit(np.asarray(x, dtype=np.float64)))  # overflow-free, exact tails


def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    return np.log(q) - np.log1p(-q)


def _rows(frames: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.asarray(frames)
    if x.ndim == 0 or x.shape[-1] != FEATURE_DIM:
        raise ValueError(f"frames must have shape (..., {FEATURE_DIM}), not {x.shape}")
    return x.reshape(-1, FEATURE_DIM), x.shape[:-1]


def normalised(frames: np.ndarray) -> np.ndarray:
    """Frames (..., 512) as float64 unit vectors (a zero frame stays zero)."""
    x = np.asarray(frames, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


@dataclass(frozen=True, eq=False)
class Probe:
    """A per-label linear detector on L2-normalised frame embeddings (512,).

    ``weights`` (512,) float64 and ``bias`` give the logit ``weights . a_hat + bias``;
    ``prior_bias`` is the text's beta(t), whose ``sigmoid`` is the "unbiased"
    correction's term and stays fixed when the probe is refined (so scores stay on the
    scale the thresholds were set on)."""

    weights: np.ndarray
    bias: float
    prior_bias: float

    def __post_init__(self) -> None:
        w = np.array(self.weights, dtype=np.float64).reshape(-1)
        if w.shape != (FEATURE_DIM,):
            raise ValueError(f"a probe has {FEATURE_DIM} weights, not {w.size}")
        w.setflags(write=False)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", float(self.bias))
        object.__setattr__(self, "prior_bias", float(self.prior_bias))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Probe):
            return NotImplemented
        return (
            np.array_equal(self.weights, other.weights)
            and self.bias == other.bias
            and self.prior_bias == other.prior_bias
        )

    def __hash__(self) -> int:
        return hash((self.weights.tobytes(), self.bias, self.prior_bias))

    def logits(self, frames: np.ndarray, *, unit: bool = False) -> np.ndarray:
        """``weights . a_hat + bias`` for frames (..., 512) -> (...). float16 input is
        fine (read in blocks, never copied whole). ``unit=True`` skips the normalisation
        for frames already L2-normalised (stored embeddings are)."""
        rows, shape = _rows(frames)
        out = np.empty(rows.shape[0], dtype=np.float64)
        # float16 (stored) frames in float32: their own rounding (1e-3) dwarfs float32's
        dtype = np.float32 if rows.dtype == np.float16 else np.float64
        w = self.weights.astype(dtype)
        buffer = np.empty((min(BLOCK, rows.shape[0]), FEATURE_DIM), dtype)
        with _one_blas_thread():
            for i in range(0, rows.shape[0], BLOCK):
                block = buffer[: min(BLOCK, rows.shape[0] - i)]
                np.copyto(block, rows[i : i + BLOCK], casting="unsafe")
                dot = (block @ w).astype(np.float64)
                if not unit:
                    norm = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
                    dot /= np.maximum(norm, 1e-12)
                out[i : i + block.shape[0]] = dot
        return (out + self.bias).reshape(shape)

    def scores(self, frames: np.ndarray, *, unit: bool = False) -> np.ndarray:
        """Frame probabilities for frames (..., 512) -> (...): openflam's unbiased
        estimate ``p / (p + sigmoid(prior_bias))`` with ``p = sigmoid(logits)``."""
        return self.probability(self.logits(frames, unit=unit))

    def probability(self, logits: np.ndarray) -> np.ndarray:
        """The unbiased estimate from logits (what :meth:`scores` applies)."""
        p = _sigmoid(logits)
        return p / (p + _sigmoid(self.prior_bias))

    def direction(self) -> tuple[np.ndarray, float]:
        """``(w_hat, |w|)``: the probe as a text-like direction, so that ``logits =
        |w| * cos(frame, w_hat) + bias``. A service that already computes float16
        cosines over stored frames for text search (``inference.scoring.half_cosines``)
        re-scores a library with it and :meth:`probability`, as fast as a text search."""
        norm = float(np.linalg.norm(self.weights))
        return (self.weights / norm if norm > 0 else self.weights.copy()), norm

    @property
    def offset(self) -> float:
        """``gamma = log(1 + 1/sigmoid(prior_bias))``: the score is
        ``sigmoid(logits + gamma) / (1 + sigmoid(prior_bias))``, exactly."""
        return float(np.log1p(1.0 / _sigmoid(self.prior_bias)))

    @property
    def even_odds(self) -> float:
        """The score at which the probe's fitted chance is one half (a threshold to use
        before any is calibrated): ``0.5 / (1 + sigmoid(prior_bias))``."""
        return float(0.5 / (1.0 + _sigmoid(self.prior_bias)))

    def logit_of(self, score: float) -> float:
        """The logit at which :meth:`probability` equals ``score`` (a threshold on the
        score scale as a threshold on the logit; +inf where the score is out of reach)."""
        c = float(_sigmoid(self.prior_bias))
        if score <= 0.0:
            return -math.inf
        if score >= 1.0 / (1.0 + c):
            return math.inf
        p = score * c / (1.0 - score)  # s = p / (p + c)  <=>  p = s c / (1 - s)
        return float(_logit(p))


def text_probe(text_features: np.ndarray, scale: float, bias: float) -> Probe:
    """The zero-shot detector of one text: weights ``scale * t_hat``, bias ``bias``,
    prior bias ``bias`` (``LabelEncoding.features[i]``, ``.scale[i]``, ``.bias[i]``).
    Its :meth:`Probe.scores` equal ``inference.scoring.frame_probabilities``."""
    t = np.asarray(text_features, dtype=np.float64).reshape(-1)
    t = t / max(float(np.linalg.norm(t)), 1e-12)
    return Probe(float(scale) * t, float(bias), float(bias))


def fit_probe(
    prior: Probe,
    X: np.ndarray,
    y: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    strength: float = DEFAULT_STRENGTH,
    bias_pull: float = BIAS_PULL,
) -> Probe:
    """A probe refined from examples, started from and regularised toward ``prior``.

    The answers are fitted to the probe's own score: ``scores = sigmoid(u) / (1 + c)``
    with ``u = w . x_hat + b + gamma``, ``c = sigmoid(prior_bias)`` and the constant
    ``gamma = log(1 + 1/c)`` (:attr:`Probe.offset`), so this minimises the weighted
    log-loss of ``sigmoid(u)`` plus ``strength / 2 * (||w - w_prior||^2 + bias_pull *
    (a - a_prior)^2)`` (``a``: the logit at the examples' mean frame): a logistic regression with a fixed offset whose penalty is centred
    on the text's weights (L-BFGS with the exact gradient). Fitting ``sigmoid(w . x_hat + b)``
    instead would put every score the probe believes at all within a hair of 1 (for
    ``beta(t) = -8``, ``p = 0.01`` is already a score of 0.96). The bias is pulled only
    weakly (``bias_pull``): how common the label is comes from the reviews.

    ``X`` (n, 512) frames (normalised here), ``y`` (n,) 1 = the label, 0 = not;
    ``sample_weight`` lets weak negatives count less (:data:`WEAK_NEGATIVE_WEIGHT`).
    With no examples (or all of zero weight) returns ``prior`` unchanged. The prior's
    ``prior_bias`` is kept."""
    x, t, sw = _examples(X, y, sample_weight)
    if x.shape[0] == 0 or not sw.sum() > 0:
        return prior
    if not strength > 0 or not bias_pull >= 0:
        raise ValueError(f"strength must be positive, not {strength}")
    keep = sw > 0
    x, t, sw = x[keep], t[keep], sw[keep]
    # centred coordinates: frame embeddings share one dominant direction (cosine ~0.99
    # to their mean on the random model), so the bias and that direction fight in the
    # raw coordinates and L-BFGS crawls; here ``a = b + w . mean`` is the logit at the
    # examples' mean frame, and the bias pull applies to it
    mean = (sw @ x) / sw.sum()
    xc = x - mean
    theta0 = np.append(prior.weights, prior.bias + prior.weights @ mean)
    pull = np.append(np.ones(FEATURE_DIM), bias_pull)
    offset = prior.offset

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        u = xc @ theta[:-1] + (theta[-1] + offset)
        loss = np.logaddexp(0.0, u) - t * u  # -log-likelihood, stable for either sign
        r = sw * (_sigmoid(u) - t)
        d = theta - theta0
        value = float(sw @ loss) + 0.5 * strength * float((pull * d) @ d)
        grad = np.append(xc.T @ r, r.sum()) + strength * pull * d
        return value, grad

    with _one_blas_thread():
        res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    theta = res.x
    w = theta[:-1]
    return Probe(w, float(theta[-1] - w @ mean), prior.prior_bias)


def _examples(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(X)
    if x.size == 0:
        x = x.reshape(0, FEATURE_DIM)
    rows, _ = _rows(x)
    t = np.asarray(y, dtype=np.float64).reshape(-1)
    if t.shape[0] != rows.shape[0]:
        raise ValueError(f"{rows.shape[0]} examples but {t.shape[0]} answers")
    if not np.isin(t, (0.0, 1.0)).all():
        raise ValueError("answers must be 0 (not the label) or 1 (the label)")
    if sample_weight is None:
        sw = np.ones(rows.shape[0])
    else:
        sw = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if sw.shape[0] != rows.shape[0] or not (np.isfinite(sw) & (sw >= 0)).all():
            raise ValueError("sample_weight must be one finite, non-negative weight per example")
    return normalised(rows), t, sw


@dataclass(frozen=True)
class CrossValidated:
    """Event-level estimate of a refined probe and of the text alone on the same reviews.

    Folds split by event (every frame of one reviewed event is in one fold). An event's
    score is its peak frame score; a fold's F1 uses the threshold that maximised F1 on
    the other folds' out-of-fold scores (so the fold's own answers never set it).
    ``threshold`` is the calibrated one: the best F1 on every out-of-fold score.
    ``auroc`` is over events, from out-of-fold scores. NaN where there were too few
    events (fewer than 2 of each kind)."""

    n_events: int
    n_positive: int
    n_negative: int
    folds: int
    f1_mean: float
    f1_std: float
    auroc: float
    threshold: float
    text_f1_mean: float
    text_f1_std: float
    text_auroc: float
    text_threshold: float

    def summary(self) -> str:
        """``event F1 0.82 ± 0.05 on 34 reviews; text alone 0.41``."""
        if math.isnan(self.f1_mean):
            return (
                f"{self.n_events} reviews ({self.n_positive} yes, {self.n_negative} no): "
                "too few to estimate (needs 2 of each)"
            )
        return (
            f"event F1 {self.f1_mean:.2f} ± {self.f1_std:.2f} on {self.n_events} reviews; "
            f"text alone {self.text_f1_mean:.2f}"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (NaN -> None)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = None if isinstance(value, float) and math.isnan(value) else value
        return out


def event_scores(scores: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak frame score per event: (event ids sorted, their peaks)."""
    ids, inverse = np.unique(np.asarray(groups), return_inverse=True)
    peaks = np.full(ids.shape[0], -np.inf)
    np.maximum.at(peaks, inverse, np.asarray(scores, dtype=np.float64))
    return ids, peaks


def best_threshold(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 of ``scores >= threshold`` against boolean
    ``truth``; the threshold is midway between the cut's neighbouring scores."""
    s = np.asarray(scores, dtype=np.float64)
    yes = np.asarray(truth, dtype=bool)
    n_pos = int(yes.sum())
    if s.size == 0 or n_pos == 0:
        return math.nan, math.nan
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], yes[order]
    tp = np.cumsum(y_sorted)
    k = np.arange(1, s.size + 1)
    f1 = 2 * tp / (k + n_pos)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # cut only between distinct scores
    f1 = np.where(last, f1, -1.0)
    i = int(np.argmax(f1))
    below = s_sorted[i + 1] if i + 1 < s.size else s_sorted[i] - 1e-3
    return float(0.5 * (s_sorted[i] + below)), float(f1[i])


def f1_at(scores: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """F1 of ``scores >= threshold`` against boolean ``truth`` (0 where nothing is right)."""
    pred = np.asarray(scores) >= threshold
    yes = np.asarray(truth, dtype=bool)
    tp = int((pred & yes).sum())
    denominator = int(pred.sum()) + int(yes.sum())
    return 2.0 * tp / denominator if denominator else math.nan


def auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN without both kinds."""
    s = np.asarray(scores, dtype=np.float64)
    yes = np.asarray(truth, dtype=bool)
    n_pos, n_neg = int(yes.sum()), int((~yes).sum())
    if not n_pos or not n_neg:
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[yes].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cross_validate(
    prior: Probe,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    sample_weight: np.ndarray | None = None,
    weak: np.ndarray | None = None,
    folds: int = 5,
    strength: float = DEFAULT_STRENGTH,
    seed: int = 0,
) -> CrossValidated:
    """k-fold estimate by *event* of the refined probe and of the text alone.

    ``groups`` (n,) names the event (review) each frame comes from; an event is a yes
    if its frames' ``y`` is 1. ``weak`` (n,) bool marks weak negatives: always in the
    training side of every fold, never scored. Folds are stratified by the events'
    answers (``min(folds, yes events, no events)`` of them)."""
    x, t, sw = _examples(X, y, sample_weight)
    g = np.asarray(groups).reshape(-1)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} examples but {g.shape[0]} event ids")
    is_weak = np.zeros(x.shape[0], bool) if weak is None else np.asarray(weak, bool).reshape(-1)
    reviewed = ~is_weak
    ids, inverse = np.unique(g[reviewed], return_inverse=True)
    event_yes = np.zeros(ids.shape[0], bool)
    np.logical_or.at(event_yes, inverse, t[reviewed] > 0.5)
    n_pos, n_neg = int(event_yes.sum()), int((~event_yes).sum())
    k = min(folds, n_pos, n_neg)
    nan = math.nan
    if k < 2:
        return CrossValidated(ids.size, n_pos, n_neg, 0, nan, nan, nan, nan, nan, nan, nan, nan)
    fold_of_event = _stratified_folds(event_yes, k, seed)
    fold = np.full(x.shape[0], -1)
    fold[np.flatnonzero(reviewed)] = fold_of_event[inverse]
    refined = np.empty(x.shape[0])
    with _one_blas_thread():
        for f in range(k):
            train = fold != f
            test = fold == f
            probe = fit_probe(prior, x[train], t[train], sample_weight=sw[train], strength=strength)
            refined[test] = probe.scores(x[test], unit=True)
        text = prior.scores(x[reviewed], unit=True)
    refined_peaks = event_scores(refined[reviewed], g[reviewed])[1]
    text_peaks = event_scores(text, g[reviewed])[1]
    f1, threshold = _fold_f1(refined_peaks, event_yes, fold_of_event, k)
    text_f1, text_threshold = _fold_f1(text_peaks, event_yes, fold_of_event, k)
    return CrossValidated(
        n_events=int(ids.size),
        n_positive=n_pos,
        n_negative=n_neg,
        folds=k,
        f1_mean=float(np.mean(f1)),
        f1_std=float(np.std(f1)),
        auroc=auroc(refined_peaks, event_yes),
        threshold=threshold,
        text_f1_mean=float(np.mean(text_f1)),
        text_f1_std=float(np.std(text_f1)),
        text_auroc=auroc(text_peaks, event_yes),
        text_threshold=text_threshold,
    )


def _stratified_folds(yes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per event, yes and no events dealt out evenly in random order."""
    rng = np.random.default_rng(seed)
    fold = np.empty(yes.shape[0], dtype=np.int64)
    for kind in (True, False):
        members = rng.permutation(np.flatnonzero(yes == kind))
        fold[members] = np.arange(members.size) % k
    return fold


def _fold_f1(
    peaks: np.ndarray, yes: np.ndarray, fold: np.ndarray, k: int
) -> tuple[list[float], float]:
    out = []
    for f in range(k):
        threshold, _ = best_threshold(peaks[fold != f], yes[fold != f])
        value = f1_at(peaks[fold == f], yes[fold == f], threshold)
        out.append(0.0 if math.isnan(value) else value)
    return out, best_threshold(peaks, yes)[0]


def margin_ranking(
    scores: np.ndarray,
    threshold: float,
    *,
    prior_bias: float | None = None,
    exclude: np.ndarray | None = None,
    top: int | None = None,
) -> np.ndarray:
    """Frame indices, the most uncertain first: closest to ``threshold`` (margin
    sampling), measured in log-odds so both sides of the boundary weigh alike.
    ``exclude`` (bool mask) drops already reviewed frames; ``top`` keeps only the first
    ``top`` (a partial sort: fast over millions of frames). ``prior_bias`` given, the
    scores are a probe's unbiased estimates and the margin is taken on its logits."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if prior_bias is None:
        margin = np.abs(_logit(s) - float(_logit(threshold)))
    else:
        c = float(_sigmoid(prior_bias))
        p = np.clip(s * c / np.maximum(1.0 - s, 1e-12), 0.0, 1.0)
        t = threshold * c / max(1.0 - threshold, 1e-12)
        margin = np.abs(_logit(p) - float(_logit(t)))
    if exclude is not None:
        margin[np.asarray(exclude, dtype=bool).reshape(-1)] = np.inf
    candidates = np.flatnonzero(np.isfinite(margin))
    if top is not None and top < candidates.size:
        part = np.argpartition(margin[candidates], top)[:top]
        candidates = candidates[part]
    return candidates[np.argsort(margin[candidates], kind="stable")]


def spread_out(
    order: np.ndarray,
    sources: np.ndarray,
    frames: np.ndarray,
    *,
    count: int,
    min_gap: int = 16,
    per_source: int | None = None,
) -> np.ndarray:
    """The first ``count`` of ``order`` (indices into ``sources``/``frames``) such that
    no two picks of one source are within ``min_gap`` frames and no source gives more
    than ``per_source``: a queue spread over files and times."""
    src = np.asarray(sources)
    pos = np.asarray(frames)
    taken: dict[Any, list[int]] = {}
    out: list[int] = []
    for i in np.asarray(order).reshape(-1):
        kept = taken.setdefault(src[i].item() if hasattr(src[i], "item") else src[i], [])
        if per_source is not None and len(kept) >= per_source:
            continue
        if any(abs(int(pos[i]) - j) < min_gap for j in kept):
            continue
        kept.append(int(pos[i]))
        out.append(int(i))
        if len(out) >= count:
            break
    return np.asarray(out, dtype=np.int64)


def probe_to_card(probe: Probe) -> dict[str, Any]:
    """The probe as a JSON-safe dict (plain floats: ``json`` writes them exactly, so
    :func:`card_to_probe` gives back identical probabilities)."""
    return {
        "format": CARD_FORMAT,
        "version": CARD_VERSION,
        "dim": FEATURE_DIM,
        "weights": [float(v) for v in probe.weights],
        "bias": float(probe.bias),
        "prior_bias": float(probe.prior_bias),
    }


def card_to_probe(card: Mapping[str, Any]) -> Probe:
    """A probe from a card's dict, checked before use: the format and version, 512
    weights, finite numbers, magnitudes within :data:`MAX_MAGNITUDE`. Anything else
    raises :class:`~sonotag_core.errors.DetectorError` saying what is wrong."""
    if not isinstance(card, Mapping):
        raise DetectorError(
            f"A detector card is a JSON object, not {type(card).__name__}: export it again."
        )
    if card.get("format") != CARD_FORMAT:
        raise DetectorError(
            f"This is not a SonoTag detector card (format {card.get('format')!r}, "
            f"expected {CARD_FORMAT!r})."
        )
    if card.get("version") != CARD_VERSION:
        raise DetectorError(
            f"This detector card has version {card.get('version')!r}; this SonoTag reads "
            f"version {CARD_VERSION}. Export it again from a matching SonoTag."
        )
    raw = card.get("weights")
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise DetectorError("The detector card has no list of weights: export it again.")
    if len(raw) != FEATURE_DIM:
        raise DetectorError(
            f"The detector card has {len(raw)} weights; a detector for this model has "
            f"{FEATURE_DIM}. It was made for another model: export it again from this one."
        )
    weights = np.array([_number(v, "weight") for v in raw], dtype=np.float64)
    bias = _number(card.get("bias"), "bias")
    prior_bias = _number(card.get("prior_bias"), "prior bias")
    values = np.append(weights, [bias, prior_bias])
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        what = f"weight {bad}" if bad < FEATURE_DIM else ("bias", "prior bias")[bad - FEATURE_DIM]
        raise DetectorError(
            f"The detector card's {what} is not a finite number ({values[bad]}): "
            "the card is damaged; export it again."
        )
    if np.abs(values).max() > MAX_MAGNITUDE:
        raise DetectorError(
            f"The detector card's numbers reach {np.abs(values).max():.3g}, beyond the "
            f"{MAX_MAGNITUDE:g} a detector can have: the card is damaged or not "
            "SonoTag's; export it again."
        )
    return Probe(weights, bias, prior_bias)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DetectorError(
            f"The detector card's {what} is {value!r}, not a number: export the card again."
        )
    return float(value)

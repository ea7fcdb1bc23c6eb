"""Teach a label: gather its examples from the reviews, refine its detector, and pick what
to review next.

**Examples** (:func:`gather_examples`) come from every analysis the viewer may change
that was embedded with this model in this mode (their reviews are theirs to learn from):

* positives: events accepted as the label, events relabelled *to* it, and spans marked
  ``added`` for it — every frame each covers;
* negatives: events of the label that were rejected, events of the label relabelled to
  something else (the reviewer said what it really is: "keep my corrected detections as
  negatives"), and spans marked ``negative`` for it;
* weak negatives: frames nobody reviewed for this label, drawn at random (a fixed seed)
  from the same analyses, at least :data:`WEAK_GAP_S` away from any reviewed stretch of
  it. :data:`WEAK_PER_POSITIVE` (5) per positive frame, between :data:`WEAK_MIN` and
  :data:`WEAK_MAX`, each counting :data:`~.probe.WEAK_NEGATIVE_WEIGHT` (0.1) of a reviewed
  frame. Why: a sound a user teaches is usually rare, so a random unreviewed frame is
  almost always "not this label"; reviews alone come from where the model already fired,
  so without these the probe never sees the ordinary background it must stay quiet on.
  Five times the positives at a tenth of the weight adds half the positives' weight:
  enough to anchor the background, too little to outvote a reviewer; a frame that is
  really the label costs little.

**Refining** (:func:`refine_label`) starts from the text's zero-shot probe and fits
:func:`~sonotag_core.domain.probe.fit_probe` (a logistic regression penalised toward the
text's weights), cross-validates it by event beside the text alone, takes the calibrated
threshold, and keeps the result as the next version of a named detector.

**Review next** (:func:`review_next`) scores every frame of the viewer's library with the
detector (or the text) in one float16 matrix-vector product per stored audio
(:func:`ranking_frames`), drops what was already judged for
the label, ranks by margin from the threshold (:func:`~.probe.margin_ranking`), keeps
moments :data:`QUEUE_GAP_S` apart within a file, and deals them out round-robin across
files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from sonotag_core.access import Viewer
from sonotag_core.domain.embeddings import AudioEmbeddings, key_checkpoint
from sonotag_core.domain.probe import (
    DEFAULT_STRENGTH,
    WEAK_NEGATIVE_WEIGHT,
    CrossValidated,
    Probe,
    cross_validate,
    fit_probe,
    margin_ranking,
    text_probe,
)
from sonotag_core.domain.review import ACCEPTED, ADDED, REJECTED
from sonotag_core.domain.windows import FRAME_S, FRAMES_PER_WINDOW
from sonotag_core.errors import DetectorError
from sonotag_core.inference.scoring import TextCache, half_cosines
from sonotag_core.service.detectors import Detector, check_name, finite_or_none, save_detector
from sonotag_core.service.frames import frame_embeddings, per_frame, probe_frames
from sonotag_core.service.search import one_label
from sonotag_core.settings import Settings
from sonotag_core.store.database import Store
from sonotag_core.untrusted import quoted

WEAK_PER_POSITIVE = 5
WEAK_MIN = 50
WEAK_MAX = 5000
WEAK_GAP_S = 2.0  # a weak negative keeps this far from anything reviewed for the label
QUEUE_GAP_S = 5.0  # two queued moments of one file are at least this far apart
SEED = 0


@dataclass
class Examples:
    """A label's training frames: ``X`` (n, 512) float32, ``y`` (1 = the label), a weight
    and an event id per frame (``groups``; weak negatives have their own), which are weak,
    and how many of each kind of example (events/spans, weak: frames)."""

    label: str
    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    groups: np.ndarray
    weak: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    analyses: int = 0

    @property
    def positives(self) -> int:
        return (
            self.counts.get("accepted", 0)
            + self.counts.get("relabelled", 0)
            + self.counts.get("added", 0)
        )

    @property
    def negatives(self) -> int:
        return self.counts.get("rejected", 0) + self.counts.get("negative", 0)


@dataclass(frozen=True)
class Refined:
    """What a refine made: the stored detector and its cross-validated estimate."""

    detector: Detector
    validation: CrossValidated
    examples: Examples

    def summary(self) -> str:
        """``siren v2: event F1 0.82 ± 0.05 on 34 reviews; text alone 0.41 · threshold 0.43``."""
        threshold = self.detector.threshold
        tail = f" · threshold {threshold:.3f}" if threshold is not None else ""
        return f"{self.detector.ref}: {self.validation.summary()}{tail}"


@dataclass(frozen=True)
class QueueItem:
    """One moment to review next: frame ``onset_s`` of an analysis, the label's
    probability there, and how far (in log-odds) it is from the threshold."""

    analysis_id: str
    title: str
    onset_s: float
    offset_s: float
    label: str
    probability: float


def _stretch(onset_s: float, offset_s: float) -> tuple[int, int]:
    first = int(math.floor(onset_s / FRAME_S + 1e-9))
    return first, max(first + 1, int(math.ceil(offset_s / FRAME_S - 1e-9)))


def _judged(store: Store, analysis_id: str, label: str) -> list[tuple[str, float, float, bool]]:
    """(kind, onset, offset, is the label) for every verdict and span that speaks of it."""
    out = []
    for r in store.get_reviews(analysis_id):
        if r.relabel == label:
            out.append(("relabelled", r.onset_s, r.offset_s, True))
        elif r.label == label and r.relabel is not None:
            out.append(("rejected", r.onset_s, r.offset_s, False))  # really something else
        elif r.label == label:
            is_it = r.status == ACCEPTED
            out.append((ACCEPTED if is_it else REJECTED, r.onset_s, r.offset_s, is_it))
    for s in store.get_spans(analysis_id):
        if s.label == label:
            out.append((s.kind, s.onset_s, s.offset_s, s.kind == ADDED))
    return out


def gather_examples(
    store: Store, label: str, *, embedding_key: str, viewer: Viewer, seed: int = SEED
) -> Examples:
    """Every example of ``label`` in the analyses ``viewer`` may change made under
    ``embedding_key`` (see the module's notes), with weak negatives."""
    owned = None if viewer.sees_all else viewer.owner
    rows: list[np.ndarray] = []
    ys: list[float] = []
    groups: list[str] = []
    counts = dict.fromkeys(("accepted", "relabelled", "added", "rejected", "negative"), 0)
    pools: list[tuple[np.ndarray, np.ndarray]] = []  # (frames, allowed mask) per analysis
    used = 0
    seen: set[tuple[str, float]] = set()  # one audio's embeddings once per hop
    for item in store.analyses_for(embedding_key, owned_by=owned):
        judged = _judged(store, item.analysis_id, label)
        if not judged:
            continue
        emb = store.get_embeddings(item.content_id, item.hop_s, embedding_key)
        if emb is None:
            continue
        frames = frame_embeddings(emb)
        used += 1
        allowed = np.ones(frames.shape[0], bool)
        gap = int(math.ceil(WEAK_GAP_S / FRAME_S))
        for i, (kind, onset, offset, is_it) in enumerate(judged):
            first, stop = _stretch(onset, offset)
            stop = min(stop, frames.shape[0])
            if first >= stop:
                continue
            counts[kind] += 1
            rows.append(frames[first:stop])
            ys += [1.0 if is_it else 0.0] * (stop - first)
            groups += [f"{used:06d}:{i:06d}"] * (stop - first)  # stable folds, run to run
            allowed[max(first - gap, 0) : stop + gap] = False
        if (item.content_id, item.hop_s) not in seen:  # an audio analysed twice: once
            pools.append((frames, allowed))
            seen.add((item.content_id, item.hop_s))
    n_pos_frames = int(sum(ys))
    weak_rows = _weak_negatives(pools, n_pos_frames, seed)
    reviewed = len(ys)
    X = np.concatenate([*rows, weak_rows]) if rows else weak_rows
    n_weak = weak_rows.shape[0]
    counts["weak"] = n_weak
    return Examples(
        label,
        X.astype(np.float32).reshape(-1, 512),
        np.asarray(ys + [0.0] * n_weak),
        np.r_[np.ones(reviewed), np.full(n_weak, WEAK_NEGATIVE_WEIGHT)],
        np.asarray(groups + [f"weak:{i}" for i in range(n_weak)], dtype=object),
        np.r_[np.zeros(reviewed, bool), np.ones(n_weak, bool)],
        counts,
        used,
    )


def _weak_negatives(
    pools: Sequence[tuple[np.ndarray, np.ndarray]], positive_frames: int, seed: int
) -> np.ndarray:
    want = min(max(WEAK_PER_POSITIVE * positive_frames, WEAK_MIN), WEAK_MAX)
    candidates = [(i, np.flatnonzero(allowed)) for i, (_, allowed) in enumerate(pools)]
    total = sum(len(c) for _, c in candidates)
    if total == 0 or positive_frames == 0:
        return np.zeros((0, 512), np.float32)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(total, size=min(want, total), replace=False))
    out = []
    offset = 0
    for i, c in candidates:
        mine = picks[(picks >= offset) & (picks < offset + len(c))] - offset
        out.append(pools[i][0][c[mine]])
        offset += len(c)
    return np.concatenate(out).astype(np.float32)


def refine_label(
    store: Store,
    texts: TextCache,
    label: str,
    *,
    embedding_key: str,
    viewer: Viewer,
    name: str | None = None,
    strength: float = DEFAULT_STRENGTH,
    max_label_chars: int = Settings.max_label_chars,
    save: bool = True,
) -> Refined:
    """Refine ``label`` from its reviews into a detector (kept as the next version of
    ``name``, default the label, unless ``save=False``). DetectorError when there is no
    positive or no negative example, saying which is missing."""
    text = one_label(label, max_label_chars)
    name = check_name(name or text)
    examples = gather_examples(store, text, embedding_key=embedding_key, viewer=viewer)
    missing = []
    if not examples.positives:
        missing.append(
            "no positive example (accept or relabel an event as it, or mark a span the "
            "model missed with Add)"
        )
    if not examples.negatives:
        missing.append(
            "no negative example (reject an event of it, or mark a span 'checked: not there')"
        )
    if missing:
        raise DetectorError(
            f"{quoted(text)} cannot be refined yet: {' and '.join(missing)}. Only the "
            "analyses you may change count."
        )
    prior = text_prior(texts, text)
    probe = fit_probe(
        prior, examples.X, examples.y, sample_weight=examples.weight, strength=strength
    )
    validation = cross_validate(
        prior,
        examples.X,
        examples.y,
        examples.groups,
        sample_weight=examples.weight,
        weak=examples.weak,
        strength=strength,
    )
    detector = Detector(
        name=name,
        label=text,
        checkpoint_sha256=key_checkpoint(embedding_key),
        probe=probe,
        threshold=_threshold(validation.threshold),
        examples={**examples.counts, "analyses": examples.analyses},
        metrics={**validation.as_dict(), "strength": strength},
        owner=viewer.owner,
    )
    if save:
        detector = save_detector(store, detector, viewer)
    return Refined(detector, validation, examples)


def _threshold(value: float) -> float | None:
    kept = finite_or_none(value)
    return kept if kept is not None and 0.0 < kept < 1.0 else None


def text_prior(texts: TextCache, label: str) -> Probe:
    """The text's zero-shot detector (:func:`~.probe.text_probe`)."""
    enc = texts.encode((label,))
    return text_probe(enc.features[0], float(enc.scale[0]), float(enc.bias[0]))


# ---------------------------------------------------------------- Review next


def review_next(
    store: Store,
    texts: TextCache,
    label: str,
    *,
    embedding_key: str,
    viewer: Viewer,
    detector: Detector | None = None,
    threshold: float = Settings.threshold,
    count: int = 20,
    min_gap_s: float = QUEUE_GAP_S,
    max_label_chars: int = Settings.max_label_chars,
) -> list[QueueItem]:
    """The ``count`` unreviewed moments of the viewer's own analyses (made under
    ``embedding_key``: those they may give verdicts on) whose verdict would teach
    ``label``'s detector most: nearest its threshold (the detector's, else
    ``threshold``), at least ``min_gap_s`` apart within a file, dealt out round-robin
    across files (see the module's notes)."""
    text = one_label(label, max_label_chars)
    probe = detector.probe if detector is not None else text_prior(texts, text)
    cut = detector.threshold if detector is not None and detector.threshold else threshold
    judged: dict[str, list[tuple[float, float]]] = {}
    for content_id, onset, offset in store.reviewed_stretches(text, embedding_key):
        judged.setdefault(content_id, []).append((onset, offset))
    # the audio the viewer may review: their own analyses (the newest of each audio)
    mine = {
        a.content_id: a.analysis_id
        for a in store.analyses_for(
            embedding_key, owned_by=None if viewer.sees_all else viewer.owner
        )
    }
    scores: list[np.ndarray] = []
    excluded: list[np.ndarray] = []
    audios: list[tuple[str, str, float]] = []  # (analysis id, title, duration)
    for stored in store.iter_embeddings(embedding_key, visible_to=viewer.scope):
        emb = stored.embeddings
        if emb.n_windows == 0 or stored.content_id not in mine:
            continue
        values = ranking_frames(probe, emb)
        mask = np.zeros(values.shape[0], bool)
        for onset, offset in judged.get(stored.content_id, ()):
            first, stop = _stretch(onset, offset)
            mask[first:stop] = True
        scores.append(values)
        excluded.append(mask)
        audios.append((mine[stored.content_id], stored.title, emb.duration_s))
    if not scores:
        return []
    flat = np.concatenate(scores)
    which = np.repeat(np.arange(len(scores)), [s.shape[0] for s in scores])
    frame = np.concatenate([np.arange(s.shape[0]) for s in scores])
    order = margin_ranking(
        flat,
        cut,
        prior_bias=probe.prior_bias,
        exclude=np.concatenate(excluded),
        top=min(flat.shape[0], max(count * 50, 1000)),
    )
    gap = max(int(math.ceil(min_gap_s / FRAME_S)), 1)
    per_file: dict[int, list[int]] = {}  # file -> its picks, best first (``order`` is)
    for i in order:
        kept = per_file.setdefault(int(which[i]), [])
        if all(abs(int(frame[i]) - int(frame[j])) >= gap for j in kept):
            kept.append(int(i))
    dealt: list[int] = []
    rounds = max((len(v) for v in per_file.values()), default=0)
    files = list(per_file)  # in the order of each file's best pick (dict order)
    for r in range(rounds):  # round-robin: each file's best, then each file's second...
        dealt += [per_file[f][r] for f in files if r < len(per_file[f])]
        if len(dealt) >= count:
            break
    items = []
    for i in dealt[:count]:
        analysis_id, title, duration_s = audios[int(which[i])]
        onset = int(frame[i]) * FRAME_S
        end = min(onset + FRAME_S, duration_s)
        items.append(QueueItem(analysis_id, title, onset, end, text, float(flat[i])))
    return items


def ranking_frames(probe: Probe, embeddings: AudioEmbeddings) -> np.ndarray:
    """The probe's probability of every frame of one audio, for ranking: one float16
    matrix-vector product over the stored float16 rows (the arithmetic of library
    search; ~1e-3 of a cosine, a few hundredths of a logit), windows averaged. 100 stored
    hours rank in about a second on two cores, where exact float32 scores take ~5x as
    long; :func:`~.frames.probe_frames` gives the exact values."""
    feats = embeddings.features.reshape(-1, embeddings.features.shape[-1])
    norm = float(np.linalg.norm(probe.weights))
    cosine = half_cosines(feats, probe.weights / max(norm, 1e-12)).astype(np.float64)
    probabilities = probe.probability(norm * cosine + probe.bias)
    window_values = probabilities.reshape(-1, FRAMES_PER_WINDOW)
    return per_frame(window_values, embeddings.starts, embeddings.n_samples)


def rescore_library(
    store: Store, detector: Detector, *, embedding_key: str, viewer: Viewer
) -> Iterator[tuple[str, np.ndarray]]:
    """(analysis id, the detector's frame probabilities) for every stored audio of the
    viewer's library made under ``embedding_key`` (its newest analysis): re-scoring
    without the audio encoder, one audio in memory at a time."""
    for stored in store.iter_embeddings(embedding_key, visible_to=viewer.scope):
        yield stored.analysis_id, probe_frames(detector.probe, stored.embeddings)

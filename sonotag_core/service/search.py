"""Search all stored audio for one label: the best moments across the whole Library.

Two passes, so that 100 stored hours take well under 2 s on two CPU cores and every
reported probability is exactly what the Analyze page shows for that label:

1. **Rank** (every stored audio, streamed one row at a time): the float16 embeddings go
   straight into one float16 matrix-vector product with the label's text vector (no
   float32 copy of the library). For a fixed label the frame probability is a monotone
   function of the cosine, so these products rank frames; the probabilities derived from
   them (overlapping windows averaged like :func:`~.timeline.assemble`) are accurate to a
   known bound ``delta``, and audios that cannot reach the top ``k`` are skipped.
2. **Confirm** (only audios that can still reach the top ``k``, best first): the stored
   embeddings are scored exactly as the Analyze page scores them
   (:func:`~.analysis.score`: openflam's unbiased frame map, overlapping windows
   averaged), peaks are picked on those exact values, and the search stops as soon as no
   remaining audio can beat the ``k``-th exact peak.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from sonotag_core.domain.labels import LabelSet, parse_labels
from sonotag_core.domain.windows import FRAME_S, FRAMES_PER_WINDOW
from sonotag_core.errors import ConfigError, LimitError
from sonotag_core.inference.scoring import LabelEncoding, TextCache, half_cosines
from sonotag_core.service.analysis import score
from sonotag_core.service.frames import peaks, per_frame
from sonotag_core.settings import Settings
from sonotag_core.store.database import Store, StoredEmbeddings

#: Bound on |float16 ranking cosine - exact cosine|: float16 rounding of the text vector and
#: of the product (2**-11 and 2**-12 relative) plus the stored features' norm error; the
#: largest error measured on unit vectors (cosines up to 1) is 1.3e-4, so 2**-10 leaves a
#: wide margin. It only decides which audios are confirmed, never a reported value.
COSINE_ERROR = 2.0**-10


@dataclass(frozen=True)
class SearchHit:
    """One moment: frame ``time_s`` of a stored audio, with the label's probability there
    (exactly the Analyze page's value) and the newest analysis of that audio."""

    analysis_id: str
    content_id: str
    title: str
    time_s: float
    probability: float
    labels: LabelSet  # of the newest analysis of that audio


@dataclass(frozen=True)
class _Candidate:
    """A pass-1 candidate: an audio that may reach the top k, without its embeddings (a
    working record of the search, not a result type)."""

    best: float  # best approximate probability
    content_id: str
    title: str
    hop_s: float
    analysis_id: str
    labels: LabelSet  # of the newest analysis of that audio


def search_library(
    store: Store,
    texts: TextCache,
    label: str,
    *,
    checkpoint_sha256: str,
    top_k: int = 20,
    min_gap_s: float = 5.0,
    max_label_chars: int = Settings.max_label_chars,
    visible_to: str | None = None,
) -> list[SearchHit]:
    """The ``top_k`` moments of all audio stored for this model where ``label`` is most
    probable, best first; within one audio, moments are at least ``min_gap_s`` apart.
    With ``visible_to`` (an owner id) only the audio that owner may list is searched."""
    text = one_label(label, max_label_chars)
    radius = gap_radius(top_k, min_gap_s)
    ranker = TextRanker(texts.encode((text,)))
    stored = store.iter_embeddings(checkpoint_sha256, visible_to=visible_to)
    audios = _rank(stored, ranker, top_k, radius)
    return _confirm(store, texts, text, audios, checkpoint_sha256, ranker.delta, top_k, radius)


def gap_radius(top_k: int, min_gap_s: float) -> int:
    """The frames a peak suppresses on each side so that moments of one audio are at
    least ``min_gap_s`` apart (ConfigError for a bad ``top_k`` or gap)."""
    if top_k < 1:
        raise ConfigError(f"Ask for at least one result, not {top_k}.")
    if not (math.isfinite(min_gap_s) and min_gap_s >= 0):
        raise ConfigError(f"The gap between moments must be 0 s or more, not {min_gap_s}.")
    return max(math.ceil(min_gap_s / FRAME_S - 1e-9) - 1, 0)


def one_label(label: str, max_chars: int) -> str:
    labels = parse_labels(label, max_labels=10**6, max_chars=max_chars)
    if len(labels.labels) != 1:
        raise LimitError(
            f"Search looks for one sound at a time; {len(labels.labels)} labels were given. "
            'Type one label, without ";".'
        )
    return labels.labels[0]


class TextRanker:
    """Pass 1 arithmetic for one label: float16 cosines -> approximate probabilities."""

    def __init__(self, enc: LabelEncoding) -> None:
        self.text = np.ascontiguousarray(enc.features[0], np.float16)
        self.scale = float(enc.scale[0])
        self.bias = float(enc.bias[0])
        grid = np.linspace(-1.0, 1.0, 4001)
        slope = np.abs(np.gradient(self.probability(grid), grid)).max()
        self.delta = float(slope * COSINE_ERROR) + 1e-6  # bound on |approximate - exact|

    def probability(self, cosine: np.ndarray) -> np.ndarray:
        """openflam's unbiased estimate ``s / (s + sigmoid(b))``, ``s = sigmoid(a c + b)``."""
        s = _sigmoid(self.scale * cosine + self.bias)
        return s / (s + _sigmoid(np.float64(self.bias)))

    def frames(self, stored: StoredEmbeddings) -> np.ndarray:
        """Approximate probability of every frame of one audio, windows averaged."""
        emb = stored.embeddings
        cosine = half_cosines(emb.features.reshape(-1, emb.features.shape[-1]), self.text)
        probs = self.probability(cosine.astype(np.float64))
        return per_frame(probs.reshape(-1, FRAMES_PER_WINDOW), emb.starts, emb.n_samples)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def _rank(
    rows: Iterable[StoredEmbeddings], ranker: TextRanker, top_k: int, radius: int
) -> list[_Candidate]:
    """Pass 1: audios whose best approximate peak may reach the top k, best first."""
    kth: list[float] = []  # min-heap of the best top_k approximate peaks so far
    audios: list[_Candidate] = []
    for stored in rows:
        if stored.embeddings.n_windows == 0:
            continue
        floor = kth[0] - 2 * ranker.delta if len(kth) == top_k else -np.inf
        found = peaks(ranker.frames(stored), radius, top_k, floor)
        if not found:
            continue
        audios.append(
            _Candidate(
                found[0][0],
                stored.content_id,
                stored.title,
                stored.hop_s,
                stored.analysis_id,
                stored.labels,
            )
        )
        for value, _ in found:
            (heapq.heappush if len(kth) < top_k else heapq.heappushpop)(kth, value)
    floor = kth[0] - 2 * ranker.delta if len(kth) == top_k else -np.inf
    return sorted((a for a in audios if a.best > floor), key=lambda a: -a.best)


def _confirm(
    store: Store,
    texts: TextCache,
    text: str,
    audios: list[_Candidate],
    checkpoint_sha256: str,
    delta: float,
    top_k: int,
    radius: int,
) -> list[SearchHit]:
    """Pass 2: exact peaks, best audios first, until no other audio can get in."""
    hits: list[tuple[float, int, SearchHit]] = []  # min-heap of (probability, -order, hit)
    order = 0
    for audio in audios:
        if len(hits) == top_k and audio.best + delta < hits[0][0]:
            break
        emb = store.get_embeddings(audio.content_id, audio.hop_s, checkpoint_sha256)
        if emb is None:  # deleted since pass 1
            continue
        timeline = score(texts, emb, LabelSet((text,)))
        for value, frame in peaks(timeline.probabilities[0], radius, top_k, -np.inf):
            hit = SearchHit(
                audio.analysis_id,
                audio.content_id,
                audio.title,
                frame * FRAME_S,
                value,
                audio.labels,
            )
            order += 1
            item = (value, -order, hit)  # equal probabilities: the earlier found ranks first
            (heapq.heappush if len(hits) < top_k else heapq.heappushpop)(hits, item)
    return [hit for _, _, hit in sorted(hits, key=lambda h: (-h[0], -h[1]))]

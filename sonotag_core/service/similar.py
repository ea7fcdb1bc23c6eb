"""Find similar (query by example): the moments of all stored audio closest to a
stretch of one analysis, at frame level (0.3125 s).

* **The example** is the mean of the L2-normalised frame embeddings of the selected
  stretch (overlapping windows averaged per frame), normalised again.
* **Every stored audio** the viewer may see (made with this model in this mode) is
  scored in one float16 matrix-vector product per audio (:func:`~.scoring.half_cosines`,
  the machinery of library search): the cosine of each frame with the example, windows
  averaged per frame, then averaged over a stretch as long as the example, so a moment
  is an example-long stretch starting at that frame. The same audio gives the same
  embeddings, so a copy of the example scores exactly what the example itself scores.
* **"...but not <text>"** subtracts, frame by frame, the text's own probability there
  (openflam's unbiased estimate, 0..1, from the same float16 arithmetic as search's first
  pass): a moment like the example but where the text is surely heard loses up to 1,
  which is more than any cosine difference between two good matches. Subtracting the
  text's direction from the example was the alternative; it changes what "like the
  example" means even where the text is absent, and ignores the text's calibrated bias.
* **One result per moment:** peaks of one audio are at least ``min_gap_s`` apart
  (:func:`~.frames.peaks`, as library search), the example's own stretch is left out,
  and only the ``top_k`` best are kept (a heap; nothing is kept of an audio that cannot
  reach them).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.windows import FRAME_S, FRAMES_PER_WINDOW
from sonotag_core.errors import ConfigError, NotFoundError
from sonotag_core.inference.scoring import TextCache, half_cosines
from sonotag_core.service.frames import frame_embeddings, peaks, per_frame
from sonotag_core.service.search import TextRanker, gap_radius, one_label
from sonotag_core.settings import Settings
from sonotag_core.store.database import Store, StoredEmbeddings
from sonotag_core.untrusted import quoted


@dataclass(frozen=True)
class SimilarHit:
    """One moment like the example: ``time_s`` to ``end_s`` of a stored audio (its newest
    analysis the viewer may see), with its ``similarity`` (mean cosine with the example
    over the stretch, less the "not" text's probability when one was given)."""

    analysis_id: str
    content_id: str
    title: str
    time_s: float
    end_s: float
    similarity: float
    labels: LabelSet


def example_frames(at_s: float, to_s: float) -> tuple[int, int]:
    """The frames ``[first, stop)`` a selected stretch covers (at least one)."""
    if not (math.isfinite(at_s) and at_s >= 0):
        raise ConfigError(f"The example starts at a time in seconds >= 0, not {at_s!r}.")
    if not (math.isfinite(to_s) and to_s > at_s):
        raise ConfigError(f"The example ends after it starts ({at_s:g} s), not at {to_s!r}.")
    first = int(math.floor(at_s / FRAME_S + 1e-9))
    return first, max(first + 1, int(math.ceil(to_s / FRAME_S - 1e-9)))


def example_vector(store: Store, analysis_id: str, first: int, stop: int) -> tuple[str, np.ndarray]:
    """(content id, the normalised mean embedding of frames ``first:stop``) of a stored
    analysis."""
    stored = store.get_analysis(analysis_id)
    if stored is None:
        raise NotFoundError(
            f"There is no stored analysis {quoted(analysis_id)} to take the example from."
        )
    frames = frame_embeddings(stored.embeddings, first, stop)
    if frames.shape[0] == 0:
        raise ConfigError(
            f"The example starts at {first * FRAME_S:g} s, after the end of the audio "
            f"({stored.embeddings.duration_s:g} s)."
        )
    mean = frames.astype(np.float64).mean(axis=0)
    return stored.source.content_id, mean / max(float(np.linalg.norm(mean)), 1e-12)


def stretch_means(values: np.ndarray, length: int) -> np.ndarray:
    """``out[t] = mean(values[t:t+length])`` for every start with a whole stretch (the
    whole audio's mean when it is shorter than one)."""
    if values.size <= length:
        return np.asarray([values.mean()]) if values.size else values
    sums = np.cumsum(np.r_[0.0, values])
    return (sums[length:] - sums[:-length]) / length


def find_similar(
    store: Store,
    texts: TextCache,
    analysis_id: str,
    at_s: float,
    to_s: float,
    *,
    checkpoint_sha256: str,
    not_text: str | None = None,
    top_k: int = 20,
    min_gap_s: float = 5.0,
    max_label_chars: int = Settings.max_label_chars,
    visible_to: str | None = None,
) -> list[SimilarHit]:
    """The ``top_k`` moments of all audio stored for this model most like ``at_s``..``to_s``
    of ``analysis_id``, best first (see the module's notes); within one audio at least
    ``min_gap_s`` apart. With ``visible_to`` (an owner id) only what that owner may list."""
    radius = gap_radius(top_k, min_gap_s)
    first, stop = example_frames(at_s, to_s)
    content_id, example = example_vector(store, analysis_id, first, stop)
    length = stop - first
    query = np.ascontiguousarray(example, np.float16)
    penalty = None
    if not_text is not None and not_text.strip():
        penalty = TextRanker(texts.encode((one_label(not_text, max_label_chars),)))
    best: list[tuple[float, int, SimilarHit]] = []  # min-heap of (value, -order, hit)
    order = 0
    for stored in store.iter_embeddings(checkpoint_sha256, visible_to=visible_to):
        emb = stored.embeddings
        if emb.n_windows == 0:
            continue
        values = _frame_similarity(stored, query, penalty)
        moments = stretch_means(values, length)
        if stored.content_id == content_id:  # the example itself is no result
            moments[max(first - length + 1, 0) : first + length] = -np.inf
        floor = best[0][0] if len(best) == top_k else -np.inf
        for value, frame in peaks(moments, radius, top_k, floor):
            order += 1
            end = min((frame + length) * FRAME_S, emb.duration_s)
            hit = SimilarHit(
                stored.analysis_id,
                stored.content_id,
                stored.title,
                frame * FRAME_S,
                end,
                value,
                stored.labels,
            )
            item = (value, -order, hit)  # equal values: the earlier found ranks first
            (heapq.heappush if len(best) < top_k else heapq.heappushpop)(best, item)
    return [hit for _, _, hit in sorted(best, key=lambda h: (-h[0], -h[1]))]


def _frame_similarity(
    stored: StoredEmbeddings, query: np.ndarray, penalty: TextRanker | None
) -> np.ndarray:
    """Cosine of every frame of one audio with the example (windows averaged), less the
    "not" text's probability there."""
    emb = stored.embeddings
    cosine = half_cosines(emb.features.reshape(-1, emb.features.shape[-1]), query)
    values = per_frame(cosine.reshape(-1, FRAMES_PER_WINDOW), emb.starts, emb.n_samples)
    if penalty is not None:
        values = values - penalty.frames(stored)
    return values

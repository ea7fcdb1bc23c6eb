"""What the audio encoder keeps per audio: per-frame embeddings (windows x 32 x 512).

Embeddings are the asset: once kept, relabeling needs only the text encoder and a matrix
product (:mod:`sonotag_core.inference.scoring`). This module holds only the shape of the
result (numpy): the store, the cache and the service use it without importing torch; the
encoder that makes it is :mod:`sonotag_core.inference.encode`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sonotag_core.domain.windows import SAMPLE_RATE

EMBED_DIM = 512


@dataclass(frozen=True)
class AudioEmbeddings:
    """L2-normalised local audio features per window, with where each window starts."""

    starts: np.ndarray  # (windows,) int64 start sample of each window
    features: np.ndarray  # (windows, 32, 512) float32
    n_samples: int  # decoded length of the audio
    hop: int  # hop in samples used to cut the windows

    @property
    def n_windows(self) -> int:
        return int(self.starts.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / SAMPLE_RATE


#: what tags the key of embeddings made in fast mode (:func:`embedding_key`)
FAST_TAG = "+bf16"


def embedding_key(checkpoint_sha256: str, fast: bool) -> str:
    """The key embeddings are kept under (cache, store, search, link reuse): the
    checkpoint's SHA-256, tagged in fast mode, so bf16 and exact embeddings of the same
    audio are never mixed up."""
    return checkpoint_sha256 + FAST_TAG if fast else checkpoint_sha256


def key_checkpoint(key: str) -> str:
    """The checkpoint SHA-256 an :func:`embedding_key` belongs to."""
    return key.removesuffix(FAST_TAG)


def key_is_fast(key: str) -> bool:
    """Whether an :func:`embedding_key` was made in fast mode."""
    return key.endswith(FAST_TAG)


def key_text(key: str) -> str:
    """An :func:`embedding_key` for messages: the hash's start, and the mode."""
    return key_checkpoint(key)[:12] + "…" + (" (fast mode)" if key_is_fast(key) else "")

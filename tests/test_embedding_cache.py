"""The in-process embedding cache (sonotag_core.inference.embedding_cache): bounded by bytes, least
recently used first out, keyed by audio, hop and checkpoint."""

from __future__ import annotations

import numpy as np

from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.inference.embedding_cache import EmbeddingCache, EmbeddingKey


def _emb(n_windows: int) -> AudioEmbeddings:
    feats = np.zeros((n_windows, 32, 512), np.float32)
    return AudioEmbeddings(np.arange(n_windows) * 480_000, feats, n_windows * 480_000, 480_000)


def test_cache_is_bounded_lru():
    one = _emb(1).features.nbytes
    cache = EmbeddingCache(max_bytes=3 * one)
    keys = [EmbeddingKey(f"c{i}", 10.0, "sha") for i in range(4)]
    for k in keys[:3]:
        cache.put(k, _emb(1))
    assert cache.get(keys[0]) is not None  # touch: c1 becomes the oldest
    cache.put(keys[3], _emb(1))
    assert cache.get(keys[1]) is None and cache.get(keys[0]) is not None
    assert len(cache) == 3 and cache.size_bytes == 3 * one
    assert cache.get(EmbeddingKey("c0", 5.0, "sha")) is None  # hop is part of the key
    assert cache.get(EmbeddingKey("c0", 10.0, "other")) is None  # so is the checkpoint

"""Built-in example clips and the in-process embedding cache."""

from __future__ import annotations

import numpy as np
import pytest

from sonotag_core import decode
from sonotag_core.embedding_cache import EmbeddingCache, EmbeddingKey
from sonotag_core.embeddings import AudioEmbeddings
from sonotag_core.errors import DecodeError
from sonotag_core.examples import EXAMPLES, example_path


@pytest.mark.parametrize("example_id", list(EXAMPLES))
def test_examples_are_generated_once_and_decode(tmp_path, example_id):
    path = example_path(example_id, tmp_path)
    audio = decode.decode_all(path)
    assert audio.size == pytest.approx(EXAMPLES[example_id].seconds * 48_000, abs=1)
    assert 0.05 < float(np.abs(audio).max()) <= 1.0  # audible, not clipped
    mtime = path.stat().st_mtime_ns
    assert example_path(example_id, tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_examples_are_deterministic(tmp_path):
    a = example_path("alarm-clock", tmp_path / "a").read_bytes()
    b = example_path("alarm-clock", tmp_path / "b").read_bytes()
    assert a == b


def test_unknown_example(tmp_path):
    with pytest.raises(DecodeError, match="no example"):
        example_path("../../etc/passwd", tmp_path)
    assert not (tmp_path / "examples").exists() or not any((tmp_path / "examples").iterdir())


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

"""In-process memory of audio embeddings, so the same audio is never encoded twice by one
server: a shared link, a second session or a changed label set reuses them.

Keyed by (content id, hop, checkpoint sha256) — never by labels or thresholds, which only
need the text encoder. Bounded by bytes (least recently used entries go first) and safe to
share between Streamlit sessions (one lock around the dict).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

from sonotag_core.domain.embeddings import AudioEmbeddings


class EmbeddingKey(NamedTuple):
    content_id: str
    hop_s: float
    checkpoint_sha256: str


class EmbeddingCache:
    """LRU of :class:`AudioEmbeddings` up to ``max_bytes`` (one hour is ~24 MB)."""

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[EmbeddingKey, AudioEmbeddings] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: EmbeddingKey) -> AudioEmbeddings | None:
        with self._lock:
            emb = self._items.get(key)
            if emb is not None:
                self._items.move_to_end(key)
            return emb

    def put(self, key: EmbeddingKey, emb: AudioEmbeddings) -> None:
        with self._lock:
            self._items[key] = emb
            self._items.move_to_end(key)
            while len(self._items) > 1 and self._bytes() > self.max_bytes:
                self._items.popitem(last=False)

    def _bytes(self) -> int:
        return sum(e.features.nbytes for e in self._items.values())

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

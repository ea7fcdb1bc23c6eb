"""Stored audio embeddings: the asset, read back by key or streamed for library search.

Embeddings are keyed by (content id, hop, checkpoint sha256), so the same audio with the
same model is never encoded twice, whichever session, link or label set asks; labels and
thresholds are never part of that key. They are written with their analysis, in its
transaction (:mod:`.analyses`, :mod:`.attachments`): here are the reads, and the row
helpers those writes share, so the blob layout (float16, ``STORED_DTYPE``) and the rows
that point into an attached batch output are decoded in one place.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sonotag_core.archive import BatchError
from sonotag_core.domain.embeddings import EMBED_DIM, AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.windows import FRAMES_PER_WINDOW, hop_samples
from sonotag_core.store.connection import StoreBase
from sonotag_core.store.schema import STORED_DTYPE, visible_sql
from sonotag_core.untrusted import quoted

log = logging.getLogger(__name__)

#: (content id, hop in seconds, checkpoint sha256): what makes two embeddings the same
EmbeddingsKey = tuple[str, float, str]


@dataclass(frozen=True)
class StoredEmbeddings:
    """One stored audio for library search, with its newest analysis (id and labels).

    ``embeddings.features`` is a read-only **float16** view of the stored bytes (no copy,
    no conversion): search converts what it needs on the fly, which halves the memory
    traffic. Everywhere else (``get_embeddings``, ``get_analysis``) features are float32.
    """

    content_id: str
    title: str
    hop_s: float
    analysis_id: str
    labels: LabelSet
    embeddings: AudioEmbeddings


class EmbeddingsMixin(StoreBase):
    """The reads of stored embeddings (part of :class:`~.database.Store`)."""

    def get_embeddings(
        self, content_id: str, hop_s: float, checkpoint_sha256: str
    ) -> AudioEmbeddings | None:
        """Stored embeddings for this audio, hop and model, or None."""
        with self._guard("read stored embeddings"):
            row = (
                self._conn()
                .execute(
                    "SELECT n_samples, n_windows, starts, features, batch_out, batch_key "
                    "FROM embeddings WHERE content_id = ? AND hop_s = ? AND checkpoint_sha256 = ?",
                    (content_id, float(hop_s), checkpoint_sha256),
                )
                .fetchone()
            )
        return None if row is None else embeddings_from_row(row, hop_s)

    def iter_embeddings(
        self, checkpoint_sha256: str, *, visible_to: str | None = None
    ) -> Iterator[StoredEmbeddings]:
        """Every stored audio embedded with this model, one row at a time (memory holds one
        audio's float16 features, 11.8 MB per hour), each with its newest analysis. With
        ``visible_to`` (an owner id), only audio that owner analysed or that came from a
        public link, each with the newest analysis that owner may list.

        The iteration reads one snapshot of the database; writes from other connections
        go on meanwhile and are not seen by it.
        """
        sql = (
            "SELECT e.content_id, s.title, e.hop_s, e.n_samples, e.n_windows, e.starts, "
            "e.features, e.batch_out, e.batch_key, a.id, a.labels, a.negatives FROM embeddings e "
            "JOIN sources s ON s.content_id = e.content_id "
            "JOIN analyses a ON a.id = (SELECT id FROM analyses WHERE embedding_id = e.id "
            f"AND {visible_sql('owner')} "
            "ORDER BY created DESC LIMIT 1) WHERE e.checkpoint_sha256 = ? ORDER BY e.id"
        )
        with self._guard("read stored embeddings"):
            cursor = self._conn().execute(sql, (visible_to, visible_to, checkpoint_sha256))
            try:
                # ``stored``: the six embeddings columns embeddings_from_row reads
                for cid, title, hop_s, *stored, aid, labels, negatives in cursor:
                    try:
                        emb = embeddings_from_row(tuple(stored), hop_s, STORED_DTYPE)
                    except BatchError:  # an attached output moved away: search the rest
                        log.warning("attached embeddings unreadable", exc_info=True)
                        continue
                    label_set = LabelSet(
                        tuple(json.loads(labels)), frozenset(json.loads(negatives))
                    )
                    yield StoredEmbeddings(cid, title, hop_s, aid, label_set, emb)
            finally:
                cursor.close()


def embeddings_id(db: sqlite3.Connection, key: EmbeddingsKey) -> int | None:
    """The id of the embeddings row stored under this key, or None."""
    row = db.execute(
        "SELECT id FROM embeddings WHERE content_id=? AND hop_s=? AND checkpoint_sha256=?", key
    ).fetchone()
    return None if row is None else int(row[0])


def insert_embeddings(
    db: sqlite3.Connection, key: EmbeddingsKey, embeddings: AudioEmbeddings, now: float
) -> int | None:
    """Store computed embeddings (as float16) under ``key``; returns the new row's id."""
    feats = np.ascontiguousarray(embeddings.features, dtype=STORED_DTYPE)
    cur = db.execute(
        "INSERT INTO embeddings (content_id, hop_s, checkpoint_sha256, n_samples, "
        "n_windows, starts, features, created) VALUES (?,?,?,?,?,?,?,?)",
        (
            *key,
            int(embeddings.n_samples),
            embeddings.n_windows,
            np.asarray(embeddings.starts, np.int64).tobytes(),
            feats.tobytes(),
            now,
        ),
    )
    return cur.lastrowid


def embeddings_from_row(row: tuple, hop_s: float, dtype: Any = np.float32) -> AudioEmbeddings:
    """An embeddings row as arrays: from its blob, or from the attached batch output that
    holds them (:class:`BatchError` when that output is gone or changed)."""
    n_samples, n_windows, starts, feats, batch_out, batch_key = row
    if batch_out is not None:
        from sonotag_core.archive.parts import read_embeddings  # pyarrow only when needed

        features = read_embeddings(Path(batch_out), batch_key).features
        if features.shape != (n_windows, FRAMES_PER_WINDOW, EMBED_DIM):
            raise BatchError(
                f"The batch output {quoted(batch_out)} no longer holds the embeddings this "
                "analysis was attached with: attach it again."
            )
    else:
        features = np.frombuffer(feats, dtype=STORED_DTYPE).reshape(
            n_windows, FRAMES_PER_WINDOW, EMBED_DIM
        )
    return AudioEmbeddings(
        np.frombuffer(starts, dtype=np.int64).copy(),
        features if dtype == STORED_DTYPE else features.astype(dtype),
        int(n_samples),
        hop_samples(hop_s),
    )

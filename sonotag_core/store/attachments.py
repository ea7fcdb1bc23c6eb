"""Attached batch outputs: their items listed in the Library, their embeddings left in place.

A batch run (:mod:`sonotag_core.archive`) writes its embeddings to Parquet parts; attaching
the output lists each item as an analysis like any other, whose embeddings row points into
the output (``batch_out``, ``batch_key``) instead of holding a copy, so a large run is not
stored twice. Detaching removes those analyses but first copies in the embeddings that a
Library analysis still uses, so nothing stored is lost; the output's files are never
touched.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sonotag_core.access import OPERATOR
from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import StoreError
from sonotag_core.store.analyses import drop_unused, insert_analysis
from sonotag_core.store.embeddings import embeddings_from_row, embeddings_id
from sonotag_core.store.media import MediaMixin
from sonotag_core.store.schema import STORED_DTYPE

if TYPE_CHECKING:
    from sonotag_core.archive.parts import ItemRecord


class AttachmentsMixin(MediaMixin):
    """Attached batch outputs (part of :class:`~.database.Store`); detaching deletes
    analyses, and with the last of an audio its kept audio, hence the cache beneath."""

    def attach_batch(
        self,
        out: Path,
        items: Iterable[tuple[ItemRecord, np.ndarray]],
        labels: LabelSet,
        *,
        hop_s: float,
        checkpoint_sha256: str,
        model_name: str,
        settings: Mapping[str, Any],
        owner: str = OPERATOR,
    ) -> int:
        """List a batch output's items (each with its window starts in samples) as
        analyses whose embeddings stay in the output's files; returns how many were new.
        Attaching again adds only the items not attached yet. An item whose audio already
        has embeddings here (same content, hop and model) uses those."""
        out_text = str(Path(out).resolve())
        now = time.time()
        added = 0
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO attachments VALUES (?,0,?,?) ON CONFLICT(out) DO UPDATE SET "
                    "attached=excluded.attached",
                    (out_text, owner, now),
                )
                for item, starts in items:
                    if db.execute(
                        "SELECT 1 FROM attached_items WHERE out=? AND key=?", (out_text, item.key)
                    ).fetchone():
                        continue
                    embedding_id = _attach_embeddings(
                        db, out_text, item, starts, hop_s, checkpoint_sha256, now
                    )
                    analysis_id = secrets.token_hex(16)
                    insert_analysis(
                        db, analysis_id, embedding_id, labels, settings, model_name, 0.0, now, owner
                    )
                    db.execute(
                        "INSERT INTO attached_items VALUES (?,?,?)",
                        (out_text, item.key, analysis_id),
                    )
                    added += 1
                db.execute(
                    "UPDATE attachments SET items = (SELECT COUNT(*) FROM attached_items "
                    "WHERE out = ?) WHERE out = ?",
                    (out_text, out_text),
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("attach the batch output", exc)) from exc
        return added

    def attachments(self) -> list[tuple[str, int, float]]:
        """The attached outputs: (folder, analyses listed, when attached), newest first."""
        with self._guard("read the library"):
            rows = (
                self._conn()
                .execute(
                    "SELECT out, (SELECT COUNT(*) FROM attached_items i WHERE i.out = a.out), "
                    "attached FROM attachments a ORDER BY attached DESC"
                )
                .fetchall()
            )
        return [(str(o), int(n), float(t)) for o, n, t in rows]

    def detach_batch(self, out: Path | str) -> int:
        """Remove an attached output's analyses (and their reviews) from the Library; the
        output's files are not touched. Embeddings of it that a Library analysis still
        uses (an attached item analysed again with other labels) are copied in first, so
        nothing stored is lost. Returns how many analyses went."""
        out_text = (
            str(out) if str(out) in {a[0] for a in self.attachments()} else str(Path(out).resolve())
        )
        with self._guard("read the library"):
            keep = (
                self._conn()
                .execute(
                    "SELECT e.id, e.hop_s, e.n_samples, e.n_windows, e.starts, e.batch_key "
                    "FROM embeddings e WHERE e.batch_out = ? AND EXISTS (SELECT 1 FROM "
                    "analyses a WHERE a.embedding_id = e.id AND a.id NOT IN (SELECT "
                    "analysis_id FROM attached_items WHERE out = ?))",
                    (out_text, out_text),
                )
                .fetchall()
            )
        copies = []
        for eid, hop_s, n_samples, n_windows, starts, key in keep:
            row = (n_samples, n_windows, starts, b"", out_text, key)
            feats = np.ascontiguousarray(embeddings_from_row(row, hop_s, STORED_DTYPE).features)
            copies.append((feats.tobytes(), eid))
        try:
            with self._media_lock, self._tx() as db:
                db.executemany(
                    "UPDATE embeddings SET features=?, batch_out=NULL, batch_key=NULL WHERE id=?",
                    copies,
                )
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT analysis_id FROM attached_items WHERE out = ?", (out_text,)
                    )
                ]
                db.executemany("DELETE FROM reviews WHERE analysis_id = ?", [(i,) for i in ids])
                db.executemany("DELETE FROM analyses WHERE id = ?", [(i,) for i in ids])
                orphans = drop_unused(db)  # with the copies kept to play attached files
                db.execute("DELETE FROM attachments WHERE out = ?", (out_text,))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("detach the batch output", exc)) from exc
        self._unlink_orphans(orphans)
        return len(ids)


def _attach_embeddings(
    db: sqlite3.Connection,
    out: str,
    item: ItemRecord,
    starts: np.ndarray,
    hop_s: float,
    checkpoint_sha256: str,
    now: float,
) -> int:
    """The embeddings row an attached item's analysis uses: the one already stored for
    its audio, hop and model, else a new row pointing into the output (no features)."""
    local = item.source if not re.match(r"[a-z][a-z0-9+.-]*://", item.source) else None
    db.execute(
        "INSERT INTO sources VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(content_id) DO NOTHING",
        (
            item.content_id,
            "file" if local else "url",
            item.title,
            None if local else item.source,
            Path(local).name if local else item.title,
            item.duration_s,
            None,
            local,
            now,
        ),
    )
    key = (item.content_id, float(hop_s), checkpoint_sha256)
    stored = embeddings_id(db, key)
    if stored is not None:
        return stored
    cur = db.execute(
        "INSERT INTO embeddings (content_id, hop_s, checkpoint_sha256, n_samples, n_windows, "
        "starts, features, created, batch_out, batch_key) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            *key,
            item.n_samples,
            int(len(starts)),
            np.asarray(starts, np.int64).tobytes(),
            b"",
            now,
            out,
            item.key,
        ),
    )
    return int(cur.lastrowid or 0)

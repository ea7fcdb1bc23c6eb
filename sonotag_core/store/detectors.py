"""Detectors (labels refined from reviews), and the reads that teaching a label needs.

A detector is kept per owner under a name and a version (1, 2, ...: refining again adds a
version, never overwrites one). Its whole JSON card is stored as text
(:mod:`sonotag_core.service.detectors` writes and checks it); the label, checkpoint,
threshold and date are columns so a list needs no parsing. As for reviews, the store does
not decide who may see or change them: the service filters by owner
(:func:`~sonotag_core.access.can_change`).

The teaching reads: which analyses of a model an owner may learn from
(:meth:`TeachingMixin.analyses_for`), and every reviewed or marked stretch of one label
(:meth:`TeachingMixin.reviewed_stretches`), so Review next never asks twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sonotag_core.store.connection import StoreBase
from sonotag_core.store.schema import visible_sql


@dataclass(frozen=True)
class StoredDetector:
    """One version of a detector as stored: its card (a JSON object) and who owns it."""

    owner: str
    name: str
    version: int
    label: str
    checkpoint_sha256: str
    threshold: float | None
    card: Mapping[str, Any]
    created: float


@dataclass(frozen=True)
class TeachableAnalysis:
    """A stored analysis embeddings can be read for: by (content id, hop, key)."""

    analysis_id: str
    content_id: str
    hop_s: float
    owner: str
    title: str


_DETECTOR = "owner, name, version, label, checkpoint_sha256, threshold, card, created"


class DetectorsMixin(StoreBase):
    """Detectors and the teaching reads (part of :class:`~.database.Store`)."""

    def add_detector(
        self,
        owner: str,
        name: str,
        label: str,
        checkpoint_sha256: str,
        threshold: float | None,
        card: Mapping[str, Any],
    ) -> StoredDetector:
        """Keep a new version of ``owner``'s detector ``name`` (one more than the newest);
        the card's ``detector_version`` is set to it."""
        now = time.time()
        with self._guard("save the detector"), self._tx() as db:
            (newest,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) FROM detectors WHERE owner = ? AND name = ?",
                (owner, name),
            ).fetchone()
            version = int(newest) + 1
            kept = {**card, "detector_version": version}
            db.execute(
                f"INSERT INTO detectors ({_DETECTOR}) VALUES (?,?,?,?,?,?,?,?)",
                (
                    owner,
                    name,
                    version,
                    label,
                    checkpoint_sha256,
                    threshold,
                    json.dumps(kept, allow_nan=False),
                    now,
                ),
            )
        return StoredDetector(owner, name, version, label, checkpoint_sha256, threshold, kept, now)

    def list_detectors(self, owner: str | None = None) -> list[StoredDetector]:
        """Every detector version (of ``owner`` only, when given), by name then version."""
        with self._guard("read the detectors"):
            rows = (
                self._conn()
                .execute(
                    f"SELECT {_DETECTOR} FROM detectors WHERE (? IS NULL OR owner = ?) "
                    "ORDER BY name, owner, version",
                    (owner, owner),
                )
                .fetchall()
            )
        return [_detector(row) for row in rows]

    def delete_detector(self, owner: str, name: str, version: int | None = None) -> int:
        """Delete one version of a detector (every version when ``version`` is None); how
        many rows went."""
        with self._guard("delete the detector"), self._tx() as db:
            return db.execute(
                "DELETE FROM detectors WHERE owner = ? AND name = ? AND (? IS NULL OR version = ?)",
                (owner, name, version, version),
            ).rowcount

    # ---------------------------------------------------------------- teaching reads

    def analyses_for(
        self, checkpoint_sha256: str, *, owned_by: str | None = None, visible_to: str | None = None
    ) -> list[TeachableAnalysis]:
        """The analyses whose embeddings were made under this key (checkpoint and mode):
        those ``owned_by`` has (None: everyone's) that ``visible_to`` may list (None:
        every one), oldest first."""
        sql = (
            "SELECT a.id, e.content_id, e.hop_s, a.owner, s.title FROM analyses a "
            "JOIN embeddings e ON a.embedding_id = e.id "
            "JOIN sources s ON s.content_id = e.content_id "
            f"WHERE e.checkpoint_sha256 = ? AND (? IS NULL OR a.owner = ?) AND {visible_sql('a.owner')} "
            "ORDER BY a.created, a.id"
        )
        with self._guard("read the analyses"):
            rows = (
                self._conn()
                .execute(sql, (checkpoint_sha256, owned_by, owned_by, visible_to, visible_to))
                .fetchall()
            )
        return [
            TeachableAnalysis(str(a), str(c), float(h), str(o), str(t)) for a, c, h, o, t in rows
        ]

    def reviewed_stretches(
        self, label: str, checkpoint_sha256: str
    ) -> list[tuple[str, float, float]]:
        """(content id, onset_s, offset_s) of every verdict on an event of ``label`` or
        relabelled to it, and of every span marked for it, on audio embedded under this
        key: the moments somebody already judged for this label."""
        sql = (
            "SELECT e.content_id, r.onset_s, r.offset_s FROM reviews r "
            "JOIN analyses a ON a.id = r.analysis_id JOIN embeddings e ON e.id = a.embedding_id "
            "WHERE e.checkpoint_sha256 = ? AND (r.label = ? OR r.relabel = ?) "
            "UNION ALL SELECT e.content_id, p.onset_s, p.offset_s FROM spans p "
            "JOIN analyses a ON a.id = p.analysis_id JOIN embeddings e ON e.id = a.embedding_id "
            "WHERE e.checkpoint_sha256 = ? AND p.label = ?"
        )
        with self._guard("read the reviews"):
            rows = (
                self._conn()
                .execute(sql, (checkpoint_sha256, label, label, checkpoint_sha256, label))
                .fetchall()
            )
        return [(str(c), float(a), float(b)) for c, a, b in rows]


def _detector(row: tuple) -> StoredDetector:
    owner, name, version, label, sha, threshold, card, created = row
    return StoredDetector(
        str(owner),
        str(name),
        int(version),
        str(label),
        str(sha),
        None if threshold is None else float(threshold),
        json.loads(card),
        float(created),
    )

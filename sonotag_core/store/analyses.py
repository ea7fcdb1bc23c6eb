"""Analyses and their sources: the rows the Library lists, opens, updates and deletes.

An analysis points at one embeddings row (many analyses of one audio share it) and that
at one source; adding an analysis writes all three in one transaction. Deleting the last
analysis of an audio takes its embeddings, source and kept audio with it
(:func:`drop_unused`), so the analyses build on the kept-audio cache (:mod:`.media`).

Owners are stored, not checked: callers check ``access.check_change`` before changing or
deleting, and pass ``visible_to`` for what a visitor may list.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sonotag_core.access import OPERATOR
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import StoreError
from sonotag_core.media.sources import SourceInfo
from sonotag_core.store.embeddings import embeddings_from_row, embeddings_id, insert_embeddings
from sonotag_core.store.media import MediaMixin, path_text
from sonotag_core.store.schema import visible_sql


@dataclass(frozen=True)
class StoredAnalysis:
    """One analysis as stored: its source, the embeddings it used and its labels."""

    id: str
    source: SourceInfo
    embeddings: AudioEmbeddings
    labels: LabelSet
    settings: Mapping[str, Any]
    model_name: str
    checkpoint_sha256: str
    hop_s: float
    seconds: float
    created: float
    owner: str = OPERATOR


@dataclass(frozen=True)
class AnalysisSummary:
    """A row of the Library: enough to list, without loading embeddings."""

    id: str
    title: str
    kind: str
    url: str | None
    duration_s: float | None
    labels: tuple[str, ...]
    model_name: str
    created: float
    negatives: frozenset[str] = frozenset()
    owner: str = OPERATOR

    @property
    def labels_text(self) -> str:
        """The labels as the label box writes them (negatives with a leading '-')."""
        return LabelSet(self.labels, self.negatives).to_text()


class AnalysesMixin(MediaMixin):
    """Analyses and sources (part of :class:`~.database.Store`); a stored analysis plays
    from the kept audio, hence the kept-audio cache beneath."""

    def add_analysis(
        self,
        source: SourceInfo,
        embeddings: AudioEmbeddings,
        labels: LabelSet,
        *,
        hop_s: float,
        checkpoint_sha256: str,
        model_name: str,
        settings: Mapping[str, Any] | None = None,
        seconds: float = 0.0,
        owner: str = OPERATOR,
    ) -> str:
        """Store source + embeddings (unless already there) + analysis in one transaction;
        returns the new analysis id (32 hex characters: 128 random bits, so a share link
        cannot be guessed).

        Only the rows: deciding whether a run replaces a stored analysis and keeping its
        audio is :func:`sonotag_core.service.analysis.save_analysis`, the one save every
        front end calls."""
        analysis_id = secrets.token_hex(16)
        now = time.time()
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO sources VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(content_id) DO "
                    "UPDATE SET title=excluded.title, url=COALESCE(excluded.url, url), "
                    "media_path=COALESCE(excluded.media_path, media_path)",
                    (
                        source.content_id,
                        source.kind,
                        source.title,
                        source.url,
                        source.file_name,
                        source.duration_s,
                        source.uploader,
                        path_text(source.path),
                        now,
                    ),
                )
                key = (source.content_id, float(hop_s), checkpoint_sha256)
                embedding_id = embeddings_id(db, key)
                if embedding_id is None:
                    embedding_id = insert_embeddings(db, key, embeddings, now)
                insert_analysis(
                    db,
                    analysis_id,
                    embedding_id,
                    labels,
                    settings or {},
                    model_name,
                    seconds,
                    now,
                    owner,
                )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("save the analysis", exc)) from exc
        return analysis_id

    def update_analysis(
        self,
        analysis_id: str,
        labels: LabelSet,
        *,
        settings: Mapping[str, Any] | None = None,
        seconds: float = 0.0,
    ) -> bool:
        """Give a stored analysis new labels and settings (same audio, hop and model: the
        dashboard's Analyze on audio it already holds), newest in the Library again.
        False when there is no such analysis."""
        try:
            with self._tx() as db:
                n = db.execute(
                    "UPDATE analyses SET labels=?, negatives=?, settings=?, seconds=?, created=? "
                    "WHERE id=?",
                    (
                        json.dumps(list(labels.labels)),
                        json.dumps(sorted(labels.negatives)),
                        json.dumps(dict(settings or {}), default=str),
                        float(seconds),
                        time.time(),
                        analysis_id,
                    ),
                ).rowcount
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("update the analysis", exc)) from exc
        return n == 1

    def get_analysis(self, analysis_id: str) -> StoredAnalysis | None:
        """One stored analysis; its source's ``path`` is the kept audio, else the original
        file if it still exists, else ``Path("")`` (no playback)."""
        with self._guard("read the analysis"):
            row = (
                self._conn()
                .execute(
                    "SELECT a.id, a.labels, a.negatives, a.settings, a.model_name, a.seconds, "
                    "a.created, e.hop_s, e.checkpoint_sha256, e.n_samples, e.n_windows, e.starts, "
                    "e.features, e.batch_out, e.batch_key, s.content_id, s.kind, s.title, s.url, s.file_name, s.duration_s, "
                    "s.uploader, s.media_path, a.owner FROM analyses a JOIN embeddings e ON "
                    "a.embedding_id = e.id JOIN sources s ON e.content_id = s.content_id "
                    "WHERE a.id = ?",
                    (analysis_id,),
                )
                .fetchone()
            )
        if row is None:
            return None
        (
            aid,
            labels,
            negatives,
            settings,
            model_name,
            seconds,
            created,
            hop_s,
            sha,
            n_samples,
            n_windows,
            starts,
            feats,
            batch_out,
            batch_key,
            cid,
            kind,
            title,
            url,
            file_name,
            duration,
            uploader,
            media_path,
            owner,
        ) = row
        source = SourceInfo(
            kind, self._playable(cid, media_path), title, cid, file_name, duration, uploader, url
        )
        return StoredAnalysis(
            aid,
            source,
            embeddings_from_row((n_samples, n_windows, starts, feats, batch_out, batch_key), hop_s),
            LabelSet(tuple(json.loads(labels)), frozenset(json.loads(negatives))),
            json.loads(settings),
            model_name,
            sha,
            hop_s,
            seconds,
            created,
            owner,
        )

    def latest_analysis_id(
        self,
        content_id: str,
        hop_s: float,
        checkpoint_sha256: str,
        *,
        visible_to: str | None = None,
        owned_by: str | None = None,
    ) -> str | None:
        """The newest analysis of this audio with this hop and model (that the owner
        ``visible_to`` may list, or that ``owned_by`` owns, when given), or None."""
        with self._guard("read the library"):
            row = (
                self._conn()
                .execute(
                    "SELECT a.id FROM analyses a JOIN embeddings e ON a.embedding_id = e.id "
                    "JOIN sources s ON s.content_id = e.content_id "
                    "WHERE e.content_id = ? AND e.hop_s = ? AND e.checkpoint_sha256 = ? "
                    f"AND {visible_sql('a.owner')} "
                    "AND (? IS NULL OR a.owner = ?) ORDER BY a.created DESC LIMIT 1",
                    (
                        content_id,
                        float(hop_s),
                        checkpoint_sha256,
                        visible_to,
                        visible_to,
                        owned_by,
                        owned_by,
                    ),
                )
                .fetchone()
            )
        return None if row is None else str(row[0])

    def sources_by_url(self, url: str, key: str = "") -> list[SourceInfo]:
        """Stored sources whose link is ``url`` or contains ``key`` (a video id), newest
        first; the caller decides which spellings are the same link (the store does not
        parse links). ``path`` is the kept audio, or ``Path("")`` when none is kept."""
        with self._guard("read the library"):
            rows = (
                self._conn()
                .execute(
                    "SELECT content_id, kind, title, url, file_name, duration_s, uploader "
                    "FROM sources WHERE url = ? OR (? <> '' AND instr(url, ?) > 0) "
                    "ORDER BY added DESC, rowid DESC",
                    (url, key, key),
                )
                .fetchall()
            )
        return [
            SourceInfo(kind, self.media_path(cid) or Path(""), title, cid, name, dur, up, stored)
            for cid, kind, title, stored, name, dur, up in rows
        ]

    def analysis_owner(self, analysis_id: str) -> str | None:
        """Who owns one stored analysis (None: no such analysis), without its embeddings."""
        with self._guard("read the library"):
            row = (
                self._conn()
                .execute("SELECT owner FROM analyses WHERE id = ?", (analysis_id,))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def get_labels(self, analysis_id: str) -> LabelSet | None:
        """The labels of one stored analysis, without reading its embeddings."""
        with self._guard("read the library"):
            row = (
                self._conn()
                .execute("SELECT labels, negatives FROM analyses WHERE id = ?", (analysis_id,))
                .fetchone()
            )
        if row is None:
            return None
        return LabelSet(tuple(json.loads(row[0])), frozenset(json.loads(row[1])))

    def count_analyses(self) -> int:
        with self._guard("read the library"):
            return int(self._conn().execute("SELECT COUNT(*) FROM analyses").fetchone()[0])

    def list_analyses(self, limit: int = 500) -> list[AnalysisSummary]:
        with self._guard("read the library"):
            rows = (
                self._conn()
                .execute(
                    "SELECT a.id, s.title, s.kind, s.url, s.duration_s, a.labels, a.model_name, "
                    "a.created, a.negatives, a.owner FROM analyses a JOIN embeddings e ON a.embedding_id = e.id "
                    "JOIN sources s ON e.content_id = s.content_id ORDER BY a.created DESC LIMIT ?",
                    (limit,),
                )
                .fetchall()
            )
        return [
            AnalysisSummary(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                tuple(json.loads(r[5])),
                r[6],
                r[7],
                frozenset(json.loads(r[8])),
                r[9],
            )
            for r in rows
        ]

    def delete_analysis(self, analysis_id: str) -> bool:
        """Delete one analysis; embeddings, sources and kept audio that no analysis uses
        any more go with it."""
        try:
            with self._media_lock, self._tx() as db:
                db.execute("DELETE FROM reviews WHERE analysis_id = ?", (analysis_id,))
                gone = db.execute("DELETE FROM analyses WHERE id = ?", (analysis_id,)).rowcount
                orphans = drop_unused(db)
        except sqlite3.Error as exc:
            raise StoreError(self._message("delete the analysis", exc)) from exc
        self._unlink_orphans(orphans)
        return bool(gone)


def insert_analysis(
    db: sqlite3.Connection,
    analysis_id: str,
    embedding_id: int | None,
    labels: LabelSet,
    settings: Mapping[str, Any],
    model_name: str,
    seconds: float,
    now: float,
    owner: str,
) -> None:
    """One analyses row (labels, negatives and settings as JSON); shared by a new analysis
    and an attached batch item, so both are listed, opened and searched alike."""
    db.execute(
        "INSERT INTO analyses (id, embedding_id, labels, negatives, settings, "
        "model_name, seconds, created, owner) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            analysis_id,
            embedding_id,
            json.dumps(list(labels.labels)),
            json.dumps(sorted(labels.negatives)),
            json.dumps(dict(settings), default=str),
            model_name,
            float(seconds),
            now,
            owner,
        ),
    )


def drop_unused(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """Delete embeddings no analysis uses, then their sources and kept-audio rows; returns
    the (content id, path) of kept audio whose file the caller unlinks after commit."""
    db.execute("DELETE FROM embeddings WHERE id NOT IN (SELECT embedding_id FROM analyses)")
    orphans = db.execute(
        "SELECT m.content_id, m.path FROM media m JOIN sources s ON "
        "s.content_id = m.content_id WHERE s.content_id NOT IN "
        "(SELECT content_id FROM embeddings)"
    ).fetchall()
    db.executemany("DELETE FROM media WHERE content_id = ?", [(c,) for c, _ in orphans])
    db.execute("DELETE FROM sources WHERE content_id NOT IN (SELECT content_id FROM embeddings)")
    return [(str(c), str(p)) for c, p in orphans]

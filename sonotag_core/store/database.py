"""The result store: sources, kept audio embeddings and analyses in one SQLite database.

Embeddings are the asset: they are keyed by (content id, hop, checkpoint sha256), so the
same audio with the same model is never encoded twice, whichever session, link or label
set asks. Labels and thresholds are never part of that key.

* SQLite in WAL mode under ``SONOTAG_DATA_DIR`` (``sonotag.db``), one connection per
  thread, ``PRAGMA user_version`` as the schema version with forward-only migrations.
* Embeddings are stored as float16 (11.8 MB per audio hour instead of 23.6 MB); the
  probability error that adds is measured in ``tests/test_store.py`` and stays below 1e-3.
* Every write is one transaction: a crash or a killed process mid-analysis leaves either
  the whole analysis or nothing visible.
* The audio needed for playback is kept under ``<data_dir>/media`` (uploads and downloads,
  named by content id), bounded by a byte cap: the least recently used files are evicted
  first. Eviction removes only the audio: the analysis and its embeddings stay, so it still
  opens, relabels and exports, without playback.
* Reviews (verdicts on events, :mod:`.review`) are keyed by (analysis, label, onset
  frame) and deleted with their analysis. The store does not decide who may write them:
  callers check ``access.check_change`` first, as for deleting.

Nothing else in SonoTag opens the database.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sonotag_core.access import OPERATOR, PUBLIC_KINDS
from sonotag_core.archive import BatchError
from sonotag_core.domain.calibration import Calibration
from sonotag_core.domain.embeddings import EMBED_DIM, AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.review import Review
from sonotag_core.domain.windows import FRAMES_PER_WINDOW, hop_samples
from sonotag_core.errors import (  # StoreError lives in errors; importable here too
    StoreError,
)
from sonotag_core.media.overview import forget_overview, overview_dir
from sonotag_core.media.sources import SourceInfo
from sonotag_core.untrusted import quoted

if TYPE_CHECKING:
    from sonotag_core.archive.parts import ItemRecord

log = logging.getLogger(__name__)

DB_NAME = "sonotag.db"
MEDIA_DIR = "media"
STORED_DTYPE = np.float16

MIGRATIONS: tuple[str, ...] = (
    # 1: sources, embeddings, analyses
    """
    CREATE TABLE sources (
        content_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        url TEXT,
        file_name TEXT NOT NULL,
        duration_s REAL,
        uploader TEXT,
        media_path TEXT,
        added REAL NOT NULL
    );
    CREATE TABLE embeddings (
        id INTEGER PRIMARY KEY,
        content_id TEXT NOT NULL REFERENCES sources(content_id) ON DELETE CASCADE,
        hop_s REAL NOT NULL,
        checkpoint_sha256 TEXT NOT NULL,
        n_samples INTEGER NOT NULL,
        n_windows INTEGER NOT NULL,
        starts BLOB NOT NULL,
        features BLOB NOT NULL,
        created REAL NOT NULL,
        UNIQUE (content_id, hop_s, checkpoint_sha256)
    );
    CREATE TABLE analyses (
        id TEXT PRIMARY KEY,
        embedding_id INTEGER NOT NULL REFERENCES embeddings(id) ON DELETE CASCADE,
        labels TEXT NOT NULL,
        negatives TEXT NOT NULL,
        settings TEXT NOT NULL,
        model_name TEXT NOT NULL,
        seconds REAL NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX analyses_created ON analyses(created);
    """,
    # 2: kept audio for playback (LRU by last_used); indexes for search and link lookups.
    # No foreign key to sources: audio is kept just before its analysis is saved.
    """
    CREATE TABLE media (
        content_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        last_used REAL NOT NULL
    );
    CREATE INDEX media_last_used ON media(last_used);
    CREATE INDEX embeddings_model ON embeddings(checkpoint_sha256);
    CREATE INDEX analyses_embedding ON analyses(embedding_id, created);
    """,
    # 3: every analysis has an owner (sonotag_core.access); rows from before belong to the
    # operator, so nothing stored is lost or shown to visitors who did not make it.
    """
    ALTER TABLE analyses ADD COLUMN owner TEXT NOT NULL DEFAULT 'operator';
    CREATE INDEX analyses_owner ON analyses(owner, created);
    """,
    # 4: verdicts on events (sonotag_core.domain.review), one per (analysis, label, onset frame):
    # a second verdict on an event replaces the first; they go with their analysis.
    """
    CREATE TABLE reviews (
        analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        onset_frame INTEGER NOT NULL,
        onset_s REAL NOT NULL,
        offset_s REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
        relabel TEXT,
        reviewer TEXT NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (analysis_id, label, onset_frame)
    );
    """,
    # 5: per-label thresholds calibrated on ground truth or reviews
    # (sonotag_core.domain.calibration), one per label text and checkpoint: the newest wins.
    """
    CREATE TABLE calibrations (
        label TEXT NOT NULL,
        checkpoint_sha256 TEXT NOT NULL,
        threshold REAL NOT NULL CHECK (threshold > 0 AND threshold < 1),
        origin TEXT NOT NULL,
        detail TEXT NOT NULL,
        owner TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (label, checkpoint_sha256)
    );
    """,
    # 6: attached batch outputs (sonotag_core.archive): their items are analyses like any
    # other, but their embeddings stay in the output's Parquet files. An embeddings row
    # with batch_out set has an empty features blob and is read from (batch_out, batch_key).
    """
    CREATE TABLE attachments (
        out TEXT PRIMARY KEY,
        items INTEGER NOT NULL,
        owner TEXT NOT NULL,
        attached REAL NOT NULL
    );
    ALTER TABLE embeddings ADD COLUMN batch_out TEXT REFERENCES attachments(out);
    ALTER TABLE embeddings ADD COLUMN batch_key TEXT;
    CREATE INDEX embeddings_batch ON embeddings(batch_out);
    CREATE TABLE attached_items (
        out TEXT NOT NULL REFERENCES attachments(out) ON DELETE CASCADE,
        key TEXT NOT NULL,
        analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
        PRIMARY KEY (out, key)
    );
    CREATE INDEX attached_items_analysis ON attached_items(analysis_id);
    """,
)


_PUBLIC_KINDS_SQL = ",".join(f"'{kind}'" for kind in sorted(PUBLIC_KINDS))  # constants only


def _visible_sql(owner_column: str) -> str:
    """access.can_list as SQL (two ``?``: the owner id twice; NULL = every analysis)."""
    return f"(? IS NULL OR {owner_column} = ? OR s.kind IN ({_PUBLIC_KINDS_SQL}))"


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


@dataclass(frozen=True)
class MediaUsage:
    """Kept audio on disk: how many files, how many bytes, and the cap (None = no cap)."""

    files: int
    bytes: int
    cap_bytes: int | None


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


class Store:
    """Thread-safe access to the database at ``<data_dir>/sonotag.db`` and to the kept
    audio under ``<data_dir>/media`` (at most ``media_cap_bytes``; None = no cap)."""

    def __init__(self, data_dir: str | Path, *, media_cap_bytes: int | None = None) -> None:
        if media_cap_bytes is not None and media_cap_bytes < 0:
            raise ValueError(f"media_cap_bytes must be None or >= 0, not {media_cap_bytes}")
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.media_dir = self.data_dir / MEDIA_DIR
        self.media_cap_bytes = media_cap_bytes
        self._local = threading.local()
        self._media_lock = threading.Lock()
        try:
            self.media_dir.mkdir(parents=True, exist_ok=True)
            with self._tx() as db:
                self._migrate(db)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("open", exc)) from exc

    # ------------------------------------------------------------ plumbing

    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: all of it commits, or none of it is visible."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            # SQLite may already have rolled back itself (a full disk: SQLITE_FULL); a
            # second ROLLBACK would fail and hide the real error
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """sqlite and file-system errors -> one StoreError saying what could not be done."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message(what, exc)) from exc

    def _message(self, what: str, exc: BaseException) -> str:
        text = str(exc)
        if (
            "readonly" in text.lower()
            or getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES)
            or not os.access(self.path.parent, os.W_OK)
        ):
            return (
                f"The data directory {self.path.parent} is read-only or not writable: the "
                "library can neither be read nor saved there (SQLite writes beside its "
                "database). Point SONOTAG_DATA_DIR at a writable directory, or copy it to one."
            )
        if "full" in text.lower() or getattr(exc, "errno", None) == errno.ENOSPC:
            return (
                f"The disk holding {self.path.parent} is full, so results could not be "
                "saved. Free some space (or delete old analyses) and try again."
            )
        return f"The result store at {self.path} could not {what} ({text})."

    def _migrate(self, db: sqlite3.Connection) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} was written by a newer SonoTag (schema {version}); upgrade SonoTag."
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    # ------------------------------------------------------------ embeddings

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
        return None if row is None else _embeddings(row, hop_s)

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
            f"AND {_visible_sql('owner')} "
            "ORDER BY created DESC LIMIT 1) WHERE e.checkpoint_sha256 = ? ORDER BY e.id"
        )
        with self._guard("read stored embeddings"):
            cursor = self._conn().execute(sql, (visible_to, visible_to, checkpoint_sha256))
            try:
                for (
                    cid,
                    title,
                    hop_s,
                    n_samples,
                    n_windows,
                    starts,
                    feats,
                    batch_out,
                    batch_key,
                    aid,
                    labels,
                    negatives,
                ) in cursor:
                    row = (n_samples, n_windows, starts, feats, batch_out, batch_key)
                    try:
                        emb = _embeddings(row, hop_s, STORED_DTYPE)
                    except BatchError:  # an attached output moved away: search the rest
                        log.warning("attached embeddings unreadable", exc_info=True)
                        continue
                    label_set = LabelSet(
                        tuple(json.loads(labels)), frozenset(json.loads(negatives))
                    )
                    yield StoredEmbeddings(cid, title, hop_s, aid, label_set, emb)
            finally:
                cursor.close()

    # ------------------------------------------------------------ analyses

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
                        _path_text(source.path),
                        now,
                    ),
                )
                key = (source.content_id, float(hop_s), checkpoint_sha256)
                row = db.execute(
                    "SELECT id FROM embeddings WHERE content_id=? AND hop_s=? AND checkpoint_sha256=?",
                    key,
                ).fetchone()
                if row is None:
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
                    embedding_id = cur.lastrowid
                else:
                    embedding_id = row[0]
                _insert_analysis(
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
            _embeddings((n_samples, n_windows, starts, feats, batch_out, batch_key), hop_s),
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
                    f"AND {_visible_sql('a.owner')} "
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
                orphans = _drop_unused(db)
        except sqlite3.Error as exc:
            raise StoreError(self._message("delete the analysis", exc)) from exc
        self._unlink_orphans(orphans)
        return bool(gone)

    def _unlink_orphans(self, orphans: list[tuple[str, str]]) -> None:
        for content_id, path in orphans:
            self._unlink_media(path)
            forget_overview(overview_dir(self.data_dir), content_id)  # the player's picture

    # ------------------------------------------------------------ attached batch outputs

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
                    _insert_analysis(
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
            feats = np.ascontiguousarray(_embeddings(row, hop_s, STORED_DTYPE).features)
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
                orphans = _drop_unused(db)  # with the copies kept to play attached files
                db.execute("DELETE FROM attachments WHERE out = ?", (out_text,))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("detach the batch output", exc)) from exc
        self._unlink_orphans(orphans)
        return len(ids)

    # ------------------------------------------------------------ reviews
    # Low level on purpose: callers check who may change an analysis
    # (``access.check_change``) before they call set_review or clear_review.

    def set_review(self, analysis_id: str, review: Review, *, reviewer: str) -> bool:
        """Record ``reviewer``'s verdict on one event of a stored analysis, replacing any
        earlier verdict on that event (same label and onset frame). False when there is
        no such analysis."""
        with self._guard("save the review"), self._tx() as db:
            if db.execute("SELECT 1 FROM analyses WHERE id = ?", (analysis_id,)).fetchone() is None:
                return False
            db.execute(
                "INSERT INTO reviews (analysis_id, label, onset_frame, onset_s, offset_s, status, "
                "relabel, reviewer, updated) VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(analysis_id, label, onset_frame) DO UPDATE SET "
                "onset_s=excluded.onset_s, offset_s=excluded.offset_s, status=excluded.status, "
                "relabel=excluded.relabel, reviewer=excluded.reviewer, updated=excluded.updated",
                (
                    analysis_id,
                    review.label,
                    review.onset_frame,
                    review.onset_s,
                    review.offset_s,
                    review.status,
                    review.relabel,
                    str(reviewer),
                    review.updated,
                ),
            )
        return True

    def clear_review(self, analysis_id: str, label: str, onset_frame: int) -> bool:
        """Forget the verdict on one event (it is unreviewed again); False if there was none."""
        with self._guard("clear the review"), self._tx() as db:
            n = db.execute(
                "DELETE FROM reviews WHERE analysis_id = ? AND label = ? AND onset_frame = ?",
                (analysis_id, str(label), int(onset_frame)),
            ).rowcount
        return n == 1

    def get_reviews(self, analysis_id: str) -> list[Review]:
        """Every verdict on a stored analysis, in time order (empty: none, or no analysis)."""
        with self._guard("read the reviews"):
            rows = (
                self._conn()
                .execute(
                    "SELECT label, onset_frame, onset_s, offset_s, status, relabel, updated "
                    "FROM reviews WHERE analysis_id = ? ORDER BY onset_frame, label",
                    (analysis_id,),
                )
                .fetchall()
            )
        return [Review(*row) for row in rows]

    # ------------------------------------------------------------ calibrations

    def save_calibrations(
        self, calibrations: Iterable[Calibration], checkpoint_sha256: str, *, owner: str
    ) -> int:
        """Keep these per-label thresholds for this model, replacing older ones of the
        same labels; returns how many were kept."""
        rows = [
            (
                c.label,
                checkpoint_sha256,
                c.threshold,
                c.origin,
                json.dumps(dict(c.detail)),
                owner,
                c.created,
            )
            for c in calibrations
        ]
        with self._guard("save the calibrated thresholds"), self._tx() as db:
            db.executemany(
                "INSERT INTO calibrations (label, checkpoint_sha256, threshold, origin, detail, "
                "owner, created) VALUES (?,?,?,?,?,?,?) ON CONFLICT(label, checkpoint_sha256) "
                "DO UPDATE SET threshold=excluded.threshold, origin=excluded.origin, "
                "detail=excluded.detail, owner=excluded.owner, created=excluded.created",
                rows,
            )
        return len(rows)

    def get_calibrations(
        self, labels: Iterable[str], checkpoint_sha256: str
    ) -> dict[str, Calibration]:
        """The stored thresholds of these label texts for this model (labels without one
        are absent)."""
        wanted = list(dict.fromkeys(labels))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._guard("read the calibrated thresholds"):
            rows = (
                self._conn()
                .execute(
                    "SELECT label, threshold, origin, detail, created FROM calibrations "
                    f"WHERE checkpoint_sha256 = ? AND label IN ({marks})",
                    (checkpoint_sha256, *wanted),
                )
                .fetchall()
            )
        return {
            r[0]: Calibration(r[0], float(r[1]), r[2], json.loads(r[3]), float(r[4])) for r in rows
        }

    # ------------------------------------------------------------ kept audio

    def keep_media(self, source: SourceInfo) -> SourceInfo:
        """Keep ``source``'s audio for playback as ``media/<content_id[:32]><suffix>`` and
        return the source pointing at it; then evict least recently used audio beyond the cap.

        A file already under the data dir (an upload, a download) is moved; any other file
        is copied. Keeping the same content again reuses the kept file. A source without a
        file (``Path("")``) is returned unchanged when nothing is kept for it.
        """
        cid = source.content_id
        with self._media_lock, self._guard("keep the audio"):
            kept = self._kept(cid)
            if kept is None:
                kept = self._place(source)
                if kept is None:
                    return source
            else:
                self._drop_duplicate(_file(source.path), kept)
                self._touch(cid)
            self._evict(keep=cid)
        return replace(source, path=kept)

    def media_path(self, content_id: str) -> Path | None:
        """The kept audio of this content if it still exists (and marks it recently used),
        else None; a row whose file went missing is dropped."""
        with self._media_lock, self._guard("read the kept audio"):
            path = self._kept(content_id)
        if path is not None:
            try:
                with self._media_lock:
                    self._touch(content_id)
            except sqlite3.Error:  # a busy or full store must not stop playback
                log.warning("could not mark %s as recently used", content_id, exc_info=True)
        return path

    def media_usage(self) -> MediaUsage:
        """What the kept audio takes on disk, against the cap."""
        with self._guard("read the kept audio"):
            files, total = (
                self._conn()
                .execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM media")
                .fetchone()
            )
        return MediaUsage(int(files), int(total), self.media_cap_bytes)

    def _playable(self, content_id: str, stored: str | None) -> Path:
        kept = self.media_path(content_id)
        if kept is not None:
            return kept
        return Path(stored) if stored and Path(stored).is_file() else Path("")

    def _kept(self, content_id: str) -> Path | None:
        """The kept file, or None; a row whose file is gone is dropped (with sources' path)."""
        db = self._conn()
        row = db.execute("SELECT path FROM media WHERE content_id = ?", (content_id,)).fetchone()
        if row is None:
            return None
        if Path(row[0]).is_file():
            return Path(row[0])
        try:
            with self._tx() as db:
                self._forget(db, content_id)
        except sqlite3.Error:  # tidying is optional: a busy or full store still answers
            log.warning("could not forget missing audio of %s", content_id, exc_info=True)
        return None

    def _place(self, source: SourceInfo) -> Path | None:
        """Move or copy the source's file into media/ and record it (undone on failure)."""
        src = _file(source.path)
        if src is None:
            return None
        dest = self.media_dir / _media_name(source)
        self.media_dir.mkdir(parents=True, exist_ok=True)
        undo, cleanup = self._put_file(src, dest)
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO media VALUES (?,?,?,?) ON CONFLICT(content_id) DO UPDATE SET "
                    "path=excluded.path, bytes=excluded.bytes, last_used=excluded.last_used",
                    (source.content_id, str(dest), dest.stat().st_size, _stamp(db)),
                )
                db.execute(
                    "UPDATE sources SET media_path = ? WHERE content_id = ?",
                    (str(dest), source.content_id),
                )
        except BaseException:
            _quietly(undo)
            raise
        _quietly(cleanup)
        return dest

    def _put_file(self, src: Path, dest: Path) -> tuple[Any, Any]:
        """Move (inside the data dir) or copy ``src`` to ``dest``; returns (undo, cleanup)."""
        if src.resolve() == dest.resolve():
            return (lambda: None), (lambda: None)
        if self._inside(src):
            try:
                os.replace(src, dest)
                return (lambda: os.replace(dest, src)), (lambda: None)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
            _copy(src, dest)  # another file system under the data dir: copy, then remove
            return dest.unlink, src.unlink
        _copy(src, dest)
        return dest.unlink, (lambda: None)

    def _drop_duplicate(self, src: Path | None, kept: Path) -> None:
        """A second upload/download of kept content: the new copy under the data dir goes."""
        if src is not None and self._inside(src) and src.resolve() != kept.resolve():
            _quietly(src.unlink)

    def _touch(self, content_id: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE media SET last_used = ? WHERE content_id = ?", (_stamp(db), content_id)
            )

    def _evict(self, keep: str) -> None:
        """Delete least recently used kept audio (never ``keep``) until within the cap."""
        cap = self.media_cap_bytes
        if cap is None:
            return
        db = self._conn()
        total = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM media").fetchone()[0]
        if total <= cap:
            return
        rows = db.execute(
            "SELECT content_id, path, bytes FROM media WHERE content_id <> ? "
            "ORDER BY last_used, rowid",
            (keep,),
        ).fetchall()
        victims = []
        for cid, path, size in rows:
            if total <= cap:
                break
            if self._unlink_media(path):
                victims.append(cid)
                total -= size
        with self._tx() as db:
            for cid in victims:
                self._forget(db, cid)
        if victims:
            log.info("evicted %d kept audio file(s) to stay within %d bytes", len(victims), cap)

    def _forget(self, db: sqlite3.Connection, content_id: str) -> None:
        """The kept audio of ``content_id`` is gone: its rows, and the player's waveform."""
        forget_overview(overview_dir(self.data_dir), content_id)
        db.execute("DELETE FROM media WHERE content_id = ?", (content_id,))
        db.execute("UPDATE sources SET media_path = NULL WHERE content_id = ?", (content_id,))

    def _unlink_media(self, path: str) -> bool:
        """Delete a kept file (only ever inside media/); False if it could not be deleted."""
        p = Path(path)
        if not _is_under(p, self.media_dir):
            log.warning("not deleting %s: outside %s", p, self.media_dir)
            return False
        try:
            p.unlink(missing_ok=True)
        except OSError:
            log.warning("could not delete kept audio %s", p, exc_info=True)
            return False
        return True

    def _inside(self, path: Path) -> bool:
        return _is_under(path, self.data_dir)


def _insert_analysis(
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


def _drop_unused(db: sqlite3.Connection) -> list[tuple[str, str]]:
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


def _embeddings(row: tuple, hop_s: float, dtype: Any = np.float32) -> AudioEmbeddings:
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
    row = db.execute(
        "SELECT id FROM embeddings WHERE content_id=? AND hop_s=? AND checkpoint_sha256=?", key
    ).fetchone()
    if row is not None:
        return int(row[0])
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


def _stamp(db: sqlite3.Connection) -> float:
    """Now, but strictly later than every stored ``last_used`` (a clean LRU order)."""
    (latest,) = db.execute("SELECT MAX(last_used) FROM media").fetchone()
    now = time.time()
    return now if latest is None or now > latest else latest + 1e-6


def _path_text(path: Path | str | None) -> str | None:
    text = "" if path is None else str(path)
    return None if text in ("", ".") else text


def _file(path: Path | str | None) -> Path | None:
    """The path if it names an existing regular file (``Path("")`` is "no file")."""
    text = _path_text(path)
    return Path(text) if text and Path(text).is_file() else None


def _media_name(source: SourceInfo) -> str:
    """``<content_id[:32]><.suffix>``: nothing of a user's file name reaches the path
    except a filtered suffix (the player uses it to guess the format)."""
    cid = source.content_id.lower()
    if not re.fullmatch(r"[0-9a-f]{32,}", cid):
        raise ValueError(f"content id must be a hex digest, not {source.content_id!r}")
    raw = Path(str(source.path)).suffix or Path(source.file_name or "").suffix
    suffix = re.sub(r"[^a-z0-9]", "", raw.lower())[:8]
    return cid[:32] + (f".{suffix}" if suffix else "")


def _copy(src: Path, dest: Path) -> None:
    """Copy via a temp file in dest's folder, so a full disk never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _is_under(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except (ValueError, OSError):
        return False
    return True


def _quietly(fn: Any) -> None:
    try:
        fn()
    except OSError:
        log.warning("file clean-up failed", exc_info=True)

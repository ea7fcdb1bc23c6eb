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

Nothing else in SonoTag opens the database.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .embeddings import EMBED_DIM, AudioEmbeddings
from .errors import SonoTagError
from .labels import LabelSet
from .sources import SourceInfo
from .windows import FRAMES_PER_WINDOW, hop_samples

DB_NAME = "sonotag.db"
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
)


class StoreError(SonoTagError):
    """The result store could not be read or written (disk full, damaged database)."""


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


class Store:
    """Thread-safe access to the database at ``<data_dir>/sonotag.db``."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _message(self, what: str, exc: BaseException) -> str:
        text = str(exc)
        if "full" in text.lower() or getattr(exc, "errno", None) == 28:
            return (f"The disk holding {self.path.parent} is full, so results could not be "
                    "saved. Free some space (or delete old analyses) and try again.")  # fmt: skip
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
        row = (
            self._conn()
            .execute(
                "SELECT n_samples, n_windows, starts, features FROM embeddings "
                "WHERE content_id = ? AND hop_s = ? AND checkpoint_sha256 = ?",
                (content_id, float(hop_s), checkpoint_sha256),
            )
            .fetchone()
        )
        return None if row is None else _embeddings(row, hop_s)

    # ------------------------------------------------------------ analyses

    def save_analysis(
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
    ) -> str:
        """Store source + embeddings (unless already there) + analysis in one transaction;
        returns the new analysis id (16 hex characters, unguessable)."""
        analysis_id = secrets.token_hex(8)
        now = time.time()
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO sources VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(content_id) DO "
                    "UPDATE SET title=excluded.title, url=COALESCE(excluded.url, url), "
                    "media_path=excluded.media_path",
                    (source.content_id, source.kind, source.title, source.url, source.file_name,
                     source.duration_s, source.uploader, str(source.path), now),
                )  # fmt: skip
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
                        (*key, int(embeddings.n_samples), embeddings.n_windows,
                         np.asarray(embeddings.starts, np.int64).tobytes(), feats.tobytes(), now),
                    )  # fmt: skip
                    embedding_id = cur.lastrowid
                else:
                    embedding_id = row[0]
                db.execute(
                    "INSERT INTO analyses VALUES (?,?,?,?,?,?,?,?)",
                    (analysis_id, embedding_id, json.dumps(list(labels.labels)),
                     json.dumps(sorted(labels.negatives)), json.dumps(dict(settings or {}), default=str),
                     model_name, float(seconds), now),
                )  # fmt: skip
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("save the analysis", exc)) from exc
        return analysis_id

    def get_analysis(self, analysis_id: str) -> StoredAnalysis | None:
        row = (
            self._conn()
            .execute(
                "SELECT a.id, a.labels, a.negatives, a.settings, a.model_name, a.seconds, a.created, "
                "e.hop_s, e.checkpoint_sha256, e.n_samples, e.n_windows, e.starts, e.features, "
                "s.content_id, s.kind, s.title, s.url, s.file_name, s.duration_s, s.uploader, "
                "s.media_path FROM analyses a JOIN embeddings e ON a.embedding_id = e.id "
                "JOIN sources s ON e.content_id = s.content_id WHERE a.id = ?",
                (analysis_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        (aid, labels, negatives, settings, model_name, seconds, created, hop_s, sha,
         n_samples, n_windows, starts, feats, cid, kind, title, url, file_name, duration,
         uploader, media_path) = row  # fmt: skip
        source = SourceInfo(kind, Path(media_path or ""), title, cid, file_name, duration,
                            uploader, url)  # fmt: skip
        return StoredAnalysis(
            aid, source, _embeddings((n_samples, n_windows, starts, feats), hop_s),
            LabelSet(tuple(json.loads(labels)), frozenset(json.loads(negatives))),
            json.loads(settings), model_name, sha, hop_s, seconds, created,
        )  # fmt: skip

    def list_analyses(self, limit: int = 500) -> list[AnalysisSummary]:
        rows = (
            self._conn()
            .execute(
                "SELECT a.id, s.title, s.kind, s.url, s.duration_s, a.labels, a.model_name, a.created "
                "FROM analyses a JOIN embeddings e ON a.embedding_id = e.id "
                "JOIN sources s ON e.content_id = s.content_id ORDER BY a.created DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [AnalysisSummary(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[6], r[7])
                for r in rows]  # fmt: skip

    def delete_analysis(self, analysis_id: str) -> bool:
        """Delete one analysis; embeddings no analysis uses any more go with it."""
        try:
            with self._tx() as db:
                gone = db.execute("DELETE FROM analyses WHERE id = ?", (analysis_id,)).rowcount
                db.execute(
                    "DELETE FROM embeddings WHERE id NOT IN (SELECT embedding_id FROM analyses)"
                )
                db.execute(
                    "DELETE FROM sources WHERE content_id NOT IN (SELECT content_id FROM embeddings)"
                )
        except sqlite3.Error as exc:
            raise StoreError(self._message("delete the analysis", exc)) from exc
        return bool(gone)


def _embeddings(row: tuple, hop_s: float) -> AudioEmbeddings:
    n_samples, n_windows, starts, feats = row
    features = np.frombuffer(feats, dtype=STORED_DTYPE).reshape(
        n_windows, FRAMES_PER_WINDOW, EMBED_DIM
    )
    return AudioEmbeddings(
        np.frombuffer(starts, dtype=np.int64).copy(),
        features.astype(np.float32),
        int(n_samples),
        hop_samples(hop_s),
    )

"""The one connection: opening, migrating, transactions and the errors users see.

Every concern of the store (:mod:`.analyses`, :mod:`.embeddings`, :mod:`.media`,
:mod:`.reviews`, :mod:`.calibrations`, :mod:`.attachments`) builds on :class:`StoreBase`,
so they all write through the same per-thread connection and the same transactions: an
analysis, its embeddings and its source commit together or not at all, whichever module
holds the SQL.

* SQLite in WAL mode, one connection per thread (``sqlite3`` connections must not be
  shared across threads; the dashboard serves sessions on several).
* ``PRAGMA user_version`` is the schema version; the migrations of :mod:`.schema` run
  forward only, and a database from a newer SonoTag is refused rather than damaged.
* Every sqlite or file-system error becomes one :class:`StoreError` that says what could
  not be done and what to do (a read-only data directory, a full disk).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sonotag_core.errors import StoreError
from sonotag_core.store.schema import DB_NAME, MEDIA_DIR, MIGRATIONS


class StoreBase:
    """The database at ``<data_dir>/sonotag.db`` and the kept-audio folder beside it
    (at most ``media_cap_bytes``; None = no cap), opened and migrated on construction."""

    def __init__(self, data_dir: str | Path, *, media_cap_bytes: int | None = None) -> None:
        if media_cap_bytes is not None and media_cap_bytes < 0:
            raise ValueError(f"media_cap_bytes must be None or >= 0, not {media_cap_bytes}")
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.media_dir = self.data_dir / MEDIA_DIR
        self.media_cap_bytes = media_cap_bytes
        self._local = threading.local()
        # kept files and their rows change together (keep, evict, delete): one at a time
        self._media_lock = threading.Lock()
        try:
            self.media_dir.mkdir(parents=True, exist_ok=True)
            with self._tx() as db:
                self._migrate(db)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(self._message("open", exc)) from exc

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

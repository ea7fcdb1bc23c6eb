"""Kept audio: the files the player needs, under ``<data_dir>/media``, bounded by a cap.

Uploads and downloads are kept named by content id (nothing of a user's file name reaches
the path but a filtered suffix). When the byte cap is passed, the least recently used
files are evicted first. Eviction removes only the audio: the analysis and its embeddings
stay, so it still opens, relabels and exports, without playback. A file and its ``media``
row change together under one lock; a row whose file went missing is forgotten.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sonotag_core.media.overview import forget_overview, overview_dir
from sonotag_core.media.sources import SourceInfo
from sonotag_core.store.connection import StoreBase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaUsage:
    """Kept audio on disk: how many files, how many bytes, and the cap (None = no cap)."""

    files: int
    bytes: int
    cap_bytes: int | None


class MediaMixin(StoreBase):
    """The kept-audio cache (part of :class:`~.database.Store`)."""

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

    def _unlink_orphans(self, orphans: list[tuple[str, str]]) -> None:
        """After a delete has committed: the kept files no analysis uses any more go, with
        the player's pictures of them (see :func:`.analyses.drop_unused`)."""
        for content_id, path in orphans:
            self._unlink_media(path)
            forget_overview(overview_dir(self.data_dir), content_id)  # the player's picture

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


def _stamp(db: sqlite3.Connection) -> float:
    """Now, but strictly later than every stored ``last_used`` (a clean LRU order)."""
    (latest,) = db.execute("SELECT MAX(last_used) FROM media").fetchone()
    now = time.time()
    return now if latest is None or now > latest else latest + 1e-6


def path_text(path: Path | str | None) -> str | None:
    text = "" if path is None else str(path)
    return None if text in ("", ".") else text


def _file(path: Path | str | None) -> Path | None:
    """The path if it names an existing regular file (``Path("")`` is "no file")."""
    text = path_text(path)
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

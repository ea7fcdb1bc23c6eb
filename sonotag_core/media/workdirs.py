"""Per-run working folders that a killed process cannot leak.

A run (a CLI analysis, a download's staging) works in ``<parent>/<prefix>XXXXXXXX/``,
which it removes when it ends. ``kill -9`` ends it before that, so every such folder
holds a lock file that its live owner keeps ``flock``-ed: the kernel drops the lock the
moment the process dies, however it dies. :func:`sweep` removes the folders whose lock
nobody holds — at once, not a day later — and, by age, old folders without a lock file
(left by versions before the lock, or by a run killed in the microseconds before it
took its lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".owner.lock"
STALE_AFTER_S = 24 * 3600  # a folder without a lock this old belongs to a dead process


@contextlib.contextmanager
def run_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """A fresh folder in ``parent``, locked while the ``with`` block runs, then removed.

    The lock is taken on a temporary name and then renamed into place, so a sweeper never
    sees a lock file that is not locked yet."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = -1
    try:
        fd = _take_lock(folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if fd >= 0:
            os.close(fd)


def _take_lock(folder: Path) -> int:
    """Lock ``folder`` for this process; the open descriptor, or -1 where no lock file can
    be made (a disk with no inodes left): the run goes on, swept by age if it dies."""
    taking = folder / f"{LOCK_NAME}.new"
    try:
        fd = os.open(taking, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except OSError:
        return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with contextlib.suppress(OSError):  # the pid is for people; a full disk may refuse it
            os.write(fd, f"{os.getpid()}\n".encode())
        os.replace(taking, folder / LOCK_NAME)
    except OSError:
        os.close(fd)
        return -1
    return fd


def _owner_alive(lock: Path) -> bool:
    """Whether a live process holds ``lock`` (trying to take it answers at once)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True  # cannot tell: keep the folder
    finally:
        os.close(fd)
    return False


def is_abandoned(folder: Path, max_age_s: float = STALE_AFTER_S) -> bool:
    """True for a run folder whose owner is gone: its lock is free, or it has no lock and
    has not changed for ``max_age_s``."""
    lock = folder / LOCK_NAME
    if lock.exists():
        return not _owner_alive(lock)
    return folder.stat().st_mtime < time.time() - max_age_s


def sweep(parent: Path, prefix: str, max_age_s: float = STALE_AFTER_S) -> int:
    """Remove the abandoned ``prefix*`` folders in ``parent``; returns how many went.
    Never fails: a folder that cannot be checked or removed is left for a later sweep."""
    try:
        entries = list(Path(parent).glob(f"{prefix}*"))
    except OSError:
        return 0
    gone = 0
    for entry in entries:
        try:
            if entry.is_dir() and not entry.is_symlink() and is_abandoned(entry, max_age_s):
                shutil.rmtree(entry)
                gone += 1
        except OSError:
            continue
    return gone

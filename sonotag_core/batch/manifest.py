"""MANIFEST -> the items of a batch: what to analyse, under which key, with which metadata.

A manifest is one of:

* a **folder**: every audio/video file below it (recursive, by extension, see
  :data:`MEDIA_SUFFIXES`; hidden files and folders, such as macOS ``._x.wav`` sidecars,
  are skipped; symlinked folders are not followed);
* a **text file** of paths or links, one per line; blank lines and lines starting with
  ``#`` are skipped;
* a **CSV/TSV, JSONL or Parquet** table with a ``source`` column; every other column
  becomes the item's ``meta``, carried into the output (as ``meta_<column>``).

Relative paths are resolved against the manifest's own folder, so a manifest travels with
its audio. Every local entry must exist when the manifest is read (its key needs the
file's size and time); a missing one is refused up front with the lines to fix, rather
than failing hours into a run.

**Keys** name an item's output files (``parts/<key>.parquet``): 32 hex characters, safe
on every filesystem, stable across runs and machines reading the same files.

* A local file: SHA-256 of its resolved path, size and ``st_mtime_ns``. Not the content
  hash: that means reading every file in full before the run starts and again to decode
  it, which for thousands of hours on a network drive is the run's cost twice; a file
  that is edited (new size or time) gets a new key and is analysed again.
* A link: SHA-256 of the normalised URL (YouTube and SoundCloud links in their canonical
  form, so ``youtu.be/ID`` and ``youtube.com/watch?v=ID&t=30`` are one item; other links
  with the scheme and host lower-cased, the default port and the fragment dropped).
  Whether a link is allowed is decided when it runs, by the same rules as the dashboard.

Entries with the same key appear once (the first, with its metadata).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from sonotag_core.batch import BatchError
from sonotag_core.errors import SourceError
from sonotag_core.media.sources import looks_like_url, parse_link
from sonotag_core.untrusted import quoted

#: Extensions of the audio and video files a folder manifest picks up (lower case). They
#: follow the demuxers ``sonotag_core.media.decode`` lets ffmpeg use.
AUDIO_SUFFIXES = frozenset(
    ".wav .wave .bwf .w64 .flac .mp3 .ogg .oga .opus .m4a .m4b .aac .aif .aiff .aifc .caf "
    ".au .snd .wv .ape .tta .amr .ac3 .eac3 .dts .wma .mka".split()
)
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .3gp .3g2 .mkv .webm .avi .flv .mpg .mpeg .ts .mts .m2ts .wmv .asf".split()
)
MEDIA_SUFFIXES = AUDIO_SUFFIXES | VIDEO_SUFFIXES
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
SOURCE_COLUMN = "source"
KEY_CHARS = 32
MAX_LISTED = 5  # how many bad entries an error message names
KINDS = (
    "a folder of audio/video files, a text file of paths or links (one per line), or a "
    "CSV/TSV/JSONL/Parquet file with a 'source' column"
)


@dataclass(frozen=True)
class Item:
    """One thing to analyse: ``source`` (an absolute path or a link as written), its
    ``key`` and the manifest's other columns for it (JSON values: str, int, float, bool
    or None)."""

    source: str
    key: str
    meta: dict[str, Any] = field(default_factory=dict)


def read_manifest(path: Path) -> list[Item]:
    """The items of a manifest, in its order, duplicates dropped; :class:`BatchError` for
    a missing, unreadable or empty manifest or entries that do not exist."""
    path = Path(path).expanduser()
    if not path.exists():
        raise BatchError(f"No such manifest: {quoted(path)}. Give {KINDS}.")
    if path.is_dir():
        rows: list[tuple[str, dict[str, Any]]] = [(str(p), {}) for p in _media_files(path)]
        if not rows:
            raise BatchError(
                f"No audio or video files under {quoted(path)} (looked for "
                f"{', '.join(sorted(MEDIA_SUFFIXES))}). Check the folder, or give {KINDS}."
            )
        return _items(rows, path)
    rows = _read_rows(path)
    if not rows:
        raise BatchError(f"The manifest {quoted(path)} lists nothing to analyse. Give {KINDS}.")
    return _items(rows, path.parent)


def file_key(path: Path) -> str:
    """The key of a local file: resolved path + size + mtime_ns (see the module doc)."""
    resolved = Path(path).resolve()
    st = resolved.stat()
    return _digest(f"file\0{resolved}\0{st.st_size}\0{st.st_mtime_ns}")


def link_key(text: str) -> str:
    """The key of a link: its normalised URL (see the module doc)."""
    return _digest(f"url\0{normalise_url(text)}")


def normalise_url(text: str) -> str:
    """The canonical URL of an accepted YouTube/SoundCloud link; for any other link the
    scheme and host lower-cased, default port, fragment and a trailing '/' path dropped."""
    raw = str(text).strip()
    try:
        return parse_link(raw).url
    except SourceError:
        pass
    if "://" not in raw:
        raw = "https://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:  # a malformed host or port: the text itself is the identity
        return raw
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        host = f"{parts.netloc.rsplit('@', 1)[0]}@{host}"
    return urlunsplit((scheme, host, parts.path if parts.path != "/" else "", parts.query, ""))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:KEY_CHARS]


def _media_files(folder: Path) -> Iterator[Path]:
    """Audio/video files below ``folder``, sorted, hidden names skipped."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in MEDIA_SUFFIXES:
                yield Path(root) / name


def _read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(source, meta) per entry of a manifest file, in file order."""
    suffix = path.suffix.lower()
    if suffix in MEDIA_SUFFIXES:
        raise BatchError(
            f"{quoted(path)} is an audio/video file, not a manifest: give the folder that "
            "holds it, or a text file that lists it."
        )
    try:
        if suffix in PARQUET_SUFFIXES:
            return _table_rows(pd.read_parquet(path), path)
        if TABLE_SUFFIXES.get(suffix) in ("csv", "tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
            return _table_rows(frame.replace("", None), path)
        if TABLE_SUFFIXES.get(suffix) == "jsonl":
            return _jsonl_rows(path)
        return [(line, {}) for line in _text_lines(path)]
    except BatchError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise BatchError(f"The manifest {quoted(path)} could not be read ({exc}).") from None


def _text_lines(path: Path) -> Iterator[str]:
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            yield entry


def _jsonl_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BatchError(
                f"Line {number} of {quoted(path)} is not JSON ({exc.msg}). Each line must be "
                'one object such as {"source": "a.wav"}.'
            ) from None
        if not isinstance(record, dict):
            raise BatchError(
                f'Line {number} of {quoted(path)} is not a JSON object such as {{"source": "a.wav"}}.'
            )
        records.append(record)
    return _table_rows(pd.DataFrame.from_records(records), path) if records else []


def _table_rows(frame: pd.DataFrame, path: Path) -> list[tuple[str, dict[str, Any]]]:
    if SOURCE_COLUMN not in frame.columns:
        found = ", ".join(quoted(c) for c in frame.columns) or "none"
        raise BatchError(
            f"The manifest {quoted(path)} has no {SOURCE_COLUMN!r} column (columns: {found}). "
            f"Name the column of paths or links {SOURCE_COLUMN!r}."
        )
    columns = [str(c) for c in frame.columns if c != SOURCE_COLUMN]
    rows = []
    for number, record in enumerate(frame.to_dict("records"), 1):
        source = _json_value(record[SOURCE_COLUMN])
        if source is None or not str(source).strip():
            raise BatchError(
                f"Row {number} of {quoted(path)} has no {SOURCE_COLUMN}: fill it in or remove the row."
            )
        rows.append((str(source).strip(), {c: _json_value(record[c]) for c in columns}))
    return rows


def _json_value(value: Any) -> Any:
    """A table cell as a JSON value: numpy scalars unwrapped, NaN/NA as None, anything
    else (a timestamp, a list) as its text."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _items(rows: Iterable[tuple[str, dict[str, Any]]], base: Path) -> list[Item]:
    """Rows -> items: keys, duplicates dropped, every item with the same meta columns."""
    items: dict[str, Item] = {}
    missing: list[str] = []
    for entry, meta in rows:
        item = _item(entry, meta, base)
        if item is None:
            missing.append(entry)
        elif item.key not in items:
            items[item.key] = item
    if missing:
        raise BatchError(_missing_message(missing, base))
    columns = list(dict.fromkeys(c for item in items.values() for c in item.meta))
    return [Item(i.source, i.key, {c: i.meta.get(c) for c in columns}) for i in items.values()]


def _item(entry: str, meta: dict[str, Any], base: Path) -> Item | None:
    """The item of one entry, or None when it is a local path that is not a file."""
    if looks_like_url(entry) and not (base / entry).exists():
        return Item(entry, link_key(entry), meta)
    path = Path(entry).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        if not path.is_file():
            return None
        resolved = path.resolve()
        return Item(str(resolved), file_key(resolved), meta)
    except (OSError, ValueError):  # a name the OS cannot look up (too long, NUL byte)
        return None


def _missing_message(missing: list[str], base: Path) -> str:
    shown_entries = ", ".join(quoted(m) for m in missing[:MAX_LISTED])
    more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
    return (
        f"{len(missing)} manifest entr{'y is' if len(missing) == 1 else 'ies are'} not an "
        f"existing file: {shown_entries}{more}. Fix or remove those entries (relative paths "
        f"are read from {quoted(base)})."
    )

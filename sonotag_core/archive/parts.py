"""A batch's output folder: one Parquet part per finished item, committed exactly once.

Layout of ``OUT``::

    OUT/_batch.json              what every part was made with (BatchSpec); a rerun with
                                 other settings is refused
    OUT/parts/<key>.parquet      one finished item (all its rows, see below)
    OUT/errors/<key>.json        why an item failed: {key, source, message, time}
    OUT/compacted/*.parquet      parts merged by compact(); _keys.json says which keys
                                 each file holds (a file it does not list is ignored)

**Exactly once.** A part is written to ``parts/.<key>.<pid>.<random>.tmp``, fsynced,
then published under its final name and the folder fsynced: a reader sees a whole part
or none, and a killed writer leaves only a ``.tmp`` (never read; :func:`sweep_temporaries`
removes it). Publishing is a hard link, which fails when ``<key>.parquet`` already exists,
so a retried task (Dask runs a task at least once) leaves the first part as it is and
drops its own: there are never two parts, so never two rows, for one key. (Where the
filesystem has no hard links it falls back to ``os.replace`` after checking the name is
free.) One file per item, not one per table, because one rename can only publish one
file: three files could be seen two-thirds committed.

**Schema** (``schema_version`` 2: 1 had no ``items`` rows). One table per part with a ``kind`` column; each kind
is written as its own row groups, so a reader filtering on ``kind`` skips the others by
their statistics, and columns of other kinds are null (stored as nothing but
definition levels):

=================  ===================  =======  ========  ========  ==========
column             type                 items    frames    events    embeddings
=================  ===================  =======  ========  ========  ==========
kind               string               "items"  "frames"  "events"  "embeddings"
key                string               x        x         x         x
source             string               x        x         x         x
title              string               x
content_id         string               x
n_samples          int64                x
hop_samples        int64                x
label              string                        x         x
frame              int32                         x
time_s             float64                       x
probability        float32                       x
onset_s            float64                                 x
offset_s           float64                                 x
peak               float64                                 x
mean               float64                                 x
window             int32                                             x
start_s            float64                                           x
embedding          list<float16>                                     x (32 * 512)
meta_<column>      string               x        x         x         x
=================  ===================  =======  ========  ========  ==========

* items: one row per item: its title, the SHA-256 of its audio bytes (the Library's
  content id), its decoded length at 48 kHz and the hop its windows were cut with.
* frames: one row per (label, frame); frame i starts at ``time_s = i * 0.3125`` s;
  ``probability`` is the timeline's (windows averaged where they overlap).
* events: as :func:`sonotag_core.domain.events.detect_events` reports them.
* embeddings: one row per 10-s window starting at ``start_s``; ``embedding`` holds its
  32 frames x 512 features row-major, float16 as the Library stores them. A
  variable-size list, not a fixed-size one: a null fixed-size list still allocates its
  16 384 values when read, and every frame row has one.
* meta: the manifest's other columns, as text (a JSON column can mix types from row to
  row; text is the one type every part agrees on). Null where the manifest had none.

Compact or read only while no run is writing to ``OUT``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sonotag_core.archive import BatchError
from sonotag_core.domain.embeddings import AudioEmbeddings, key_text
from sonotag_core.domain.events import EVENT_COLUMNS
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S, FRAMES_PER_WINDOW, SAMPLE_RATE
from sonotag_core.untrusted import quoted, shown

SCHEMA_VERSION = 2
BATCH_FILE = "_batch.json"
KEYS_FILE = "_keys.json"
PARTS, ERRORS, COMPACTED = "parts", "errors", "compacted"
META_PREFIX = "meta_"
KINDS = ("items", "events", "frames", "embeddings")  # the order rows are written in
FIELDS = pa.schema(
    [
        ("kind", pa.string()),
        ("key", pa.string()),
        ("source", pa.string()),
        ("title", pa.string()),
        ("content_id", pa.string()),
        ("n_samples", pa.int64()),
        ("hop_samples", pa.int64()),
        ("label", pa.string()),
        ("frame", pa.int32()),
        ("time_s", pa.float64()),
        ("probability", pa.float32()),
        ("onset_s", pa.float64()),
        ("offset_s", pa.float64()),
        ("peak", pa.float64()),
        ("mean", pa.float64()),
        ("window", pa.int32()),
        ("start_s", pa.float64()),
        ("embedding", pa.list_(pa.float16())),
    ]
)
#: kind -> its own columns (besides kind and the meta columns)
COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ("key", "source", "title", "content_id", "n_samples", "hop_samples"),
    "frames": ("key", "source", "label", "frame", "time_s", "probability"),
    "events": ("key", "source", *EVENT_COLUMNS),
    "embeddings": ("key", "source", "window", "start_s", "embedding"),
}
#: rows per row group: an embedding row is 32 KiB, so far fewer of them
ROW_GROUP_ROWS = {"items": 1_000_000, "frames": 1_000_000, "events": 1_000_000, "embeddings": 512}
COMPRESSION = "zstd"
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


# ---------------------------------------------------------------- the batch's settings


@dataclass(frozen=True)
class BatchSpec:
    """What every part of one output was made with; a rerun must match it field by field
    (otherwise old and new rows would mean different things in one table)."""

    model: str
    checkpoint_sha256: str
    labels: tuple[str, ...]
    hop_s: float
    negatives: tuple[str, ...] = ()
    events: Mapping[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "negatives", tuple(sorted({str(x) for x in self.negatives})))
        object.__setattr__(self, "hop_s", float(self.hop_s))
        object.__setattr__(self, "schema_version", int(self.schema_version))
        # as JSON gives it back, so a spec compares equal to the one read from _batch.json
        object.__setattr__(self, "events", json.loads(json.dumps(dict(self.events))))

    def to_json(self) -> str:
        data = asdict(self)
        data["labels"], data["negatives"] = list(self.labels), list(self.negatives)
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BatchSpec:
        """Parse :meth:`to_json`'s text; :class:`BatchError` when it is not a spec."""
        try:
            data = json.loads(text)
            names = {f.name for f in fields(cls)}
            if not isinstance(data, dict) or set(data) != names:
                raise ValueError("not the fields of a batch spec")
            return cls(**data)
        except (ValueError, TypeError) as exc:
            raise BatchError(f"Not a SonoTag batch settings file ({exc}).") from None

    def differences(self, other: BatchSpec) -> list[str]:
        """Names of the fields whose values differ."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


# ---------------------------------------------------------------- the output folder


@dataclass(frozen=True)
class Output:
    """An opened output folder (:func:`open_output`)."""

    root: Path
    spec: BatchSpec

    @property
    def parts_dir(self) -> Path:
        return self.root / PARTS

    @property
    def errors_dir(self) -> Path:
        return self.root / ERRORS

    def done_keys(self) -> set[str]:
        """Keys with a committed part, in parts/ or compacted/."""
        return _part_keys(self.root) | set(_compacted_keys(self.root))

    def _is_done(self, key: str) -> bool:
        """One key's :meth:`done_keys` test without listing every part."""
        return (self.parts_dir / f"{key}.parquet").exists() or key in _compacted_keys(self.root)

    def failed(self) -> dict[str, str]:
        """key -> message of the items whose last try failed and that are not done."""
        done = self.done_keys()
        out = {}
        for path in sorted(self.errors_dir.glob("*.json")):
            if path.name.startswith(".") or path.stem in done:
                continue
            try:
                out[path.stem] = str(json.loads(path.read_text(encoding="utf-8"))["message"])
            except (OSError, ValueError, KeyError, TypeError):
                out[path.stem] = "(the error record could not be read)"
        return out

    def commit(self, key: str, tables: Mapping[str, pd.DataFrame]) -> bool:
        """Publish one item's tables (``frames``/``events``/``embeddings``) as its part.
        False when the key was already committed: the existing part is kept. Clears the
        item's error record."""
        _check_key(key)
        if self._is_done(key):
            return False
        arrow = _item_arrow_tables(tables)
        tmp = _temp_name(self.parts_dir, key)
        try:
            _write_part(tmp, arrow)
            _fsync_file(tmp)
            published = _publish(tmp, self.parts_dir / f"{key}.parquet")
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.parts_dir)
        error = self.errors_dir / f"{key}.json"
        if error.exists():
            error.unlink(missing_ok=True)
            _fsync_dir(self.errors_dir)
        return published

    def fail(self, key: str, source: str, message: str) -> bool:
        """Record why an item failed (the latest try wins); False, and nothing written,
        when the item is already done."""
        _check_key(key)
        if self._is_done(key):
            return False
        record = {
            "key": key,
            "source": source,
            "message": message,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_json(self.errors_dir / f"{key}.json", record)
        return True


def open_output(out: Path, spec: BatchSpec) -> Output:
    """Create ``out`` for ``spec`` or reopen it to resume; :class:`BatchError` when it
    was made with other settings, or is some other non-empty folder."""
    out = Path(out).expanduser()
    batch_file = out / BATCH_FILE
    try:
        if not batch_file.exists():
            _check_fresh(out)
            out.mkdir(parents=True, exist_ok=True)
            _write_json_once(batch_file, spec.to_json())
        _check_same(out, spec, _read_spec(batch_file))
        for name in (PARTS, ERRORS):
            (out / name).mkdir(exist_ok=True)
    except OSError as exc:
        raise BatchError(f"The output folder {quoted(out)} cannot be used ({exc}).") from None
    return Output(out, spec)


def _check_fresh(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BatchError(f"{quoted(out)} is a file, not a folder: use a new -o folder.")
    if out.is_dir() and any(p.name not in (PARTS, ERRORS, COMPACTED) for p in out.iterdir()):
        raise BatchError(
            f"{quoted(out)} is not empty and is not a SonoTag batch output (no {BATCH_FILE}): "
            "use a new -o folder."
        )


def _read_spec(batch_file: Path) -> BatchSpec:
    try:
        return BatchSpec.from_json(batch_file.read_text(encoding="utf-8"))
    except BatchError as exc:
        raise BatchError(f"{quoted(batch_file)} is damaged: {exc} Use a new -o folder.") from None


def _check_same(out: Path, spec: BatchSpec, stored: BatchSpec) -> None:
    diff = spec.differences(stored)
    if diff:
        detail = "; ".join(
            f"{name}: {_field_text(name, stored)} before, {_field_text(name, spec)} now"
            for name in diff
        )
        raise BatchError(
            f"{quoted(out)} holds results made with other settings ({detail}). Rerun with the "
            "same settings to resume, or use a new -o folder."
        )


def _field_text(name: str, spec: BatchSpec) -> str:
    value = getattr(spec, name)
    return key_text(value) if name == "checkpoint_sha256" else shown(value, 60)


def sweep_temporaries(out: Path) -> int:
    """Remove the ``.*.tmp`` files killed writers left in ``out``; call it when a run
    starts, before any writer of this run. Returns how many were removed."""
    out = Path(out)
    count = 0
    for folder in (out, out / PARTS, out / ERRORS, out / COMPACTED):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            count += 1
    return count


# ---------------------------------------------------------------- one item's rows


def item_tables(
    key: str,
    source: str,
    meta: Mapping[str, Any],
    embeddings: AudioEmbeddings,
    timeline: Timeline,
    events: pd.DataFrame,
    *,
    title: str,
    content_id: str,
) -> dict[str, pd.DataFrame]:
    """One analysed item as the four tables of its part (see the module's schema)."""
    n_labels, n_frames = timeline.probabilities.shape
    frame = np.tile(np.arange(n_frames, dtype=np.int32), n_labels)
    tables = {
        "items": pd.DataFrame(
            {
                "title": [title],
                "content_id": [content_id],
                "n_samples": np.asarray([embeddings.n_samples], dtype=np.int64),
                "hop_samples": np.asarray([embeddings.hop], dtype=np.int64),
            }
        ),
        "frames": pd.DataFrame(
            {
                "label": np.repeat(np.asarray(timeline.labels, dtype=object), n_frames),
                "frame": frame,
                "time_s": frame.astype(np.float64) * FRAME_S,
                "probability": timeline.probabilities.reshape(-1).astype(np.float32),
            }
        ),
        "events": events.loc[:, list(EVENT_COLUMNS)].reset_index(drop=True),
        "embeddings": pd.DataFrame(
            {
                "window": np.arange(embeddings.n_windows, dtype=np.int32),
                "start_s": np.asarray(embeddings.starts, dtype=np.float64) / SAMPLE_RATE,
                "embedding": list(
                    embeddings.features.reshape(embeddings.n_windows, -1).astype(np.float16)
                ),
            }
        ),
    }
    extra = {"key": key, "source": source} | {
        META_PREFIX + name: _meta_text(value) for name, value in meta.items()
    }
    return {kind: df.assign(**extra)[[*extra, *df.columns]] for kind, df in tables.items()}


def _meta_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _item_arrow_tables(tables: Mapping[str, pd.DataFrame]) -> list[pa.Table]:
    unknown = set(tables) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown tables {sorted(unknown)}; expected {KINDS}")
    metas = dict.fromkeys(
        c for df in tables.values() for c in df.columns if str(c).startswith(META_PREFIX)
    )
    schema = FIELDS
    for name in metas:
        schema = schema.append(pa.field(name, pa.string()))
    return [_to_arrow(kind, tables[kind], schema) for kind in KINDS if kind in tables]


def _to_arrow(kind: str, df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """One kind's rows in the part's schema (other kinds' columns null)."""
    allowed = set(COLUMNS[kind])
    stray = [c for c in df.columns if c not in allowed and not str(c).startswith(META_PREFIX)]
    if stray:
        raise ValueError(f"{kind} has columns {stray} outside the schema")
    n = len(df)
    arrays = []
    for f in schema:
        if f.name == "kind":
            arrays.append(pa.array([kind] * n, pa.string()))
        elif f.name not in df.columns:
            arrays.append(pa.nulls(n, f.type))
        elif f.name == "embedding":
            arrays.append(_embedding_array(df["embedding"]))
        else:
            arrays.append(pa.array(df[f.name].to_numpy(), f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _embedding_array(column: pd.Series) -> pa.Array:
    values = [np.asarray(v, dtype=np.float16).reshape(-1) for v in column]
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([v.size for v in values], out=offsets[1:])
    flat = np.concatenate(values) if values else np.zeros(0, np.float16)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float16()))


def _write_part(path: Path, tables: list[pa.Table]) -> None:
    schema = tables[0].schema if tables else FIELDS
    with pq.ParquetWriter(path, schema, compression=COMPRESSION) as writer:
        for table in tables:
            if table.num_rows:
                kind = table.column("kind")[0].as_py()
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS[kind])


# ---------------------------------------------------------------- reading and compacting


def read_table(out: Path, kind: str, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """All rows of one kind across the output (parts and compacted files); by default
    the kind's own columns and every meta column."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    files = readable_files(Path(out))
    schema = pa.unify_schemas([FIELDS, *(pq.read_schema(f) for f in files)])
    wanted = list(columns) if columns is not None else _default_columns(kind, schema)
    if not files:
        return schema.empty_table().select(wanted).to_pandas()
    dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
    return dataset.to_table(columns=wanted, filter=pc.field("kind") == kind).to_pandas()


@dataclass(frozen=True)
class ItemRecord:
    """One finished item of an output, as its ``items`` row holds it."""

    key: str
    source: str
    title: str
    content_id: str
    n_samples: int
    hop_samples: int

    @property
    def duration_s(self) -> float:
        return self.n_samples / SAMPLE_RATE


def read_items(out: Path) -> list[ItemRecord]:
    """Every finished item of the output (only the ``items`` row groups are read)."""
    out = Path(out)
    spec = read_spec(out)
    if spec.schema_version < 2:
        raise BatchError(
            f"{quoted(out)} was written by an older SonoTag (batch schema "
            f"{spec.schema_version}) without per-item records: run the batch again into a "
            "new -o folder to attach it."
        )
    table = read_table(out, "items", COLUMNS["items"])
    return [
        ItemRecord(
            str(r.key),
            str(r.source),
            str(r.title),
            str(r.content_id),
            int(r.n_samples),
            int(r.hop_samples),
        )  # fmt: skip
        for r in table.itertuples(index=False)
    ]


def read_window_starts(out: Path) -> dict[str, np.ndarray]:
    """key -> its windows' start samples, in window order (the embeddings' small columns
    only: the embeddings themselves are not read)."""
    table = read_table(Path(out), "embeddings", ["key", "window", "start_s"])
    table = table.sort_values(["key", "window"], kind="stable")
    samples = np.rint(table["start_s"].to_numpy() * SAMPLE_RATE).astype(np.int64)
    keys = table["key"].to_numpy()
    return {str(k): samples[keys == k] for k in pd.unique(keys)}


def read_spec(out: Path) -> BatchSpec:
    """The settings an output was made with; :class:`BatchError` when it is not one."""
    batch_file = Path(out) / BATCH_FILE
    if not batch_file.is_file():
        raise BatchError(f"{quoted(out)} is not a SonoTag batch output (no {BATCH_FILE}).")
    try:
        return _read_spec(batch_file)
    except OSError as exc:
        raise BatchError(f"{quoted(batch_file)} cannot be read ({exc}).") from None


def read_embeddings(out: Path, key: str) -> AudioEmbeddings:
    """One item's embeddings as the Library keeps them: float16 features in window
    order, window starts in samples. Reads only the file that holds the key, and in it
    only the embedding rows of that key; :class:`BatchError` when they are not there."""
    _check_key(key)
    out = Path(out)
    path = _file_of(out, key)
    wanted = (pc.field("kind") == "embeddings") & (pc.field("key") == key)
    items = (pc.field("kind") == "items") & (pc.field("key") == key)
    try:
        dataset = ds.dataset(str(path), format="parquet")
        rows = dataset.to_table(columns=["window", "start_s", "embedding"], filter=wanted)
        item = dataset.to_table(columns=["n_samples", "hop_samples"], filter=items)
    except (OSError, pa.ArrowException) as exc:
        raise BatchError(f"{quoted(path)} cannot be read ({exc}).") from None
    if item.num_rows != 1:
        raise BatchError(f"{quoted(out)} has no item record for {key}.")
    order = np.argsort(rows.column("window").to_numpy())
    values = rows.column("embedding").combine_chunks()
    flat = values.flatten().to_numpy(zero_copy_only=False).astype(np.float16, copy=False)
    n = rows.num_rows
    features = flat.reshape(n, FRAMES_PER_WINDOW, -1)[order]
    starts = np.rint(rows.column("start_s").to_numpy()[order] * SAMPLE_RATE).astype(np.int64)
    return AudioEmbeddings(
        starts,
        features,
        int(item.column("n_samples")[0].as_py()),
        int(item.column("hop_samples")[0].as_py()),
    )


def _file_of(out: Path, key: str) -> Path:
    part = out / PARTS / f"{key}.parquet"
    for name, keys in _read_index(out).items():
        if key in keys:
            return out / COMPACTED / name
    if part.is_file():
        return part
    raise BatchError(
        f"{quoted(out)} holds no finished item {key}: the output was moved, deleted or "
        "rewritten. Attach it again from where it is now."
    )


def read_events(out: Path) -> pd.DataFrame:
    """Every event of every finished item: key, source, meta, label, onset_s, ..."""
    return read_table(out, "events")


def compact(out: Path, max_rows_per_file: int = 5_000_000) -> list[Path]:
    """Merge the parts into ``compacted/`` files of about ``max_rows_per_file`` rows (an
    item is never split) and delete the merged parts; returns the new files.

    Crash-safe at every step: a compacted file counts only once _keys.json lists it (an
    unlisted one is a crashed compact's and is removed), and a part whose key is listed
    is skipped by readers and deleted here."""
    out = Path(out)
    folder = out / COMPACTED
    folder.mkdir(exist_ok=True)
    index = _read_index(out)
    for orphan in folder.glob("*.parquet"):
        if orphan.name not in index:
            orphan.unlink()
    _delete_parts(out, set(_compacted_keys(out)))
    made = []
    for group in _groups(_part_files(out), max_rows_per_file):
        name = f"c{_next_number(index):06d}.parquet"
        tmp = _temp_name(folder, name)
        try:
            _merge(group, tmp)
            _fsync_file(tmp)
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(folder)
        index[name] = [p.stem for p in group]
        _write_json(folder / KEYS_FILE, index)
        _delete_parts(out, set(index[name]))
        made.append(folder / name)
    return made


def _default_columns(kind: str, schema: pa.Schema) -> list[str]:
    return [*COLUMNS[kind], *(n for n in schema.names if n.startswith(META_PREFIX))]


def readable_files(out: Path) -> list[Path]:
    """The files holding committed rows: listed compacted files, then the parts whose
    key no compacted file holds (each key in exactly one file)."""
    index = _read_index(out)
    compacted = {k for keys in index.values() for k in keys}
    listed = [out / COMPACTED / name for name in sorted(index)]
    return listed + [p for p in _part_files(out) if p.stem not in compacted]


def _part_files(out: Path) -> list[Path]:
    return sorted(
        p for p in (out / PARTS).glob("*.parquet") if not p.name.startswith(".") and p.is_file()
    )


def _part_keys(out: Path) -> set[str]:
    return {p.stem for p in _part_files(out)}


def _read_index(out: Path) -> dict[str, list[str]]:
    path = out / COMPACTED / KEYS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise BatchError(f"{quoted(path)} is damaged ({exc}).") from None
    return {str(name): [str(k) for k in keys] for name, keys in data.items()}


def _compacted_keys(out: Path) -> list[str]:
    return [k for keys in _read_index(out).values() for k in keys]


def _next_number(index: Mapping[str, object]) -> int:
    numbers = [int(m.group(1)) for n in index if (m := re.fullmatch(r"c(\d+)\.parquet", n))]
    return max(numbers, default=0) + 1


def _groups(parts: list[Path], max_rows: int) -> list[list[Path]]:
    groups: list[list[Path]] = []
    rows = 0
    for part in parts:
        n = pq.read_metadata(part).num_rows
        if not groups or (rows + n > max_rows and groups[-1]):
            groups.append([])
            rows = 0
        groups[-1].append(part)
        rows += n
    return groups


def _merge(parts: list[Path], dest: Path) -> None:
    """Write ``parts`` into one file, kind by kind, in row groups of bounded size (a
    part at a time in memory, plus at most one row group)."""
    schema = pa.unify_schemas([FIELDS, *(pq.read_schema(p) for p in parts)])
    with pq.ParquetWriter(dest, schema, compression=COMPRESSION) as writer:
        for kind in KINDS:
            buffer: list[pa.Table] = []
            for part in parts:
                table = pq.read_table(part, filters=[("kind", "==", kind)])
                buffer.append(_conform(table, schema))
                if sum(t.num_rows for t in buffer) >= ROW_GROUP_ROWS[kind]:
                    writer.write_table(pa.concat_tables(buffer), ROW_GROUP_ROWS[kind])
                    buffer = []
            if sum(t.num_rows for t in buffer):
                writer.write_table(pa.concat_tables(buffer), ROW_GROUP_ROWS[kind])


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    arrays = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _delete_parts(out: Path, keys: set[str]) -> None:
    gone = False
    for key in keys:
        part = out / PARTS / f"{key}.parquet"
        if part.exists():
            part.unlink()
            gone = True
    if gone:
        _fsync_dir(out / PARTS)


# ---------------------------------------------------------------- atomic files


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"not a batch key (1-64 of A-Z a-z 0-9 _ -): {shown(key)}")


def _temp_name(folder: Path, name: str) -> Path:
    return folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _publish(tmp: Path, final: Path) -> bool:
    """Give ``tmp`` the name ``final`` unless that name exists (then False)."""
    if final.exists():
        return False
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some network or FAT filesystems)
        if final.exists():
            return False
        os.replace(tmp, final)
    return True


def _write_json(path: Path, data: object) -> None:
    """Replace ``path`` atomically with ``data`` as JSON."""
    tmp = _temp_name(path.parent, path.name)
    try:
        _write_text_synced(tmp, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_json_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` atomically; if another process created it first,
    theirs is kept (the caller compares it)."""
    tmp = _temp_name(path.parent, path.name)
    try:
        _write_text_synced(tmp, text)
        _publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_text_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

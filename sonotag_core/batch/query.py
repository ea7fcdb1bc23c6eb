"""DuckDB views over a batch output: ``events``, ``frames`` and ``embeddings``, each the
rows of its kind across every committed part and compacted file (each key once), so
``sonotag batch query OUT "SELECT label, count(*) FROM events GROUP BY label"`` works
on thousands of files without loading them into memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sonotag_core.archive.parts import COLUMNS, KINDS, META_PREFIX, readable_files
from sonotag_core.batch import BatchError


def connect(out: Path):
    """An in-memory DuckDB connection with the output's three views."""
    try:
        import duckdb
    except ImportError:
        raise BatchError(
            "Querying a batch output needs DuckDB: pip install 'sonotag[dask]' "
            "(or: bash scripts/install.sh dask)."
        ) from None
    con = duckdb.connect()
    files = [str(f) for f in readable_files(Path(out))]
    if not files:
        raise BatchError(f"{out} holds no finished item yet: nothing to query.")
    listed = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    names = [
        r[0]
        for r in con.sql(
            f"DESCRIBE SELECT * FROM read_parquet({listed}, union_by_name=true)"
        ).fetchall()
    ]
    meta = [n for n in names if n.startswith(META_PREFIX)]
    for kind in KINDS:
        cols = ", ".join(f'"{c}"' for c in [*COLUMNS[kind], *meta])
        con.sql(
            f"CREATE VIEW {kind} AS SELECT {cols} FROM read_parquet({listed}, "
            f"union_by_name=true) WHERE kind = '{kind}'"
        )
    return con


def query(out: Path, sql: str) -> pd.DataFrame:
    """Run ``sql`` against the views; a SQL mistake is a BatchError with DuckDB's words."""
    import duckdb

    con = connect(out)
    try:
        return con.sql(sql).df()
    except duckdb.Error as exc:
        raise BatchError(f"The query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()

"""The stored layout: the one migration list, and the names every concern shares.

The schema is what existing databases hold, so it changes only by appending a migration
(``PRAGMA user_version`` counts the applied ones; :class:`.connection.StoreBase` applies
the rest when the store opens). The tables belong to several concerns (an analysis row
points at an embeddings row, which may point into an attachment), which is why the list
is kept whole here rather than split with the modules that read each table.
"""

from __future__ import annotations

import numpy as np

from sonotag_core.access import PUBLIC_KINDS

DB_NAME = "sonotag.db"
MEDIA_DIR = "media"
#: Embeddings are stored as float16: half the bytes of float32, and the probability error
#: that adds is measured in ``tests/test_store.py`` (below 1e-3).
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
    # 7: spans a reviewer marked where no event was (sonotag_core.domain.review.Span):
    # "added" (an event the model missed) or "negative" (checked: none of that label).
    # One per (analysis, label, onset frame, kind): marking it again replaces it.
    """
    CREATE TABLE spans (
        id INTEGER PRIMARY KEY,
        analysis_id TEXT NOT NULL REFERENCES analyses(id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        onset_frame INTEGER NOT NULL,
        onset_s REAL NOT NULL,
        offset_s REAL NOT NULL CHECK (offset_s > onset_s),
        kind TEXT NOT NULL CHECK (kind IN ('added', 'negative')),
        reviewer TEXT NOT NULL,
        updated REAL NOT NULL,
        UNIQUE (analysis_id, label, onset_frame, kind)
    );
    """,
    # 8: detectors: labels refined from reviews (sonotag_core.service.detectors), named
    # and versioned per owner; ``card`` is the whole JSON card (weights, example counts,
    # cross-validated metrics), the other columns what a list shows without parsing it.
    """
    CREATE TABLE detectors (
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        label TEXT NOT NULL,
        checkpoint_sha256 TEXT NOT NULL,
        threshold REAL,
        card TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (owner, name, version)
    );
    CREATE INDEX detectors_name ON detectors(name, version);
    """,
)


_PUBLIC_KINDS_SQL = ",".join(f"'{kind}'" for kind in sorted(PUBLIC_KINDS))  # constants only


def visible_sql(owner_column: str) -> str:
    """access.can_list as SQL (two ``?``: the owner id twice; NULL = every analysis).

    Shared by the analyses (the newest one a visitor may see) and the embeddings (what
    library search may read), so both list exactly what ``access.can_list`` allows.
    """
    return f"(? IS NULL OR {owner_column} = ? OR s.kind IN ({_PUBLIC_KINDS_SQL}))"

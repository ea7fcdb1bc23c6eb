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

**One class, one module per concern.** :class:`Store` is composed of one mixin per
concern, each in its own module over the one connection of :mod:`.connection` and the
one migration list of :mod:`.schema`:

* :mod:`.analyses`: analyses and their sources (add, update, open, list, delete);
* :mod:`.embeddings`: stored embeddings (read by key, streamed for library search);
* :mod:`.media`: kept audio for playback, under an LRU byte cap;
* :mod:`.reviews`: verdicts on events;
* :mod:`.spans`: spans a reviewer marked (events the model missed, checked absences);
* :mod:`.detectors`: labels refined from reviews (named, versioned), and the teaching reads;
* :mod:`.calibrations`: per-label thresholds per model;
* :mod:`.attachments`: batch outputs listed in the Library, embeddings left in place.

Mixins rather than a Store holding one repository per concern, because that keeps every
caller as it was: the service, the dashboard, the CLI, the benches and the tests call
``store.get_embeddings(...)``, ``store.keep_media(...)`` and so on, pass one ``Store``
around, and the tests' fault injection patches ``Store._conn`` or one method of one
store; repositories would have turned each call into ``store.<concern>.<method>`` and
left those patches behind. One transaction often spans concerns (an analysis with its
embeddings and source; a delete with the kept audio it frees), which shared ``self`` and
one ``_tx`` make plain. This module stays the public import path: the row types and
constants callers use are importable from here.
"""

from __future__ import annotations

from sonotag_core.errors import StoreError  # StoreError lives in errors; importable here too
from sonotag_core.store.analyses import AnalysesMixin, AnalysisSummary, StoredAnalysis
from sonotag_core.store.attachments import AttachmentsMixin
from sonotag_core.store.calibrations import CalibrationsMixin
from sonotag_core.store.detectors import DetectorsMixin, StoredDetector, TeachableAnalysis
from sonotag_core.store.embeddings import EmbeddingsMixin, StoredEmbeddings
from sonotag_core.store.media import MediaMixin, MediaUsage
from sonotag_core.store.reviews import ReviewsMixin
from sonotag_core.store.schema import DB_NAME, MEDIA_DIR, MIGRATIONS, STORED_DTYPE
from sonotag_core.store.spans import SpansMixin

__all__ = [
    "DB_NAME",
    "MEDIA_DIR",
    "MIGRATIONS",
    "STORED_DTYPE",
    "AnalysisSummary",
    "MediaUsage",
    "Store",
    "StoreError",
    "StoredAnalysis",
    "StoredDetector",
    "TeachableAnalysis",
    "StoredEmbeddings",
]


class Store(
    AnalysesMixin,
    EmbeddingsMixin,
    ReviewsMixin,
    SpansMixin,
    DetectorsMixin,
    CalibrationsMixin,
    AttachmentsMixin,
    MediaMixin,
):
    """Thread-safe access to the database at ``<data_dir>/sonotag.db`` and to the kept
    audio under ``<data_dir>/media`` (at most ``media_cap_bytes``; None = no cap).

    Opening creates or migrates the database (:class:`~.connection.StoreBase`); each base
    adds the methods of one concern.
    """

"""Batch outputs on disk: the Parquet part format (:mod:`.parts`), written by batch runs
and read by the batch tools and by the Library when an output is attached.

Below the service layer on purpose: the store reads an attached output's embeddings
from here, and the batch runner, which sits above the service, writes them.
"""

from __future__ import annotations

from sonotag_core.errors import SonoTagError


class BatchError(SonoTagError):
    """A batch cannot start or go on, or its output cannot be read: an unreadable or empty
    manifest, an output folder made with other settings or damaged, an entry that does not
    exist."""


__all__ = ["BatchError"]

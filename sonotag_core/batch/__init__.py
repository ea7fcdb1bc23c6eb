"""Batch mode: what to analyse (:mod:`.manifest`), the runner (a local loop or Dask) that
analyses each item through the service, and the tools over an output (:mod:`.query`).
Each finished item is committed exactly once by :class:`sonotag_core.archive.parts.Output`.
Importing this package stays cheap (no pyarrow) so its error can be caught anywhere.
"""

from __future__ import annotations

from sonotag_core.archive import BatchError

__all__ = ["BatchError"]

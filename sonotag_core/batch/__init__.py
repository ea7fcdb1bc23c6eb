"""Batch mode's storage core: what to analyse (:mod:`.manifest`) and where each finished
item is committed exactly once (:mod:`.parts`).

Nothing here runs a model: the runner (local loop or Dask) analyses an item through the
service and hands the result to :class:`sonotag_core.batch.parts.Output`. Importing this
package stays cheap (no pyarrow) so its error can be caught anywhere.
"""

from __future__ import annotations

from sonotag_core.errors import SonoTagError


class BatchError(SonoTagError):
    """A batch cannot start or go on: an unreadable or empty manifest, an output folder
    made with other settings or damaged, an entry that does not exist."""


__all__ = ["BatchError"]

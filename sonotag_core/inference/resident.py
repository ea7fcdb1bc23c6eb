"""Weights a step has finished with leave resident memory, not the process.

The checkpoint is memory-mapped (``torch.load(mmap=True)``), so the weights are clean
pages of a file: the kernel can drop them from this process and fault them back in from
the page cache when they are next read. The text encoder (roberta-base, ~0.5 GB) is
used for a moment per new label, then idles while the audio encoder's activations need
the room; handing its pages back (``MADV_PAGEOUT``) takes it out of the peak during an
encode. Contents never change: a page that was ever written (not the case for
inference weights) is anonymous memory, which the kernel keeps without swap.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import sys
from typing import Any

from sonotag_core.domain.spans import merge_overlapping

log = logging.getLogger(__name__)

#: linux/mman.h, Linux >= 5.4: reclaim these pages now (an older kernel answers EINVAL).
MADV_PAGEOUT = 21


def _madvise() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _madvise()


def weight_ranges(module: Any) -> list[tuple[int, int]]:
    """The page-aligned (start, end) address ranges of ``module``'s CPU weights, merged;
    a page partly shared with another tensor is left alone."""
    spans = merge_overlapping(
        {
            (s.data_ptr(), s.data_ptr() + s.nbytes())
            for p in [*module.parameters(), *module.buffers()]
            if p.device.type == "cpu" and (s := p.untyped_storage()).nbytes()
        }
    )
    page = mmap.PAGESIZE
    aligned = [(-(-a // page) * page, b // page * page) for a, b in spans]
    return [(a, b) for a, b in aligned if b > a]


def page_out(module: Any) -> int:
    """Ask the kernel to reclaim ``module``'s weight pages now; returns the bytes asked
    for (0 where the platform cannot, or for what holds no torch weights). Never fails:
    this only lowers resident memory."""
    import torch

    if _MADVISE is None or not isinstance(module, torch.nn.Module):
        return 0
    asked = 0
    for start, end in weight_ranges(module):
        if _MADVISE(start, end - start, MADV_PAGEOUT) != 0:
            log.debug("madvise(MADV_PAGEOUT) failed: errno %d", ctypes.get_errno())
            return asked
        asked += end - start
    return asked

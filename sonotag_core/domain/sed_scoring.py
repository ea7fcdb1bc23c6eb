"""What :mod:`.evaluation` (the table) and :mod:`.evaluation_curves` (the charts) share
about ``sed_scores_eval``: the DCASE parameters they score with, and the one adapter that
lets the library's Cython step run under pandas 3. Kept apart so that the table and the
curves import it, not each other, and a chart cannot be scored by other rules.

pandas 3 and sed_scores_eval 0.0.4: pandas 3's copy-on-write hands out read-only arrays
and the library's Cython detection step asks for writable buffers ("buffer source array
is read-only"). :func:`writable_detection` gives that one step private writable copies
(installed once, on first use), so SonoTag keeps pandas 3 for everything else; the
adapter is tested against the library's own pure-Python reference of the same step.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: DCASE 2021+ task 4 scenario 1 and 2
PSDS1 = {"dtc_threshold": 0.7, "gtc_threshold": 0.7, "cttc_threshold": None, "alpha_ct": 0.0}
PSDS2 = {"dtc_threshold": 0.1, "gtc_threshold": 0.1, "cttc_threshold": 0.3, "alpha_ct": 0.5}
PSDS_COMMON = {"alpha_st": 1.0, "unit_of_time": "hour", "max_efpr": 100.0}
COLLARS = {"onset_collar": 0.2, "offset_collar": 0.2, "offset_collar_rate": 0.2}
SEGMENT_S = 1.0

#: ground truth as sed_scores_eval takes it: file -> [(onset, offset, label), ...]
Events = Mapping[str, Sequence[tuple[float, float, str]]]


def single_class(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """A PSDS scenario scored one class at a time: no cross-trigger term (it needs other
    classes)."""
    return {**scenario, "cttc_threshold": None, "alpha_ct": 0.0}


_PATCH_LOCK = threading.Lock()
_PATCHED = False


def writable_detection() -> None:
    """Give sed_scores_eval's Cython step writable copies of its inputs (see module doc)."""
    global _PATCHED
    with _PATCH_LOCK:
        if _PATCHED:
            return
        with warnings.catch_warnings():  # dcase_util (under sed_eval) imports pkg_resources
            warnings.simplefilter("ignore", UserWarning)
            from sed_scores_eval.base_modules import statistics

        cython_curves = statistics.onset_offset_curves

        def onset_offset_curves(scores: Any, timestamps: Any, *rest: Any) -> Any:
            copies = [None if a is None else np.array(a, copy=True) for a in rest]
            return cython_curves(np.array(scores, copy=True), np.array(timestamps), *copies)

        statistics.onset_offset_curves = onset_offset_curves
        _PATCHED = True

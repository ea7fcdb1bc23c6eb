"""Lets psds_eval 0.5.3 (audioanalytic, last released 2021) run under pandas 3 / numpy 2.4,
so the tests can use it as an independent PSDS reference for sed_scores_eval.

Only the two calls that fail are patched, for the duration of :func:`patched`:

* ``PSDSEval.step_curve`` calls ``DataFrame.fillna(method='ffill')``; pandas 2.1
  deprecated ``fillna(method=...)`` and pandas 3.0 removed it (TypeError). Replaced by
  the same function with ``.ffill()``, line for line otherwise.
* ``PSDSEval._auc`` calls ``int(np.argwhere(_x == max_x))`` on a (1, 1) array; numpy
  1.25 deprecated converting an array with ``ndim > 0`` to a scalar, and numpy 2.4 raises
  TypeError for it (expired deprecation). Wrapped: the wrapper inserts ``max_x`` into the curve exactly as that
  branch does, so psds_eval's own code (checks and area) runs with ``max_x`` already
  present and never reaches the broken line.

Everything else is psds_eval's code as released. Its ``inplace=`` keywords warn under
pandas 3.1 (removal planned for pandas 4); the warning is silenced here, not patched.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd


def _step_curve(x: np.ndarray, xp: np.ndarray, yp: np.ndarray) -> np.ndarray:
    """psds_eval 0.5.3 ``PSDSEval.step_curve``, with ``.ffill()`` for ``fillna(method=)``."""
    from psds_eval.psds import PSDSEvalError

    roc_orig = pd.DataFrame({"x": xp, "y": yp})
    roc_valid_only = roc_orig.groupby("x").agg("max").reset_index().sort_values(by="x")
    if x.size < roc_valid_only.x.size:
        raise PSDSEvalError(f"x: {x.size}, xp: {xp.size}")
    roc_valid_only.y = roc_valid_only.y.cummax()
    # original: on="x").fillna(method='ffill').fillna(value=0)
    roc_new = (
        pd.merge(pd.Series(x, name="x"), roc_valid_only, how="outer", on="x")
        .ffill()
        .fillna(value=0)
    )
    return roc_new.y.values


def _auc_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    """``PSDSEval._auc`` with its "max_x not in x" branch done before the call."""

    def _auc(
        x: np.ndarray, y: np.ndarray, max_x: float | None = None, decreasing_y: bool = False
    ) -> Any:
        if (
            max_x is not None
            and isinstance(x, np.ndarray)
            and isinstance(y, np.ndarray)
            and max_x not in x
        ):
            _x = np.sort(np.concatenate([x, [max_x]]))
            # original: max_i = int(np.argwhere(_x == max_x))
            max_i = int(np.argwhere(_x == max_x)[0, 0])
            y = np.concatenate([y[:max_i], [y[max_i - 1]], y[max_i:]])
            x = _x
        return original(x, y, max_x, decreasing_y)

    return _auc


@contextmanager
def patched() -> Iterator[type]:
    """``PSDSEval`` usable under pandas 3 / numpy 2.4 inside the block; restored after."""
    from psds_eval import PSDSEval

    saved = {name: PSDSEval.__dict__[name] for name in ("step_curve", "_auc")}
    PSDSEval.step_curve = staticmethod(_step_curve)
    PSDSEval._auc = staticmethod(_auc_wrapper(saved["_auc"].__func__))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The inplace keyword")
            yield PSDSEval
    finally:
        for name, value in saved.items():
            setattr(PSDSEval, name, value)

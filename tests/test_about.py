"""What the About page says about the model (issue 9 A9): a failed load leads, and the
"loads on the first analysis" note does not sit above it."""

from __future__ import annotations

from sonotag_core.dashboard.about import (
    MODEL_LOADED,
    MODEL_LOADING,
    MODEL_NOT_LOADED,
    model_notices,
)


def test_a_load_error_comes_first_and_replaces_the_first_use_note():
    error = "The OpenFLAM weights are not in /data/hf-hub. Run `sonotag fetch-model`."
    notices = model_notices(loaded=False, error=error)
    assert notices[0] == ("error", error)
    assert all(kind != "info" for kind, _ in notices)  # no blue box at all, let alone above
    assert MODEL_NOT_LOADED not in [text for _, text in notices]


def test_not_loaded_and_loaded():
    assert model_notices(loaded=False) == [("info", MODEL_NOT_LOADED)]
    assert model_notices(loaded=True) == [("success", MODEL_LOADED)]
    assert model_notices(loaded=True, error="stale") == [("success", MODEL_LOADED)]


def test_loading_in_the_background_says_so_until_loaded():
    assert model_notices(loaded=False, loading=True) == [("info", MODEL_LOADING)]
    assert model_notices(loaded=True, loading=True) == [("success", MODEL_LOADED)]

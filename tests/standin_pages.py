"""A fixture for page tests in the fast tier: the dashboard's pages through AppTest on
the stand-in model (tests/standin.py), no OpenFLAM built. Import it into a test module."""

from __future__ import annotations

import pytest

#: ui_state's process-wide cached resources that settings feed (reset around a test)
CACHED = (
    "settings",
    "store",
    "rate_limiter",
    "audio_budget",
    "embedding_cache",
    "text_cache",
    "link_memo",
)


@pytest.fixture
def page_env(monkeypatch, tmp_path, standin_model):
    """SONOTAG_* for a page test (a data dir of its own, no model dir), the process-wide
    caches the settings feed reset around the test, and the stand-in as the loaded model."""
    import ui_state

    monkeypatch.setenv("SONOTAG_MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SONOTAG_THREADS", "1")
    monkeypatch.setenv("SONOTAG_PRELOAD", "0")
    monkeypatch.delenv("SONOTAG_TRUSTED_PROXIES", raising=False)

    def clear() -> None:
        for name in CACHED:
            getattr(getattr(ui_state, name, None), "clear", lambda: None)()  # or a test's own

    clear()
    monkeypatch.setattr(ui_state, "_loaded", standin_model)
    yield tmp_path
    clear()

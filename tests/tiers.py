"""The two test tiers, marked from what each test uses (tests/conftest.py applies this to
every collected test): ``bash scripts/test.sh --fast`` runs ``-m "not slow and not browser"``,
so a test that builds the model or starts a browser cannot be left in the fast tier by a
forgotten marker."""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import pytest

#: Fixtures that generate the OpenFLAM model (HTSAT + RoBERTa). Every model fixture of
#: tests/conftest.py (``settings``, ``model``, ``reference``, ``text_cache``, ``cli_env``)
#: and any fixture a test file builds on them requests ``model_cache``, so the fixture
#: closure of a test names it exactly when the test needs the model: that test is ``slow``.
#: (A test that overrides ``settings`` without the model stays fast, as it should.)
MODEL_FIXTURES = frozenset({"model_cache"})
#: Fixtures that drive a real browser (``browser`` is tests/test_browser.py's Chromium,
#: ``page`` pytest-playwright's).
BROWSER_FIXTURES = frozenset({"browser", "page"})


def _imports_playwright(module: Any) -> bool:
    """Whether a test module holds a Playwright module among its globals (a browser test)."""
    return any(
        isinstance(v, types.ModuleType) and v.__name__.startswith("playwright")
        for v in vars(module).values()
    )


def mark_tiers(items: Iterable[pytest.Item]) -> None:
    """Add ``slow`` to every item whose fixture closure holds a model fixture, and
    ``browser`` to every item using a browser fixture or living in a Playwright module."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & MODEL_FIXTURES:
            item.add_marker(pytest.mark.slow)
        module = getattr(item, "module", None)
        if used & BROWSER_FIXTURES or (module is not None and _imports_playwright(module)):
            item.add_marker(pytest.mark.browser)

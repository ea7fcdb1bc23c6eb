"""The test tiers (tests/tiers.py) and the fast tier's stand-in model (tests/standin.py):
a test that needs the model is slow however it reaches it, a Playwright test is a browser
test, and the stand-in runs the real code around the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from audiogen import make_audio
from standin import standin_loaded_model

from sonotag_core.domain.labels import LabelSet
from sonotag_core.inference.scoring import TextCache
from sonotag_core.service.analysis import embed_file, score

pytest_plugins = ["pytester"]

TESTS = Path(__file__).parent

INNER_CONFTEST = f"""
import sys
import pytest

sys.path.insert(0, {str(TESTS)!r})
from tiers import mark_tiers


def pytest_collection_modifyitems(config, items):
    mark_tiers(items)
    for item in items:
        print("TIER", item.name, *sorted(m.name for m in item.iter_markers()))


@pytest.fixture(scope="session")
def model_cache():
    return "stands for the generated checkpoint"


@pytest.fixture
def settings(model_cache):
    return model_cache


@pytest.fixture
def browser():
    return None
"""


def test_markers_follow_the_fixtures_and_modules_a_test_uses(pytester) -> None:
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(
        test_probe_plain="def test_plain(tmp_path): pass\n",
        test_probe_model="""
import pytest

@pytest.fixture
def store(settings):  # reaches the model through two fixtures
    return settings

def test_direct(model_cache): pass
def test_through_fixtures(store): pass
def test_plain_here(): pass
""",
        test_probe_override="""
import pytest

@pytest.fixture
def settings(tmp_path):  # a local settings that builds no model
    return tmp_path

def test_local_settings(settings): pass
""",
        test_probe_pages="""
import playwright.sync_api as sync_api

def test_in_a_playwright_module(): pass
""",
        test_probe_browser="def test_uses_browser(browser): pass\n",
    )
    result = pytester.runpytest_inprocess(
        "--collect-only", "-q", "-s", "-p", "no:cacheprovider", "--import-mode=importlib"
    )
    assert result.ret == 0, "\n".join(result.outlines)
    tiers = {
        name: set(marks)
        for _, name, *marks in (
            line.split() for line in result.outlines if line.startswith("TIER ")
        )
    }
    assert tiers == {
        "test_plain": set(),
        "test_plain_here": set(),
        "test_local_settings": set(),
        "test_direct": {"slow"},
        "test_through_fixtures": {"slow"},
        "test_in_a_playwright_module": {"browser"},
        "test_uses_browser": {"browser"},
    }


def test_the_standin_runs_the_real_pipeline_around_it(
    tmp_path, standin_model, standin_settings, encoder_calls
) -> None:
    """Windows go through the real batching into the stand-in (counted by encoder_calls,
    in whichever order the fixtures come), labels through the real text cache, and the
    frame map comes out finite and the same on a second stand-in."""
    clip = make_audio(tmp_path / "clip.wav", 25.0, kind="mix")
    labels = LabelSet(("a tone", "rain"))
    emb = embed_file(standin_model, clip, hop_s=10.0, settings=standin_settings)
    assert emb.n_windows == 3 and sum(encoder_calls) == 3
    assert standin_model.net.audio_calls == 1  # one batch of up to 4 windows
    first = score(TextCache(standin_model), emb, labels)
    assert standin_model.net.texts_encoded == ["a tone", "rain"]
    assert first.probabilities.shape == (2, first.n_frames) and first.duration_s == 25.0
    assert np.isfinite(first.probabilities).all()
    assert not np.allclose(first.probabilities[0], first.probabilities[1])  # labels differ
    other = standin_loaded_model()
    again = embed_file(other, clip, hop_s=10.0, settings=standin_settings)
    rescored = score(TextCache(other), again, labels)
    np.testing.assert_array_equal(rescored.probabilities, first.probabilities)
    assert standin_model.info.name == "standin-not-openflam"

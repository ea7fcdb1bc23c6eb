"""Shared fixtures: a random-weight OpenFLAM checkpoint in the Hugging Face cache layout,
generated once per test run and loaded through the same code users run, offline; and a
stand-in model for the fast tier, which tests what surrounds the model without building it.

Tiers (``bash scripts/test.sh --fast`` runs ``-m "not slow and not browser"``): every test
whose fixtures build or load the model is marked ``slow`` (tests/tiers.py), and every
Playwright test ``browser``, so no test can be left in the fast tier by a forgotten marker."""

from __future__ import annotations

import os

# Before anything imports huggingface_hub/transformers: resolve only from the local cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # for tests/audiogen.py

from tiers import mark_tiers  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tiers from what a test uses, not from what someone remembered to write."""
    mark_tiers(items)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory):
    """A generated OpenFLAM v1-base checkpoint (random weights, 2-layer text encoder)."""
    from sonotag_core.testing.random_checkpoint import build_random_checkpoint

    return build_random_checkpoint(
        tmp_path_factory.mktemp("hf") / "hub", text_layers=2, vocab_size=1000
    )


@pytest.fixture(scope="session")
def settings(model_cache, tmp_path_factory: pytest.TempPathFactory):
    from sonotag_core.settings import Settings

    data = tmp_path_factory.mktemp("data")
    return Settings(model_dir=str(model_cache.cache_dir), data_dir=str(data), threads=2).validated()


@pytest.fixture(scope="session")
def model(settings):
    """OpenFLAM loaded by sonotag_core.inference.model.load_model from the generated cache."""
    from sonotag_core.inference.model import load_model

    return load_model(settings)


@pytest.fixture(scope="session")
def reference(model_cache):
    """openflam's own OpenFLAM("v1-base"), built by its own __init__ from the same cache."""
    import openflam

    ref = openflam.OpenFLAM("v1-base", default_ckpt_path=str(model_cache.cache_dir))
    ref.eval()
    return ref


@pytest.fixture(scope="session")
def text_cache(model):
    from sonotag_core.inference.scoring import TextCache

    return TextCache(model)


@pytest.fixture(scope="session")
def cli_env(settings) -> dict[str, str]:
    """Environment for running the ``sonotag`` console script against the generated model."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        SONOTAG_MODEL_DIR=settings.model_dir,
        SONOTAG_DATA_DIR=settings.data_dir,
        SONOTAG_THREADS="2",
    )
    return env


@pytest.fixture
def cli_here(monkeypatch, cli_env, tmp_path):
    """The ``sonotag`` CLI in this process against the generated model, with its own
    SONOTAG_DATA_DIR under tmp_path: ``cli_here("analyze", ...)`` returns the exit code."""
    from sonotag_core.cli import main

    for key, value in cli_env.items():
        if key.startswith(("SONOTAG_", "HF_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    return lambda *args: main(list(args))


@pytest.fixture
def encoder_calls(monkeypatch) -> list[int]:
    """Windows that go through the audio encoder (the expensive step), batch by batch:
    ``sum(encoder_calls)`` proves whether a run reused stored or cached embeddings."""
    from sonotag_core.service import analysis

    calls: list[int] = []
    real = analysis.encode_windows

    def counting(model, windows, **kw):
        for starts, feats in real(model, windows, **kw):
            calls.append(len(starts))
            yield starts, feats

    monkeypatch.setattr(analysis, "encode_windows", counting)
    return calls


# ---------------------------------------------------------------- the fast tier's stand-in


@pytest.fixture
def standin_model():
    """A real ``LoadedModel`` (its lock and first-come-first-served queue are real) around
    ``tests/standin.py``'s StandInNet instead of OpenFLAM: for tests of what surrounds the
    model (progress, names in messages, caching, storing, the UI), which need some encoder,
    not this one. Its checkpoint hash is a stand-in's, so nothing it stores passes for an
    OpenFLAM result."""
    from standin import standin_loaded_model

    return standin_loaded_model()


@pytest.fixture
def standin_settings(tmp_path: Path):
    """Settings for a run with :func:`standin_model`: no model dir, and a data dir of its
    own (as the session's ``settings`` has), apart from any ``tmp_path / "data"`` a test
    makes itself."""
    from sonotag_core.settings import Settings

    return Settings(
        model_dir=str(tmp_path / "no-model"), data_dir=str(tmp_path / "settings-data"), threads=1
    ).validated()


#: the app context's process-wide cached resources that settings feed (reset around a test)
PAGE_CACHES = (
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
    """The dashboard's pages through AppTest in the fast tier: SONOTAG_* for a page test
    (a data dir of its own, no model dir), the process-wide caches the settings feed reset
    around the test, and the stand-in as the loaded model."""
    from sonotag_app import context

    monkeypatch.setenv("SONOTAG_MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SONOTAG_THREADS", "1")
    monkeypatch.setenv("SONOTAG_PRELOAD", "0")
    monkeypatch.delenv("SONOTAG_TRUSTED_PROXIES", raising=False)

    def clear() -> None:
        for name in PAGE_CACHES:
            getattr(getattr(context, name, None), "clear", lambda: None)()  # or a test's own

    clear()
    monkeypatch.setattr(context, "_loaded", standin_model)
    yield tmp_path
    clear()

"""Error families say what failed: each failure raises its own family, and the model
loader turns only "weights missing or unreadable" into ModelError, never our own bugs.

The loader tests stand a small ``torch.nn.Linear`` in for FLAM (named as such below), so
they run the real ``load_model`` error handling without building HTSAT."""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from test_exports import make_report

from sonotag_core import exports
from sonotag_core.domain.events import EventParams
from sonotag_core.errors import (
    ConfigError,
    DecodeError,
    LimitError,
    ModelError,
    NotFoundError,
    SonoTagError,
    SourceError,
    StoreError,
)
from sonotag_core.inference import model
from sonotag_core.media.examples import example_path
from sonotag_core.settings import Settings


def test_store_error_lives_in_errors_and_is_still_importable_from_store() -> None:
    from sonotag_core import errors
    from sonotag_core.store import database as store

    assert store.StoreError is errors.StoreError is StoreError
    assert issubclass(StoreError, SonoTagError)
    # a missing Library entry is the Library's answer, not a failed source
    assert issubclass(NotFoundError, StoreError) and not issubclass(NotFoundError, SourceError)


@pytest.mark.parametrize(
    ("call", "family", "message"),
    [
        (lambda tmp: exports.get_format("xlsx"), ConfigError, "Unknown export format 'xlsx'"),
        (lambda tmp: exports.export_zip(make_report(), stem="../x"), ConfigError, "plain file"),
        (lambda tmp: exports.export_all(make_report(), tmp, "a/b"), ConfigError, "plain file"),
        (lambda tmp: EventParams(threshold=1.0), ConfigError, "Threshold"),
        (lambda tmp: EventParams(median_frames=2), ConfigError, "odd number"),
        (lambda tmp: Settings.from_env({"SONOTAG_BATCH_SIZE": "x"}), ConfigError, "BATCH_SIZE"),
        (lambda tmp: Settings().with_(max_upload_mb=0), ConfigError, "MAX_UPLOAD_MB"),
        (lambda tmp: example_path("no-such", tmp), SourceError, "no example called 'no-such'"),
    ],
)
def test_each_failure_raises_its_family(
    tmp_path: Path, call: Callable[[Path], Any], family: type[SonoTagError], message: str
) -> None:
    with pytest.raises(family, match=message) as info:
        call(tmp_path)
    wrong = {LimitError, DecodeError, SourceError, ConfigError, StoreError} - {family}
    assert not isinstance(info.value, tuple(wrong)), type(info.value).__mro__


# ---------------------------------------------------------------- the model loader


class StandInOpenFLAM(torch.nn.Module):
    """Stands for ``openflam.OpenFLAM``: load_model only sets attributes on it."""


@pytest.fixture
def standin_loader(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """load_model with FLAM replaced by a 2x2 Linear layer; settings point at a local
    checkpoint path (``tmp_path/ckpt.pth``) that each test writes."""
    hook = types.SimpleNamespace(OpenFLAM=StandInOpenFLAM)
    monkeypatch.setattr(model, "openflam_hook", lambda: hook)
    monkeypatch.setattr(model, "build_flam", lambda cache_dir, **kw: torch.nn.Linear(2, 2))
    return Settings(
        model_dir=str(tmp_path / "hub"),
        data_dir=str(tmp_path / "data"),
        checkpoint=str(tmp_path / "ckpt.pth"),
        device="cpu",
        threads=torch.get_num_threads(),  # never change the process-wide thread count
    ).validated()


def test_standin_checkpoint_loads(standin_loader: Settings) -> None:
    """The control: a matching state dict loads, so the failures below are the file's."""
    weights = {"weight": torch.full((2, 2), 3.0), "bias": torch.zeros(2)}
    torch.save(weights, standin_loader.checkpoint)
    loaded = model.load_model(standin_loader)
    assert torch.equal(loaded.net.weight, weights["weight"])


class NotAllowed:
    """A class ``torch.load(weights_only=True)`` refuses to unpickle."""


@pytest.mark.parametrize(
    ("write", "detail"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint" * 64), "could not be loaded"),
        (lambda p: p.write_bytes(b""), "could not be loaded"),
        (lambda p: torch.save({"weight": torch.zeros(3, 3)}, p), "loading state_dict"),
        (lambda p: torch.save({"other": torch.zeros(1)}, p), "loading state_dict"),
        (lambda p: torch.save([torch.zeros(2)], p), "holds a list, not a state dict"),
        (lambda p: torch.save({"x": NotAllowed()}, p), "could not be loaded"),
    ],
    ids=["garbage", "empty", "shape", "keys", "list", "refused-pickle"],
)
def test_an_unreadable_checkpoint_is_a_model_error(
    standin_loader: Settings, write: Callable[[Path], Any], detail: str
) -> None:
    write(Path(standin_loader.checkpoint))
    with pytest.raises(ModelError, match="could not be loaded") as info:
        model.load_model(standin_loader)
    assert detail in str(info.value) and "sonotag fetch-model" in str(info.value)


def test_a_bug_while_loading_weights_propagates(
    standin_loader: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, standin_loader.checkpoint)

    def buggy_load(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("load() got an unexpected keyword argument")

    monkeypatch.setattr(torch, "load", buggy_load)
    with pytest.raises(TypeError, match="unexpected keyword"):
        model.load_model(standin_loader)


def test_a_bug_while_building_the_model_propagates(
    standin_loader: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy_build(cache_dir: str, **kw: Any) -> Any:
        raise TypeError("CLAPTextCfg() got an unexpected keyword argument")

    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, standin_loader.checkpoint)
    monkeypatch.setattr(model, "build_flam", buggy_build)
    with pytest.raises(TypeError, match="CLAPTextCfg"):
        model.load_model(standin_loader)


def _hub_settings(tmp_path: Path) -> Settings:
    return Settings(model_dir=str(tmp_path / "empty-hub"), data_dir=str(tmp_path)).validated()


def test_weights_missing_offline_is_a_model_error(tmp_path: Path) -> None:
    """The real hub call on an empty cache (the tests run with HF_HUB_OFFLINE=1)."""
    with pytest.raises(ModelError, match="weights are not available"):
        model.resolve_checkpoint(_hub_settings(tmp_path))


@pytest.mark.parametrize("where", ["resolve", "fetch"])
def test_a_bug_in_the_hub_lookup_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import huggingface_hub

    def buggy_download(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("hf_hub_download() got an unexpected keyword argument 'cachedir'")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", buggy_download)
    step = model.resolve_checkpoint if where == "resolve" else model.fetch_model
    with pytest.raises(TypeError, match="cachedir"):
        step(_hub_settings(tmp_path))


@pytest.mark.parametrize("where", ["resolve", "fetch"])
def test_hub_not_found_and_offline_errors_are_model_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    step = model.resolve_checkpoint if where == "resolve" else model.fetch_model
    errors = (
        LocalEntryNotFoundError("not cached"),
        OfflineModeIsEnabled("offline"),
        ConnectionError("unreachable"),
    )
    for error in errors:

        def failing(*args: Any, _error: BaseException = error, **kwargs: Any) -> Any:
            raise _error

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing)
        with pytest.raises(ModelError) as info:
            step(_hub_settings(tmp_path))
        assert info.value.__cause__ is error

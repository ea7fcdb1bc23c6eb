"""Loading OpenFLAM through the real path, offline, from the generated Hugging Face cache."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch

from sonotag_core.errors import ModelError
from sonotag_core.inference.model import CHECKPOINT_FILE, load_model, resolve_checkpoint
from sonotag_core.settings import Settings


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_loads_from_hub_cache_offline(model, model_cache):
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert model.checkpoint_path.name == CHECKPOINT_FILE
    assert model.info.checkpoint_sha256 == _sha256(model_cache.checkpoint_path)
    assert model.info.name == "openflam-v1-base"
    assert model.device == "cpu"
    assert not model.net.training
    # the real architecture: HTSAT-base audio branch, 768-wide text branch
    assert model.net.audio_branch.embed_dim == 128
    assert model.net.text_branch.config.hidden_size == 768


def test_weights_equal_openflams_own_loader(model, reference):
    ours = model.net.state_dict()
    theirs = reference.model.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_skipping_the_random_init_changes_no_tensor(model, reference):
    """load_model builds without the random fills (the checkpoint replaces them): every
    parameter and buffer, the non-persistent ones (STFT/mel matrices, masks) included,
    equals openflam's normally initialised model, and torch's fills work again after."""
    ours = dict(model.net.named_parameters()) | dict(model.net.named_buffers())
    theirs = dict(reference.model.named_parameters()) | dict(reference.model.named_buffers())
    assert ours.keys() == theirs.keys()
    non_persistent = set(theirs) - set(reference.model.state_dict())
    assert non_persistent  # the check covers buffers no checkpoint holds
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert torch.zeros(1000).uniform_(1.0, 2.0).min() >= 1.0


def test_local_checkpoint_override(tmp_path, settings, model, model_cache):
    local = tmp_path / "my.pth"
    shutil.copyfile(model_cache.checkpoint_path, local)
    m = load_model(settings.with_(checkpoint=str(local)))
    assert m.checkpoint_path == local
    assert (
        m.info.checkpoint_sha256 == model.info.checkpoint_sha256
    )  # hashed, not read from a blob name
    x = torch.zeros(1, 480_000)
    with torch.inference_mode():
        np.testing.assert_array_equal(
            m.net.get_local_audio_features(x).numpy(), model.net.get_local_audio_features(x).numpy()
        )


def test_missing_weights_say_what_to_do(tmp_path):
    empty = Settings(model_dir=str(tmp_path / "empty"), data_dir=str(tmp_path)).validated()
    with pytest.raises(ModelError) as info:
        load_model(empty)
    msg = str(info.value)
    assert (
        "sonotag fetch-model" in msg
        and "SONOTAG_MODEL_DIR" in msg
        and str(tmp_path / "empty") in msg
    )
    assert "kechenadobe/OpenFLAM/open_flam_oct17.pth" in msg


def test_missing_text_model_says_what_to_do(tmp_path, model_cache):
    """Checkpoint present, roberta-base missing: still a clear ModelError."""
    cache = tmp_path / "hub"
    shutil.copytree(
        model_cache.cache_dir / "models--kechenadobe--OpenFLAM",
        cache / "models--kechenadobe--OpenFLAM",
        symlinks=True,
    )
    s = Settings(model_dir=str(cache), data_dir=str(tmp_path)).validated()
    assert resolve_checkpoint(s).name == CHECKPOINT_FILE
    with pytest.raises(ModelError, match="roberta-base"):
        load_model(s)


def test_truncated_checkpoint_is_a_clear_error(tmp_path, settings, model_cache):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(model_cache.checkpoint_path.read_bytes()[:4096])
    with pytest.raises(ModelError, match="could not be loaded"):
        load_model(settings.with_(checkpoint=str(bad)))


def test_missing_local_checkpoint(tmp_path, settings):
    with pytest.raises(ModelError, match="is not a file"):
        load_model(settings.with_(checkpoint=str(tmp_path / "nope.pth")))


def test_fetch_model_offline_is_a_clear_error(tmp_path):
    from sonotag_core.inference.model import fetch_model

    with pytest.raises(ModelError, match="internet"):
        fetch_model(Settings(model_dir=str(tmp_path / "c"), data_dir=str(tmp_path)).validated())


def test_threads_come_from_settings(model):
    assert torch.get_num_threads() == model.threads == 2


def test_download_progress_reports_bytes_from_the_calling_thread(tmp_path):
    import threading
    import time

    from sonotag_core.inference.model import hub_blobs, with_download_progress

    blobs = hub_blobs(tmp_path, "kechenadobe/OpenFLAM")
    seen: list[tuple[float, str, bool]] = []
    caller = threading.get_ident()

    def fake_download() -> str:  # writes like huggingface_hub: <blob>.incomplete, then rename
        blobs.mkdir(parents=True)
        part = blobs / "abc.incomplete"
        with part.open("wb") as fh:
            for _ in range(4):
                fh.write(b"x" * 100_000)
                fh.flush()
                time.sleep(0.08)
        part.rename(blobs / "abc")
        return "done"

    got = with_download_progress(
        fake_download,
        blobs,
        lambda p: seen.append((p.done, p.message, threading.get_ident() == caller)),
        "Downloading the OpenFLAM weights",
        poll_s=0.05,
    )
    assert got == "done"
    sizes = [s for s, _, _ in seen]
    assert sizes and sizes == sorted(sizes) and 0 < sizes[-1] <= 400_000
    assert all(msg == "Downloading the OpenFLAM weights" and same for _, msg, same in seen)

    def failing():
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        with_download_progress(failing, blobs, lambda p: None, "x", poll_s=0.01)


def test_cached_checkpoint_needs_no_download(settings, model_cache, monkeypatch):
    import huggingface_hub

    def no_network(*a, **k):
        raise AssertionError("hf_hub_download called for a cached checkpoint")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    assert resolve_checkpoint(settings).name == "open_flam_oct17.pth"

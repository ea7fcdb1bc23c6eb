"""SONOTAG_BACKEND: the exact audio encoder through oneDNN gives openflam's numbers (the
fidelity tests compare the loaded model, on this backend, with openflam's own
``get_local_similarity``); here: that oneDNN really runs, that another openflam object
keeps its own modules, and that a backend that cannot run falls back to torch."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from sonotag_core.errors import ConfigError
from sonotag_core.inference import backend
from sonotag_core.settings import Settings

needs_onednn = pytest.mark.skipif(
    not backend.onednn_works(), reason="torch here has no working oneDNN inner product"
)


def _ops_run(net, windows: torch.Tensor) -> tuple[np.ndarray, set[str]]:
    """(features, names of the ops the audio encoder ran)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        feats = net.get_local_audio_features(windows)
    return feats.numpy(), {e.key for e in prof.key_averages()}


@pytest.fixture(scope="module")
def windows() -> torch.Tensor:
    rng = np.random.default_rng(3)
    return torch.from_numpy((0.1 * rng.standard_normal((2, 480_000))).astype(np.float32))


@needs_onednn
def test_auto_runs_the_audio_encoder_on_onednn_with_openflams_features(model, reference, windows):
    assert model.backend == "onednn"
    feats, ops = _ops_run(model.net, windows)
    assert "mkldnn::_linear_pointwise" in ops  # the Linear layers and fused MLPs
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in ops  # window attention
    assert "aten::addmm" not in ops
    assert "aten::_fft_r2c" in ops  # the spectrogram as one FFT
    # openflam's own object in the same process was left alone: its Linear layers are
    # torch's, and it computes the same features
    ref_feats, ref_ops = _ops_run(reference.model, windows)
    assert "aten::addmm" in ref_ops and "mkldnn::_linear_pointwise" not in ref_ops
    assert "aten::_fft_r2c" not in ref_ops
    np.testing.assert_allclose(feats, ref_feats, rtol=0, atol=1e-5)


@needs_onednn
def test_fast_mode_on_onednn_runs_openflams_modules_under_autocast(model, windows):
    from sonotag_core.inference.fast_mode import fast_audio_features

    with torch.inference_mode():
        exact = model.net.get_local_audio_features(windows).numpy()
        fast = fast_audio_features(model, windows).numpy()
    assert 0 < np.abs(fast - exact).max() < 0.05  # bf16: close, not equal


def test_a_backend_that_cannot_run_falls_back_to_torch(monkeypatch, caplog):
    monkeypatch.setattr(backend, "onednn_works", lambda: False)
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        assert backend.choose_backend("onednn", "cpu") == "torch"
    assert "cannot run" in caplog.text
    assert backend.choose_backend("auto", "cpu") == "torch"


def test_torch_is_kept_when_asked_and_on_a_gpu():
    assert backend.choose_backend("torch", "cpu") == "torch"
    assert backend.choose_backend("auto", "cuda:0") == "torch"
    assert backend.apply_backend(torch.nn.Linear(2, 2), "torch") == 0


def test_the_setting_names_its_values():
    with pytest.raises(ConfigError, match="SONOTAG_BACKEND must be auto, torch or onednn"):
        Settings(backend="openvino").validated()


def test_a_failed_probe_loads_a_working_torch_model(settings, monkeypatch, windows, reference):
    from sonotag_core.inference.model import load_model

    monkeypatch.setattr(backend, "onednn_works", lambda: False)
    fallback = load_model(settings.with_(backend="onednn"))
    assert fallback.backend == "torch"
    feats, ops = _ops_run(fallback.net, windows)
    assert "mkldnn::_linear_pointwise" not in ops
    ref_feats, _ = _ops_run(reference.model, windows)
    np.testing.assert_array_equal(feats, ref_feats)  # openflam's own modules, bit for bit


def test_the_fft_spectrogram_replaces_only_the_exact_windowed_dft():
    """torchlibrosa's conv spectrogram gets the FFT only while its frozen weights are the
    Hann-windowed DFT; then both give the same power spectrogram."""
    import types

    from torchlibrosa.stft import Spectrogram

    spec = Spectrogram(n_fft=64, hop_length=16, win_length=64, window="hann").eval()
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 1000)).astype(np.float32))
    window = backend._hann_dft(spec)
    assert window is not None
    with torch.inference_mode():
        want = spec(x)
        spec.sonotag_window = window
        got = types.MethodType(backend._power_spectrogram, spec)(x)
    assert got.shape == want.shape == (2, 1, 63, 33)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        spec.stft.conv_imag.weight[3, 0, 5] += 1e-3  # a fine-tuned front-end: not a DFT
    assert backend._hann_dft(spec) is None

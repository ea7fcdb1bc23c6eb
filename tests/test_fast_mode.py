"""Fast mode (bf16 audio encoder): within its error bound of the exact path, never mixed
up with it, and refused with a message where the hardware would make it slower."""

from __future__ import annotations

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.domain.windows import hop_samples, iter_windows
from sonotag_core.errors import ModelError
from sonotag_core.inference import fast_mode
from sonotag_core.inference.encode import encode_windows
from sonotag_core.inference.scoring import TextCache, frame_probabilities
from sonotag_core.media import decode

LABELS = ["dog barking", "siren", "a beeping tone", "rain"]


def features(model, audio: np.ndarray, *, fast: bool) -> np.ndarray:
    windows = list(iter_windows([audio], hop_samples(10.0)))
    return np.concatenate([f for _, f in encode_windows(model, windows, batch_size=2, fast=fast)])


def test_fast_mode_stays_within_its_bound_of_the_exact_path(model, tmp_path):
    if not fast_mode.native_bf16(model.device):
        pytest.skip("this CPU has no native bf16: fast mode is refused (next test)")
    audio = decode.decode_all(make_audio(tmp_path / "mix.wav", 25.0, kind="mix"))
    exact = features(model, audio, fast=False)
    fast = features(model, audio, fast=True)
    assert fast.dtype == np.float32 and fast.shape == exact.shape
    assert np.abs(fast - exact).max() > 1e-5  # it really ran in bf16...
    enc = TextCache(model).encode(LABELS)
    err = np.abs(frame_probabilities(fast, enc) - frame_probabilities(exact, enc)).max()
    assert err <= 0.01  # ...within the bound the Analyze page promises
    np.testing.assert_allclose(np.linalg.norm(fast, axis=-1), 1.0, atol=1e-5)


def test_fast_mode_is_refused_where_it_would_be_slower(model, monkeypatch, tmp_path):
    monkeypatch.setattr(fast_mode, "native_bf16", lambda device: False)
    audio = decode.decode_all(make_audio(tmp_path / "tone.wav", 5.0))
    with pytest.raises(ModelError, match="Turn fast mode off"):
        features(model, audio, fast=True)
    assert features(model, audio, fast=False).shape[1:] == (32, 512)  # exact still runs

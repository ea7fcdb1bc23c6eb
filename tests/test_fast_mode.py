"""Fast mode (bf16 audio encoder): within its error bound of the exact path, never mixed
up with it, and refused with a message where the hardware would make it slower."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core import exports
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.windows import hop_samples, iter_windows
from sonotag_core.errors import ModelError
from sonotag_core.inference import fast_mode
from sonotag_core.inference.embedding_cache import EmbeddingCache
from sonotag_core.inference.encode import encode_windows
from sonotag_core.inference.scoring import TextCache, frame_probabilities
from sonotag_core.media import decode
from sonotag_core.media.sources import from_path
from sonotag_core.service.api import Service
from sonotag_core.store.database import Store

LABELS = ["dog barking", "siren", "a beeping tone", "rain"]


def features(model, audio: np.ndarray, *, fast: bool) -> np.ndarray:
    windows = list(iter_windows([audio], hop_samples(10.0)))
    return np.concatenate([f for _, f in encode_windows(model, windows, batch_size=2, fast=fast)])


def needs_bf16(model) -> None:
    if not fast_mode.native_bf16(model.device):
        pytest.skip("this CPU has no native bf16: fast mode is refused (see the refusal test)")


def test_fast_mode_stays_within_its_bound_of_the_exact_path(model, tmp_path):
    needs_bf16(model)
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


def test_fast_and_exact_runs_are_kept_apart_and_say_which_they_are(
    tmp_path, model, settings, encoder_calls
):
    """One store and one cache for both modes: a fast run never reuses exact embeddings
    (or the other way round), each reopens as what it was, and its report, exports and
    Library search say and keep the mode."""
    needs_bf16(model)
    store, cache = Store(tmp_path / "data"), EmbeddingCache()
    exact = Service(model, settings, store, cache=cache)
    fast = Service(model, settings.with_(fast=True), store, cache=cache)
    clip = from_path(make_audio(tmp_path / "clip.wav", 12.0, kind="mix"))
    labels, params = LabelSet(("a beeping tone",)), EventParams.from_settings(settings)
    a = exact.analyse(clip, labels, hop_s=10.0, params=params)
    b = fast.analyse(clip, labels, hop_s=10.0, params=params)
    assert sum(encoder_calls) == 4  # 2 windows each: the fast run encoded for itself
    assert a.analysis_id != b.analysis_id and (a.fast, b.fast) == (False, True)
    assert not np.array_equal(a.embeddings.features, b.embeddings.features)
    again = fast.analyse(clip, labels, hop_s=10.0, params=params, save=False)
    assert again.reused and again.fast and again.analysis_id == b.analysis_id
    assert sum(encoder_calls) == 4
    opened = exact.open(b.analysis_id)  # an exact server opens a fast analysis as fast
    assert opened.fast and not exact.open(a.analysis_id).fast
    shown = json.loads(exports.export_text(exact.report(opened, labels, params), "json"))
    assert shown["settings"]["fast_mode"] is True
    assert exact.report(a, labels, params).settings["fast_mode"] is False
    assert {h.analysis_id for h in fast.search("a beeping tone")} == {b.analysis_id}
    assert {h.analysis_id for h in exact.search("a beeping tone")} == {a.analysis_id}


def test_the_cli_and_batch_take_fast(tmp_path, cli_here, capsys):
    """`--fast` on analyze says so in the export; a batch output made with --fast refuses
    an exact rerun (its rows would mean something else) and resumes a fast one."""
    if not fast_mode.offered("auto"):
        pytest.skip("this CPU has no native bf16: fast mode is refused")
    clip = make_audio(tmp_path / "c.wav", 12.0, kind="mix")
    assert cli_here("analyze", str(clip), "--labels", "a tone", "--fast", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["settings"]["fast_mode"] is True
    assert cli_here("analyze", str(clip), "--labels", "a tone", "--format", "json") == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["settings"]["fast_mode"] is False and "reused" not in out.err
    folder, result = tmp_path / "archive", tmp_path / "out"
    folder.mkdir()
    make_audio(folder / "one.wav", 6.0, kind="mix")
    assert cli_here("batch", str(folder), "-o", str(result), "--labels", "a tone", "--fast") == 0
    capsys.readouterr()
    assert cli_here("batch", str(folder), "-o", str(result), "--labels", "a tone") != 0
    said = r"checkpoint_sha256: [0-9a-f]{12}… \(fast mode\) before, [0-9a-f]{12}… now\)"
    assert re.search(said, capsys.readouterr().err)
    assert cli_here("batch", str(folder), "-o", str(result), "--labels", "a tone", "--fast") == 0
    assert "1 already done" in capsys.readouterr().err


def test_the_gpu_benchmark_runs_on_a_gpu_and_is_skipped_cleanly_without_one():
    import subprocess
    import sys
    from pathlib import Path

    import torch

    gpu = Path(__file__).resolve().parent.parent / "bench" / "gpu.py"
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run bench/gpu.py itself (it builds the full-size model)")
    done = subprocess.run(
        [sys.executable, str(gpu)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"skipped": True, "reason": "no CUDA GPU"}
    assert "no CUDA GPU visible here; skipped" in done.stderr

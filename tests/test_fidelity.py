"""The fast path equals openflam's own reference, within float tolerance.

Reference: ``OpenFLAM.get_local_similarity(audio, labels, method="unbiased",
cross_product=True)`` from openflam's own ``OpenFLAM("v1-base")`` on the same windows.
Fast path: sonotag's loader + batched audio encoder + cached text encodings + the map.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from audiogen import make_audio

from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.timeline import assemble
from sonotag_core.domain.windows import FRAME_SAMPLES, WINDOW_SAMPLES, hop_samples, tile
from sonotag_core.inference.scoring import frame_probabilities
from sonotag_core.media import decode
from sonotag_core.service.analysis import embed_file, score

LABELS = LabelSet(
    ("dog barking", "siren", "applause and cheering", "a man speaking"), frozenset({"siren"})
)
TOL = 1e-5


def _reference_windows(audio: np.ndarray, starts: list[int]) -> np.ndarray:
    """The model inputs, cut independently of sonotag's streaming windower."""
    if audio.size < WINDOW_SAMPLES:
        return tile(audio)[None]
    out = np.zeros((len(starts), WINDOW_SAMPLES), np.float32)
    for i, s in enumerate(starts):
        piece = audio[s : s + WINDOW_SAMPLES]
        out[i, : piece.size] = piece
    return out


def _reference_maps(reference, windows: np.ndarray, labels: list[str]) -> np.ndarray:
    maps = []
    for i in range(0, len(windows), 2):
        sim = reference.get_local_similarity(
            torch.from_numpy(windows[i : i + 2]), labels, method="unbiased", cross_product=True
        )
        maps.append(sim.numpy())
    return np.concatenate(maps)


@pytest.mark.parametrize(
    ("seconds", "hop_s", "kind"),
    [
        (3.3, 10.0, "mix"),
        (10.0, 10.0, "noise"),
        (37.3, 10.0, "mix"),
        (37.3, 5.0, "mix"),
        (23.0, 5.0, "noise"),
    ],
    ids=["short-3.3s", "exactly-10s", "37.3s", "37.3s-hop5", "23s-hop5"],
)
def test_fast_path_matches_openflam_reference(
    tmp_path, model, reference, text_cache, settings, seconds, hop_s, kind
):
    path = make_audio(tmp_path / f"clip_{seconds}.flac", seconds, kind=kind, freq=660)
    emb = embed_file(model, path, hop_s=hop_s, settings=settings)
    audio = decode.decode_all(path)
    assert emb.n_samples == audio.size

    windows = _reference_windows(audio, emb.starts.tolist())
    assert windows.shape[0] == emb.n_windows
    expected = _reference_maps(reference, windows, list(LABELS.labels))

    enc = text_cache.encode(LABELS.labels)
    fast = frame_probabilities(emb.features, enc)
    assert fast.shape == expected.shape == (emb.n_windows, len(LABELS.labels), 32)
    np.testing.assert_allclose(fast, expected, rtol=0, atol=TOL)

    # The assembled timeline is the reference maps averaged on the frame grid.
    timeline = score(text_cache, emb, LABELS)
    ref_tl = assemble(expected, emb.starts.tolist(), audio.size, LABELS.labels)
    assert timeline.probabilities.shape == (4, int(np.ceil(audio.size / FRAME_SAMPLES)))
    np.testing.assert_allclose(timeline.probabilities, ref_tl.probabilities, rtol=0, atol=TOL)
    assert timeline.frame_times_s[-1] < seconds


def test_overlap_hop_costs_about_twice_the_windows(tmp_path, model, settings):
    path = make_audio(tmp_path / "a.wav", 60.0, kind="noise")
    assert embed_file(model, path, hop_s=10.0, settings=settings).n_windows == 6
    assert embed_file(model, path, hop_s=5.0, settings=settings).n_windows == 11
    assert hop_samples(5.0) == 240_000


def test_single_label_works(model, reference, text_cache):
    """openflam's reference fails for one label (it squeezes the bias to 0-d); ours must not."""
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((1, WINDOW_SAMPLES))).astype(np.float32)
    with torch.inference_mode():
        feats = model.net.get_local_audio_features(torch.from_numpy(x)).numpy()
    one = frame_probabilities(feats, text_cache.encode(["siren"]))
    two = frame_probabilities(feats, text_cache.encode(["siren", "dog barking"]))
    np.testing.assert_allclose(one[:, 0], two[:, 0], rtol=0, atol=1e-6)
    expected = reference.get_local_similarity(
        torch.from_numpy(x), ["siren", "dog barking"], cross_product=True
    )
    np.testing.assert_allclose(one[:, 0], expected.numpy()[:, 0], rtol=0, atol=TOL)


def test_text_cache_reuses_encodings(model, text_cache, monkeypatch):
    from sonotag_core.inference import scoring

    text_cache.encode(["kettle whistle", "door knock"])
    calls = []
    real = scoring.encode_texts
    monkeypatch.setattr(scoring, "encode_texts", lambda m, t: calls.append(list(t)) or real(m, t))
    enc = text_cache.encode(["door knock", "glass breaking", "kettle whistle"])
    assert calls == [["glass breaking"]]
    assert enc.labels == ("door knock", "glass breaking", "kettle whistle")
    assert enc.features.shape == (3, 512)
    np.testing.assert_allclose(np.linalg.norm(enc.features, axis=1), 1.0, atol=1e-5)

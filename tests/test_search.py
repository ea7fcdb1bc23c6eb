"""Library search: the same probabilities as the Analyze page's timeline, the true top k
(checked against a brute force over every stored timeline), peaks spaced, clean errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.windows import FRAME_S, SAMPLE_RATE, hop_samples, window_starts
from sonotag_core.errors import ConfigError, LimitError
from sonotag_core.inference.scoring import frame_probabilities
from sonotag_core.media.sources import SourceInfo
from sonotag_core.service.analysis import score
from sonotag_core.service.search import search_library
from sonotag_core.store.database import Store

SHA = "5e" * 32
LABEL = "siren"


def source(name: str) -> SourceInfo:
    cid = hashlib.sha256(name.encode()).hexdigest()
    return SourceInfo("upload", Path(""), name, cid, f"{name}.wav", None)


def embeddings(seconds: float, hop_s: float, seed: int, toward=None, at_s=()) -> AudioEmbeddings:
    """Random unit-norm features on the real window layout; frames covering ``at_s`` lean
    toward the ``toward`` text vector (a planted sound)."""
    n_samples = int(seconds * SAMPLE_RATE)
    hop = hop_samples(hop_s)
    starts = np.asarray(window_starts(n_samples, hop), np.int64)
    rng = np.random.default_rng(seed)
    feats = rng.standard_normal((starts.size, 32, 512)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
    for t in at_s:
        for w, start in enumerate(starts):
            j = int(t / FRAME_S) - int(start) // 15_000
            if 0 <= j < 32:
                feats[w, j] += 0.6 * toward
    feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
    return AudioEmbeddings(starts, feats, n_samples, hop)


def save(store: Store, name: str, emb: AudioEmbeddings, hop_s: float, labels=("dog",)) -> str:
    return store.add_analysis(
        source(name), emb, LabelSet(labels), hop_s=hop_s, checkpoint_sha256=SHA, model_name="m"
    )


def greedy_peaks(values: np.ndarray, min_gap_s: float) -> list[tuple[float, int]]:
    """Reference non-maximum suppression, written plainly."""
    left = list(range(values.size))
    out = []
    while left:
        best = max(left, key=lambda i: (values[i], -i))
        out.append((float(values[best]), best))
        left = [i for i in left if abs(i - best) * FRAME_S >= min_gap_s - 1e-9]
    return out


def brute_force(store: Store, texts, ids: dict[str, str], top_k: int, min_gap_s: float):
    """Every stored timeline scored as the Analyze page scores it; the global top k."""
    timelines, peaks = {}, []
    for name, aid in ids.items():
        stored = store.get_analysis(aid)
        tl = score(texts, stored.embeddings, LabelSet((LABEL,)))
        timelines[stored.source.content_id] = tl.probabilities[0]
        peaks += [(v, name, f) for v, f in greedy_peaks(tl.probabilities[0], min_gap_s)]
    peaks.sort(key=lambda p: -p[0])
    return timelines, peaks[:top_k]


@pytest.mark.parametrize("hop_s", [10.0, 5.0])
def test_search_equals_the_timeline_and_the_true_top_k(tmp_path, text_cache, hop_s):
    store = Store(tmp_path)
    ids = {
        f"clip{i}": save(store, f"clip{i}", embeddings(s, hop_s, seed=i), hop_s)
        for i, s in enumerate((95.0, 41.3, 7.0, 240.0))
    }
    timelines, expected = brute_force(store, text_cache, ids, top_k=12, min_gap_s=5.0)
    hits = search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, top_k=12)
    assert len(hits) == 12
    # exactly the Analyze page's numbers (float32 values compared with ==), averaged at hop 5
    for hit in hits:
        frame = round(hit.time_s / FRAME_S)
        assert hit.time_s == frame * FRAME_S
        assert hit.probability == float(timelines[hit.content_id][frame])
        assert hit.analysis_id == ids[hit.title] and hit.labels.labels == ("dog",)
    assert [h.probability for h in hits] == [p[0] for p in expected]
    for cid in {h.content_id for h in hits}:  # peaks of one audio stay min_gap_s apart
        times = sorted(h.time_s for h in hits if h.content_id == cid)
        assert all(np.diff(times) >= 5.0)
    assert hits[0].probability == max(float(tl.max()) for tl in timelines.values())


def test_overlapping_windows_are_averaged(tmp_path, text_cache):
    """At hop 5 a frame's value is the mean over both windows, not either window's value."""
    toward = text_cache.encode((LABEL,)).features[0]
    store = Store(tmp_path)
    emb = embeddings(60.0, 5.0, seed=3, toward=toward, at_s=(30.0,))  # windows at 25 s and 30 s
    aid = save(store, "overlap", emb, 5.0)
    [hit] = search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, top_k=1)
    stored = store.get_analysis(aid).embeddings
    frame = round(hit.time_s / FRAME_S)
    maps = frame_probabilities(stored.features, text_cache.encode((LABEL,)))[:, 0]  # (windows, 32)
    singles = [
        float(maps[w, frame - int(start) // 15_000])
        for w, start in enumerate(stored.starts)
        if 0 <= frame - int(start) // 15_000 < 32
    ]
    assert hit.time_s == 30.0 and len(singles) == 2
    assert hit.probability == pytest.approx(float(np.mean(singles)), abs=1e-6)
    assert hit.probability not in singles


def test_planted_sounds_are_found_spaced_and_ordered(tmp_path, text_cache):
    toward = text_cache.encode((LABEL,)).features[0]
    store = Store(tmp_path)
    planted = (12.5, 13.75, 47.5, 100.0, 161.25)  # on the 0.3125-s frame grid
    save(store, "long", embeddings(180.0, 10.0, seed=1, toward=toward, at_s=planted), 10.0)
    save(store, "other", embeddings(30.0, 10.0, seed=2), 10.0)
    hits = search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, top_k=4, min_gap_s=5.0)
    assert [h.title for h in hits] == ["long"] * 4
    # 12.5 s and 13.75 s are one moment at a 5-s gap: the four best are four distinct sounds
    times = sorted(h.time_s for h in hits)
    assert times[0] in (12.5, 13.75) and times[1:] == [47.5, 100.0, 161.25]
    probs = [h.probability for h in hits]
    assert probs == sorted(probs, reverse=True)
    # without a gap, both come back among the best five
    dense = search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, top_k=5, min_gap_s=0)
    assert {12.5, 13.75} <= {h.time_s for h in dense}


def test_newest_analysis_is_the_hit_and_other_models_are_not_searched(tmp_path, text_cache):
    store = Store(tmp_path)
    emb = embeddings(20.0, 10.0, seed=4)
    save(store, "clip", emb, 10.0, labels=("dog",))
    newest = save(store, "clip", emb, 10.0, labels=("rain", "wind"))
    [hit] = search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, top_k=1)
    assert (hit.analysis_id, hit.labels.labels) == (newest, ("rain", "wind"))
    assert search_library(store, text_cache, LABEL, checkpoint_sha256="00" * 32) == []


def test_empty_store_and_bad_queries(tmp_path, text_cache):
    store = Store(tmp_path)
    assert search_library(store, text_cache, LABEL, checkpoint_sha256=SHA) == []
    for bad, message in [
        (" ", "at least one label"),
        ("x" * 101, "limit is 100"),
        ("siren; dog", "one sound at a time"),
    ]:
        with pytest.raises(LimitError, match=message):
            search_library(store, text_cache, bad, checkpoint_sha256=SHA)
    with pytest.raises(LimitError, match="limit is 20"):
        search_library(store, text_cache, "x" * 21, checkpoint_sha256=SHA, max_label_chars=20)
    with pytest.raises(ConfigError, match="at least one result"):
        search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, top_k=0)
    with pytest.raises(ConfigError, match="gap"):
        search_library(store, text_cache, LABEL, checkpoint_sha256=SHA, min_gap_s=-1)

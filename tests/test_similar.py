"""Find similar (query by example): a planted sound's copies come first (identical audio
gives identical embeddings), one result per moment, the example itself left out, only
what the viewer may see, "...but not <text>" subtracts the text's probability; the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from standin import STANDIN_SHA256

from sonotag_core.access import Viewer
from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.windows import FRAME_S, hop_samples, window_starts
from sonotag_core.errors import ConfigError, NotFoundError
from sonotag_core.inference.scoring import TextCache
from sonotag_core.media.sources import SourceInfo
from sonotag_core.service.api import Service
from sonotag_core.service.frames import frame_embeddings
from sonotag_core.service.search import TextRanker
from sonotag_core.service.similar import find_similar
from sonotag_core.store.database import Store

RNG = np.random.default_rng(7)
BASE = RNG.standard_normal(512)
#: a 4-frame planted sound (1.25 s): frames alike, not equal
PATTERN = [BASE + 0.5 * RNG.standard_normal(512) for _ in range(4)]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def scene(seconds: float, planted: list[int], *, hop_s: float = 10.0, seed: int = 0):
    """Embeddings of a ``seconds``-long audio of random frames with PATTERN at the given
    frames; each window-frame is its instant's frame (as the stand-in encoder gives)."""
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * 48_000)
    n_frames = int(np.ceil(n_samples / 15_000))
    frames = rng.standard_normal((n_frames + 64, 512))
    for at in planted:
        frames[at : at + len(PATTERN)] = PATTERN
    frames = unit(frames).astype(np.float32)
    starts = np.asarray(window_starts(n_samples, hop_samples(hop_s)), np.int64)
    feats = np.stack([frames[s // 15_000 : s // 15_000 + 32] for s in starts])
    return AudioEmbeddings(starts, feats, n_samples, hop_samples(hop_s))


def add(store: Store, name: str, emb: AudioEmbeddings, owner: str = "operator", kind="upload"):
    cid = hashlib.sha256(name.encode()).hexdigest()
    src = SourceInfo(kind, Path(""), name, cid, f"{name}.wav", emb.duration_s)
    hop_s = emb.hop / 48_000
    return store.add_analysis(
        src, emb, LabelSet(("x",)), hop_s=hop_s, checkpoint_sha256=STANDIN_SHA256,
        model_name="standin", owner=owner,
    )  # fmt: skip


@pytest.fixture
def library(tmp_path):
    store = Store(tmp_path)
    ids = {
        "example": add(store, "example", scene(30.0, [40], seed=1)),
        "copies": add(store, "copies", scene(30.0, [10, 70], seed=2)),
        "overlap": add(store, "overlap", scene(25.0, [33], hop_s=5.0, seed=3)),
        "nothing": add(store, "nothing", scene(40.0, [], seed=4)),
        "bobs": add(store, "bobs", scene(20.0, [20], seed=5), owner="visitor:bob"),
    }
    return store, ids


def test_planted_copies_come_first(library, standin_model):
    store, ids = library
    texts = TextCache(standin_model)
    hits = find_similar(
        store, texts, ids["example"], 12.5, 13.75, checkpoint_sha256=STANDIN_SHA256, top_k=8
    )
    found = [(h.title, round(h.time_s / FRAME_S)) for h in hits[:4]]
    assert sorted(found) == [("bobs", 20), ("copies", 10), ("copies", 70), ("overlap", 33)]
    assert hits[4].similarity < hits[3].similarity - 0.3  # then the unrelated moments
    # identical audio, identical embeddings: every copy scores what the example does
    example = frame_embeddings(store.get_analysis(ids["example"]).embeddings, 40, 44)
    mean = unit(example.astype(np.float64).mean(0))
    itself = float((example @ mean).mean())
    assert [h.similarity for h in hits[:4]] == pytest.approx([itself] * 4, abs=2e-3)
    assert hits[0].end_s - hits[0].time_s == pytest.approx(4 * FRAME_S)
    # the example's own stretch is not a result; one result per moment (5 s apart)
    assert not any(h.title == "example" and abs(h.time_s - 12.5) < 1.25 for h in hits)
    for a in hits:
        for b in hits:
            if a is not b and a.content_id == b.content_id:
                assert abs(a.time_s - b.time_s) >= 5.0 - 1e-9


def test_only_what_the_viewer_may_see(library, standin_model):
    store, ids = library
    hits = find_similar(
        store, TextCache(standin_model), ids["example"], 12.5, 13.75,
        checkpoint_sha256=STANDIN_SHA256, visible_to="visitor:alice",
    )  # fmt: skip
    assert hits == []  # alice made none of these uploads
    mine = find_similar(
        store, TextCache(standin_model), ids["example"], 12.5, 13.75,
        checkpoint_sha256=STANDIN_SHA256, visible_to="visitor:bob", top_k=3,
    )  # fmt: skip
    assert {h.title for h in mine} == {"bobs"}


def test_but_not_text_subtracts_its_probability(library, standin_model):
    store, ids = library
    texts = TextCache(standin_model)
    plain = find_similar(
        store, texts, ids["example"], 12.5, 13.75, checkpoint_sha256=STANDIN_SHA256, top_k=3
    )
    minus = find_similar(
        store, texts, ids["example"], 12.5, 13.75, checkpoint_sha256=STANDIN_SHA256, top_k=3,
        not_text="a dog barking",
    )  # fmt: skip
    ranker = TextRanker(texts.encode(("a dog barking",)))
    for hit in minus:
        [stored] = [s for s in store.iter_embeddings(STANDIN_SHA256) if s.title == hit.title]
        first = round(hit.time_s / FRAME_S)
        penalty = ranker.frames(stored)[first : first + 4].mean()
        same = [p for p in plain if (p.title, p.time_s) == (hit.title, hit.time_s)]
        if same:
            assert hit.similarity == pytest.approx(same[0].similarity - penalty, abs=1e-9)
        assert 0.0 < penalty < 1.0


def test_bad_examples_are_refused(library, standin_model):
    store, ids = library
    texts = TextCache(standin_model)
    kw = {"checkpoint_sha256": STANDIN_SHA256}
    with pytest.raises(ConfigError, match="ends after"):
        find_similar(store, texts, ids["example"], 3.0, 2.0, **kw)
    with pytest.raises(ConfigError, match="after the end"):
        find_similar(store, texts, ids["example"], 31.0, 32.0, **kw)
    with pytest.raises(NotFoundError):
        find_similar(store, texts, "0" * 32, 1.0, 2.0, **kw)
    with pytest.raises(ConfigError, match="at least one"):
        find_similar(store, texts, ids["example"], 1.0, 2.0, top_k=0, **kw)


def test_service_and_cli(library, standin_model, standin_settings, monkeypatch, capsys, tmp_path):
    store, ids = library
    service = Service(standin_model, standin_settings, store)
    hits = service.similar(ids["example"], 12.5, 13.75, viewer=Viewer("visitor:bob"))
    assert {h.title for h in hits} == {"bobs"} and hits[0].time_s == 20 * FRAME_S
    from sonotag_core.cli import main
    from sonotag_core.inference import model

    monkeypatch.setenv("SONOTAG_DATA_DIR", str(store.data_dir))
    monkeypatch.setattr(model, "load_model", lambda *a, **k: standin_model)
    out = tmp_path / "similar.tsv"
    assert main(["library", "similar", ids["example"], "--at", "0:12.5", "--to", "13.75",
                 "--top", "4", "-o", str(out)]) == 0  # fmt: skip
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    assert {line.split("\t")[2] for line in lines} == {"bobs", "copies", "overlap"}
    assert main(["library", "similar", ids["example"], "--at", "x", "--to", "1"]) != 0
    assert "--at expects seconds" in capsys.readouterr().err


def test_planted_copies_in_real_audio_come_first(tmp_path, standin_model, standin_settings):
    """Through the encoder: a 1.25-s burst planted (on the frame grid) in three recordings
    over different noise; Find similar on one copy lists the other two first."""
    import soundfile

    from sonotag_core.media.sources import from_path

    rate = 48_000
    t = np.arange(int(1.25 * rate)) / rate
    burst = (0.5 * np.sin(2 * np.pi * (300 + 900 * t) * t)).astype(np.float32)
    at = {"a": [12.5], "b": [3.125, 21.875], "c": []}
    service = Service(standin_model, standin_settings, Store(tmp_path / "lib"))
    analysed = {}
    for seed, (name, times) in enumerate(at.items()):
        audio = 0.02 * np.random.default_rng(seed).standard_normal(30 * rate).astype(np.float32)
        for start in times:
            audio[int(start * rate) : int(start * rate) + burst.size] = burst
        path = tmp_path / f"{name}.wav"
        soundfile.write(path, audio, rate)
        labels = LabelSet(("x",))
        done = service.analyse(from_path(str(path)), labels, hop_s=10.0, params=EventParams())
        analysed[name] = done.analysis_id
    hits = service.similar(analysed["a"], 12.5, 13.75, top_k=4)
    assert [(h.title, h.time_s) for h in hits[:2]] in (
        [("b", 3.125), ("b", 21.875)],
        [("b", 21.875), ("b", 3.125)],
    )
    assert hits[0].similarity == pytest.approx(hits[1].similarity, abs=1e-3)
    assert hits[2].similarity < hits[1].similarity - 0.05

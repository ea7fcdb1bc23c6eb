"""Benchmark: the result store at library scale (100 stored hours by default).

Uses the full-size random checkpoint of bench/pipeline.py (built there on first run) and
fills a temporary data dir (removed at the end) with one-hour sources of random unit-norm
embeddings, written through ``Store.add_analysis`` (float16, as real analyses are kept).
Measured in one run:

* relabel: open a stored 60-min analysis (``get_analysis``), encode 20 new labels, frame
  map, events: what the Analyze page does on a relabel. Compared with the original
  analysis of that hour, whose audio-encoder time is measured on 4 real windows and
  **extrapolated** to 360 windows;
* search: all stored hours for one label, cold (first search after opening the store,
  label not encoded yet) and warm (a second search, another label);
* database size per audio hour.

Prints human lines, then one JSON line with relabel_s, relabel_ratio, original_analysis_s,
search_s, search_warm_s, db_mb_per_hour, hours, float16_max_prob_diff (the probability
error float16 storage adds, on real encoder output of the full-size model).

Usage: .venv/bin/python bench/store.py [--hours 100] [--profile]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from pipeline import CACHE, LABELS, ensure_checkpoint, make_audio, settings_for  # noqa: E402

WINDOWS_PER_HOUR = 360
SHA_NOTE = "random weights: the figures depend on sizes, not on what the audio sounds like"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fill(store, model, hours: int) -> list[str]:
    """``hours`` one-hour sources of random unit-norm embeddings; returns analysis ids."""
    from sonotag_core.domain.embeddings import AudioEmbeddings
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.media.sources import SourceInfo

    rng = np.random.default_rng(0)
    n_samples = WINDOWS_PER_HOUR * 480_000
    starts = np.arange(WINDOWS_PER_HOUR, dtype=np.int64) * 480_000
    ids = []
    for h in range(hours):
        feats = rng.standard_normal((WINDOWS_PER_HOUR, 32, 512), dtype=np.float32)
        feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
        cid = f"{h:064x}"
        src = SourceInfo("upload", Path(""), f"hour {h:03d}", cid, f"hour{h}.wav", 3600.0)
        ids.append(
            store.add_analysis(
                src,
                AudioEmbeddings(starts, feats, n_samples, 480_000),
                LabelSet(tuple(LABELS)),
                hop_s=10.0,
                checkpoint_sha256=model.info.checkpoint_sha256,
                model_name=model.info.name,
            )
        )
    return ids


def encoder_s_per_window(model, settings):
    """(seconds per window, embeddings): the audio encoder (with decoding) on 4 real 10-s
    windows, after a warm-up."""
    from sonotag_core.service.analysis import embed_file

    embed_file(model, make_audio(CACHE / "warm.wav", 10.0), hop_s=10.0, settings=settings)
    t0 = time.perf_counter()
    emb = embed_file(
        model, make_audio(CACHE / "audio_40s.wav", 40.0), hop_s=10.0, settings=settings
    )
    return (time.perf_counter() - t0) / emb.n_windows, emb


def float16_error(texts, emb) -> float:
    """Largest probability change that float16 storage adds, on real encoder output of the
    full-size model (the store keeps embeddings as float16)."""
    from dataclasses import replace

    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.service.analysis import score

    labels = LabelSet(tuple(LABELS))
    exact = score(texts, emb, labels).probabilities
    half = replace(emb, features=emb.features.astype(np.float16).astype(np.float32))
    return float(np.abs(score(texts, half, labels).probabilities - exact).max())


def relabel(store, texts, analysis_id: str) -> tuple[float, int]:
    """What the page does on a relabel of a stored analysis; (seconds, events)."""
    from sonotag_core.domain.events import EventParams, detect_events
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.service.analysis import score

    labels = LabelSet(tuple(f"{w} {i}" for i, w in enumerate((LABELS * 2)[:20])))
    t0 = time.perf_counter()
    stored = store.get_analysis(analysis_id)
    timeline = score(texts, stored.embeddings, labels)
    events = detect_events(timeline, EventParams(threshold=0.5, median_frames=3))
    return time.perf_counter() - t0, len(events)


def search(data_dir: Path, texts, sha: str, label: str, store=None):
    """(seconds, hits, store): a search, on a freshly opened store unless one is given."""
    from sonotag_core.service.search import search_library
    from sonotag_core.store.database import Store

    t0 = time.perf_counter()
    store = store or Store(data_dir)
    hits = search_library(store, texts, label, checkpoint_sha256=sha, top_k=20)
    return time.perf_counter() - t0, hits, store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile a third search")
    args = parser.parse_args()
    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.scoring import TextCache
    from sonotag_core.store.database import Store

    settings = settings_for(ensure_checkpoint())
    model = load_model(settings)
    sha = model.info.checkpoint_sha256
    texts = TextCache(model)
    texts.encode(("warm-up",))
    per_window, emb = encoder_s_per_window(model, settings)
    original = per_window * WINDOWS_PER_HOUR
    f16 = float16_error(texts, emb)
    print(
        f"float16 storage: max |probability difference| {f16:.2e} "
        f"({len(LABELS)} labels x {emb.n_windows} real windows, full-size model)"
    )
    data = Path(tempfile.mkdtemp(prefix="sonotag-bench-store-"))
    try:
        t0 = time.perf_counter()
        ids = fill(Store(data), model, args.hours)
        db_bytes = sum(p.stat().st_size for p in data.glob("sonotag.db*"))
        print(
            f"filled {args.hours} h ({len(ids)} analyses) in {time.perf_counter() - t0:.1f} s; "
            f"database {db_bytes / 1e6:.0f} MB ({SHA_NOTE})"
        )

        relabel_s, n_events = relabel(Store(data), texts, ids[0])
        print(
            f"relabel a stored 60-min analysis with 20 new labels: {relabel_s:.2f} s "
            f"({n_events} events); original analysis of that hour ≈ {original:.0f} s "
            f"(audio encoder {per_window:.2f} s/window on 4 real windows, extrapolated "
            f"to {WINDOWS_PER_HOUR}): ratio {relabel_s / original:.4f}"
        )

        rss0 = rss_mb()
        cold_s, hits, store = search(data, texts, sha, "a siren wailing")
        warm_s, _, _ = search(data, texts, sha, "a dog barking", store)
        print(
            f"search {args.hours} stored hours for one label: cold {cold_s:.2f} s (first "
            f"search after opening the store), warm {warm_s:.2f} s (another label); "
            f"{len(hits)} hits, best {hits[0].probability:.4f} at {hits[0].time_s:.2f} s of "
            f"'{hits[0].title}'; RSS {rss0:.0f} -> {rss_mb():.0f} MB"
        )
        if args.profile:
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                search(data, texts, sha, "rain on a roof", store)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
        per_hour = db_bytes / 1e6 / args.hours
        print(f"database: {per_hour:.1f} MB per audio hour")
        print(
            json.dumps(
                {
                    "relabel_s": round(relabel_s, 3),
                    "relabel_ratio": round(relabel_s / original, 5),
                    "original_analysis_s": round(original, 1),
                    "search_s": round(cold_s, 3),
                    "search_warm_s": round(warm_s, 3),
                    "db_mb_per_hour": round(per_hour, 2),
                    "hours": args.hours,
                    "float16_max_prob_diff": float(f"{f16:.3g}"),
                }
            )
        )
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

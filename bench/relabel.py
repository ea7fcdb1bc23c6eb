"""Benchmark: relabeling an hour of audio from kept embeddings (the dashboard's "instant").

Uses the full-size random checkpoint of bench/pipeline.py (built there on first run) and
random unit-norm audio embeddings for 60 min (360 windows): the cost of a relabel does not
depend on the audio, only on its length and the labels. Prints the split (text encoder,
frame map + timeline, events, chart data) and a last JSON line.

Usage: .venv/bin/python bench/relabel.py [--minutes 60] [--labels 10]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from pipeline import LABELS, ensure_checkpoint, settings_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--labels", type=int, default=10)
    args = parser.parse_args()
    from sonotag_core import charts
    from sonotag_core.analysis import score
    from sonotag_core.embeddings import AudioEmbeddings
    from sonotag_core.events import EventParams, detect_events
    from sonotag_core.labels import LabelSet
    from sonotag_core.model import load_model
    from sonotag_core.scoring import TextCache

    model = load_model(settings_for(ensure_checkpoint()))
    n = int(args.minutes * 6)
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((n, 32, 512)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
    emb = AudioEmbeddings(np.arange(n) * 480_000, feats, n * 480_000, 480_000)
    texts = TextCache(model)
    score(texts, emb, LabelSet(("warm-up",)))
    labels = LabelSet(tuple(f"{w} {i}" for i, w in enumerate((LABELS * 4)[: args.labels])))
    t0 = time.perf_counter()
    texts.encode(labels.labels)
    t_text = time.perf_counter() - t0
    timeline = score(texts, emb, labels)
    t_score = time.perf_counter() - t0
    events = detect_events(timeline, EventParams(threshold=0.5, median_frames=3))
    t_events = time.perf_counter() - t0
    charts.timeline_chart(timeline, thresholds={x: 0.5 for x in labels.labels}).to_dict()
    charts.events_chart(events, labels.labels, timeline.duration_s).to_dict()
    total = time.perf_counter() - t0
    print(f"relabel {args.minutes:.0f} min with {args.labels} new labels: text {t_text:.2f} s, "
          f"map+timeline {t_score - t_text:.2f} s, events {t_events - t_score:.3f} s, "
          f"charts {total - t_events:.2f} s; total {total:.2f} s")  # fmt: skip
    print(json.dumps({"minutes": args.minutes, "labels": args.labels, "text_s": round(t_text, 3),
                      "map_s": round(t_score - t_text, 3), "events_s": round(t_events - t_score, 4),
                      "charts_s": round(total - t_events, 3), "relabel_s": round(total, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()

"""Benchmark: relabeling an hour of audio from kept embeddings (the dashboard's "instant").

Uses the full-size random checkpoint of bench/pipeline.py (built there on first run) and
random unit-norm audio embeddings for 60 min (360 windows): the cost of a relabel does not
depend on the audio, only on its length and the labels. Prints the split (text encoder,
frame map + timeline, events, the player's data) and a last JSON line.

``--browser`` measures what the user waits for instead: a stored 60-min analysis open in
Chromium (``streamlit run serve.py`` on loopback), new labels typed and committed, until
the player shows every new label's lane (the text encoder, scoring, events, the payload,
the websocket and the canvas drawing all included). Each run uses labels the server has
never seen, so the text encoder always runs.

Usage: .venv/bin/python bench/relabel.py [--minutes 60] [--labels 10] [--browser [--runs 3]]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from pipeline import CACHE, LABELS, ensure_checkpoint, make_audio, settings_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--browser", action="store_true", help="time it in Chromium")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.browser:
        return browser_relabel(args.minutes, args.labels, args.runs)
    from sonotag_core.dashboard import charts
    from sonotag_core.dashboard.workbench_data import workbench_payload
    from sonotag_core.domain.embeddings import AudioEmbeddings
    from sonotag_core.domain.events import EventParams, detect_events
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.scoring import TextCache
    from sonotag_core.service.analysis import score

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
    payload = workbench_payload(
        timeline,
        events,
        thresholds=dict.fromkeys(labels.labels, 0.5),
        colors=charts.label_colors(timeline.labels),
    )
    json.dumps(payload)  # what travels to the browser's player
    total = time.perf_counter() - t0
    print(
        f"relabel {args.minutes:.0f} min with {args.labels} new labels: text {t_text:.2f} s, "
        f"map+timeline {t_score - t_text:.2f} s, events {t_events - t_score:.3f} s, "
        f"player data {total - t_events:.2f} s; total {total:.2f} s"
    )
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "labels": args.labels,
                "text_s": round(t_text, 3),
                "map_s": round(t_score - t_text, 3),
                "events_s": round(t_events - t_score, 4),
                "player_data_s": round(total - t_events, 3),
                "relabel_s": round(total, 3),
            }
        )
    )


def stored_analysis(minutes: float, data: Path) -> str:
    """A stored analysis of ``minutes`` of real audio (an mp3 the player can play) with
    random embeddings, as the dashboard would have kept it; returns its id."""
    from sonotag_core.domain.embeddings import AudioEmbeddings
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.inference.model import load_model
    from sonotag_core.media.sources import from_path
    from sonotag_core.service.analysis import save_analysis
    from sonotag_core.store.database import Store

    # an mp3 the player can play (a WAV of 3 hours would be 1 GB)
    audio = make_audio(
        CACHE / f"beeps-{minutes:g}min.mp3", minutes * 60, codec=("libmp3lame", "-b:a", "48k")
    )
    model = load_model(settings_for(ensure_checkpoint()))
    n = int(round(minutes * 6))
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((n, 32, 512)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=-1, keepdims=True)
    samples = int(minutes * 60 * 48_000)
    emb = AudioEmbeddings(np.arange(n) * 480_000, feats, samples, 480_000)
    store = Store(data)
    aid, _ = save_analysis(
        store,
        from_path(audio, title=f"{minutes:g} minutes of beeps"),
        emb,
        LabelSet(("dog barking",)),
        model,
        hop_s=10.0,
        fast=False,
        settings={},
        seconds=0.0,
    )
    return aid


def browser_relabel(minutes: float, n_labels: int, runs: int) -> None:
    import tempfile
    from urllib.parse import quote

    from load import start_server
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="sonotag-relabel-"))
    aid = stored_analysis(minutes, data)
    server, base = start_server(data, data / "streamlit.log")  # as bench/load.py starts it
    try:
        shown = (
            "n => { const w = document.querySelector(\"[data-testid='workbench']\");"
            " return !!w && w.dataset.labels === String(n.count) && [...w.querySelectorAll"
            "('.wb-name')].some(e => e.textContent === n.last); }"
        )
        figures = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless=new", "--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{base}/?analysis={aid}&l={quote('dog barking')}")
            page.wait_for_function(
                shown, arg={"count": 1, "last": "dog barking"}, timeout=600_000
            )  # first open: model, overview
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
            box = page.get_by_role("textbox", name="Labels (one per line or")
            for run in range(runs):
                labels = [f"{w} {run}" for w in (LABELS * 4)[:n_labels]]
                box.fill("\n".join(labels))
                t0 = time.perf_counter()
                box.press("Control+Enter")
                page.wait_for_function(
                    shown,
                    arg={"count": len(labels), "last": labels[-1]},
                    timeout=120_000,
                    polling="raf",
                )
                figures.append(time.perf_counter() - t0)
                page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    best, median = min(figures), sorted(figures)[len(figures) // 2]
    print(
        f"browser relabel, {minutes:g} min, {n_labels} new labels, Chromium: "
        + ", ".join(f"{f:.2f} s" for f in figures)
        + f" (median {median:.2f} s)"
    )
    print(
        json.dumps(
            {
                "minutes": minutes,
                "labels": n_labels,
                "browser_relabel_s": [round(f, 3) for f in figures],
                "median_s": round(median, 3),
                "best_s": round(best, 3),
            }
        )
    )


if __name__ == "__main__":
    main()

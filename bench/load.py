"""Load benchmark: N browser sessions analyse N different uploads at once against one
running SonoTag server on loopback (real Streamlit, real model code, Debian's Chromium).

Starts ``streamlit run`` on a free 127.0.0.1 port with the full-size random checkpoint of
bench/pipeline.py, then N Playwright contexts each upload their own generated clip (so
each needs the audio encoder) and press Analyze together. Per session it measures the
seconds from the click to the finished results and whether it was told it was queued.
Bounded: N sessions, one analysis each, a hard deadline. Prints figures, then one JSON line
with completed, errors, p50_s, p95_s, queued_seen, peak_rss_mb (the server's VmHWM).

Usage: .venv/bin/python bench/load.py [--sessions 4] [--seconds 60] [--deadline 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from pipeline import CACHE, ensure_checkpoint, make_audio

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        SONOTAG_MODEL_DIR=str(ensure_checkpoint()),
        HF_HUB_OFFLINE="1",
        SONOTAG_DATA_DIR=str(data_dir),
        SONOTAG_THREADS="2",
        SONOTAG_RATE_LIMIT_PER_HOUR="0",
    )
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "serve.py",  # as users start it: the app behind its middleware and audio route
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    return proc, base
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start:\n" + log_path.read_text())


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def warm_up(browser, base: str) -> None:
    """Load the model once (as a first visitor would), so sessions measure analyses."""
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(f"{base}/about")
    await page.get_by_role("button", name="Load the model now").click()
    await page.get_by_text("is loaded").wait_for(timeout=300_000)
    await ctx.close()


async def session(browser, base: str, clip: Path, go: asyncio.Event, deadline: float) -> dict:
    ctx = await browser.new_context(viewport={"width": 1200, "height": 1000})
    page = await ctx.new_page()
    out = {"clip": clip.name, "ok": False, "seconds": None, "queued": False, "error": None}
    try:
        await page.goto(f"{base}/?l=siren&l=dog+barking&l=a+man+speaking")
        await page.wait_for_selector(IDLE, timeout=60_000)
        await (
            page.get_by_role("radio", name="Upload")
            .or_(page.get_by_role("button", name="Upload"))
            .first.click()
        )
        await page.locator("input[type=file]").set_input_files(str(clip))
        await page.get_by_text("is on the server, ready to analyse").wait_for(timeout=60_000)
        await page.wait_for_selector(IDLE, timeout=60_000)
        await go.wait()
        t0 = time.perf_counter()
        await page.get_by_role("button", name="Analyze", exact=True).click()
        remaining = max(1_000, int((deadline - time.monotonic()) * 1000))
        queued = page.get_by_text("Queued, position")
        charts = page.locator("[data-testid='stVegaLiteChart']").first
        while True:
            if not out["queued"] and await queued.count():
                out["queued"] = True
            if await charts.count() and await page.locator(IDLE).count():
                break
            if await page.get_by_text("Could not analyse").count():
                raise RuntimeError("the page reported an error")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not finished after {remaining / 1000:.0f} s")
            await asyncio.sleep(0.1)
        out.update(ok=True, seconds=time.perf_counter() - t0)
    except Exception as exc:  # counted, reported, never fatal to the other sessions
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    finally:
        await ctx.close()
    return out


async def drive(base: str, clips: list[Path], deadline_s: float) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        await warm_up(browser, base)
        go = asyncio.Event()
        deadline = time.monotonic() + deadline_s
        tasks = [asyncio.create_task(session(browser, base, c, go, deadline)) for c in clips]
        await asyncio.sleep(0)  # every session loads and uploads, then all click at once
        await asyncio.sleep(min(60.0, 5.0 + 2.0 * len(clips)))
        go.set()
        results = await asyncio.gather(*tasks)
        await browser.close()
    return results


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each clip")
    parser.add_argument("--deadline", type=float, default=600.0)
    args = parser.parse_args()
    if not 1 <= args.sessions <= 16:
        raise SystemExit("--sessions must be 1-16 (this is a bounded loopback test)")
    CACHE.mkdir(exist_ok=True)
    clips = [
        make_audio(CACHE / f"load_{i}_{int(args.seconds)}s.wav", args.seconds + i * 0.3125)
        for i in range(args.sessions)
    ]  # fmt: skip (distinct lengths: distinct audio)
    with tempfile.TemporaryDirectory(prefix="sonotag-load-") as tmp:
        proc, base = start_server(Path(tmp) / "data", Path(tmp) / "streamlit.log")
        try:
            results = asyncio.run(drive(base, clips, args.deadline))
            peak = vm_hwm_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    done = [r["seconds"] for r in results if r["ok"]]
    for r in results:
        state = f"{r['seconds']:.1f} s" if r["ok"] else f"error: {r['error']}"
        print(f"{r['clip']}: {state}{' (was queued)' if r['queued'] else ''}")
    summary = {
        "sessions": args.sessions,
        "clip_s": args.seconds,
        "completed": len(done),
        "errors": len(results) - len(done),
        "p50_s": round(percentile(done, 50), 2) if done else None,
        "p95_s": round(percentile(done, 95), 2) if done else None,
        "max_s": round(max(done), 2) if done else None,
        "queued_seen": sum(r["queued"] for r in results),
        "peak_rss_mb": round(peak, 1),
    }
    print(
        f"{summary['completed']}/{args.sessions} completed, {summary['errors']} errors; "
        f"latency p50 {summary['p50_s']} s, p95 {summary['p95_s']} s; "
        f"{summary['queued_seen']} session(s) saw 'Queued'; server peak RSS {peak:.0f} MB"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

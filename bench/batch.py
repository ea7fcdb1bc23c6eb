"""Benchmark: `sonotag batch` engines on the same 40 generated files, in one run.

Full-size random-weight OpenFLAM (bench/pipeline.py builds it once). Three runs over the
same 10-s files, each into a fresh output:

* local: the plain loop in this process, 2 torch threads (model loaded before the clock);
* dask 1x2: a 127.0.0.1 LocalCluster, 1 worker with 2 threads;
* dask 2x1: 2 workers with 1 thread each;
* standing 2x1: the same, on a cluster started once (as ``--address`` reaches one): after
  a first run its workers hold the model, so ``standing_2x1_overhead_s`` (a 2-file run
  less one file's local time) is the per-run cost of scheduling alone.

A Dask run's wall time includes starting the cluster and loading the model in each
worker; its fixed part (``overhead_s``) is measured by a 1-file run of the same engine,
less the local loop's time per file, and items/s are (files - 1) / (wall - overhead).
Peak RSS is the whole process tree's (this process plus its workers), sampled.

Prints figures, then one JSON line.

Usage: .venv/bin/python bench/batch.py [--files 40]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import CACHE, ensure_checkpoint, make_audio  # noqa: E402

LABELS = "dog barking; siren; applause; music; speech"


class TreeRss:
    """Peak summed RSS of this process and its descendants, sampled every 0.1 s."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total / 2**20)
            self._stop.wait(0.1)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=40)
    args = parser.parse_args()
    hub = ensure_checkpoint()
    os.environ["SONOTAG_MODEL_DIR"] = str(hub)
    from sonotag_core.archive.parts import open_output
    from sonotag_core.batch.dask_engine import run_dask
    from sonotag_core.batch.manifest import read_manifest
    from sonotag_core.batch.runner import run_local
    from sonotag_core.cli_batch import batch_spec
    from sonotag_core.domain.events import EventParams
    from sonotag_core.domain.labels import parse_labels
    from sonotag_core.inference.model import load_model
    from sonotag_core.service.api import Service
    from sonotag_core.settings import Settings

    folder = CACHE / f"batch-{args.files}"
    for i in range(args.files):
        make_audio(folder / f"f{i:03d}.wav", 10.0)
    work = CACHE / "batch-out"
    shutil.rmtree(work, ignore_errors=True)
    settings = Settings.from_env().with_(threads=2, data_dir=str(work / "data"))
    labels = parse_labels(
        LABELS, max_labels=settings.max_labels, max_chars=settings.max_label_chars
    )
    params = EventParams.from_settings(settings)
    items = read_manifest(folder)
    model = load_model(settings)
    spec = batch_spec(model.info.checkpoint_sha256, labels, settings.hop_s, params)
    service = Service(model, settings)

    def local(n: int) -> tuple[float, float]:
        out = work / f"local-{n}"
        with TreeRss() as rss:
            t0 = time.perf_counter()
            run_local(
                service,
                items[:n],
                open_output(out, spec),
                labels,
                params,
                hop_s=settings.hop_s,
                work_parent=out,
            )
            return time.perf_counter() - t0, rss.peak

    def dask(n: int, workers: int, threads: int) -> tuple[float, float]:
        out = work / f"dask-{workers}x{threads}-{n}"
        open_output(out, spec)
        with TreeRss() as rss:
            t0 = time.perf_counter()
            summary = run_dask(
                settings, items[:n], out, spec, labels, params, workers=workers, threads=threads
            )
            assert summary.done == n, summary
            return time.perf_counter() - t0, rss.peak

    n = len(items)
    local_s, local_rss = local(n)
    per_item = local_s / n
    results = {"files": n, "local_items_s": n / local_s, "local_peak_rss_mb": local_rss}
    for workers, threads in ((1, 2), (2, 1)):
        name = f"dask_{workers}x{threads}"
        one_s, _ = dask(1, workers, threads)
        overhead = max(one_s - per_item, 0.0)
        wall, peak = dask(n, workers, threads)
        results[f"{name}_items_s"] = (n - 1) / max(wall - overhead, 1e-9)
        results[f"{name}_overhead_s"] = overhead
        results[f"{name}_wall_s"] = wall
        results[f"{name}_peak_rss_mb"] = peak
    # a standing cluster (what --address reaches): its workers keep the model between
    # runs, so a run's fixed cost is the scheduling alone
    from contextlib import ExitStack

    import dask
    from distributed import LocalCluster

    from sonotag_core.batch.dask_engine import WORKER_ENVIRON

    with ExitStack() as stack:
        stack.enter_context(
            dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON})
        )
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                local_directory=str(work / "standing"),
            )
        )

        def standing(n: int, tag: str) -> float:
            out = work / f"standing-{tag}-{n}"
            t0 = time.perf_counter()
            summary = run_dask(
                settings,
                items[:n],
                out,
                spec,
                labels,
                params,
                address=cluster.scheduler_address,
                threads=1,
            )
            assert summary.done == n, summary
            return time.perf_counter() - t0

        standing(1, "cold")  # loads the model in each worker that gets a task
        warm_one = standing(2, "warm")  # both workers hold it now
        results["standing_2x1_overhead_s"] = max(warm_one - per_item, 0.0)
        wall = standing(n, "run")
        results["standing_2x1_items_s"] = n / wall
    results["dask_2x1_vs_local"] = results["dask_2x1_items_s"] / results["local_items_s"]
    results["dask_2x1_vs_1x2"] = results["dask_2x1_items_s"] / results["dask_1x2_items_s"]
    for key, value in results.items():
        print(f"{key:24s} {value:.3f}" if isinstance(value, float) else f"{key:24s} {value}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()

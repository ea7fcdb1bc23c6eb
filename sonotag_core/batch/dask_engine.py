"""The Dask engine: the same :func:`.runner.run_item` on Dask workers, the model loaded
once per worker by a ``WorkerPlugin``; a local cluster on 127.0.0.1 or any scheduler
(``dask scheduler`` + ``dask worker``, dask-jobqueue, dask-kubernetes) by address.

Exactly once under Dask's at-least-once execution: a task that runs twice (a worker lost
mid-task, a rerun) commits through :meth:`.parts.Output.commit`, which keeps the first
part of a key and drops the second. Pitfalls measured here: the nanny's default
``MALLOC_TRIM_THRESHOLD_=65536`` made torch ~1.8x slower (overridden for the workers),
and without ``temporary-directory`` a ``/tmp/dask-scratch-space`` appears.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sonotag_core.archive.parts import BatchSpec, open_output
from sonotag_core.batch.manifest import Item
from sonotag_core.batch.runner import BatchMeter, BatchSummary, run_item, todo
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.progress import ProgressFn, no_progress
from sonotag_core.settings import Settings

PLUGIN = "sonotag-model"
#: glibc's default trim threshold (128 KiB dynamic) instead of the nanny's 64 KiB
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": str(128 * 1024)}


#: The worker process's model, kept across runs: a standing cluster (``--address``) loads
#: it once per worker, not once per run. Keyed by what the loaded weights depend on.
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def worker_service(settings: Settings) -> Any:
    """A :class:`.Service` for ``settings`` around this worker's model (loaded on first
    use, reused by later runs; torch threads set from ``settings.threads`` each time)."""
    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.scoring import TextCache
    from sonotag_core.service.api import Service

    key = (settings.model_dir, settings.checkpoint, settings.device)
    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: another checkpoint replaces it
        model = load_model(settings)
        _LOADED[key] = (model, TextCache(model))
    model, texts = _LOADED[key]
    model.use_threads(settings.threads)
    return Service(model, settings, texts=texts)


def _plugin(settings: Settings) -> Any:
    from distributed import WorkerPlugin

    class ModelPlugin(WorkerPlugin):
        """Loads the model once per worker, with the worker's torch threads."""

        name = PLUGIN

        def __init__(self) -> None:
            self.settings = settings
            self.service: Any = None

        def setup(self, worker: Any) -> None:
            self.service = worker_service(self.settings)

    return ModelPlugin()


def _task(
    out: str,
    spec: BatchSpec,
    item: Item,
    labels: LabelSet,
    params: EventParams,
    cards: Sequence[Mapping[str, Any]] = (),
) -> tuple[str, float, str | None]:
    """One item on a worker: the worker's service (with the detectors of ``cards``, the
    JSON cards themselves: a worker may not see the files or the library they came from),
    the output checked against ``spec``."""
    from distributed import get_worker

    from sonotag_core.service.detectors import from_card

    plugin: Any = get_worker().plugins[PLUGIN]
    service = plugin.service
    if cards:
        sha = service.model.info.checkpoint_sha256
        service = service.with_detectors([from_card(card, sha) for card in cards])
    output = open_output(Path(out), spec)
    return run_item(service, output, item, labels, params, spec.hop_s, Path(out))


def run_dask(
    settings: Settings,
    items: Sequence[Item],
    out: Path,
    spec: BatchSpec,
    labels: LabelSet,
    params: EventParams,
    *,
    address: str | None = None,
    workers: int = 2,
    threads: int = 1,
    progress: ProgressFn = no_progress,
    cards: Sequence[Mapping[str, Any]] = (),
) -> BatchSummary:
    """Run the pending items on a local cluster (``workers`` x 1 task, ``threads`` torch
    threads each) or on the scheduler at ``address``; ``cards``: the JSON cards of the
    detectors that score labels, sent with every task."""
    import dask
    from distributed import Client, LocalCluster, as_completed

    t0 = time.perf_counter()
    output = open_output(out, spec)
    pending, committed = todo(items, output)
    summary = BatchSummary(skipped=committed)
    if not pending:
        return summary
    scratch = out / ".dask"
    config = {
        "distributed.nanny.pre-spawn-environ": WORKER_ENVIRON,
        "temporary-directory": str(scratch),
        "distributed.worker.daemon": False,
    }
    with dask.config.set(config):
        cluster = None
        if address is None:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                local_directory=str(scratch),
                processes=True,
            )
        client = Client(address or cluster)
        try:
            client.register_plugin(_plugin(settings.with_(threads=threads)))
            meter = BatchMeter(len(pending), progress)
            futures = client.map(
                _task,
                [str(out)] * len(pending),
                [spec] * len(pending),
                pending,
                [labels] * len(pending),
                [params] * len(pending),
                [list(cards)] * len(pending),
                pure=False,
            )
            for fut in as_completed(futures):
                result = fut.result()
                meter.step(result[1], failed=summary.record(result))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
            shutil.rmtree(scratch, ignore_errors=True)
    summary.seconds = time.perf_counter() - t0
    return summary

"""A batch run: every manifest item through the one service (the same run rules as the
CLI and the dashboard), each finished item committed as its own part (:mod:`sonotag_core.archive.parts`).

Resumable by construction: what has a committed part is skipped, what failed is tried
again, and a part is never written twice, whether the item ran twice because of a rerun,
a retry or a killed driver. The local engine is a plain loop in this process; the Dask
engine (:mod:`.dask_engine`) runs the same :func:`analyse_item` on workers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sonotag_core.archive.parts import Output, item_tables
from sonotag_core.batch.manifest import Item
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.progress import Progress, ProgressFn, no_progress
from sonotag_core.errors import SonoTagError
from sonotag_core.media import sources, workdirs
from sonotag_core.service.api import Service

TMP_PREFIX = "sonotag-batch-"


@dataclass
class BatchSummary:
    """What a run did: items committed now, skipped (committed before), failed (key ->
    message), audio seconds analysed now, wall seconds."""

    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    audio_s: float = 0.0
    seconds: float = 0.0

    def record(self, result: tuple[str, float, str | None]) -> bool:
        """Count one item's :func:`run_item` result; True when it failed."""
        key, audio_s, error = result
        self.audio_s += audio_s
        if error is None:
            self.done += 1
        else:
            self.failed[key] = error
        return error is not None


def todo(items: Sequence[Item], output: Output) -> tuple[list[Item], int]:
    """The items still to run (failed ones included) and how many are committed."""
    done = output.done_keys()
    return [i for i in items if i.key not in done], sum(i.key in done for i in items)


def analyse_item(
    service: Service,
    item: Item,
    labels: LabelSet,
    params: EventParams,
    hop_s: float,
    workdir: Path,
) -> tuple[dict, float]:
    """One item -> its output tables and audio seconds. Links go through the same
    allow-list and address guard as the dashboard (``sources.resolve_source``)."""
    source = sources.resolve_source(
        item.source, workdir, max_duration_s=service.settings.max_duration_s
    )
    done = service.analyse(source, labels, hop_s=hop_s, params=params, save=False)
    report = service.report(done, labels, params, reviews=False)
    tables = item_tables(
        item.key,
        item.source,
        item.meta,
        done.embeddings,
        report.timeline,
        report.events,
        title=done.source.title,
        content_id=done.source.content_id,
    )
    return tables, float(report.timeline.duration_s)


def run_item(
    service: Service,
    output: Output,
    item: Item,
    labels: LabelSet,
    params: EventParams,
    hop_s: float,
    work_parent: Path,
) -> tuple[str, float, str | None]:
    """Analyse and commit one item; a failure of the item's own family (a broken file,
    a refused link) is kept in ``errors/`` and returned, never raised."""
    try:
        with workdirs.run_folder(work_parent, TMP_PREFIX) as tmp:
            tables, audio_s = analyse_item(service, item, labels, params, hop_s, Path(tmp))
        output.commit(item.key, tables)
        return item.key, audio_s, None
    except SonoTagError as exc:
        output.fail(item.key, item.source, str(exc))
        return item.key, 0.0, str(exc)


def run_local(
    service: Service,
    items: Sequence[Item],
    output: Output,
    labels: LabelSet,
    params: EventParams,
    *,
    hop_s: float,
    work_parent: Path,
    progress: ProgressFn = no_progress,
) -> BatchSummary:
    """The local engine: one item after another in this process."""
    t0 = time.perf_counter()
    pending, committed = todo(items, output)
    summary = BatchSummary(skipped=committed)
    meter = BatchMeter(len(pending), progress)
    for item in pending:
        result = run_item(service, output, item, labels, params, hop_s, work_parent)
        meter.step(result[1], failed=summary.record(result))
    summary.seconds = time.perf_counter() - t0
    return summary


class BatchMeter:
    """Files and audio hours done, rate, time left and failures, as one progress line."""

    def __init__(self, total: int, progress: ProgressFn, clock=time.perf_counter) -> None:
        self.total, self.progress, self.clock = total, progress, clock
        self.t0 = clock()
        self.files = self.failures = 0
        self.audio_s = 0.0
        progress(Progress("batch", 0, total, "files", self.message()))

    def step(self, audio_s: float, *, failed: bool) -> None:
        self.files += 1
        self.failures += int(failed)
        self.audio_s += audio_s
        self.progress(Progress("batch", self.files, self.total, "files", self.message()))

    def message(self) -> str:
        spent = max(self.clock() - self.t0, 1e-9)
        rate = self.files / spent
        left = (self.total - self.files) / rate if rate > 0 else None
        parts = [f"{self.audio_s / 3600:.2f} h of audio", f"{rate:.2f} files/s"]
        if left is not None and self.files < self.total:
            parts.append(f"{left:.0f} s left")
        if self.failures:
            parts.append(f"{self.failures} failed")
        return " · ".join(parts)

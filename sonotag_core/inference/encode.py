"""Audio windows -> per-frame audio embeddings: the expensive step, done once per audio."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Iterator

import numpy as np

from sonotag_core.domain.embeddings import EMBED_DIM
from sonotag_core.domain.progress import Progress, ProgressFn, no_progress
from sonotag_core.domain.windows import FRAMES_PER_WINDOW, Window
from sonotag_core.inference.fast_mode import check_fast_mode, fast_audio_features
from sonotag_core.inference.model import LoadedModel


def _batches(windows: Iterable[Window], size: int) -> Iterator[list[Window]]:
    batch: list[Window] = []
    for w in windows:
        batch.append(w)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_windows(
    model: LoadedModel,
    windows: Iterable[Window],
    *,
    batch_size: int,
    total_windows: int | None = None,
    progress: ProgressFn = no_progress,
    fast: bool = False,
) -> Generator[tuple[list[int], np.ndarray], None, None]:
    """Run windows through the audio encoder in batches; yield (starts, (B, 32, 512) features).

    Each batch takes the model lock, so concurrent callers interleave by batch instead of
    thrashing the CPU threads. ``fast``: bf16 (:mod:`.fast_mode`), refused up front where
    it would be slower.
    """
    import torch

    if fast:
        check_fast_mode(model)
    features = (
        (lambda x: fast_audio_features(model, x)) if fast else model.net.get_local_audio_features
    )
    done = 0
    t0 = time.perf_counter()
    for batch in _batches(windows, batch_size):
        x = torch.from_numpy(np.stack([w.samples for w in batch]))
        with model.lock, torch.inference_mode():
            feats = features(x.to(model.device))
        feats = feats.float().cpu().numpy()
        if feats.shape[1:] != (FRAMES_PER_WINDOW, EMBED_DIM):
            raise RuntimeError(f"unexpected audio feature shape {feats.shape}")
        done += len(batch)
        elapsed = time.perf_counter() - t0
        eta = ""
        if total_windows:
            remaining = max(total_windows - done, 0) * elapsed / done
            eta = f", about {remaining:.0f} s left"
        progress(
            Progress(
                "encode",
                done,
                total_windows,
                "windows",
                f"Window {done} of {total_windows or '?'}{eta}",
            )
        )
        yield [w.start for w in batch], feats

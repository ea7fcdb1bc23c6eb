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
from sonotag_core.settings import DEFAULTS


def _batches(windows: Iterable[Window], size: int) -> Iterator[list[Window]]:
    batch: list[Window] = []
    for w in windows:
        batch.append(w)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


#: windows per batch when SONOTAG_BATCH_SIZE is 0 (auto): on CPU 2-4 is fastest (bigger
#: batches only add memory); a GPU needs enough windows to fill it.
AUTO_BATCH = {"cpu": 4, "cuda": 32}


def batch_size_for(requested: int, device: str) -> int:
    """``requested`` windows per batch, or the device's :data:`AUTO_BATCH` when it is 0."""
    return requested if requested > 0 else AUTO_BATCH.get(device.split(":")[0], 4)


def encode_windows(
    model: LoadedModel,
    windows: Iterable[Window],
    *,
    batch_size: int,
    total_windows: int | None = None,
    progress: ProgressFn = no_progress,
    fast: bool = DEFAULTS.fast,
) -> Generator[tuple[list[int], np.ndarray], None, None]:
    """Run windows through the audio encoder in batches; yield (starts, (B, 32, 512) features).

    ``batch_size`` 0: :func:`batch_size_for` the model's device. Each batch takes the model lock, so concurrent callers interleave by batch instead of
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
    for batch in _batches(windows, batch_size_for(batch_size, model.device)):
        x = torch.from_numpy(np.stack([w.samples for w in batch]))
        with model.lock, torch.inference_mode():
            model.use_encoder("audio")
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

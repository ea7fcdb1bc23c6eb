"""Frame-level arithmetic over stored embeddings, shared by library search, Find similar,
refining a label and the Review next queue.

Stored embeddings are (windows, 32, 512); with overlapping windows several window-frames
cover the same instant, and every score on the file's frame grid is their average, as
:func:`~sonotag_core.domain.timeline.assemble` averages probabilities. These helpers do
that for one value per window-frame (vectorised: no Python loop per frame), pick spaced
peaks, and give the frame embeddings of a stretch of one audio.
"""

from __future__ import annotations

import numpy as np

from sonotag_core.domain.embeddings import AudioEmbeddings
from sonotag_core.domain.probe import Probe
from sonotag_core.domain.windows import FRAME_SAMPLES, FRAMES_PER_WINDOW, frame_count


def frame_index(starts: np.ndarray, n_samples: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(global frame of every window-frame (windows, 32), which of them lie inside the
    audio, the number of frames)."""
    n_frames = frame_count(n_samples)
    index = (np.asarray(starts) // FRAME_SAMPLES)[:, None] + np.arange(FRAMES_PER_WINDOW)
    return index, index < n_frames, n_frames


def per_frame(window_values: np.ndarray, starts: np.ndarray, n_samples: int) -> np.ndarray:
    """One value per window-frame (windows, 32) -> one per frame of the audio (float64),
    the window-frames covering the same instant averaged (:func:`~.timeline.assemble`)."""
    index, keep, n_frames = frame_index(starts, n_samples)
    values = np.asarray(window_values, dtype=np.float64).reshape(index.shape)
    total = np.bincount(index[keep], weights=values[keep], minlength=n_frames)
    count = np.bincount(index[keep], minlength=n_frames)
    return total[:n_frames] / np.maximum(count[:n_frames], 1)


def peaks(values: np.ndarray, radius: int, k: int, floor: float) -> list[tuple[float, int]]:
    """Greedy non-maximum suppression: up to ``k`` (value, frame) peaks above ``floor``,
    each suppressing the frames within ``radius`` of it (best first)."""
    v = np.array(values, dtype=np.float64)
    out: list[tuple[float, int]] = []
    while len(out) < k and v.size:
        i = int(np.argmax(v))
        if not v[i] > floor:
            break
        out.append((float(values[i]), i))
        v[max(i - radius, 0) : i + radius + 1] = -np.inf
    return out


def frame_embeddings(emb: AudioEmbeddings, first: int = 0, stop: int | None = None) -> np.ndarray:
    """The embeddings of frames ``first:stop`` of one audio (float32, (n, 512), each the
    mean of the window-frames covering it, L2-normalised)."""
    index, keep, n_frames = frame_index(emb.starts, emb.n_samples)
    stop = n_frames if stop is None else min(int(stop), n_frames)
    first = max(int(first), 0)
    out = np.zeros((max(stop - first, 0), emb.features.shape[-1]), dtype=np.float64)
    if out.shape[0] == 0:
        return out.astype(np.float32)
    inside = keep & (index >= first) & (index < stop)
    windows, cols = np.nonzero(inside)
    count = np.bincount(index[inside] - first, minlength=out.shape[0])
    np.add.at(out, index[inside] - first, emb.features[windows, cols].astype(np.float64))
    out /= np.maximum(count, 1)[:, None]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def probe_frames(probe: Probe, embeddings: AudioEmbeddings) -> np.ndarray:
    """A probe's probability of every frame of one audio (float32 (frames,)): its scores
    on the stored frame embeddings, overlapping windows averaged as the text path does."""
    feats = embeddings.features
    if embeddings.n_windows == 0:
        return np.zeros(frame_index(embeddings.starts, embeddings.n_samples)[2], np.float32)
    scores = probe.scores(feats.reshape(-1, feats.shape[-1]))
    window_values = scores.reshape(-1, FRAMES_PER_WINDOW)
    return per_frame(window_values, embeddings.starts, embeddings.n_samples).astype(np.float32)

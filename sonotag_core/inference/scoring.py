"""Labels -> cached text encodings; (audio embeddings, labels) -> frame probabilities.

Text is encoded once per distinct label text (features, per-text logit scale alpha(t) and
bias beta(t)) and kept in a cache, so a relabel costs only the new labels plus a matrix
product. The frame map is openflam's own unbiased estimator (paper Eq. 7/9,
``get_unbiased_framewise_act_map``) fed from those cached tensors.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sonotag_core.inference.model import LoadedModel

#: Labels encoded per text-encoder call; padding is to the longest label in the call.
TEXT_BATCH = 16


@dataclass(frozen=True)
class LabelEncoding:
    """Text features (L, 512, normalised), per-text logit scale (L,) and bias (L,)."""

    labels: tuple[str, ...]
    features: np.ndarray
    scale: np.ndarray
    bias: np.ndarray


class TextCache:
    """Per-label text encodings for one model, keyed by label text (LRU-bounded, thread-safe)."""

    def __init__(self, model: LoadedModel, max_items: int = 4096) -> None:
        self.model = model
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[np.ndarray, float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, labels: Sequence[str]) -> LabelEncoding:
        with self._lock:
            missing = list(dict.fromkeys(t for t in labels if t not in self._items))
        for i in range(0, len(missing), TEXT_BATCH):
            chunk = missing[i : i + TEXT_BATCH]
            feats, scale, bias = encode_texts(self.model, chunk)
            with self._lock:
                for j, text in enumerate(chunk):
                    self._items[text] = (feats[j], float(scale[j]), float(bias[j]))
        with self._lock:
            rows = [self._items[t] for t in labels]
            for t in labels:
                self._items.move_to_end(t)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return LabelEncoding(
            tuple(labels),
            np.stack([r[0] for r in rows]) if rows else np.zeros((0, 512), np.float32),
            np.asarray([r[1] for r in rows], dtype=np.float32),
            np.asarray([r[2] for r in rows], dtype=np.float32),
        )


def encode_texts(
    model: LoadedModel, texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One text-encoder pass giving features, alpha(t) and beta(t), as openflam computes them.

    openflam's reference encodes every text twice per call (once for features, once for
    the logit heads) at a fixed 77-token padding; here the branch output is shared and
    padding stops at the longest text (padded positions are masked out, so the result is
    the same up to float rounding).
    """
    import torch
    import torch.nn.functional as F

    net = model.net
    tokens = net.tokenizer(
        list(texts),
        padding="longest",
        truncation=True,
        max_length=net.text_cfg.context_length,
        return_tensors="pt",
    )
    with model.lock, torch.inference_mode():
        model.use_encoder("text")
        branch = net.text_branch(
            input_ids=tokens["input_ids"].to(model.device),
            attention_mask=tokens["attention_mask"].to(model.device),
        )["pooler_output"]
        feats = F.normalize(net.text_projection(branch), dim=-1)
        scale = net.fc_per_text_logit_scale(branch).exp().squeeze(-1) * net.aed_logit_scale.exp()
        bias = net.fc_per_text_logit_bias(branch).squeeze(-1)
    return (
        feats.float().cpu().numpy(),
        scale.float().cpu().numpy(),
        bias.float().cpu().numpy(),
    )


def frame_probabilities(features: np.ndarray, enc: LabelEncoding, chunk: int = 256) -> np.ndarray:
    """Unbiased frame map for (windows, 32, 512) audio features -> (windows, labels, 32).

    Calls openflam's ``get_unbiased_framewise_act_map`` in chunks of windows, so memory
    stays bounded for hours of audio.
    """
    import torch

    from sonotag_core.inference.model import openflam_hook

    act_map = openflam_hook().get_unbiased_framewise_act_map
    n = features.shape[0]
    out = np.empty((n, len(enc.labels), features.shape[1]), dtype=np.float32)
    if n == 0 or not enc.labels:
        return out
    text = torch.from_numpy(enc.features)
    scale = torch.from_numpy(enc.scale)
    bias = torch.from_numpy(enc.bias)
    with torch.inference_mode():
        for i in range(0, n, chunk):
            audio = torch.from_numpy(
                np.ascontiguousarray(features[i : i + chunk], dtype=np.float32)
            )
            out[i : i + chunk] = act_map(audio, text, scale, bias, cross_product=True).numpy()
    return out


def half_cosines(features: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Cosines of float16 frame features (N, 512), e.g. a read-only view of stored rows,
    with one float16 text vector, in float16 arithmetic -> float32 (N,). torch does it
    in place of numpy, whose float16 matrix product is far slower; torch only reads."""
    import torch

    with warnings.catch_warnings():  # torch warns about read-only arrays it would not write
        warnings.simplefilter("ignore", UserWarning)
        matrix = torch.from_numpy(features)
    vector = torch.from_numpy(np.ascontiguousarray(text, np.float16))[:, None]
    return (matrix @ vector).float().numpy()[:, 0]

"""The fast tier's stand-in for OpenFLAM: a deterministic network behind a real
``LoadedModel``, so the code around the model runs for real without building HTSAT."""

from __future__ import annotations

import hashlib
import types
from pathlib import Path
from typing import Any

import numpy as np

from sonotag_core.domain.report import ModelInfo
from sonotag_core.inference.model import LoadedModel

#: The stand-in's checkpoint hash: nothing it stores can pass for an OpenFLAM result.
STANDIN_SHA256 = hashlib.sha256(b"standin-not-openflam").hexdigest()


class StandInNet:
    """Not OpenFLAM: a deterministic stand-in for the network behind ``LoadedModel.net``,
    with the attributes sonotag_core's encoders call, so batching, locking, the text cache
    and the frame map all run for real in the fast tier. Audio features follow each frame's
    loudness and zero-crossing rate; text features are seeded by the text. Its numbers mean
    nothing; a test that needs what the model says belongs in the slow tier."""

    FRAMES, DIM, HIDDEN = 32, 512, 768

    def __init__(self) -> None:
        import torch

        rng = np.random.default_rng(0)
        self._audio_basis = torch.from_numpy(rng.standard_normal((3, self.DIM)).astype(np.float32))
        self.text_cfg = types.SimpleNamespace(context_length=77)
        text_basis = rng.standard_normal((self.HIDDEN, self.DIM)) / np.sqrt(self.HIDDEN)
        self._text_basis = torch.from_numpy(text_basis.astype(np.float32))
        self.aed_logit_scale = torch.tensor(np.log(10.0), dtype=torch.float32)
        self.audio_calls = 0  # batches through the "audio encoder"
        self.texts_encoded: list[str] = []  # texts through the "text encoder", in order

    def get_local_audio_features(self, x: Any) -> Any:
        """(B, 480 000) samples -> (B, 32, 512) unit vectors from per-frame statistics."""
        import torch

        self.audio_calls += 1
        frames = x.float().reshape(x.shape[0], self.FRAMES, -1)
        rms = frames.pow(2).mean(-1).sqrt()
        zcr = (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1)
        stats = torch.stack([torch.ones_like(rms), torch.log10(rms + 1e-4), zcr], dim=-1)
        return torch.nn.functional.normalize(stats @ self._audio_basis, dim=-1)

    def tokenizer(self, texts: list[str], *, max_length: int, **_: Any) -> dict[str, Any]:
        """UTF-8 bytes as token ids, padded to the longest text and cut at ``max_length``."""
        import torch

        ids = [list(t.encode("utf-8"))[:max_length] or [0] for t in texts]
        width = max(len(i) for i in ids)
        self.texts_encoded.extend(texts)
        return {
            "input_ids": torch.tensor([i + [0] * (width - len(i)) for i in ids]),
            "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i in ids]),
        }

    def text_branch(self, *, input_ids: Any, attention_mask: Any) -> dict[str, Any]:
        """One pooled vector per text, seeded by its unpadded token ids."""
        import torch

        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            token_bytes = bytes(i for i, m in zip(ids, mask, strict=True) if m)
            seed = int.from_bytes(hashlib.sha256(token_bytes).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.HIDDEN))
        return {"pooler_output": torch.tensor(np.stack(rows), dtype=torch.float32)}

    def text_projection(self, branch: Any) -> Any:
        return branch @ self._text_basis

    def fc_per_text_logit_scale(self, branch: Any) -> Any:
        import torch

        return torch.zeros(branch.shape[0], 1)

    def fc_per_text_logit_bias(self, branch: Any) -> Any:
        import torch

        return torch.full((branch.shape[0], 1), -2.0)


def standin_loaded_model() -> LoadedModel:
    """A ``LoadedModel`` (real lock, real first-come-first-served queue) around a fresh
    :class:`StandInNet`, on the CPU, named so that no export passes it off as OpenFLAM."""
    info = ModelInfo("standin-not-openflam", "none", STANDIN_SHA256)
    flam = types.SimpleNamespace(model=StandInNet())
    return LoadedModel(
        flam=flam,
        device="cpu",
        checkpoint_path=Path("standin-not-openflam.pth"),
        info=info,
        threads=1,
    )

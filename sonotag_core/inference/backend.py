"""The exact audio-encoder backend: openflam's modules as they are, or the same fp32
arithmetic through oneDNN.

Measured on this project's 2-core machines with the full-size model, 4 windows a batch
(``bench/pipeline.py`` prints ``exact_backend_vs_torch``): torch's own ``nn.Linear`` goes
to MKL's sgemm, which reached 60-140 GFLOP/s on HTSAT's tall-skinny shapes (4096-16384
tokens x 96-768 channels) on an AMD EPYC, where oneDNN's inner product reached 150-190.
The "onednn" backend therefore

* runs every ``Linear`` of the audio encoder and its projection as oneDNN's inner product
  (``torch.ops.mkldnn._linear_pointwise``, what torch's own inductor emits for frozen
  CPU graphs), the MLPs with GELU fused into the first one;
* runs the Swin window attention as one fused ``scaled_dot_product_attention`` with the
  relative-position bias (plus the shift mask) as its additive mask, and stops building
  the per-layer attention maps openflam averages and never reads;
* computes the power spectrogram with one FFT (``torch.stft``) instead of torchlibrosa's
  two 1024-tap DFT convolutions, only where the checkpoint's DFT weights are exactly the
  Hann-windowed DFT (checked at load: they are frozen, so a real checkpoint has them).

Same weights (no copy: the memory-mapped tensors are read in place, so
:mod:`.resident` still pages them out), same fp32 maths, another summation order:
features within ~2e-7 of openflam's, probabilities within 1e-5 of its own
``get_local_similarity`` (``tests/test_fidelity.py`` runs against it). OpenVINO
(0.55-0.66x) and onnxruntime (0.85x) were measured slower than torch here and are not
offered.

Only where oneDNN can run it: on CPU, with torch built with oneDNN, and where a probe
gives torch's own answer; anything else keeps openflam's modules with a log line.
Under autocast (fast mode) the Linear layers and MLPs run openflam's own forward, which
autocast casts to bf16 (oneDNN's bf16 inner product measured slower than that); the
fused attention runs in bf16 as well.
"""

from __future__ import annotations

import logging
import types
from typing import Any

from sonotag_core.settings import BACKENDS

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "apply_backend", "choose_backend", "onednn_works"]


def _autocast(x: Any) -> bool:
    import torch

    return x.dtype != torch.float32 or torch.is_autocast_enabled(x.device.type)


def _linear(self: Any, x: Any) -> Any:
    import torch

    if _autocast(x):
        return type(self).forward(self, x)
    return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


def _mlp(self: Any, x: Any) -> Any:
    """openflam's ``Mlp`` (fc1, exact GELU, fc2; dropout is identity in eval) in two calls."""
    import torch

    if _autocast(x):
        return type(self).forward(self, x)
    linear = torch.ops.mkldnn._linear_pointwise
    hidden = linear(x, self.fc1.weight, self.fc1.bias, "gelu", [], "none")
    return linear(hidden, self.fc2.weight, self.fc2.bias, "none", [], "")


def _window_attention(self: Any, x: Any, mask: Any = None) -> Any:
    """openflam's ``WindowAttention.forward`` (softmax(q k^T scale + bias + mask) v, then
    the projection) as one fused attention call; returns no attention map (a 1-element
    placeholder: openflam only stacks and averages it). Under autocast too: q, k and v
    come out of the (autocast) projection in bf16, and the bias follows them."""
    import torch.nn.functional as F

    b_, n, c = x.shape
    heads = self.num_heads
    qkv = self.qkv(x).reshape(b_, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    bias = self.sonotag_bias
    if mask is None:
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias[None].to(q.dtype), scale=self.scale
        )
    else:  # (B*nW, h, N, d) -> (B, nW*h, N, d) so the (nW, h, N, N) mask broadcasts over B
        windows = mask.shape[0]
        grouped = (b_ // windows, windows * heads, n, c // heads)
        key = (mask.data_ptr(), q.dtype)  # the block's fixed shift mask, once per dtype
        if self.sonotag_masks.get("key") != key:
            full = (bias[None] + mask[:, None]).reshape(1, windows * heads, n, n)
            self.sonotag_masks = {"key": key, "mask": full.to(q.dtype)}
        full_mask = self.sonotag_masks["mask"]
        out = F.scaled_dot_product_attention(
            q.reshape(grouped), k.reshape(grouped), v.reshape(grouped),
            attn_mask=full_mask, scale=self.scale,
        ).reshape(b_, heads, n, c // heads)  # fmt: skip
    return self.proj(out.transpose(1, 2).reshape(b_, n, c)), x.new_zeros(1)


def _power_spectrogram(self: Any, x: Any) -> Any:
    """torchlibrosa's ``Spectrogram`` (|STFT|^2 as two 1024-tap convolutions, ~10 % of the
    encoder's time) as one FFT: (batch, 1, frames, bins), the same layout."""
    import torch

    stft = self.stft
    spec = torch.stft(
        x.float(), n_fft=stft.n_fft, hop_length=stft.hop_length, win_length=stft.win_length,
        window=self.sonotag_window, center=True, pad_mode=stft.pad_mode, return_complex=True,
    )  # fmt: skip
    return (spec.real**2 + spec.imag**2).transpose(1, 2)[:, None]


def _hann_dft(spectrogram: Any) -> Any:
    """The periodic Hann window when ``spectrogram``'s convolution weights are exactly the
    windowed DFT an FFT computes (so the FFT gives their numbers), else None."""
    import torch

    stft: Any = getattr(spectrogram, "stft", None)
    conv_real, conv_imag = getattr(stft, "conv_real", None), getattr(stft, "conv_imag", None)
    if conv_real is None or conv_imag is None or spectrogram.power != 2.0 or not stft.center:
        return None
    n = stft.n_fft
    if stft.win_length != n or stft.pad_mode not in ("reflect", "constant"):
        return None
    window = torch.hann_window(n, periodic=True, dtype=torch.float64)
    bins, taps = (torch.arange(m, dtype=torch.float64) for m in (n // 2 + 1, n))
    angle = 2 * torch.pi * torch.outer(bins, taps) / n
    real, imag = torch.cos(angle) * window, -torch.sin(angle) * window
    for conv, want in ((conv_real, real), (conv_imag, imag)):
        got = conv.weight.detach().double()
        if got.shape != (n // 2 + 1, 1, n) or (got[:, 0] - want).abs().max() > 1e-6:
            return None
    return window.float()


def _relative_bias(attn: Any) -> Any:
    """The (heads, N, N) relative-position bias openflam rebuilds on every call."""
    n = attn.window_size[0] * attn.window_size[1]
    table = attn.relative_position_bias_table[attn.relative_position_index.view(-1)]
    return table.view(n, n, -1).permute(2, 0, 1).contiguous().detach()


def _exact_gelu(act: Any) -> bool:
    import torch

    return isinstance(act, torch.nn.GELU) and act.approximate == "none"


def onednn_works() -> bool:
    """Whether oneDNN's inner product runs here and gives torch's answer (a tiny probe)."""
    import torch

    try:
        if not torch.backends.mkldnn.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=gen) for s in ((3, 5, 8), (6, 8), (6,)))
        with torch.inference_mode():
            got = torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu", [], "none")
            want = torch.nn.functional.gelu(torch.nn.functional.linear(x, w, b))
        return bool(torch.allclose(got, want, rtol=0, atol=1e-5))
    except (RuntimeError, AttributeError):  # op missing from this build, or refused
        log.info("oneDNN probe failed", exc_info=True)
        return False


def choose_backend(requested: str, device: str) -> str:
    """The backend ``requested`` ("auto", "torch", "onednn") gives on ``device``: "auto"
    is "onednn" on a CPU where it runs, else "torch"; "onednn" where it cannot run falls
    back to "torch" with a log line, never a broken analysis."""
    if requested == "torch":
        return "torch"
    if device == "cpu" and onednn_works():
        return "onednn"
    if requested == "onednn":
        log.warning("SONOTAG_BACKEND=onednn cannot run on %s here; using torch", device)
    return "torch"


def apply_backend(net: Any, backend: str) -> int:
    """Route ``net``'s audio encoder through ``backend`` (per instance: another openflam
    object in the process keeps its own modules); returns how many modules now run it."""
    if backend != "onednn":
        return 0
    import torch

    audio = [getattr(net, "audio_branch", None), getattr(net, "audio_projection", None)]
    done = 0
    for part in (p for p in audio if isinstance(p, torch.nn.Module)):
        for module in part.modules():
            kind = type(module).__name__
            if kind == "WindowAttention" and hasattr(module, "relative_position_index"):
                module.sonotag_bias = _relative_bias(module)
                module.sonotag_masks = {}  # type: ignore[assignment]
                module.forward = types.MethodType(_window_attention, module)
            elif kind == "Mlp" and _exact_gelu(getattr(module, "act", None)):
                module.forward = types.MethodType(_mlp, module)
            elif kind == "Spectrogram" and (window := _hann_dft(module)) is not None:
                module.sonotag_window = window
                module.forward = types.MethodType(_power_spectrogram, module)
            elif isinstance(module, torch.nn.Linear):
                module.forward = types.MethodType(_linear, module)  # type: ignore[method-assign]
            else:
                continue
            done += 1
    return done

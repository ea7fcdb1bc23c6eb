"""Fast mode: the audio encoder in bfloat16, opt-in, for a bounded probability error.

Measured on this project's 2-core Xeon (Sapphire Rapids: AMX and AVX512-BF16) with the
full-size model, 4 windows per batch (``bench/pipeline.py`` prints ``fast_vs_exact`` and
``fast_max_prob_err``; the issue-13 note has the alternatives):

* bf16 autocast: 2.1x openflam's fp32 modules on a Xeon, 1.57-1.68x the oneDNN exact
  backend (:mod:`.backend`) on an AMD EPYC, max probability error 0.003-0.004; under
  autocast the backend's modules run openflam's own forward; bf16 through oneDNN's inner
  product instead was slower (1.40x);
* int8 dynamic quantisation of the Linear layers (per channel, torch's x86/fbgemm/onednn
  engines): 1.35-1.5x at 0.012, over the 0.01 bound; so it is not offered.

Autocast keeps reductions, softmax and layer norm in fp32. Forcing the STFT/mel front-end
to fp32 as well changed neither speed nor error here (0.0033 vs 0.0027), so it is left to
autocast. bf16 is only fast where the hardware computes it (AMX / AVX512-BF16, or a GPU); elsewhere
it is slower than fp32, so fast mode says so instead of running slower.
"""

from __future__ import annotations

import functools
from typing import Any

from sonotag_core.errors import ModelError
from sonotag_core.inference.model import LoadedModel


@functools.cache
def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bfloat16 matrix products in hardware (asked once)."""
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


def offered(requested_device: str) -> bool:
    """Whether fast mode would be faster on the device ``SONOTAG_DEVICE`` selects (the
    dashboard's toggle is off and disabled where it would not)."""
    from sonotag_core.inference.model import select_device

    try:
        return native_bf16(select_device(requested_device))
    except ModelError:  # cuda asked for, none visible: loading the model says so
        return False


def check_fast_mode(model: LoadedModel) -> None:
    """Raise :class:`ModelError` (what to do instead) where fast mode would not be faster."""
    if not native_bf16(model.device):
        raise ModelError(
            "Fast mode needs a CPU with AMX or AVX512-BF16 (or a GPU) and this one has "
            "neither, so it would be slower than the exact path. Turn fast mode off."
        )


def fast_audio_features(model: LoadedModel, waveform: Any) -> Any:
    """openflam's ``get_local_audio_features`` under bf16 autocast; fp32 features out
    (normalised in fp32, like the exact path's). Callers run :func:`check_fast_mode`
    once first (``encode_windows`` does), not per batch."""
    import torch

    with torch.autocast(device_type=model.device.split(":")[0], dtype=torch.bfloat16):
        feats = model.net.get_local_audio_features(waveform)
    return torch.nn.functional.normalize(feats.float(), dim=-1)

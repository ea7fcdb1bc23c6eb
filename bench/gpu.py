"""Benchmark: the audio encoder on a CUDA GPU (issue 13), skipped cleanly without one.

On the full-size random-weight OpenFLAM v1-base (bench/.cache, built once), in one run:
windows/s of the exact fp32 path per batch size (what ``SONOTAG_BATCH_SIZE=auto`` should
pick), audio hours per hour at the best one, bf16 and fp16 autocast speed, the max
probability error of each GPU path against CPU fp32 on the same windows (autocast is
worth offering by default only within 1e-3; fast mode promises 0.01), and peak GPU memory.

Prints figures, then one JSON line. Without a GPU it prints why and
``{"skipped": true, ...}`` and exits 0, before building anything.

Usage: .venv/bin/python bench/gpu.py [--seconds 120] [--batches 8,16,32,64]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import HUB, LABELS, ensure_checkpoint, settings_for  # noqa: E402

AUTOCAST_BOUND = 1e-3  #: the issue's bound for autocast on the default GPU path


def windows_of(seconds: float):
    """(n, 480 000) float32 windows of the pipeline bench's beeps-over-noise audio."""
    import numpy as np
    from pipeline import CACHE, make_audio

    from sonotag_core.domain.windows import hop_samples, iter_windows
    from sonotag_core.media import decode

    audio = decode.decode_all(make_audio(CACHE / f"audio_{int(seconds)}s.wav", seconds))
    return np.stack([w.samples for w in iter_windows([audio], hop_samples(10.0))])


def timed(fn, x, reps: int) -> float:
    """Seconds per call of ``fn(x)`` on the GPU (after a warm-up), synchronised."""
    import torch

    fn(x)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--batches", default="8,16,32,64")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU visible here; skipped.", file=sys.stderr)
        print(json.dumps({"skipped": True, "reason": "no CUDA GPU"}))
        return 0
    import numpy as np

    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.scoring import TextCache, frame_probabilities

    ensure_checkpoint()
    cpu_settings = settings_for(HUB)
    gpu = load_model(replace(cpu_settings, device="cuda"))
    cpu = load_model(cpu_settings)
    windows = windows_of(args.seconds)
    x_cpu = torch.from_numpy(windows)
    with torch.inference_mode():
        ref = cpu.net.get_local_audio_features(x_cpu[:8]).numpy()
    enc_ref = TextCache(cpu).encode(LABELS)
    probs_ref = frame_probabilities(ref, enc_ref)

    def features(dtype):
        def run(x):
            if dtype is None:
                return gpu.net.get_local_audio_features(x)
            with torch.autocast("cuda", dtype=dtype):
                feats = gpu.net.get_local_audio_features(x)
            return torch.nn.functional.normalize(feats.float(), dim=-1)

        return run

    paths = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    result: dict = {"gpu": torch.cuda.get_device_name(0), "windows": len(windows)}
    enc_gpu = TextCache(gpu).encode(LABELS)  # text encoding on the GPU too
    with torch.inference_mode():
        for name, dtype in paths.items():
            feats = features(dtype)(x_cpu[:8].cuda()).float().cpu().numpy()
            err = float(np.abs(frame_probabilities(feats, enc_gpu) - probs_ref).max())
            result[f"{name}_max_prob_err_vs_cpu"] = round(err, 6)
            print(f"{name}: max probability error vs CPU fp32 {err:.2e}")
        speed = {}
        torch.cuda.reset_peak_memory_stats()
        for b in (int(v) for v in args.batches.split(",")):
            x = torch.from_numpy(np.resize(windows, (b, windows.shape[1]))).cuda()
            speed[b] = b / timed(features(None), x, args.reps)
            print(f"fp32, batch {b}: {speed[b]:.1f} windows/s")
        best = max(speed, key=speed.get)
        x = torch.from_numpy(np.resize(windows, (best, windows.shape[1]))).cuda()
        for name in ("bf16", "fp16"):
            per_s = best / timed(features(paths[name]), x, args.reps)
            result[f"{name}_vs_fp32"] = round(per_s / speed[best], 2)
            print(f"{name} autocast, batch {best}: {per_s:.1f} windows/s")
    within = [n for n in ("bf16", "fp16") if result[f"{n}_max_prob_err_vs_cpu"] <= AUTOCAST_BOUND]
    result.update(
        windows_per_s={str(b): round(v, 1) for b, v in speed.items()},
        best_batch=best,
        audio_hours_per_hour=round(speed[best] * 10.0, 1),  # a window is 10 s of audio
        gpu_peak_mem_mb=round(torch.cuda.max_memory_allocated() / 2**20, 1),
        autocast_within_1e3=within,
    )
    print(
        f"best: batch {best}, {speed[best]:.1f} windows/s = {speed[best] * 10:.0f} audio hours "
        f"per hour; peak GPU memory {result['gpu_peak_mem_mb']:.0f} MB; autocast within "
        f"{AUTOCAST_BOUND:g}: {', '.join(within) or 'none (the GPU path stays fp32)'}"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

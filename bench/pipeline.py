"""Benchmark: the seed-style loop vs SonoTag's fast path, on the real architecture.

Builds (once, cached under bench/.cache) a random-weight OpenFLAM v1-base at full size:
HTSAT-base audio encoder and roberta-base text encoder (12 layers, 50 265-token
vocabulary). No network. Measured in one run on the same 120-s audio and 10 labels:

* naive: openflam's ``get_local_similarity`` per 10-s chunk (what the seed did);
* fast: sonotag's decode -> batched audio encoder -> cached text -> frame map.

Prints figures, then one JSON line with backend (SONOTAG_BACKEND's choice here),
exact_backend_vs_torch (against openflam's own modules, interleaved A/B), fast_vs_exact and
fast_max_prob_err (bf16 fast mode, interleaved A/B), naive_s, fast_s, ratio, max_abs_diff,
s_per_audio_hour, peak_rss_mb, efficiency, rss_10min_mb, rss_60min_mb.

Usage: .venv/bin/python bench/pipeline.py [--seconds 120] [--skip-rss]
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
HUB = CACHE / "hub-full"
LABELS = [
    "dog barking",
    "siren",
    "applause",
    "a man speaking",
    "music",
    "car engine",
    "rain",
    "footsteps",
    "glass breaking",
    "bird chirping",
]


def peak_rss_mb() -> float:
    """Peak RSS of this process image (VmHWM). Not ru_maxrss: Linux carries that across
    fork+exec, so a child would report its parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ensure_checkpoint() -> Path:
    marker = HUB / "READY"
    if not marker.exists():
        from sonotag_core.testing.random_checkpoint import build_random_checkpoint

        print("building full-size random checkpoint (once) ...", file=sys.stderr)
        build_random_checkpoint(HUB, text_layers=12, vocab_size=50265, text_intermediate=3072)
        marker.write_text("ok")
    return HUB


def make_audio(path: Path, seconds: float, codec: tuple[str, ...] = ("pcm_s16le",)) -> Path:
    """Beeps over noise, ``seconds`` long, encoded with ``codec`` (ffmpeg -c:a ...)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        expr = "0.4*sin(2*PI*660*t)*lt(mod(t\\,2)\\,1)+0.05*(random(0)-0.5)"
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"aevalsrc='{expr}':s=48000:d={seconds}",
                "-c:a",
                *codec,
                str(path),
            ],
            check=True,
        )
    return path


def settings_for(hub: Path):
    from sonotag_core.settings import Settings

    return Settings(
        model_dir=str(hub), data_dir=str(CACHE / "data"), threads=2, batch_size=4
    ).validated()


def rss_child(seconds: float) -> None:
    """Analyse a ``seconds``-long file in a fresh process; print its peak RSS (MB)."""
    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.scoring import TextCache
    from sonotag_core.service.analysis import embed_file, score

    settings = settings_for(HUB)
    path = make_audio(CACHE / f"audio_{int(seconds)}s.wav", seconds)
    model = load_model(settings)
    after_load = peak_rss_mb()
    t0 = time.perf_counter()
    emb = embed_file(model, path, hop_s=10.0, settings=settings)
    score(TextCache(model), emb, LabelSet(tuple(LABELS)))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
                "after_load_mb": after_load,
                "wall_s": time.perf_counter() - t0,
            }
        )
    )


def measure_rss(seconds: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", str(seconds)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def encoder_efficiency(model, ref, windows) -> tuple[float, float, float]:
    """(GFLOP per window, achieved GFLOP/s of the audio encoder on the chosen backend,
    sgemm GFLOP/s). The FLOPs are counted on openflam's own modules (``ref``): oneDNN's
    inner product is an op the counter does not know; the arithmetic is the same, less
    the DFT convolutions where the backend computes the spectrogram by FFT."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.from_numpy(windows[:1])
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        ref.model.get_local_audio_features(x)
    gflop = counter.get_total_flops() / 1e9
    if "forward" in vars(model.net.audio_branch.spectrogram_extractor):  # the FFT replaced
        with torch.inference_mode(), FlopCounterMode(display=False) as conv_stft:
            ref.model.audio_branch.spectrogram_extractor(x)  # openflam's DFT convolutions:
        gflop -= conv_stft.get_total_flops() / 1e9  # arithmetic the backend does not do
    batch = torch.from_numpy(windows[:4])
    with torch.inference_mode():
        model.net.get_local_audio_features(batch)  # warm-up
        t0 = time.perf_counter()
        reps = 2
        for _ in range(reps):
            model.net.get_local_audio_features(batch)
        enc_s = (time.perf_counter() - t0) / (reps * batch.shape[0])
    a = torch.randn(2048, 2048)
    b = torch.randn(2048, 2048)
    torch.mm(a, b)
    t0 = time.perf_counter()
    n = 10
    for _ in range(n):
        torch.mm(a, b)
    sgemm = 2 * 2048**3 * n / (time.perf_counter() - t0) / 1e9
    return gflop, gflop / enc_s, sgemm


def interleaved(paths: dict, batch, rounds: int = 3) -> tuple[dict, dict]:
    """(seconds spent per path, last output per path), A/B/A/B on the same batch after a
    warm-up each, so load on the machine hits every path alike."""
    import torch

    spent = dict.fromkeys(paths, 0.0)
    out = {}
    with torch.inference_mode():
        for fn in paths.values():
            fn(batch)  # warm-up
        for _ in range(rounds):
            for name, fn in paths.items():
                t0 = time.perf_counter()
                out[name] = fn(batch).float().numpy()
                spent[name] += time.perf_counter() - t0
    return spent, out


def backend_vs_torch(model, ref, windows) -> tuple[float, float]:
    """(torch s / chosen backend s, max |feature diff|): the loaded model's audio encoder
    against openflam's own modules (``ref``, same weights) on 4 windows."""
    import numpy as np
    import torch

    paths = {
        "torch": ref.model.get_local_audio_features,
        "backend": model.net.get_local_audio_features,
    }
    spent, out = interleaved(paths, torch.from_numpy(windows[:4]))
    return spent["torch"] / spent["backend"], float(np.abs(out["torch"] - out["backend"]).max())


def fast_vs_exact(model, windows, labels) -> tuple[float, float]:
    """(exact s / fast s, max probability error of fast mode), interleaved A/B on the same
    batches so load on the machine hits both alike."""
    import numpy as np
    import torch

    from sonotag_core.inference.fast_mode import fast_audio_features
    from sonotag_core.inference.scoring import TextCache, frame_probabilities

    paths = {
        "exact": model.net.get_local_audio_features,
        "fast": lambda x: fast_audio_features(model, x),
    }
    spent, out = interleaved(paths, torch.from_numpy(windows[:4]))
    enc = TextCache(model).encode(labels)
    err = float(
        np.abs(frame_probabilities(out["fast"], enc) - frame_probabilities(out["exact"], enc)).max()
    )
    return spent["exact"] / spent["fast"], err


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--rss-child", type=float)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    ensure_checkpoint()
    if args.rss_child:
        rss_child(args.rss_child)
        return

    # first, while this process maps no checkpoint: pages another process maps too are
    # not paged out (inference/resident.py), so a child beside a loaded parent would
    # report more than a dashboard process holds
    rss = None if args.skip_rss else (measure_rss(600), measure_rss(3600))

    import numpy as np
    import openflam
    import torch

    from sonotag_core.domain.labels import LabelSet
    from sonotag_core.domain.windows import WINDOW_SAMPLES
    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.scoring import TextCache
    from sonotag_core.media import decode
    from sonotag_core.service.analysis import embed_file, score

    torch.set_num_threads(2)
    settings = settings_for(HUB)
    path = make_audio(CACHE / f"audio_{int(args.seconds)}s.wav", args.seconds)
    audio = decode.decode_all(path)
    n_chunks = int(np.ceil(audio.size / WINDOW_SAMPLES))
    chunks = np.zeros((n_chunks, WINDOW_SAMPLES), np.float32)
    for i in range(n_chunks):
        piece = audio[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
        chunks[i, : piece.size] = piece

    # --- fast path (sonotag), timed end to end from the file on disk ---
    model = load_model(settings)
    # each path is warmed at the shapes its timed run uses (here 4-window batches; the
    # seed loop below: 1 chunk, all labels): oneDNN builds a primitive per new shape
    fast_warm = embed_file(
        model, make_audio(CACHE / "warm40.wav", 40.0), hop_s=10.0, settings=settings
    )
    del fast_warm
    t0 = time.perf_counter()
    emb = embed_file(model, path, hop_s=10.0, settings=settings)
    t_audio = time.perf_counter() - t0
    timeline = score(TextCache(model), emb, LabelSet(tuple(LABELS)))
    fast_s = time.perf_counter() - t0
    print(
        f"fast path: {fast_s:.2f} s ({t_audio:.2f} s audio encoder incl. decode, "
        f"{fast_s - t_audio:.2f} s labels + map) for {args.seconds:.0f} s audio, {len(LABELS)} labels"
    )

    # --- seed-style loop (openflam reference per 10-s chunk) ---
    ref = openflam.OpenFLAM("v1-base", default_ckpt_path=str(HUB))
    ref.eval()
    ref.get_local_similarity(
        torch.from_numpy(chunks[:1]), LABELS, method="unbiased", cross_product=True
    )
    t0 = time.perf_counter()
    maps = [
        ref.get_local_similarity(
            torch.from_numpy(chunks[i : i + 1]), LABELS, method="unbiased", cross_product=True
        ).numpy()[0]
        for i in range(n_chunks)
    ]
    naive_s = time.perf_counter() - t0
    naive = np.concatenate(maps, axis=1)[:, : timeline.n_frames]
    diff = float(np.abs(naive - timeline.probabilities).max())
    print(f"seed-style loop: {naive_s:.2f} s; ratio {naive_s / fast_s:.2f}x; max |diff| {diff:.2e}")

    backend_ratio, backend_diff = backend_vs_torch(model, ref, chunks)
    print(
        f"exact backend {model.backend}: {backend_ratio:.2f}x openflam's torch modules, "
        f"max |feature diff| {backend_diff:.1e}"
    )
    gflop, achieved, sgemm = encoder_efficiency(model, ref, chunks)
    print(
        f"audio encoder: {gflop:.1f} GFLOP/window, {achieved:.1f} GFLOP/s achieved; "
        f"sgemm {sgemm:.1f} GFLOP/s; efficiency {achieved / sgemm:.2f}"
    )
    from sonotag_core.errors import ModelError
    from sonotag_core.inference.fast_mode import check_fast_mode

    try:
        check_fast_mode(model)
        fast_ratio, fast_err = fast_vs_exact(model, chunks, LABELS)
        print(f"fast mode (bf16): {fast_ratio:.2f}x exact, max probability error {fast_err:.4f}")
    except ModelError as exc:  # no native bf16 here: nothing fast to measure
        fast_ratio = fast_err = float("nan")
        print(f"fast mode: not measured ({exc})")
    result = {
        "backend": model.backend,
        "exact_backend_vs_torch": round(backend_ratio, 2),
        "exact_backend_max_feature_diff": backend_diff,
        "fast_vs_exact": round(fast_ratio, 2),
        "fast_max_prob_err": round(fast_err, 5),
        "audio_s": args.seconds,
        "labels": len(LABELS),
        "naive_s": round(naive_s, 3),
        "fast_s": round(fast_s, 3),
        "ratio": round(naive_s / fast_s, 2),
        "max_abs_diff": diff,
        "s_per_audio_hour": round(fast_s / args.seconds * 3600, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "gflop_per_window": round(gflop, 2),
        "encoder_gflops": round(achieved, 1),
        "sgemm_gflops": round(sgemm, 1),
        "efficiency": round(achieved / sgemm, 3),
        "threads": torch.get_num_threads(),
    }
    del ref
    if rss:
        r10, r60 = rss
        print(
            f"peak RSS: 10-min file {r10['peak_rss_mb']:.0f} MB, 60-min file {r60['peak_rss_mb']:.0f} MB "
            f"(after model load {r60['after_load_mb']:.0f} MB); 60 min analysed in {r60['wall_s']:.0f} s"
        )
        result.update(
            rss_10min_mb=round(r10["peak_rss_mb"], 1),
            rss_60min_mb=round(r60["peak_rss_mb"], 1),
            rss_after_load_mb=round(r60["after_load_mb"], 1),
            s_per_audio_hour_60min=round(r60["wall_s"], 1),
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

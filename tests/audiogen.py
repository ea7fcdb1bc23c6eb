"""Test audio made by ffmpeg's lavfi sources: no downloaded datasets, no committed binaries."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

CODEC_ARGS = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".flac": ["-c:a", "flac"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "96k"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac", "-b:a", "96k"],
    ".webm": ["-c:a", "libopus", "-b:a", "64k"],
}


def make_audio(
    path: Path,
    seconds: float,
    *,
    kind: str = "sine",
    freq: float = 440.0,
    sample_rate: int = 44_100,
    channels: int = 1,
) -> Path:
    """Write a ``kind`` ("sine", "noise", "chirp", "mix") clip; the codec follows the suffix."""
    sources = {
        "sine": f"sine=frequency={freq}:sample_rate={sample_rate}:duration={seconds}",
        "noise": f"anoisesrc=color=pink:amplitude=0.3:sample_rate={sample_rate}:duration={seconds}",
        # a tone that turns on and off every second: gives the model structure over time
        "mix": (
            f"aevalsrc='0.4*sin(2*PI*{freq}*t)*lt(mod(t\\,2)\\,1)+0.05*(random(0)-0.5)'"
            f":s={sample_rate}:d={seconds}"
        ),
    }
    path = Path(path)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", sources[kind]]
    cmd += ["-ac", str(channels), *CODEC_ARGS[path.suffix.lower()], str(path)]
    subprocess.run(cmd, check=True)
    return path


SCENE_RATE = 48_000


def spoken(text: str, workdir: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng, at 48 kHz, leading and trailing silence cut (so the
    speech's span in a scene is where the words are)."""
    wav = Path(workdir) / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-ac", "1", "-ar", str(SCENE_RATE)]
        + ["-f", "f32le", "-"],
        check=True,
        capture_output=True,
    ).stdout
    x = np.frombuffer(raw, dtype=np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    return x[loud[0] : loud[-1] + 1].copy()


def make_scene(
    path: Path, seconds: float, parts: list[tuple[str, float, float | str]]
) -> list[tuple[float, float, str]]:
    """A ``seconds``-long 48 kHz wav over low noise with ``parts``: ("tone", onset, length),
    ("noise", onset, length) or ("speech", onset, text). Returns each part's true
    (onset, offset, kind) in seconds, from the samples placed (speech lasts as long as
    espeak-ng speaks)."""
    rng = np.random.default_rng(0)
    out = 0.002 * rng.standard_normal(int(seconds * SCENE_RATE)).astype(np.float32)
    truth = []
    for kind, onset, arg in parts:
        if kind == "speech":
            clip = spoken(str(arg), Path(path).parent)
        else:
            n = int(round(float(arg) * SCENE_RATE))
            t = np.arange(n) / SCENE_RATE
            clip = (
                0.4 * np.sin(2 * np.pi * 1000.0 * t)
                if kind == "tone"
                else 0.3 * rng.standard_normal(n)
            ).astype(np.float32)
        start = int(round(onset * SCENE_RATE))
        out[start : start + len(clip)] += clip[: len(out) - start]
        end = min(start + len(clip), len(out))
        truth.append((start / SCENE_RATE, end / SCENE_RATE, kind))
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(SCENE_RATE)]
        + ["-ac", "1", "-i", "-", "-c:a", "pcm_s16le", str(path)],
        input=np.clip(out, -1, 1).tobytes(),
        check=True,
    )
    return truth


def make_repeats(
    path: Path, windows: int, copies: tuple[int, ...], *, window_s: float = 10.0, seed: int = 0
) -> list[float]:
    """A 48 kHz wav of ``windows`` windows of ``window_s`` s: the windows in ``copies`` are
    one identical snippet (noise with a tone burst and a noise burst in it), the others
    each their own noise. Identical samples on the model's window grid give identical
    embeddings, so *Find similar* from one copy must find the others first. Returns the
    copies' start times in seconds."""
    rng = np.random.default_rng(seed)
    n = int(window_s * SCENE_RATE)
    t = np.arange(n) / SCENE_RATE
    snippet = 0.05 * rng.standard_normal(n)
    burst = (t >= 2.0) & (t < 3.5)
    snippet[burst] += 0.4 * np.sin(2 * np.pi * 1500.0 * t[burst] * (1 + 0.2 * t[burst]))
    hiss = (t >= 6.0) & (t < 7.0)
    snippet[hiss] += 0.3 * rng.standard_normal(int(hiss.sum()))
    parts = [
        snippet
        if k in copies
        else 0.08 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * 300 * t)
        for k in range(windows)
    ]
    out = np.concatenate(parts).astype(np.float32)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(SCENE_RATE)]
        + ["-ac", "1", "-i", "-", "-c:a", "pcm_s16le", str(path)],
        input=np.clip(out, -1, 1).tobytes(),
        check=True,
    )
    return [k * window_s for k in copies]

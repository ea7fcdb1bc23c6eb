"""Test audio made by ffmpeg's lavfi sources: no downloaded datasets, no committed binaries."""

from __future__ import annotations

import subprocess
from pathlib import Path

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

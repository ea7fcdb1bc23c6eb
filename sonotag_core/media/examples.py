"""Example clips the project generates itself, so a new user sees a result in one click.

Each clip is synthesised by ffmpeg's lavfi sources (deterministic: same bytes on every
machine with the same ffmpeg, so a share link to an example means the same audio) and
cached under ``<data_dir>/examples``. No downloaded or committed audio.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sonotag_core.errors import SourceError
from sonotag_core.untrusted import quoted


@dataclass(frozen=True)
class Example:
    """A built-in clip: what it sounds like and labels that make sense for it."""

    id: str
    title: str
    description: str
    labels: tuple[str, ...]
    seconds: float
    expression: str  # aevalsrc expression of t (seconds); the clip is 48 kHz mono


# Sounds built from tones and noise. Commas inside aevalsrc are escaped for the filter graph.
EXAMPLES: dict[str, Example] = {
    e.id: e
    for e in (
        Example(
            "siren-street",
            "Siren passing a street",
            "A wailing two-tone siren rises and fades over traffic-like noise, with two horn blasts.",
            ("siren", "car horn", "traffic noise", "-music"),
            24.0,
            # wail 700-1500 Hz with a 4-s period, loudest mid-clip; brown-ish rumble; horns at 16 s and 19 s
            "0.5*sin(2*PI*(1100*t+400*2/PI*sin(2*PI*t/4)*0.5))*exp(-((t-11)/6)^2)"
            "+0.08*(random(0)-0.5)"
            "+0.35*sin(2*PI*415*t)*sin(2*PI*3*t)^2*(between(t\\,16\\,16.8)+between(t\\,19\\,19.6))",
        ),
        Example(
            "alarm-clock",
            "Alarm clock in a quiet room",
            "Quiet room tone, then a 2 kHz alarm beeping in bursts from 6 s to 14 s.",
            ("alarm clock beeping", "silence", "a man speaking"),
            20.0,
            "0.45*sin(2*PI*2000*t)*lt(mod(t\\,0.5)\\,0.25)*between(t\\,6\\,14)+0.01*(random(0)-0.5)",
        ),
        Example(
            "birds-rain",
            "Birds, then rain",
            "Fast chirps for the first half, then steady hiss like rain on a roof.",
            ("bird chirping", "rain", "wind"),
            30.0,
            # chirps: 3-5 kHz sweeps of 80 ms every 0.4 s for t<14; rain: white noise for t>15
            "0.4*sin(2*PI*(3000+20000*mod(t\\,0.4))*mod(t\\,0.4))*lt(mod(t\\,0.4)\\,0.08)*lt(t\\,14)"
            "+0.25*(random(1)-0.5)*gt(t\\,15)",
        ),
    )
}


def example_path(example_id: str, data_dir: str | Path) -> Path:
    """The example's WAV file, generated on first use (atomically, so concurrent sessions
    never play a half-written file)."""
    try:
        ex = EXAMPLES[example_id]
    except KeyError:
        raise SourceError(
            f"There is no example called {quoted(example_id)}; choose one of: {', '.join(EXAMPLES)}."
        ) from None
    folder = Path(data_dir) / "examples"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{ex.id}.wav"
    if path.exists():
        return path
    tmp = folder / f".{ex.id}.{os.getpid()}.tmp.wav"
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"aevalsrc='{ex.expression}':s=48000:d={ex.seconds}",
        "-c:a",
        "pcm_s16le",
        str(tmp),
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        os.replace(tmp, path)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SourceError(f"Could not generate the example clip {ex.title!r} ({exc}).") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path

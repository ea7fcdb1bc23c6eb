"""Any common audio/video file -> 48 kHz mono float32, streamed in blocks.

ffmpeg (Debian's) decodes in a subprocess straight to raw float32 on a pipe, so memory
holds one block at a time whatever the duration (pydub would hold the whole file, ~2 GB
of float32 for 3 hours). Untrusted files are opened with two guards:

* ``-protocol_whitelist file,pipe``: a crafted playlist cannot make ffmpeg fetch a URL;
* ``-format_whitelist``: only real audio/video containers are demuxed, so playlist and
  script demuxers (HLS, concat, ...) that could read *other* local files never run.

Every failure becomes one :class:`DecodeError` whose message names the file and says
what to do; ffmpeg's own stderr is kept for the log.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonotag_core.domain.progress import Progress, ProgressFn, no_progress
from sonotag_core.domain.windows import SAMPLE_RATE, WINDOW_SAMPLES
from sonotag_core.errors import DecodeError, LimitError
from sonotag_core.untrusted import quoted, shown

log = logging.getLogger(__name__)

# Demuxers for real media files only (names as `ffmpeg -demuxers` prints them; a
# multi-name demuxer like "mov,mp4,m4a,3gp,3g2,mj2" is allowed when any name matches).
ALLOWED_DEMUXERS = (
    "wav,w64,aiff,caf,au,flac,mp3,ogg,mov,matroska,aac,ac3,eac3,dts,"
    "asf,avi,flv,mpeg,mpegts,wv,ape,tta,amr"
)
INPUT_GUARDS = ["-protocol_whitelist", "file,pipe", "-format_whitelist", ALLOWED_DEMUXERS]
TRUNCATION_TOLERANCE_S = 1.0  # decoded audio may fall short of the header by this much
BYTES_PER_SAMPLE = 4  # float32


@dataclass(frozen=True)
class AudioProbe:
    """What ffprobe says about a file's first audio stream (before decoding it)."""

    duration_s: float | None
    codec: str
    sample_rate: int | None
    channels: int | None
    format_name: str
    duration_estimated: bool = False  # guessed from bitrate (e.g. VBR mp3 without header)


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise DecodeError(
            f"{tool} is not installed, so audio cannot be decoded. "
            "Install ffmpeg (Debian/Ubuntu: sudo apt-get install -y ffmpeg) and try again."
        )
    return path


def _check_file(path: Path, name: str) -> None:
    if not path.is_file():
        raise DecodeError(f"{quoted(name)} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise DecodeError(f"{quoted(name)} is empty (0 bytes). Choose the audio file again.")


def input_url(path: Path) -> str:
    """How ffmpeg is told to open ``path``: ``file:`` plus the absolute path. A bare name is
    parsed by ffmpeg as a URL first, so a file called ``file:victim.wav`` (or ``pipe:0``)
    would open *another* file (or stdin); with the prefix it opens exactly this one."""
    return "file:" + str(Path(path).absolute())


def _not_audio(name: str, detail: str) -> DecodeError:
    return DecodeError(
        f"{quoted(name)} could not be read as audio ({detail}). "
        "Use a common audio or video file: wav, mp3, flac, ogg/opus, m4a/aac, webm, mp4."
    )


def _not_finite(name: str, first_bad: int) -> DecodeError:
    """Float audio can hold NaN or infinity; scores computed from them are garbage, so the
    file is refused rather than analysed silently (nothing is replaced behind the user's
    back)."""
    return DecodeError(
        f"{quoted(name)} contains samples that are not numbers (NaN or infinity), the "
        f"first at {first_bad / SAMPLE_RATE:.2f} s: the file is damaged or was written by a "
        "faulty program. Export it again (e.g. as 16-bit PCM) and try again."
    )


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "unknown error"
    last = lines[-1].split(": ")[-1]  # drop ffmpeg's "path: " prefix, keep the reason
    if last in ("Invalid argument", "Invalid data found when processing input"):
        return "not a supported audio or video format"
    return last[:200]


def probe(path: Path, *, name: str | None = None) -> AudioProbe:
    """Container and first audio stream of ``path``; :class:`DecodeError` if it has none.
    Messages call the file ``name`` (what the user calls it: an upload's own name, not
    the server's copy), or its file name."""
    path = Path(path)
    name = name or path.name
    _check_file(path, name)
    cmd = [
        _require("ffprobe"),
        "-v",
        "warning",
        *INPUT_GUARDS,
        "-select_streams",
        "a:0",
        "-show_entries",
        "format=duration,format_name:stream=codec_name,sample_rate,channels,duration",
        "-of",
        "json",
        "--",
        input_url(path),
    ]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise _not_audio(name, "probing took too long") from None
    if proc.returncode != 0:
        log.info("ffprobe failed on %s: %s", path, proc.stderr.strip())
        raise _not_audio(name, _first_line(proc.stderr))
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        raise _not_audio(name, "unreadable probe output") from None
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    if not streams:
        raise DecodeError(
            f"{quoted(name)} contains no audio stream. Choose a file with sound in it."
        )
    stream = streams[0]
    duration = _float(fmt.get("duration")) or _float(stream.get("duration"))
    return AudioProbe(
        duration_s=duration,
        codec=str(stream.get("codec_name", "unknown")),
        sample_rate=_int(stream.get("sample_rate")),
        channels=_int(stream.get("channels")),
        format_name=str(fmt.get("format_name", "unknown")),
        duration_estimated="Estimating duration from bitrate" in proc.stderr,
    )


def _float(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v > 0 and np.isfinite(v) else None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class _StderrTail:
    """Drain a subprocess's stderr in a thread (so a chatty ffmpeg never blocks on a
    full pipe), keeping only the last lines for the error message and the log."""

    def __init__(self, stream, keep: int = 40) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())
        stream.close()

    def text(self) -> str:
        self._thread.join(timeout=5)
        return "\n".join(self.lines)


def _read_exact(stream, n_bytes: int) -> bytes:
    """Up to ``n_bytes`` from a pipe (fewer only at end of stream)."""
    chunks, got = [], 0
    while got < n_bytes:
        chunk = stream.read(n_bytes - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def stream_samples(
    path: Path,
    *,
    block_samples: int = WINDOW_SAMPLES,
    max_duration_s: float | None = None,
    progress: ProgressFn = no_progress,
    info: AudioProbe | None = None,
    name: str | None = None,
) -> Generator[np.ndarray, None, None]:
    """Yield the first audio stream of ``path`` as 48 kHz mono float32 blocks.

    Blocks hold ``block_samples`` samples (the last one fewer). Raises
    :class:`LimitError` as soon as more than ``max_duration_s`` has been decoded, and
    :class:`DecodeError` if ffmpeg fails, nothing decodes, or the file turns out
    truncated (much shorter than its header says); messages call the file ``name``.
    Closing the generator early kills ffmpeg.
    """
    path = Path(path)
    name = name or path.name
    info = info or probe(path, name=name)  # callers that already probed pass it in
    total_s = info.duration_s
    cmd = [
        _require("ffmpeg"),
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        *INPUT_GUARDS,
        "-i",
        input_url(path),
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE),
        "-f",
        "f32le",
        "pipe:1",
    ]
    limit = None if max_duration_s is None else int(max_duration_s * SAMPLE_RATE)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    stderr = _StderrTail(proc.stderr)
    decoded = 0
    try:
        assert proc.stdout is not None
        while True:
            data = _read_exact(proc.stdout, block_samples * BYTES_PER_SAMPLE)
            usable = len(data) - len(data) % BYTES_PER_SAMPLE
            if usable == 0:
                break
            block = np.frombuffer(data[:usable], dtype="<f4").astype(np.float32, copy=True)
            if not np.isfinite(block).all():
                raise _not_finite(name, decoded + int(np.argmin(np.isfinite(block))))
            decoded += block.size
            if limit is not None and max_duration_s is not None and decoded > limit:
                raise LimitError(
                    f"{quoted(name)} is longer than the {max_duration_s / 60:.0f}-minute limit "
                    "(SONOTAG_MAX_DURATION_S). Trim the audio or raise the limit."
                )
            progress(
                Progress("decode", decoded / SAMPLE_RATE, total_s, "s", f"Decoding {shown(name)}")
            )
            yield block
        code = proc.wait()
        err = stderr.text()
        if code != 0:
            log.info("ffmpeg failed on %s (exit %s): %s", path, code, err)
            raise _not_audio(name, _first_line(err))
        if decoded == 0:
            raise DecodeError(f"{quoted(name)} contains no decodable audio (0 samples).")
        decoded_s = decoded / SAMPLE_RATE
        if (
            total_s is not None
            and not info.duration_estimated
            and decoded_s < total_s - TRUNCATION_TOLERANCE_S
        ):
            log.info("truncated %s: %.2f of %.2f s; ffmpeg said: %s", path, decoded_s, total_s, err)
            raise DecodeError(
                f"{quoted(name)} looks truncated or damaged: its header says {total_s:.1f} s "
                f"but only {decoded_s:.1f} s could be decoded. Download or export it again."
            )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def decode_all(path: Path, *, max_duration_s: float | None = None) -> np.ndarray:
    """The whole file as one float32 array: for short clips, tests and the reference path."""
    blocks = list(stream_samples(path, max_duration_s=max_duration_s))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes: the stable content id of a source."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()

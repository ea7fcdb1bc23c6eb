"""Decoding: every common container to 48 kHz mono float32, streamed; bad input -> DecodeError."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audiogen import make_audio

from sonotag_core.domain.windows import SAMPLE_RATE
from sonotag_core.errors import DecodeError, LimitError
from sonotag_core.media import decode


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".webm"])
def test_containers_decode_to_48k_mono(tmp_path: Path, suffix: str) -> None:
    path = make_audio(tmp_path / f"tone{suffix}", 3.0, freq=1000, sample_rate=44_100, channels=2)
    audio = decode.decode_all(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # lossy codecs add a little priming/padding; the length stays within 0.1 s of 3 s
    assert abs(audio.size / SAMPLE_RATE - 3.0) < 0.1
    # the tone survives: the spectrum peaks at 1 kHz after resampling to 48 kHz
    middle = audio[SAMPLE_RATE : 2 * SAMPLE_RATE]
    spectrum = np.abs(np.fft.rfft(middle))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / middle.size - 1000) < 2


def test_probe_reports_stream(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "a.flac", 2.5, sample_rate=22_050, channels=2)
    info = decode.probe(path)
    assert info.codec == "flac" and info.sample_rate == 22_050 and info.channels == 2
    assert info.duration_s == pytest.approx(2.5, abs=0.01)


def test_blocks_are_bounded_and_lossless(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "n.wav", 7.3, kind="noise", sample_rate=48_000)
    blocks = list(decode.stream_samples(path, block_samples=100_000))
    assert all(b.size == 100_000 for b in blocks[:-1]) and 0 < blocks[-1].size <= 100_000
    whole = decode.decode_all(path)
    np.testing.assert_array_equal(np.concatenate(blocks), whole)
    assert whole.size == round(7.3 * SAMPLE_RATE)


def test_progress_reports_decoded_seconds(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "p.wav", 25.0, sample_rate=48_000)
    seen = []
    for _ in decode.stream_samples(path, progress=seen.append):
        pass
    assert [p.stage for p in seen] == ["decode"] * 3
    assert seen[-1].done == pytest.approx(25.0) and seen[-1].total == pytest.approx(25.0)


def test_closing_early_stops_ffmpeg(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "long.wav", 60.0, sample_rate=48_000)
    gen = decode.stream_samples(path)
    next(gen)
    gen.close()  # must not hang or leave a zombie; a second pass still works
    assert next(decode.stream_samples(path)).size == 480_000


def test_streaming_memory_does_not_grow_with_duration(tmp_path: Path) -> None:
    """Decoding 20 minutes in a fresh process peaks near decoding 1 minute (not +230 MB)."""
    script = (
        "import resource, sys\n"
        "from sonotag_core.media import decode\n"
        "n = sum(b.size for b in decode.stream_samples(sys.argv[1]))\n"
        "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    peaks = {}
    for minutes in (1, 20):
        path = make_audio(
            tmp_path / f"m{minutes}.flac", minutes * 60.0, kind="noise", sample_rate=16_000
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
        )
        n, rss_kb = map(int, out.stdout.split())
        assert n == minutes * 60 * SAMPLE_RATE
        peaks[minutes] = rss_kb / 1024
    # 20 min of float32 at 48 kHz is 230 MB; streaming keeps the difference tiny
    assert peaks[20] - peaks[1] < 30, peaks


def test_duration_cap_stops_decoding(tmp_path: Path) -> None:
    path = make_audio(tmp_path / "cap.wav", 30.0, sample_rate=48_000)
    with pytest.raises(LimitError, match="SONOTAG_MAX_DURATION_S"):
        decode.decode_all(path, max_duration_s=12)


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"sonotag" * 1000)
    assert decode.sha256_file(path, chunk_bytes=7) == hashlib.sha256(b"sonotag" * 1000).hexdigest()


# ------------------------------------------------------------------ bad input


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(DecodeError, match="empty"):
        decode.decode_all(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="does not exist"):
        decode.probe(tmp_path / "nope.wav")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    with pytest.raises(DecodeError, match="could not be read as audio") as err:
        decode.decode_all(path)
    assert "notes.wav" in str(err.value) and "\n" not in str(err.value)


def test_truncated_mp3(tmp_path: Path) -> None:
    whole = make_audio(tmp_path / "whole.mp3", 30.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DecodeError, match="truncated"):
        decode.decode_all(cut)


def test_garbage_after_valid_header(tmp_path: Path) -> None:
    whole = make_audio(tmp_path / "w.wav", 2.0)
    data = bytearray(whole.read_bytes())
    bad = tmp_path / "corrupt.m4a"
    bad.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(data[100:4000]))
    with pytest.raises(DecodeError):
        decode.decode_all(bad)


def test_video_without_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=size=32x32:duration=1",
            "-c:v",
            "mpeg4",
            str(path),
        ],
        check=True,
    )
    with pytest.raises(DecodeError, match="no audio stream"):
        decode.decode_all(path)


@pytest.fixture
def loopback(tmp_path: Path):
    """A loopback HTTP server serving one audio segment and recording every request."""
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    _segment(served / "x.ts")
    hits: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *args) -> None:
            hits.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def _segment(path: Path) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=duration=2",
            "-c:a",
            "aac",
            "-f",
            "mpegts",
            str(path),
        ],
        check=True,
    )
    return path


def test_crafted_playlist_cannot_read_local_files_or_urls(tmp_path: Path, loopback) -> None:
    """An HLS playlist or concat script uploaded as audio must not pull in other files or
    fetch URLs, whatever the upload is called.

    The referenced segments are valid audio (the controls below decode the local one, and
    show that ffmpeg *without* the guards follows such a playlist to the URL).
    """
    from sonotag_core.media import sources

    base, hits = loopback
    secret = _segment(tmp_path / "secret.ts")
    assert decode.decode_all(secret).size > SAMPLE_RATE  # control: the segment is audio
    playlist = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n{secret}\n#EXTINF:10,\n/etc/passwd\n"
        f"#EXTINF:10,\nfile:///etc/passwd\n#EXTINF:2,\n{base}/x.ts\n#EXT-X-ENDLIST\n"
    )
    concat = (
        f"ffconcat version 1.0\nfile '{secret}'\nfile '/etc/passwd'\n"
        f"file 'file:/etc/passwd'\nfile '{base}/x.ts'\n"
    )
    crafted = {
        "evil.m3u8": playlist,
        "evil.wav": playlist,
        "evil.mp3": playlist,
        "evil.ffconcat": concat,
        "concat.wav": concat,
    }
    uploads = tmp_path / "uploads"
    for name, text in crafted.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DecodeError, match="could not be read as audio") as err:
            decode.decode_all(tmp_path / name)
        message = str(err.value)
        assert name in message and "\n" not in message and "root:" not in message
        with pytest.raises(DecodeError, match="could not be read as audio"):
            sources.from_upload(text.encode(), name, uploads)
    assert hits == []  # no URL was fetched
    assert list(uploads.iterdir()) == []  # refused uploads are not kept
    # control: ffprobe without the guards does follow the playlist to the loopback URL
    (tmp_path / "remote.m3u8").write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{base}/x.ts\n#EXT-X-ENDLIST\n"
    )
    subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-protocol_whitelist",
            "file,http,tcp",
            str(tmp_path / "remote.m3u8"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert hits, "control: unguarded ffprobe should have fetched the segment"

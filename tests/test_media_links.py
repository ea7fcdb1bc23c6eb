"""Signed audio links: only what the server signed can be fetched (no forging, no
extending, no traversal, no symlink escapes), and the route serves byte ranges the way an
``<audio>`` element needs to seek: 206 with exactly the bytes asked for, the file's type."""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from audiogen import make_audio
from support import free_port, serve_app

from sonotag_core.dashboard import media_links
from sonotag_core.dashboard.media_links import (
    AUDIO_ROUTE,
    MediaGoneError,
    MediaLinkError,
    audio_mime,
    audio_route,
    media_roots,
    sign_media_url,
    verify_media_url,
)
from sonotag_core.media.examples import example_path

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"k" * 32
NOW = 1_750_000_000.0


def query_of(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert parts.path == AUDIO_ROUTE and not parts.netloc  # relative to this server
    return dict(parse_qsl(parts.query))


def forged(f_plain: str, exp: int = int(NOW) + 3600) -> dict[str, str]:
    """A query for any path text, correctly signed: what a signing mistake would hand out.
    The serving checks must refuse it on the path alone."""
    f = media_links._b64(f_plain.encode())
    return {"f": f, "exp": str(exp), "sig": media_links._signature(SECRET, f, exp)}


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, ...]:
    rs = media_roots(tmp_path / "data")
    for r in rs:
        r.mkdir(parents=True)
    (tmp_path / "data" / "secret.key").write_text("00" * 32)
    (tmp_path / "outside.wav").write_bytes(b"RIFF-outside")
    return rs


def test_sign_and_verify_round_trip(roots, tmp_path: Path) -> None:
    audio = roots[0] / "ab12.mp3"
    audio.write_bytes(b"ID3" + b"\0" * 100)
    url = sign_media_url(audio, secret=SECRET, roots=roots, now=NOW)
    q = query_of(url)
    assert set(q) == {"f", "exp", "sig"} and "ab12" not in url  # the path is not plain
    assert int(q["exp"]) >= NOW + media_links.DEFAULT_EXPIRES_S
    assert verify_media_url(q, secret=SECRET, roots=roots, now=NOW) == audio.resolve()
    # the same file signed a little later is the same URL (no reload on every rerun)
    assert sign_media_url(audio, secret=SECRET, roots=roots, now=NOW + 1) == url
    # nested folders and odd file names round-trip too
    nested = roots[3] / "a b" / "ü?&=.wav"
    nested.parent.mkdir()
    nested.write_bytes(b"RIFF")
    q2 = query_of(sign_media_url(nested, secret=SECRET, roots=roots, now=NOW))
    assert verify_media_url(q2, secret=SECRET, roots=roots, now=NOW) == nested.resolve()


def test_example_clips_and_kept_media_are_signable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    clip = example_path("alarm-clock", data)
    roots = media_roots(data)
    q = query_of(sign_media_url(clip, secret=SECRET, roots=roots, now=NOW))
    assert verify_media_url(q, secret=SECRET, roots=roots, now=NOW) == clip.resolve()
    key = data / "secret.key"  # beside the roots, never under one
    key.write_text("00" * 32)
    with pytest.raises(MediaLinkError, match="not kept in a folder"):
        sign_media_url(key, secret=SECRET, roots=roots, now=NOW)


@pytest.mark.parametrize("change", ["sig", "f", "exp", "secret", "missing"])
def test_tampered_links_are_refused(roots, change: str) -> None:
    a, b = roots[0] / "a.wav", roots[0] / "b.wav"
    a.write_bytes(b"RIFFa")
    b.write_bytes(b"RIFFb")
    q = query_of(sign_media_url(a, secret=SECRET, roots=roots, now=NOW))
    secret = SECRET
    if change == "sig":
        q["sig"] = ("0" if q["sig"][0] != "0" else "1") + q["sig"][1:]
    elif change == "f":  # another file's path under the first file's signature
        q["f"] = query_of(sign_media_url(b, secret=SECRET, roots=roots, now=NOW))["f"]
    elif change == "exp":  # extending the link
        q["exp"] = str(int(q["exp"]) + 3600)
    elif change == "secret":
        secret = b"another server"
    else:
        del q["sig"]
    with pytest.raises(MediaLinkError) as info:
        verify_media_url(q, secret=secret, roots=roots, now=NOW)
    assert info.value.status == 403 and "Reload the page" in str(info.value)


def test_expired_link_is_refused(roots) -> None:
    a = roots[0] / "a.wav"
    a.write_bytes(b"RIFF")
    q = query_of(sign_media_url(a, secret=SECRET, roots=roots, expires_s=60, now=NOW))
    assert verify_media_url(q, secret=SECRET, roots=roots, now=NOW + 60) == a.resolve()
    with pytest.raises(MediaLinkError, match="expired"):
        verify_media_url(q, secret=SECRET, roots=roots, now=int(q["exp"]) + 1)


@pytest.mark.parametrize(
    "path_text",
    [
        "0/../secret.key",
        "0/../../outside.wav",
        "0/./a.wav",
        "0//a.wav",
        "0/",
        "0",
        "0/a/../../secret.key",
        "0/..\\secret.key",
        "0//etc/passwd",
        "0/a.wav\x00.png",
    ],
)
def test_traversal_is_refused_even_when_signed(roots, path_text: str) -> None:
    (roots[0] / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(MediaLinkError) as info:
        verify_media_url(forged(path_text), secret=SECRET, roots=roots, now=NOW)
    assert info.value.status == 403


@pytest.mark.parametrize("path_text", ["4/a.wav", "-1/a.wav", "99/a.wav", "x/a.wav", "a.wav"])
def test_unknown_root_index_is_refused(roots, path_text: str) -> None:
    for r in roots:
        (r / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(MediaLinkError) as info:
        verify_media_url(forged(path_text), secret=SECRET, roots=roots, now=NOW)
    assert info.value.status == 403


def test_symlinks_cannot_escape_the_root(roots, tmp_path: Path) -> None:
    outside = tmp_path / "outside.wav"
    link = roots[0] / "link.wav"
    link.symlink_to(outside)
    with pytest.raises(MediaLinkError, match="not kept in a folder"):
        sign_media_url(link, secret=SECRET, roots=roots, now=NOW)  # resolves to outside
    # a file signed while real, swapped for a symlink to outside afterwards
    real = roots[0] / "real.wav"
    real.write_bytes(b"RIFF")
    q = query_of(sign_media_url(real, secret=SECRET, roots=roots, now=NOW))
    real.unlink()
    real.symlink_to(outside)
    with pytest.raises(MediaLinkError, match="outside"):
        verify_media_url(q, secret=SECRET, roots=roots, now=NOW)
    # a folder inside the root that is a symlink to elsewhere
    (roots[0] / "sub").symlink_to(tmp_path)
    with pytest.raises(MediaLinkError, match="outside"):
        verify_media_url(forged("0/sub/outside.wav"), secret=SECRET, roots=roots, now=NOW)
    # a symlink that stays inside its root is fine (resolved to its target)
    (roots[0] / "alias.wav").symlink_to(roots[0] / "real2.wav")
    (roots[0] / "real2.wav").write_bytes(b"RIFF")
    q = query_of(sign_media_url(roots[0] / "alias.wav", secret=SECRET, roots=roots, now=NOW))
    assert verify_media_url(q, secret=SECRET, roots=roots, now=NOW) == roots[0] / "real2.wav"


def test_a_file_that_went_away_is_gone_not_forbidden(roots) -> None:
    a = roots[0] / "a.wav"
    a.write_bytes(b"RIFF")
    q = query_of(sign_media_url(a, secret=SECRET, roots=roots, now=NOW))
    a.unlink()
    with pytest.raises(MediaGoneError) as info:
        verify_media_url(q, secret=SECRET, roots=roots, now=NOW)
    assert info.value.status == 404
    with pytest.raises(MediaGoneError):
        sign_media_url(a, secret=SECRET, roots=roots, now=NOW)
    (roots[0] / "dir.wav").mkdir()  # a folder is not a file either
    with pytest.raises(MediaGoneError):
        verify_media_url(forged("0/dir.wav"), secret=SECRET, roots=roots, now=NOW)


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.wav", "audio/wav"),
        ("b.MP3", "audio/mpeg"),
        ("c.flac", "audio/flac"),
        ("d.m4a", "audio/mp4"),
        ("e.webm", "audio/webm"),
        ("f.opus", "audio/ogg"),
        ("0123abcd", "audio/wav"),
    ],
)
def test_audio_mime(name: str, mime: str) -> None:
    assert audio_mime(name) == mime


# ---------------------------------------------------------------- over HTTP


def wait_until_up(port: int, *, alive, path: str = "/", limit_s: float = 60.0) -> None:
    """Until the server on ``port`` answers HTTP (a start-up guard, not a measurement)."""
    deadline = time.monotonic() + limit_s
    while True:
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        if not alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.1)


def get(port: int, url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, url, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The route of serve.py, mounted in a bare Starlette app under uvicorn on loopback,
    with a kept wav, mp3 and flac."""
    import uvicorn
    from starlette.applications import Starlette

    data = tmp_path_factory.mktemp("served")
    roots = media_roots(data)
    roots[0].mkdir()
    files = {
        s: make_audio(roots[0] / f"clip{s}", 2.0, kind="noise") for s in (".wav", ".mp3", ".flac")
    }
    app = Starlette(routes=[audio_route(secret=SECRET, roots=roots)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until_up(port, alive=thread.is_alive)
    yield port, files, roots
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("suffix", "mime"), [(".wav", "audio/wav"), (".mp3", "audio/mpeg"), (".flac", "audio/flac")]
)
def test_range_request_returns_exactly_those_bytes(served, suffix: str, mime: str) -> None:
    port, files, roots = served
    content = files[suffix].read_bytes()
    url = sign_media_url(files[suffix], secret=SECRET, roots=roots)
    resp, body = get(port, url, {"Range": "bytes=1000-1999"})
    assert resp.status == 206
    assert body == content[1000:2000]
    assert resp.getheader("Content-Range") == f"bytes 1000-1999/{len(content)}"
    assert resp.getheader("Content-Type") == mime
    assert resp.getheader("Accept-Ranges") == "bytes"
    cache = resp.getheader("Cache-Control")
    assert cache.startswith("private, max-age=") and int(cache.split("=")[1]) > 3600
    # the whole file, and the last 500 bytes (how players read a file's tail)
    resp, body = get(port, url)
    assert resp.status == 200 and body == content and resp.getheader("Accept-Ranges") == "bytes"
    resp, body = get(port, url, {"Range": "bytes=-500"})
    assert resp.status == 206 and body == content[-500:]
    resp, body = get(port, url, {"Range": f"bytes={len(content) - 10}-"})
    assert resp.status == 206 and body == content[-10:]
    resp, body = get(port, url, method="HEAD")
    assert resp.status == 200 and body == b""
    assert resp.getheader("Content-Length") == str(len(content))


def test_bad_links_get_a_short_plain_reason(served) -> None:
    port, files, roots = served
    url = sign_media_url(files[".wav"], secret=SECRET, roots=roots)
    q = query_of(url)
    cases = {
        "tampered": {**q, "sig": "0" * 64},
        "incomplete": {"f": q["f"]},
        "traversal": forged("0/../../../etc/passwd", exp=int(time.time()) + 3600),
        "expired": forged("0/clip.wav", exp=int(time.time()) - 1),
        "garbage": {"f": "%%%", "exp": "soon", "sig": "x"},
    }
    for what, query in cases.items():
        resp, body = get(port, f"{AUDIO_ROUTE}?{urlencode(query)}", {"Range": "bytes=0-99"})
        assert resp.status == 403, what
        assert resp.getheader("Content-Type").startswith("text/plain"), what
        assert b"Reload the page" in body and b"Traceback" not in body and len(body) < 200, what
    resp, _ = get(port, f"{AUDIO_ROUTE}/../secret.key")
    assert resp.status == 404


def test_evicted_audio_is_404(served) -> None:
    port, _, roots = served
    gone = roots[0] / "evicted.wav"
    gone.write_bytes(b"RIFF" * 100)
    url = sign_media_url(gone, secret=SECRET, roots=roots)
    gone.unlink()
    resp, body = get(port, url)
    assert resp.status == 404 and b"no longer kept" in body


def test_serve_py_mounts_the_route_behind_the_owner_cookie(tmp_path: Path) -> None:
    """``streamlit run serve.py`` as users start it: the signed link plays with ranges,
    a forged one does not, and Streamlit's own pages still answer."""
    data = tmp_path / "data"
    media = media_roots(data)[0]
    media.mkdir(parents=True)
    clip = make_audio(media / "0123abcd.flac", 3.0, kind="noise")
    env = dict(os.environ, SONOTAG_DATA_DIR=str(data), SONOTAG_SECRET="test-secret")
    with serve_app(env, tmp_path / "streamlit.log") as base:
        port = int(base.rsplit(":", 1)[1])
        url = sign_media_url(clip, secret=b"test-secret", roots=media_roots(data))
        resp, body = get(port, url, {"Range": "bytes=1000-1999"})
        assert resp.status == 206 and body == clip.read_bytes()[1000:2000]
        assert resp.getheader("Content-Type") == "audio/flac"
        assert "sonotag_owner=" in (resp.getheader("Set-Cookie") or "")
        resp, body = get(port, url.replace("sig=", "sig=0"))
        assert resp.status == 403 and b"Traceback" not in body
        resp, body = get(port, "/_stcore/health")
        assert resp.status == 200 and body == b"ok"

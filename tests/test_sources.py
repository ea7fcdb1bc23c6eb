"""Sources for real: yt-dlp against a loopback HTTP server started by the test, the
extractor gate both ways, metadata checks, error messages, uploads and local paths."""

from __future__ import annotations

import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from audiogen import make_audio

from sonotag_core.errors import DecodeError, LimitError, SourceError
from sonotag_core.media import sources
from sonotag_core.media.sources import PRODUCTION_POLICY, UrlPolicy, check_info

# test-only: skip the link check and allow yt-dlp's generic extractor, to reach loopback
TEST_POLICY = UrlPolicy(allowed_extractors=("Generic",), allow_any_host=True)


@pytest.fixture(scope="module")
def media_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    for suffix in (".mp3", ".m4a", ".opus"):
        make_audio(root / f"clip{suffix}", 4.0, kind="mix")
    (root / "empty.mp3").write_bytes(b"")
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args) -> None:
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, requests
    server.shutdown()


@pytest.mark.parametrize("suffix", [".mp3", ".m4a", ".opus"])
def test_download_with_yt_dlp(media_server, tmp_path, suffix):
    base, root, _ = media_server
    seen = []
    info = sources.from_url(
        f"{base}/clip{suffix}",
        tmp_path,
        max_duration_s=60,
        progress=seen.append,
        policy=TEST_POLICY,
    )
    served = (root / f"clip{suffix}").read_bytes()
    assert info.kind == "url" and info.extractor == "Generic"
    assert info.path.read_bytes() == served
    assert info.content_id == hashlib.sha256(served).hexdigest()
    assert info.duration_s == pytest.approx(4.0, abs=0.1)
    assert info.path.parent == tmp_path
    assert seen and all(p.stage == "download" and p.unit == "bytes" for p in seen)
    assert seen[-1].done == len(served)
    assert [p.name for p in tmp_path.iterdir()] == [info.file_name]


@pytest.mark.parametrize(
    "link",
    [
        "{base}/clip.mp3",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data",
        "https://vimeo.com/123456",
        "http://localhost/clip.mp3",
    ],
)
def test_production_policy_refuses_before_any_request(media_server, tmp_path, link):
    base, _, requests = media_server
    before = len(requests)
    with pytest.raises(SourceError):
        sources.from_url(
            link.format(base=base), tmp_path, max_duration_s=60, policy=PRODUCTION_POLICY
        )
    assert len(requests) == before
    assert not any(tmp_path.iterdir())


def test_extractor_gate_refuses_generic_without_a_request(media_server, tmp_path):
    """The yt-dlp gate on its own (link check skipped): only the listed extractors run."""
    base, _, requests = media_server
    before = len(requests)
    gate_only = UrlPolicy(allowed_extractors=("Youtube", "Soundcloud"), allow_any_host=True)
    with pytest.raises(SourceError, match="not a YouTube video or SoundCloud track"):
        sources.from_url(f"{base}/clip.mp3", tmp_path, max_duration_s=60, policy=gate_only)
    assert len(requests) == before
    assert not any(tmp_path.iterdir())


def test_duration_cap_from_metadata_before_download(media_server, tmp_path, monkeypatch):
    """Metadata that says "too long" stops before the media is fetched."""
    base, _, requests = media_server
    import yt_dlp

    real = yt_dlp.YoutubeDL.extract_info

    def long_info(self, *a, **kw):
        info = real(self, *a, **kw)
        return {**info, "duration": 5 * 3600}

    monkeypatch.setattr(yt_dlp.YoutubeDL, "extract_info", long_info)
    before = len(requests)
    with pytest.raises(LimitError, match="SONOTAG_MAX_DURATION_S"):
        sources.from_url(f"{base}/clip.mp3", tmp_path, max_duration_s=3 * 3600, policy=TEST_POLICY)
    assert not any(p.stat().st_size for p in tmp_path.iterdir())
    assert all("clip.mp3" in r for r in requests[before:])  # only metadata probing, if any


def test_missing_media_is_a_clear_error(media_server, tmp_path):
    base, _, requests = media_server
    with pytest.raises(SourceError, match="Not found") as err:
        sources.from_url(
            f"{base}/nothing-here.mp3", tmp_path, max_duration_s=60, policy=TEST_POLICY
        )
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)
    assert "/nothing-here.mp3" in requests


def test_empty_download_is_refused(media_server, tmp_path):
    base, _, _ = media_server
    with pytest.raises(SourceError, match="empty"):
        sources.from_url(f"{base}/empty.mp3", tmp_path, max_duration_s=60, policy=TEST_POLICY)


@pytest.mark.parametrize(
    ("info", "error", "match"),
    [
        (
            {"_type": "playlist", "extractor_key": "YoutubeTab", "entries": []},
            SourceError,
            "Playlists",
        ),
        ({"extractor_key": "YoutubeTab"}, SourceError, "not allowed"),
        ({"extractor_key": "Vimeo", "duration": 10}, SourceError, "not allowed"),
        ({"extractor_key": "Youtube", "is_live": True}, SourceError, "Live"),
        ({"extractor_key": "Youtube", "live_status": "is_upcoming"}, SourceError, "Live"),
        (
            {"extractor_key": "Soundcloud", "duration": 4 * 3600},
            LimitError,
            "SONOTAG_MAX_DURATION_S",
        ),
        ({"extractor_key": "Generic", "duration": 5}, SourceError, "not allowed"),
        ({"extractor_key": "SoundcloudSet"}, SourceError, "not allowed"),
        ({"extractor_key": "YoutubeTab", "_type": "url"}, SourceError, "not allowed"),
        ({"_type": "multi_video", "extractor_key": "Youtube"}, SourceError, "Playlists"),
        ({"extractor_key": "Youtube", "duration": 4 * 3600 + 300}, LimitError, "4 h 05 min"),
        ({"extractor_key": "Youtube", "duration": 4 * 3600 + 300}, LimitError, "limit is 3 h "),
        (
            {"extractor_key": "Youtube", "url": "http://169.254.169.254/latest/meta-data"},
            SourceError,
            "private network",
        ),
        (
            {
                "extractor_key": "Soundcloud",
                "url": "https://cf-media.sndcdn.com/a.mp3",
                "formats": [
                    {"url": "https://cf-media.sndcdn.com/a.mp3"},
                    {"manifest_url": "http://[::1]:8080/x.m3u8"},
                ],
            },
            SourceError,
            "private network",
        ),
        ({"extractor_key": "Youtube", "url": "http://localhost/a"}, SourceError, "private"),
        ({"extractor_key": "Youtube", "url": "http://10.1.2.3/a"}, SourceError, "private"),
    ],
)
def test_metadata_gate(info, error, match):
    with pytest.raises(error, match=match):
        check_info(info, PRODUCTION_POLICY, max_duration_s=3 * 3600)


def test_metadata_gate_accepts_a_normal_video():
    public = {
        "extractor_key": "youtube",
        "duration": 600,
        "live_status": "was_live",
        "url": "https://rr3---sn-abc.googlevideo.com/videoplayback?x=1",
        "formats": [
            {"url": "https://rr3---sn-abc.googlevideo.com/videoplayback?x=2"},
            {"url": "https://8.8.8.8/a"},
        ],
    }
    check_info(public, PRODUCTION_POLICY, max_duration_s=3 * 3600)
    check_info(
        {"extractor_key": "Generic", "url": "http://127.0.0.1:1/a.mp3"},
        TEST_POLICY,
        max_duration_s=60,
    )


def test_production_options_load_only_youtube_and_soundcloud(tmp_path):
    """The real yt-dlp, offline: which extractors the options load, and nothing else."""
    import yt_dlp

    opts = sources.ydl_options(tmp_path, PRODUCTION_POLICY, lambda d: None)
    assert opts["noplaylist"] and "cookiefile" not in opts and "cookiesfrombrowser" not in opts
    with yt_dlp.YoutubeDL(opts) as ydl:
        assert set(ydl._ies) == {"Youtube", "Soundcloud"}
    with yt_dlp.YoutubeDL(sources.ydl_options(tmp_path, TEST_POLICY, lambda d: None)) as ydl:
        assert set(ydl._ies) == {"Generic"}


def test_generic_extractor_needs_the_test_switch():
    with pytest.raises(ValueError, match="allow_any_host"):
        UrlPolicy(allowed_extractors=("Youtube", "generic"))
    assert "Generic" not in PRODUCTION_POLICY.allowed_extractors
    assert not PRODUCTION_POLICY.allow_any_host


@pytest.mark.parametrize(
    ("detail", "expect"),
    [
        ("ERROR: [youtube] abc: Sign in to confirm you're not a bot. Use --cookies", "bot"),
        ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", "private"),
        ("ERROR: [youtube] abc: Video unavailable. This video has been removed", "unavailable"),
        ("ERROR: Unable to download webpage: <urlopen error [Errno -3]>", "reach the site"),
        ("ERROR: Unable to download webpage: HTTP Error 404: Not Found", "Not found"),
        (
            "ERROR: [youtube] abc: Sign in to confirm your age. This video may be inappropriate "
            "for some users.",
            "confirm age",
        ),
        (
            "ERROR: [youtube] abc: Requested format is not available. Use --list-formats",
            "no downloadable audio",
        ),
        (
            "ERROR: [youtube] abc: The uploader has not made this video available in your country",
            "unavailable",
        ),
        ("ERROR: Did not get any data blocks", "empty"),
        (
            "ERROR: [youtube] abc: Unable to download API page: <urlopen error timed out>",
            "reach the site",
        ),
        ("ERROR: something odd happened\nmore lines", "something odd happened"),
        (
            "ERROR: [download] Got error: 36384 bytes read, 36385 more expected. Giving up "
            "after 2 retries",
            "cut off",
        ),
        ("ERROR: unable to write data: [Errno 28] No space left on device", "disk"),
        (
            "ERROR: [generic] x: Unable to download webpage: [SSL: CERTIFICATE_VERIFY_FAILED] "
            "certificate verify failed; please report this issue on https://github.com/yt-dlp/"
            "yt-dlp/issues?q= . Confirm you are on the latest version using  yt-dlp -U",
            "certificate",
        ),
        (
            "ERROR: [generic] x: KeyError('id'); please report this issue on https://github.com/"
            "yt-dlp/yt-dlp/issues?q= . Confirm you are on the latest version using  yt-dlp -U",
            "KeyError",
        ),
        (
            "ERROR: m3u8 download detected but ffmpeg could not be found. Please install",
            "upload the file",
        ),
    ],
)
def test_download_error_messages(detail, expect):
    message = sources.download_error_message("https://www.youtube.com/watch?v=abc", detail)
    assert expect.lower() in message.lower()
    assert "\n" not in message


def test_from_path_and_resolve(tmp_path):
    clip = make_audio(tmp_path / "field recording.flac", 2.0)
    info = sources.resolve_source(str(clip), tmp_path, max_duration_s=60)
    assert (info.kind, info.title, info.file_name) == ("file", "field recording", clip.name)
    assert info.content_id == hashlib.sha256(clip.read_bytes()).hexdigest()
    with pytest.raises(SourceError, match="No such file"):
        sources.resolve_source(str(tmp_path / "missing.wav"), tmp_path, max_duration_s=60)
    with pytest.raises(SourceError, match="not a regular file"):
        sources.from_path(tmp_path)  # a directory
    with pytest.raises(SourceError, match="No such file"):
        sources.resolve_source("take:1.wav", tmp_path, max_duration_s=60)  # not a link either
    # a link goes to from_url, whose link check refuses offline
    with pytest.raises(SourceError, match="vimeo.com"):
        sources.resolve_source("www.vimeo.com/123", tmp_path, max_duration_s=60)


def test_resolve_source_sends_links_to_from_url(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sources, "from_url", lambda url, workdir, **kw: calls.append((url, kw)))
    sources.resolve_source("youtu.be/dQw4w9WgXcQ", tmp_path, max_duration_s=60)
    assert calls == [
        (
            "youtu.be/dQw4w9WgXcQ",
            {"max_duration_s": 60, "progress": sources.no_progress, "policy": PRODUCTION_POLICY},
        )
    ]


@pytest.mark.parametrize("name", ["../../etc/passwd.wav", "evil\nname.WAV", "a/b/c.wav"])
def test_upload_names_never_reach_paths(tmp_path, name):
    data = make_audio(tmp_path / "src.wav", 1.0).read_bytes()
    work = tmp_path / "uploads"
    info = sources.from_upload(data, name, work)
    assert info.path.parent == work
    assert info.path.name == hashlib.sha256(data).hexdigest()[:16] + ".wav"
    assert "\n" not in info.title and "/" not in info.title
    assert info.content_id == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in work.iterdir()) == [info.path.name]  # no stray files
    assert info.as_dict()["path"] == str(info.path)


def test_upload_suffix_is_filtered(tmp_path):
    data = make_audio(tmp_path / "src.wav", 1.0).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    odd = sources.from_upload(data, "clip.W$A/V..\x00", tmp_path / "a")
    assert odd.path.name.startswith(digest[:16]) and "/" not in odd.path.name[16:]
    assert all(c.isalnum() or c == "." for c in odd.path.name)
    none = sources.from_upload(data, "no-suffix", tmp_path / "b")
    assert none.path.name == digest[:16]
    long = sources.from_upload(data, "x." + "abcdefghijk", tmp_path / "c")
    assert long.path.name == digest[:16] + ".abcdefgh"
    title = sources.from_upload(data, "\x1b[31m" + "t" * 500 + ".wav", tmp_path / "d").title
    assert "\x1b" not in title and len(title) <= 200


def test_empty_and_broken_uploads(tmp_path):
    with pytest.raises(DecodeError, match="empty"):
        sources.from_upload(b"", "x.wav", tmp_path)
    with pytest.raises(DecodeError, match="could not be read as audio"):
        sources.from_upload(b"hello" * 100, "x.wav", tmp_path)


# ---------------------------------------------------------------- redirects and DNS (SSRF)


def _serve(host: str, handler: type) -> tuple[ThreadingHTTPServer, int]:
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture(scope="module")
def ssrf(tmp_path_factory):
    """A redirector on 127.0.0.1 (``/to?u=URL``; ``/flip?u=URL`` serves audio once, then
    redirects: a redirect that only the download itself meets) and a target on 127.0.0.2
    that records every request it gets."""
    from urllib.parse import parse_qs, urlsplit

    root = tmp_path_factory.mktemp("ssrf")
    make_audio(root / "clip.mp3", 2.0, kind="mix")
    target_hits: list[str] = []
    served: dict[str, int] = {}

    class Target(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args) -> None:
            target_hits.append(self.path)

    class Redirector(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args) -> None:
            pass

        def send_head(self):
            parts = urlsplit(self.path)
            dest = (parse_qs(parts.query).get("u") or [""])[0]
            served[self.path] = served.get(self.path, 0) + 1
            if parts.path == "/to" or (parts.path == "/flip" and served[self.path] > 1):
                self.send_response(302)
                self.send_header("Location", dest)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if parts.path == "/flip":
                self.path = "/clip.mp3"
            return super().send_head()

    front, front_port = _serve("127.0.0.1", Redirector)
    back, back_port = _serve("127.0.0.2", Target)
    yield {
        "front": f"http://127.0.0.1:{front_port}",
        "back": f"http://127.0.0.2:{back_port}",
        "back_port": back_port,
        "policy": UrlPolicy(
            allowed_extractors=("Generic",), local_origins=(f"127.0.0.1:{front_port}",)
        ),
        "hits": target_hits,
    }
    front.shutdown()
    back.shutdown()


def _via(ssrf, dest: str, path: str = "/to") -> str:
    from urllib.parse import quote

    return f"{ssrf['front']}{path}?u={quote(dest, safe='')}"


def test_redirects_are_followed_without_the_guard(ssrf, tmp_path):
    """Control: with every check off, the redirect does reach the second server, so the
    refusals below are the guard's doing."""
    before = len(ssrf["hits"])
    info = sources.from_url(
        _via(ssrf, ssrf["back"] + "/clip.mp3"), tmp_path, max_duration_s=60, policy=TEST_POLICY
    )
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert len(ssrf["hits"]) > before


def test_an_allowed_origin_downloads_through_the_guard(ssrf, tmp_path):
    info = sources.from_url(
        f"{ssrf['front']}/clip.mp3", tmp_path, max_duration_s=60, policy=ssrf["policy"]
    )
    assert info.path.parent == tmp_path and info.duration_s == pytest.approx(2.0, abs=0.1)
    assert [p.name for p in tmp_path.iterdir()] == [info.file_name]


@pytest.mark.parametrize("path", ["/to", "/flip"])
def test_a_redirect_to_a_local_address_is_refused_before_connecting(ssrf, tmp_path, path):
    before = len(ssrf["hits"])
    with pytest.raises(SourceError, match="private network") as err:
        sources.from_url(
            _via(ssrf, ssrf["back"] + "/clip.mp3", path),
            tmp_path,
            max_duration_s=60,
            policy=ssrf["policy"],
        )
    assert "127.0.0.2" in str(err.value) and "\n" not in str(err.value)
    assert ssrf["hits"][before:] == []  # not one request reached the target
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_to_cloud_metadata_never_connects(ssrf, tmp_path, monkeypatch):
    from sonotag_core.media import netguard

    connects: list[tuple] = []
    real = netguard.create_connection
    monkeypatch.setattr(
        netguard,
        "create_connection",
        lambda addr, *a, **kw: connects.append(addr) or real(addr, *a, **kw),
    )
    with pytest.raises(SourceError, match="169.254.169.254"):
        sources.from_url(
            _via(ssrf, "http://169.254.169.254/latest/meta-data/"),
            tmp_path,
            max_duration_s=60,
            policy=ssrf["policy"],
        )
    assert connects and all(ip == "127.0.0.1" for ip, _ in connects)  # only the first hop


def test_a_name_that_resolves_to_this_machine_is_refused(ssrf, tmp_path, monkeypatch):
    """DNS, not the URL, says where a host is: a public-looking name that answers 127.0.0.2
    is refused, and the socket would connect to the address that was checked."""
    import socket

    from sonotag_core.media import netguard

    real = socket.getaddrinfo

    def fake_dns(host, port, *args, **kwargs):
        return real("127.0.0.2" if host == "cdn.example.com" else host, port, *args, **kwargs)

    monkeypatch.setattr(netguard, "_getaddrinfo", fake_dns)
    before = len(ssrf["hits"])
    dest = f"http://cdn.example.com:{ssrf['back_port']}/clip.mp3"
    with pytest.raises(SourceError, match="cdn.example.com, which resolves to 127.0.0.2"):
        sources.from_url(_via(ssrf, dest), tmp_path, max_duration_s=60, policy=ssrf["policy"])
    with pytest.raises(SourceError, match="private network"):  # the trailing-dot form too
        sources.from_url(
            _via(ssrf, f"http://localhost.:{ssrf['back_port']}/clip.mp3"),
            tmp_path,
            max_duration_s=60,
            policy=ssrf["policy"],
        )
    assert ssrf["hits"][before:] == []
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_to_another_scheme_reads_nothing(ssrf, tmp_path):
    for dest in ("file:///etc/passwd", "ftp://127.0.0.2/x.mp3"):
        with pytest.raises(SourceError, match="non-web address") as err:
            sources.from_url(_via(ssrf, dest), tmp_path, max_duration_s=60, policy=ssrf["policy"])
        assert "root:" not in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_media_hosts_are_resolved_before_download(monkeypatch):
    import socket

    from sonotag_core.media import netguard

    answers = {
        "cdn.example.com": "93.184.216.34",
        "internal.example.com": "10.0.0.5",
        "mixed.example.com": ("93.184.216.34", "192.168.1.2"),
    }

    def fake_dns(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ips = answers[host] if isinstance(answers[host], tuple) else (answers[host],)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    monkeypatch.setattr(netguard, "_getaddrinfo", fake_dns)
    guard = netguard.AddressGuard()
    ok = {
        "extractor_key": "Soundcloud",
        "url": "https://cdn.example.com/a.mp3",
        "formats": [{"url": "https://unknown.example.net/a"}],
    }
    sources.check_hosts(ok, guard)  # public, or unresolvable (the download will say so)
    for host in ("internal.example.com", "mixed.example.com"):
        bad = {
            **ok,
            "formats": [
                {
                    "fragment_base_url": "https://cdn.example.com/",
                    "fragments": [{"url": f"https://{host}/seg1.ts"}],
                }
            ],
        }
        with pytest.raises(SourceError, match=f"{host}, which resolves to"):
            sources.check_hosts(bad, guard)


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1::1", True),
        ("127.0.0.2", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("not an ip", False),
    ],
)
def test_which_addresses_are_public(ip, public):
    assert sources.is_public(ip) is public


def test_production_options_use_the_guard_only():
    """One request handler (the guarded one), no proxy, no ffmpeg for yt-dlp."""
    from sonotag_core.media import netguard

    opts = sources.ydl_options(Path("/tmp"), PRODUCTION_POLICY, lambda d: None)
    assert opts["proxy"] == "" and opts["ffmpeg_location"] == sources.NO_FFMPEG
    with netguard.GuardedYoutubeDL(opts, guard=netguard.AddressGuard()) as ydl:
        assert [type(h) for h in ydl._request_director.handlers.values()] == [
            netguard.GuardedRequestsRH
        ]


def test_https_through_the_guard_verifies_the_host_name(tmp_path, monkeypatch):
    """The guard connects to the checked IP, but TLS still sends and verifies the host
    name: a certificate for "localhost", served on 127.0.0.1, is accepted only as that."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    root = tmp_path / "www"
    root.mkdir()
    make_audio(root / "clip.mp3", 2.0, kind="mix")
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    origins = (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}")
    policy = UrlPolicy(("Generic",), local_origins=origins)
    real = sources.ydl_options
    monkeypatch.setattr(
        sources, "ydl_options", lambda *a: {**real(*a), "compat_opts": ["no-certifi"]}
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our certificate, verify as usual
    try:
        info = sources.from_url(
            f"https://localhost:{port}/clip.mp3", tmp_path / "a", max_duration_s=60, policy=policy
        )
        assert info.duration_s == pytest.approx(2.0, abs=0.1) and "localhost" in names
        with pytest.raises(SourceError) as err:  # same server and certificate, by IP: no match
            sources.from_url(
                f"https://127.0.0.1:{port}/clip.mp3",
                tmp_path / "b",
                max_duration_s=60,
                policy=policy,
            )
        assert "certificate" in str(err.value)
    finally:
        server.shutdown()

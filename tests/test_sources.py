"""Sources for real: yt-dlp against a loopback HTTP server started by the test, the
extractor gate both ways, metadata checks, error messages, uploads and local paths."""

from __future__ import annotations

import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from audiogen import make_audio

from sonotag_core import sources
from sonotag_core.errors import DecodeError, LimitError, SourceError
from sonotag_core.sources import PRODUCTION_POLICY, UrlPolicy, check_info

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
    info = sources.from_url(f"{base}/clip{suffix}", tmp_path, max_duration_s=60,
                            progress=seen.append, policy=TEST_POLICY)  # fmt: skip
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
    ["{base}/clip.mp3", "file:///etc/passwd", "http://169.254.169.254/latest/meta-data",
     "https://vimeo.com/123456", "http://localhost/clip.mp3"],
)  # fmt: skip
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
        ),  # fmt: skip
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
        "formats": [{"url": "https://rr3---sn-abc.googlevideo.com/videoplayback?x=2"},
                    {"url": "https://8.8.8.8/a"}],
    }  # fmt: skip
    check_info(public, PRODUCTION_POLICY, max_duration_s=3 * 3600)
    check_info({"extractor_key": "Generic", "url": "http://127.0.0.1:1/a.mp3"},
               TEST_POLICY, max_duration_s=60)  # fmt: skip


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
    ("seconds", "text"),
    [
        (45, "45 s"),
        (59.6, "1 min"),
        (720, "12 min"),
        (3 * 3600, "3 h"),
        (3 * 3600 + 65, "3 h 01 min"),
    ],
)
def test_format_duration(seconds, text):
    assert sources.format_duration(seconds) == text


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
    assert calls == [("youtu.be/dQw4w9WgXcQ",
                      {"max_duration_s": 60, "progress": sources.no_progress,
                       "policy": PRODUCTION_POLICY})]  # fmt: skip


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

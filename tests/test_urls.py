"""Link handling, offline: accepted YouTube/SoundCloud forms and refused everything else."""

from __future__ import annotations

import pytest

from sonotag_core.errors import SourceError
from sonotag_core.media.sources import looks_like_url, parse_link

VID = "dQw4w9WgXcQ"
CANON = f"https://www.youtube.com/watch?v={VID}"


@pytest.mark.parametrize(
    ("link", "start"),
    [
        (f"https://www.youtube.com/watch?v={VID}", 0),
        (f"http://youtube.com/watch?v={VID}&t=42s", 42),
        (f"https://www.youtube.com/watch?v={VID}&t=1m30s", 90),
        (f"https://www.youtube.com/watch?v={VID}#t=90", 90),
        (f"https://www.youtube.com/watch?v={VID}&list=PL0123456789abcdef&index=3", 0),
        (f"https://youtu.be/{VID}?t=10", 10),
        (f"youtu.be/{VID}", 0),
        (f"https://www.youtube.com/shorts/{VID}", 0),
        (f"https://music.youtube.com/watch?v={VID}&feature=share", 0),
        (f"https://m.youtube.com/watch?v={VID}", 0),
        (f"https://www.youtube.com/embed/{VID}?start=5", 5),
        (
            f"https://www.youtube.com/live/{VID}?si=abc",
            0,
        ),  # a past broadcast; is_live checked later
        (f"https://youtube.com/shorts/{VID}?feature=share", 0),
        (f"www.youtube.com/watch?v={VID}&t=1h2m3s", 3723),
        (f"youtube.com/watch?v={VID}#t=1m30s", 90),
        (f"HTTPS://WWW.YouTube.com/watch?v={VID}", 0),
        (f"https://www.youtube.com./watch?v={VID}", 0),
        (f"https://youtu.be/{VID}?si=tracking&t=7", 7),
        (f"  https://www.youtube.com/watch?v={VID}  ", 0),
    ],
)
def test_youtube_forms(link: str, start: float) -> None:
    parsed = parse_link(link)
    assert (parsed.kind, parsed.url, parsed.key, parsed.start_s) == ("youtube", CANON, VID, start)


@pytest.mark.parametrize(
    "link",
    [
        "https://soundcloud.com/artist-name/track_name-1",
        "https://m.soundcloud.com/artist-name/track_name-1",
        "soundcloud.com/artist-name/track_name-1?in=x/sets/y",
        "https://www.soundcloud.com/artist-name/track_name-1/",
        "https://soundcloud.com/artist-name/track_name-1#t=0:30",
    ],
)
def test_soundcloud_tracks(link: str) -> None:
    parsed = parse_link(link)
    assert parsed.kind == "soundcloud"
    assert parsed.url == "https://soundcloud.com/artist-name/track_name-1"
    assert parsed.key == "artist-name/track_name-1"


def test_soundcloud_private_share_link_keeps_its_token() -> None:
    parsed = parse_link("https://soundcloud.com/artist/track/s-AbC123xyz?utm_source=x")
    assert parsed.url == "https://soundcloud.com/artist/track/s-AbC123xyz"
    assert parsed.key == "artist/track"


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("https://www.youtube.com/playlist?list=PL0123456789abcdef", "Playlists"),
        ("https://www.youtube.com/@somechannel", "not a single video"),
        ("https://www.youtube.com/channel/UC0123456789", "not a single video"),
        ("https://www.youtube.com/c/name", "not a single video"),
        ("https://www.youtube.com/user/name", "not a single video"),
        ("https://www.youtube.com/", "not a single video"),
        ("https://www.youtube.com/watch?list=PL0123456789abcdef", "video id"),
        ("https://youtu.be/", "video id"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ!", "video id"),
        ("https://www.youtube.com/watch?v=short", "video id"),
        ("https://soundcloud.com/artist/sets/album", "sets"),
        ("https://soundcloud.com/artist", "not a single track"),
        ("https://soundcloud.com/artist/likes", "not a single track"),
        ("https://soundcloud.com/artist/reposts", "not a single track"),
        ("https://soundcloud.com/artist/tracks", "not a single track"),
        ("https://soundcloud.com/artist/track/comments", "not a single track"),
        ("https://soundcloud.com/discover/sets/charts-top", "sets"),
        ("https://on.soundcloud.com/AbCdEf", "full track link"),
        ("file:///etc/passwd", "http"),
        ("ftp://example.com/a.mp3", "http"),
        ("javascript:alert(1)", "http"),
        ("data:audio/wav;base64,AAAA", "http"),
        ("https://vimeo.com/123456", "vimeo.com"),
        ("https://example.com/a.mp3", "example.com"),
        ("http://127.0.0.1/a.mp3", "IP"),
        ("http://169.254.169.254/latest/meta-data", "IP"),
        ("http://[::1]/x", "IP"),
        ("http://10.0.0.8/x", "IP"),
        ("http://localhost:8501/", "port"),
        ("http://localhost/x", "this machine"),
        ("http://0x7f000001/x", "not supported"),
        ("http://[fe80::1%25eth0]/x", "IP"),
        ("http://www.youtube.com@127.0.0.1/watch?v=" + VID, "user name"),
        ("mailto:someone@youtube.com", "http"),
        ("vbscript:msgbox", "http"),
        (f"https://user:pw@www.youtube.com/watch?v={VID}", "user name"),
        (f"https://www.youtube.com:8443/watch?v={VID}", "port"),
        (f"https://www.youtube.com/watch?v={VID}\nhttp://127.0.0.1", "spaces"),
        ("https://youtube.com.evil.example/watch?v=" + VID, "not supported"),
        ("https://www.youtube.com/watch?v=" + VID + "&x=" + "a" * 3000, "too long"),
        ("", "empty"),
        ("https://[x", "malformed"),
        ("https://www.youtube.com:99999/watch?v=" + VID, "port"),
    ],
)
def test_refused_links_say_why_and_what_is_accepted(link: str, why: str) -> None:
    with pytest.raises(SourceError) as err:
        parse_link(link)
    message = str(err.value)
    assert why.lower() in message.lower(), message
    assert "YouTube" in message and "SoundCloud" in message


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/x",
        f"youtu.be/{VID}",
        f"youtube.com/watch?v={VID}",
        f"music.youtube.com/watch?v={VID}",
        "m.soundcloud.com/a/b",
        "on.soundcloud.com/xyz",
        "www.vimeo.com/123",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:audio/wav;base64,AAAA",
    ],
)
def test_looks_like_url_for_links(text: str) -> None:
    assert looks_like_url(text)


@pytest.mark.parametrize(
    "text", ["clip.mp3", "recordings/2024/field.wav", "take:1.wav", "youtube.mp3", "", "./www"]
)
def test_looks_like_url_for_paths(text: str) -> None:
    assert not looks_like_url(text)


def test_an_existing_path_is_never_a_url(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "youtube.com").mkdir()
    (tmp_path / "youtube.com" / "clip.wav").write_text("x")
    assert looks_like_url("youtube.com/other.wav")
    assert not looks_like_url("youtube.com/clip.wav")
    assert not looks_like_url(str(tmp_path / "youtube.com" / "clip.wav"))

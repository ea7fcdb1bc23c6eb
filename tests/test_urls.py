"""Link handling, offline: accepted YouTube/SoundCloud forms and refused everything else."""

from __future__ import annotations

import pytest

from sonotag_core.errors import SourceError
from sonotag_core.sources import looks_like_url, parse_link

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
    ],
)
def test_soundcloud_tracks(link: str) -> None:
    parsed = parse_link(link)
    assert parsed.kind == "soundcloud"
    assert parsed.url == "https://soundcloud.com/artist-name/track_name-1"


@pytest.mark.parametrize(
    ("link", "why"),
    [
        ("https://www.youtube.com/playlist?list=PL0123456789abcdef", "Playlists"),
        ("https://www.youtube.com/@somechannel", "not a single video"),
        ("https://www.youtube.com/channel/UC0123456789", "not a single video"),
        ("https://www.youtube.com/c/name", "not a single video"),
        ("https://www.youtube.com/watch?v=short", "video id"),
        ("https://soundcloud.com/artist/sets/album", "sets"),
        ("https://soundcloud.com/artist", "not a single track"),
        ("https://soundcloud.com/artist/likes", "not a single track"),
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
        (f"https://user:pw@www.youtube.com/watch?v={VID}", "user name"),
        (f"https://www.youtube.com:8443/watch?v={VID}", "port"),
        (f"https://www.youtube.com/watch?v={VID}\nhttp://127.0.0.1", "spaces"),
        ("https://youtube.com.evil.example/watch?v=" + VID, "not supported"),
        ("https://www.youtube.com/watch?v=" + VID + "&x=" + "a" * 3000, "too long"),
        ("", "empty"),
    ],
)
def test_refused_links_say_why_and_what_is_accepted(link: str, why: str) -> None:
    with pytest.raises(SourceError) as err:
        parse_link(link)
    message = str(err.value)
    assert why.lower() in message.lower(), message
    assert "YouTube" in message and "SoundCloud" in message


def test_looks_like_url(tmp_path) -> None:
    existing = tmp_path / "youtube.com"
    existing.write_text("x")
    assert looks_like_url("https://example.com/x")
    assert looks_like_url(f"youtu.be/{VID}")
    assert looks_like_url("file:///etc/passwd")
    assert not looks_like_url("clip.mp3")
    assert not looks_like_url("recordings/2024/field.wav")
    assert not looks_like_url(str(existing))

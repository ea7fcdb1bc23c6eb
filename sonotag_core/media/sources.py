"""Inputs -> a local audio file plus metadata: a path, uploaded bytes, or a
YouTube/SoundCloud link fetched with yt-dlp's Python API.

Links are checked three times. Before any request, :func:`parse_link` accepts only
YouTube video and SoundCloud track URLs (no other hosts, IPs, ports, credentials or
schemes). After yt-dlp has read the page's metadata, :func:`check_info` refuses playlists,
live streams, extractors other than the allowed ones, media over the duration cap and
media URLs on IP literals of this machine or a private network, and :func:`check_hosts`
resolves the media hosts and refuses those that resolve to such addresses. While yt-dlp
fetches, every connection it opens, redirects included, goes through
:mod:`sonotag_core.media.netguard`, which refuses non-public addresses before connecting.

Nothing is left behind: uploads that are not audio are deleted, and yt-dlp writes into a
private staging folder (``.part`` files, fragments) that goes away on success, error and
cancellation; only the finished file is moved into the caller's folder.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sonotag_core.domain.progress import Progress, ProgressFn, no_progress
from sonotag_core.domain.timefmt import duration as duration_text
from sonotag_core.errors import DecodeError, LimitError, SonoTagError, SourceError
from sonotag_core.media import decode, workdirs
from sonotag_core.media.addresses import is_public
from sonotag_core.untrusted import quoted, shown

if TYPE_CHECKING:
    from sonotag_core.media.netguard import AddressGuard

log = logging.getLogger(__name__)

MAX_LINK_CHARS = 2048
ACCEPTED = (
    "Paste a YouTube video link (youtube.com/watch?v=…, youtu.be/…, /shorts/…) or a "
    "SoundCloud track link (soundcloud.com/artist/track)."
)
YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
SOUNDCLOUD_HOSTS = {"soundcloud.com", "www.soundcloud.com", "m.soundcloud.com"}
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_SC_PART = re.compile(r"[A-Za-z0-9_-]{1,255}")
_SC_RESERVED = {
    "sets",
    "likes",
    "reposts",
    "tracks",
    "albums",
    "popular-tracks",
    "followers",
    "following",
    "comments",
    "discover",
    "search",
    "stream",
    "you",
    "upload",
    "charts",
}


@dataclass(frozen=True)
class SourceInfo:
    """A local audio file and where it came from. ``content_id`` is the SHA-256 of its bytes."""

    kind: str  # "file" | "upload" | "url"
    path: Path
    title: str
    content_id: str
    file_name: str
    duration_s: float | None = None
    uploader: str | None = None
    url: str | None = None
    extractor: str | None = None
    start_s: float = 0.0

    @property
    def display_name(self) -> str:
        """What messages and progress call this audio: the user's own file name, or a
        link's title, never the server's copy ("15de36aac9ae5125.mp3", "Youtube-<id>.webm")."""
        if self.kind == "url":
            return self.title or self.url or self.file_name
        return self.file_name or self.title

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


# ---------------------------------------------------------------- local files


def _exists(path: str | Path) -> bool:
    """``Path.exists`` for untrusted text: a name the OS cannot even look up (too long,
    a NUL byte) does not exist, rather than raising."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


def from_path(path: str | Path, *, title: str | None = None) -> SourceInfo:
    """A file on this machine (CLI, examples); ``title`` defaults to the file's stem."""
    p = Path(path)
    if not _exists(p):
        raise SourceError(f"No such file: {quoted(p)}. Give a path to an audio file, or a link.")
    if not p.is_file():
        raise SourceError(
            f"{quoted(p)} is not a regular file (a folder?). Give a path to an audio file."
        )
    info = decode.probe(p)
    name = clean_title(title or p.stem or p.name) or "audio"
    return SourceInfo(
        "file", p, name, decode.sha256_file(p), clean_title(p.name) or "audio", info.duration_s
    )


def clean_title(text: str, limit: int = 200) -> str:
    """A display title from untrusted text: no control characters, bounded length."""
    text = "".join(ch for ch in str(text) if unicodedata.category(ch)[0] != "C")
    return " ".join(text.split())[:limit]


def from_upload(data: bytes, name: str, workdir: Path) -> SourceInfo:
    """Uploaded bytes, stored as ``<sha256[:16]><suffix>``: nothing from the user's file
    name reaches a path except a filtered suffix."""
    if not data:
        raise DecodeError(
            f"{quoted(clean_title(name))} is empty (0 bytes). Choose the audio file again."
        )
    digest = hashlib.sha256(data).hexdigest()
    suffix = re.sub(r"[^a-z0-9]", "", Path(str(name)).suffix.lower())[:8]
    path = Path(workdir) / (digest[:16] + (f".{suffix}" if suffix else ""))
    created = not path.exists()
    if created:
        _write_upload(data, path)
    shown_name = clean_title(Path(str(name)).name)
    try:
        info = decode.probe(path, name=shown_name or "upload")
    except SonoTagError:
        if created:  # not audio: nothing else would ever delete it
            path.unlink(missing_ok=True)
        raise
    title = clean_title(Path(str(name)).stem) or "upload"
    return SourceInfo("upload", path, title, digest, shown_name, info.duration_s)


def _write_upload(data: bytes, path: Path) -> None:
    """Write via a temp file, so a full disk or a cancelled run never leaves half a file."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise SourceError(
                f"The upload could not be saved in {path.parent} ({exc.strerror or exc}). "
                "Free some disk space and try again."
            ) from exc
        raise


# ---------------------------------------------------------------- links


@dataclass(frozen=True)
class Link:
    """An accepted link: ``url`` is canonical, ``key`` the video id or "artist/track"."""

    kind: str  # "youtube" | "soundcloud"
    url: str
    key: str
    start_s: float = 0.0


_URL_START = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://"  # any scheme://
    r"|(?:javascript|data|vbscript|blob|about):"  # schemes without //, refused later
    r"|www\."
    r"|(?:[A-Za-z0-9-]+\.)*(?:youtube\.com|youtu\.be|soundcloud\.com)(?:[/:?#]|$))",
    re.I,
)


def looks_like_url(text: str) -> bool:
    """True for what the CLI should treat as a link, so a typo in a link gets a link error
    (what is accepted) rather than "no such file". An existing path is never a link."""
    t = str(text).strip()
    if not t or _exists(t):
        return False
    return bool(_URL_START.match(t))


def _refuse(why: str) -> SourceError:
    return SourceError(f"{why} {ACCEPTED}")


def _parse_time(value: str) -> float:
    """YouTube's t= forms: "90", "90s", "1m30s", "1h2m3s"."""
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", value.strip())
    if not value.strip() or not m:
        return 0.0
    h, mi, s = (int(x) if x else 0 for x in m.groups())
    return float(h * 3600 + mi * 60 + s)


def parse_link(text: str) -> Link:
    """Accept a YouTube video or SoundCloud track link; refuse everything else with a
    message that says what is accepted. Pure: no network."""
    try:
        return _parse_link(text)
    except ValueError:  # urllib on malformed hosts/ports ("https://[x")
        raise _refuse("The link is malformed.") from None


def _parse_link(text: str) -> Link:
    raw = str(text).strip()
    if not raw:
        raise _refuse("The link is empty.")
    if len(raw) > MAX_LINK_CHARS:
        raise _refuse("The link is too long.")
    if any(ch.isspace() or unicodedata.category(ch)[0] == "C" for ch in raw):
        raise _refuse("The link contains spaces or control characters.")
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", raw):
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", raw) and not re.match(r"^[\w.-]+:\d", raw):
            raise _refuse(
                f"Only http(s) links are accepted, not {quoted(raw.split(':')[0] + ':')}."
            )
        raw = "https://" + raw
    parts = urlsplit(raw)
    if parts.scheme.lower() not in ("http", "https"):
        raise _refuse(f"Only http(s) links are accepted, not {quoted(parts.scheme + '://')}.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("Links with a user name or password are not accepted.")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None:
        raise _refuse("Links with an explicit port are not accepted.")
    host = (parts.hostname or "").lower().rstrip(".")
    try:
        ipaddress.ip_address(host.strip("[]"))
        raise _refuse("Links to IP addresses are not accepted.")
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost") or not host:
        raise _refuse("Links to this machine or the local network are not accepted.")
    path = [p for p in parts.path.split("/") if p]
    query = parse_qs(parts.query)
    fragment = parse_qs(parts.fragment)
    start = _parse_time((query.get("t") or query.get("start") or fragment.get("t") or [""])[0])
    if host == "youtu.be":
        return _youtube(path[0] if path else "", start)
    if host in YOUTUBE_HOSTS:
        if path == ["watch"]:
            return _youtube((query.get("v") or [""])[0], start)
        if len(path) == 2 and path[0] in ("shorts", "embed", "live", "v"):
            return _youtube(path[1], start)
        if path and path[0] == "playlist":
            raise _refuse("Playlists are not accepted; open one video and paste its link.")
        raise _refuse(
            "That YouTube link is not a single video (channels and pages are not accepted)."
        )
    if host in SOUNDCLOUD_HOSTS:
        if len(path) >= 2 and path[1] == "sets":
            raise _refuse("SoundCloud sets (playlists) are not accepted; paste one track's link.")
        # artist/track, or artist/track/s-XXXX: a private track's share link (its secret token)
        secret = len(path) == 3 and path[2].startswith("s-")
        if len(path) not in (2, 3) or (len(path) == 3 and not secret):
            raise _refuse(
                "That SoundCloud link is not a single track (user pages are not accepted)."
            )
        if path[1] in _SC_RESERVED or path[0] in _SC_RESERVED:
            raise _refuse(
                "That SoundCloud link is not a single track (user pages are not accepted)."
            )
        if not all(_SC_PART.fullmatch(p) for p in path):
            raise _refuse("That SoundCloud link has unexpected characters.")
        key = f"{path[0]}/{path[1]}"
        return Link("soundcloud", "https://soundcloud.com/" + "/".join(path), key, start)
    if host == "on.soundcloud.com":
        raise _refuse(
            "Short on.soundcloud.com links are not accepted: open it in a browser and paste "
            "the full track link it leads to."
        )
    raise _refuse(f"Links to {quoted(host)} are not supported.")


def _youtube(video_id: str, start: float) -> Link:
    if not _VIDEO_ID.fullmatch(video_id):
        raise _refuse("That YouTube link has no valid video id.")
    return Link("youtube", f"https://www.youtube.com/watch?v={video_id}", video_id, start)


# ---------------------------------------------------------------- yt-dlp


@dataclass(frozen=True)
class UrlPolicy:
    """Which yt-dlp extractors may run (by ``ie_key``) and which hosts may be contacted.

    Two switches exist only so tests can point yt-dlp at a loopback server (together with
    ``"Generic"``); production sets neither. ``allow_any_host`` skips :func:`parse_link`
    and every address check. ``local_origins`` (``"127.0.0.1:8000"``) skips
    :func:`parse_link` but keeps the address checks, except for connections to exactly
    these origins: so a test can watch a redirect from one to another address be refused.
    """

    allowed_extractors: tuple[str, ...] = ("Youtube", "Soundcloud")
    allow_any_host: bool = False
    local_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # the generic extractor fetches any URL: only ever together with a test switch
        generic = any(e.lower() == "generic" for e in self.allowed_extractors)
        if generic and not (self.allow_any_host or self.local_origins):
            raise ValueError(
                "The 'Generic' extractor is allowed only with allow_any_host or local_origins."
            )

    @property
    def checks_links(self) -> bool:
        """Whether links must pass :func:`parse_link` (always, outside tests)."""
        return not (self.allow_any_host or self.local_origins)

    def allows_local(self, ip: str, port: int) -> bool:
        """Whether a non-public ``ip:port`` may be contacted anyway (tests only)."""
        where = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        return self.allow_any_host or where in self.local_origins


PRODUCTION_POLICY = UrlPolicy()


def _is_local_host(url: object) -> bool:
    """True when a URL's host is this machine or a private/link-local/reserved IP literal."""
    try:
        host = (urlsplit(str(url)).hostname or "").lower().rstrip(".")
    except ValueError:
        return True  # unparseable: treat as unsafe
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name, not an IP literal: check_hosts and the guard resolve it
    return not is_public(host)


def _media_urls(info: dict[str, Any]) -> list[object]:
    dicts = [info, *(info.get("requested_formats") or []), *(info.get("formats") or [])]
    dicts = [d for d in dicts if isinstance(d, dict)]
    fragments = [f for d in dicts for f in (d.get("fragments") or []) if isinstance(f, dict)]
    keys = ("url", "manifest_url", "fragment_base_url")
    return [d[k] for d in (*dicts, *fragments) for k in keys if d.get(k)]


def _host_port(url: object) -> tuple[str, int] | None:
    """A URL's host and port (the scheme's default if none); None if it has no host."""
    try:
        parts = urlsplit(str(url))
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    return (host, port) if host else None


def _refused_url(url: object, policy: UrlPolicy) -> bool:
    """A media URL on this machine or a private IP literal, unless the policy allows it."""
    if policy.allow_any_host or not _is_local_host(url):
        return False
    where = _host_port(url)
    return where is None or not policy.allows_local(*where)


def check_info(info: dict[str, Any], policy: UrlPolicy, max_duration_s: float) -> None:
    """Refuse, from metadata alone, what must not be downloaded."""
    if info.get("_type") in ("playlist", "multi_video") or info.get("entries") is not None:
        raise _refuse("Playlists are not accepted; paste the link of a single video or track.")
    key = str(info.get("extractor_key") or "")
    # exact (case-insensitive) match: "YoutubeTab" (channels, playlists) and "SoundcloudSet"
    # share a prefix with the allowed extractors and must not pass
    if key.lower() not in {e.lower() for e in policy.allowed_extractors}:
        raise _refuse(
            f"This link is handled by yt-dlp's '{key or 'unknown'}' extractor, which is not allowed."
        )
    if info.get("is_live") or info.get("live_status") in ("is_live", "is_upcoming"):
        raise SourceError("Live streams are not accepted: wait until the broadcast has ended.")
    duration = info.get("duration")
    if isinstance(duration, (int, float)) and duration > max_duration_s:
        raise LimitError(
            f"This media is {duration_text(duration)} long; the limit is "
            f"{duration_text(max_duration_s)} (SONOTAG_MAX_DURATION_S). "
            "Choose a shorter one, or raise the limit."
        )
    if any(_refused_url(u, policy) for u in _media_urls(info)):
        raise SourceError(
            "The site pointed the download at this machine or a private network; refused."
        )


def check_hosts(info: dict[str, Any], guard: AddressGuard) -> None:
    """Resolve every media host in the metadata and refuse, before anything is downloaded,
    one that resolves to this machine or a private network. (The guard checks each
    connection again as yt-dlp opens it, redirects included.)"""
    from sonotag_core.media.netguard import AddressRefused

    hosts = {hp for u in _media_urls(info) if (hp := _host_port(u)) is not None}
    for host, port in sorted(hosts):
        try:
            guard.resolve(host, port)
        except socket.gaierror:
            continue  # does not resolve: the download will say it cannot reach the site
        except AddressRefused as exc:
            raise SourceError(str(exc)) from None


_ERRORS = (
    (
        ("certificate verify failed", "certificateverifyerror"),
        "The site's security certificate could not be verified, so nothing was downloaded from "
        "it. Try again later or another link.",
    ),
    (
        ("did not get any data blocks", "downloaded file is empty"),
        "The download was empty: the site sent no audio data. Try again later or another link.",
    ),
    (("private video",), "This video is private; only public media can be analysed."),
    (
        ("unsupported url", "no suitable extractor"),
        "This link is not a YouTube video or SoundCloud track page.",
    ),
    (
        ("confirm your age", "age-restricted", "age restricted", "inappropriate for some users"),
        "YouTube asks for a signed-in account to confirm age for this video, and SonoTag does "
        "not sign in. Download the audio yourself and upload the file instead.",
    ),
    # not "confirm you": yt-dlp ends its bug-report notes with "Confirm you are on the
    # latest version", which would turn any unexpected error into this one
    (
        ("not a bot", "sign in", "cookies"),
        "YouTube is asking this server to prove it is not a bot, so the audio cannot be "
        "downloaded right now. Download the audio yourself and upload the file, or try later "
        "or a different link.",
    ),
    (
        ("no space left on device", "disk full", "disk quota"),
        "The disk holding SonoTag's data folder is full, so the audio could not be downloaded. "
        "Free some space (or delete old analyses) and try again.",
    ),
    (
        (
            "content too short",
            "did not get all data",
            "incompleteread",
            "incomplete read",
            "bytes read",
            "remote end closed",
            "connection reset",
            "connection broken",
        ),
        "The download was cut off before the end (the connection dropped). Try again.",
    ),
    (
        ("ffmpeg could not be found", "ffmpeg is not installed", "ffmpeg not found"),
        "The site sends this audio as a stream SonoTag does not download; try a different link, "
        "or download the audio yourself and upload the file.",
    ),
    (
        ("requested format is not available", "no video formats", "no formats found"),
        "The site offered no downloadable audio for this link; try a different link.",
    ),
    (
        ("members-only", "join this channel"),
        "This video is for channel members only; only public media can be analysed.",
    ),
    (
        (
            "unavailable",
            "removed",
            "not available",
            "in your country",
            "geo restrict",
            "blocked",
            "copyright",
            "terminated",
        ),
        "This media is unavailable (removed, blocked or region-restricted).",
    ),
    (("404", "not found"), "Not found: nothing is at this link; check it for typos."),
    (
        (
            "unable to download webpage",
            "timed out",
            "urlopen error",
            "connection",
            "resolve",
            "network",
        ),
        "Could not reach the site; check the connection and try again.",
    ),
)


def download_error_message(url: str, detail: str) -> str:
    """A yt-dlp error turned into a sentence a user can act on."""
    low = detail.lower()
    for needles, message in _ERRORS:
        if any(n in low for n in needles):
            return message
    first = detail.strip().splitlines()[0] if detail.strip() else "unknown error"
    return f"Could not download {quoted(url)}: {shown(re.sub(r'^ERROR: ', '', first), 200)}"


class _Logger:
    """Collect yt-dlp's warnings and errors instead of printing them; all go to our log."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug

    def warning(self, msg: str) -> None:
        self.messages = [*self.messages[-19:], msg]
        log.info("yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        self.messages = [*self.messages[-19:], msg]
        log.info("yt-dlp error: %s", msg)


NO_FFMPEG = "/nonexistent/sonotag: yt-dlp runs no ffmpeg"  # see ydl_options
STAGING_PREFIX = ".download-"
STALE_AFTER_S = workdirs.STALE_AFTER_S  # an unlocked staging folder this old is dead


def ydl_options(
    workdir: Path, policy: UrlPolicy, hook: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """yt-dlp options: only the policy's extractors load, one item, best audio, quiet.

    yt-dlp matches ``allowed_extractors`` as regexes against lower-case ``IE_NAME``s
    ("youtube", "soundcloud", "generic"); anchoring keeps "youtube:tab" and "soundcloud:set"
    out. No cookies, no config files (the Python API reads none), no cache dir. No proxy
    and no ffmpeg: every fetch must go through the address guard (:mod:`.netguard`), and
    ffmpeg would fetch HLS segments itself; HLS is downloaded natively, and a stream only
    ffmpeg could fetch fails with a message instead.
    """
    return {
        "allowed_extractors": [f"^{re.escape(e.lower())}$" for e in policy.allowed_extractors],
        "noplaylist": True,
        "format": "bestaudio/best",
        "outtmpl": str(Path(workdir) / "%(extractor_key)s-%(id)s.%(ext)s"),
        "restrictfilenames": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Logger(),
        "progress_hooks": [hook],
        "socket_timeout": 20,
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        "overwrites": True,
        "cachedir": False,
        "proxy": "",
        "ffmpeg_location": NO_FFMPEG,
        "hls_prefer_native": True,
        "fixup": "never",
    }


def _progress_hook(progress: ProgressFn) -> Callable[[dict[str, Any]], None]:
    def hook(d: dict[str, Any]) -> None:
        if d.get("status") in ("downloading", "finished"):
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            done = d.get("downloaded_bytes") or 0
            progress(
                Progress(
                    "download",
                    float(done),
                    float(total) if total else None,
                    "bytes",
                    "Downloading audio",
                )
            )

    return hook


def from_url(
    url: str,
    workdir: Path,
    *,
    max_duration_s: float,
    progress: ProgressFn = no_progress,
    policy: UrlPolicy = PRODUCTION_POLICY,
) -> SourceInfo:
    """Download a link's best audio into ``workdir`` after the checks above pass.

    yt-dlp works in a staging folder inside ``workdir`` that is removed whatever happens
    (error, KeyboardInterrupt, a closed browser session); only the finished file is moved
    into ``workdir``, and deleted again if it turns out not to be audio.
    """
    from sonotag_core.media.netguard import AddressGuard

    start_s = 0.0
    if policy.checks_links:
        link = parse_link(url)
        url, start_s = link.url, link.start_s
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sweep_stale(workdir, STAGING_PREFIX)
    guard = AddressGuard(enabled=not policy.allow_any_host, allow=policy.allows_local)
    with workdirs.run_folder(workdir, STAGING_PREFIX) as staging:
        info, staged = _download(url, staging, policy, guard, max_duration_s, progress)
        path = workdir / staged.name
        os.replace(staged, path)
    try:  # messages name the media's title, not yt-dlp's file name for it
        probe = decode.probe(path, name=clean_title(info.get("title") or "") or url)
        content_id = decode.sha256_file(path)
    except (SonoTagError, OSError):
        path.unlink(missing_ok=True)
        raise
    return SourceInfo(
        kind="url",
        path=path,
        title=clean_title(info.get("title") or path.stem),
        content_id=content_id,
        file_name=path.name,
        duration_s=probe.duration_s or info.get("duration"),
        uploader=clean_title(info.get("uploader") or info.get("channel") or "") or None,
        url=str(info.get("webpage_url") or url),
        extractor=str(info.get("extractor_key") or ""),
        start_s=start_s,
    )


def _download(
    url: str,
    staging: Path,
    policy: UrlPolicy,
    guard: AddressGuard,
    max_duration_s: float,
    progress: ProgressFn,
) -> tuple[dict[str, Any], Path]:
    """Metadata, the checks, then the download into ``staging``: (info, downloaded file)."""
    from sonotag_core.media.netguard import GuardedYoutubeDL

    opts = ydl_options(staging, policy, _progress_hook(progress))
    try:
        with GuardedYoutubeDL(opts, guard=guard) as ydl:
            info = ydl.extract_info(url, download=False)
            check_info(info, policy, max_duration_s)
            check_hosts(info, guard)
            info = ydl.process_ie_result(info, download=True)
            downloads = info.get("requested_downloads") or []
            path = Path(downloads[0]["filepath"]) if downloads else Path(ydl.prepare_filename(info))
    except (SourceError, LimitError):
        raise
    except Exception as exc:  # yt-dlp raises many types; the user needs one message
        raise _download_failure(url, exc, guard.refusal) from None
    if path.resolve().parent != staging.resolve():
        raise SourceError(
            f"The download from {quoted(url)} was written outside its folder; refused."
        )
    if not path.is_file() or path.stat().st_size == 0:
        raise SourceError(
            f"The download from {quoted(url)} produced no audio file (empty download)."
        )
    return info, path


def _download_failure(url: str, exc: Exception, refusal: str | None) -> SourceError:
    """Whatever yt-dlp raised (or wrapped) -> one SourceError; a guard refusal wins."""
    import yt_dlp

    if refusal is not None:  # however yt-dlp wrapped it, the refusal is the real reason
        log.info("download refused for %s: %s", url, refusal)
        return SourceError(refusal)
    if isinstance(exc, yt_dlp.utils.DownloadError):
        log.info("download failed for %s: %s", url, exc)
        return SourceError(download_error_message(url, str(exc)))
    log.error("download crashed for %s", url, exc_info=exc)
    return SourceError(download_error_message(url, f"{type(exc).__name__}: {exc}"))


def sweep_stale(folder: Path, prefix: str, max_age_s: float = STALE_AFTER_S) -> None:
    """Delete the ``prefix*`` working folders in ``folder`` that a killed process (a
    server restart, SIGKILL) left behind: at once when their owner's lock is free, by age
    when they have no lock (:mod:`.workdirs`)."""
    workdirs.sweep(Path(folder), prefix, max_age_s)


UPLOADS_DIR = "uploads"  # an upload's working copy, until the store keeps it in media/
DOWNLOADS_DIR = "downloads"  # a link's downloaded audio, likewise


def sweep_working_copies(data_dir: Path, max_age_s: float = STALE_AFTER_S) -> int:
    """Delete upload and download working copies older than ``max_age_s``: a saved run
    moved its audio into the store's media/ (which has its own cap), so what stays behind
    is what a restart or a failed save orphaned. Returns how many files went."""
    cutoff = time.time() - max_age_s
    gone = 0
    for name in (UPLOADS_DIR, DOWNLOADS_DIR):
        try:
            entries = list((Path(data_dir) / name).iterdir())
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_file() and not entry.is_symlink() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    gone += 1
            except OSError:
                continue
    sweep_stale(Path(data_dir) / DOWNLOADS_DIR, STAGING_PREFIX, max_age_s)
    return gone


def resolve_source(
    source: str,
    workdir: Path,
    *,
    max_duration_s: float,
    progress: ProgressFn = no_progress,
    policy: UrlPolicy = PRODUCTION_POLICY,
) -> SourceInfo:
    """A CLI argument -> SourceInfo: an existing path, else a link."""
    if _exists(source):
        return from_path(source)
    if looks_like_url(source):
        return from_url(
            source, workdir, max_duration_s=max_duration_s, progress=progress, policy=policy
        )
    raise SourceError(
        f"No such file: {quoted(source)}. Give a path to an audio file, or a YouTube/SoundCloud link."
    )

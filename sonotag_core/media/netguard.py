"""Every connection yt-dlp opens goes to a public address, checked as it connects.

Checking links beforehand cannot see where yt-dlp will really connect: it follows HTTP
redirects inside its request handler and resolves host names as it connects, so a site
(or a DNS answer) could point it at ``169.254.169.254``, the server's own ports or a
private network. Here the host of *every* connection (the page, each redirect target,
media, HLS fragments and keys) is resolved once, refused with :class:`AddressRefused` if
any of its addresses is not public, and the socket connects to an address that was
checked, so a second DNS answer cannot differ from the first. A refused connection is
never opened: not a byte goes to the target.

yt-dlp gets one request handler (its requests-based one with this check in the connection
pool), no proxies (the check must see the real destination) and no ffmpeg (ffmpeg would
fetch URLs itself, past the check): see :func:`sonotag_core.media.sources.ydl_options`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import requests
import urllib3
import yt_dlp
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection
from yt_dlp.networking._requests import RequestsRH
from yt_dlp.networking.exceptions import RequestError

from sonotag_core.media.addresses import is_public
from sonotag_core.untrusted import shown

AddrInfo = tuple[Any, ...]  # one socket.getaddrinfo() entry
_getaddrinfo = socket.getaddrinfo  # tests replace this to fake DNS answers


class AddressRefused(RequestError):
    """A connection target on this machine or a private network. A yt-dlp RequestError,
    so yt-dlp's request director passes it on unchanged instead of trying another handler."""


class AddressGuard:
    """Resolves connection targets and refuses non-public ones; remembers the first refusal
    so the caller can report it however yt-dlp wrapped the error.

    ``enabled=False`` checks nothing (tests against loopback). ``allow(ip, port)`` may let
    exact non-public origins through (tests: the loopback server they started).
    """

    def __init__(
        self, *, enabled: bool = True, allow: Callable[[str, int], bool] = lambda _ip, _p: False
    ) -> None:
        self.enabled = enabled
        self._allow = allow
        self.refusal: str | None = None

    def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """``host``'s addresses for a TCP connection, or :class:`AddressRefused` if any
        of them is not public (``socket.gaierror`` when the name does not resolve)."""
        infos = _getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        if self.enabled:
            for info in infos:
                ip = str(info[4][0])
                if not is_public(ip) and not self._allow(ip.split("%", 1)[0], port):
                    self._refuse(host, ip)
        return infos

    def _refuse(self, host: str, ip: str) -> None:
        where = shown(host) if host == ip else f"{shown(host)}, which resolves to {ip}"
        raise self.refuse(
            f"The site pointed the download at this machine or a private network ({where}); "
            "refused. Only public YouTube and SoundCloud servers are contacted."
        )

    def refuse(self, message: str) -> AddressRefused:
        """Record a refusal (the first one is what the user sees) and return its error."""
        self.refusal = self.refusal or message
        return AddressRefused(message)


class _GuardedConnection(HTTPConnection):
    """urllib3's connection, but it connects only to addresses the guard accepted."""

    guard: AddressGuard  # set on the per-guard subclasses made by _pool_classes

    def _new_conn(self) -> socket.socket:
        try:
            infos = self.guard.resolve(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        error: Exception = NewConnectionError(self, f"No address for {self.host}")
        for ip in dict.fromkeys(str(info[4][0]) for info in infos):
            try:
                return create_connection(
                    (ip, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out.")
                error.__cause__ = exc
            except OSError as exc:
                error = NewConnectionError(self, f"Failed to establish a new connection: {exc}")
                error.__cause__ = exc
        raise error


def _pool_classes(guard: AddressGuard) -> dict[str, type]:
    """HTTP and HTTPS connection pools whose connections go through ``guard``."""
    http = type("GuardedHTTPConnection", (_GuardedConnection,), {"guard": guard})
    https = type("GuardedHTTPSConnection", (_GuardedConnection, HTTPSConnection), {"guard": guard})
    return {
        "http": type("GuardedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("GuardedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


class GuardedRequestsRH(RequestsRH):
    """yt-dlp's requests handler (http/https only), guarded, never through a proxy."""

    guard: AddressGuard = AddressGuard()  # replaced by GuardedYoutubeDL

    def _create_instance(self, cookiejar: Any, legacy_ssl_support: Any = None) -> Any:
        session = super()._create_instance(cookiejar, legacy_ssl_support)
        pools = _pool_classes(self.guard)
        for adapter in session.adapters.values():
            adapter.poolmanager.pool_classes_by_scheme = pools
        return session

    def _send(self, request: Any) -> Any:
        try:
            return super()._send(request)
        except RequestError as exc:
            if isinstance(exc.cause, requests.exceptions.InvalidSchema):  # file://, ftp://
                raise self.guard.refuse(
                    "The site redirected the download to a non-web address (file:, ftp: or "
                    "similar); refused. Only public YouTube and SoundCloud servers are contacted."
                ) from exc
            raise

    def _get_proxies(self, request: Any) -> dict[str, str]:
        return {}  # a proxy would connect for us, to an address the guard never saw


class GuardedYoutubeDL(yt_dlp.YoutubeDL):
    """A YoutubeDL whose only request handler is :class:`GuardedRequestsRH` with ``guard``."""

    def __init__(self, params: dict[str, Any], *, guard: AddressGuard) -> None:
        self.guard = guard
        super().__init__(params)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        director = super().build_request_director([GuardedRequestsRH], preferences)
        for handler in director.handlers.values():
            handler.guard = self.guard
        return director

"""Who may see and change which stored analysis, and who a visitor is.

Every analysis has an owner. A dashboard visitor is identified by an unguessable token in
a signed, HttpOnly cookie that :class:`OwnerCookie` (ASGI middleware) sets on the first
page load, or by the account ``st.login`` signed in (OIDC). The CLI, and analyses stored
before owners existed, belong to :data:`OPERATOR`.

The rules (``SONOTAG_ACCESS=private``): a visitor lists and searches their own analyses
plus those made from public links (YouTube/SoundCloud); any analysis opens read-only
through its share link (an id of 128 random bits); only its owner, or the operator, may
delete it. ``SONOTAG_ACCESS=shared`` (one user, or a trusted team) shows everything to
everyone. An operator who gives ``SONOTAG_ADMIN_TOKEN`` sees and changes everything.

No Streamlit here: the page asks :func:`viewer_from` with what it read from the request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sonotag_core.errors import ConfigError, SonoTagError

OPERATOR = "operator"  # the CLI, and rows stored before owners existed
COOKIE = "sonotag_owner"
COOKIE_MAX_AGE_S = 400 * 24 * 3600  # the longest lifetime browsers keep (Chrome caps at 400 d)
SECRET_FILE = "secret.key"  # in SONOTAG_DATA_DIR, 0600, made on first start
ACCESS_MODES = ("private", "shared")
PUBLIC_KINDS = frozenset({"url"})  # analyses of public links are listed for everyone


class AccessError(SonoTagError):
    """The visitor may not do this to that analysis (it belongs to someone else)."""


@dataclass(frozen=True)
class Viewer:
    """Who is asking: ``owner`` (an id, never the raw token), operator powers, and whether
    this server shares everything (``SONOTAG_ACCESS=shared``)."""

    owner: str
    admin: bool = False
    shared: bool = False

    @property
    def sees_all(self) -> bool:
        return self.admin or self.shared or self.owner == OPERATOR

    @property
    def scope(self) -> str | None:
        """What the store filters by: None (everything) or this viewer's owner id."""
        return None if self.sees_all else self.owner


OPERATOR_VIEWER = Viewer(OPERATOR, admin=True)


def can_list(viewer: Viewer, owner: str, kind: str) -> bool:
    """Whether the Library (and search, and Compare) shows this analysis to ``viewer``."""
    return viewer.sees_all or owner == viewer.owner or kind in PUBLIC_KINDS


def can_change(viewer: Viewer, owner: str) -> bool:
    """Whether ``viewer`` may delete (or otherwise change) an analysis of ``owner``."""
    return viewer.sees_all or owner == viewer.owner


def check_change(viewer: Viewer, owner: str, what: str) -> None:
    if not can_change(viewer, owner):
        raise AccessError(
            f"Only the person who made this analysis can {what} it; you can open it "
            "read-only through its share link."
        )


# ---------------------------------------------------------------- the owner token


@functools.lru_cache(maxsize=8)
def server_secret(data_dir: str | Path, configured: str = "") -> bytes:
    """The key that signs owner tokens: ``SONOTAG_SECRET`` when set, else a random key
    kept in the data directory (made once, readable by this user only), so tokens stay
    valid across restarts and replicas that share the volume."""
    if configured:
        return configured.encode()
    path = Path(data_dir) / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return bytes.fromhex(path.read_text().strip())
    except OSError:
        return key  # a read-only data dir: tokens last as long as this process
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key


def _signature(token: str, secret: bytes) -> str:
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()[:32]


def new_cookie_value(secret: bytes) -> str:
    """``<token>.<signature>``: 128 random bits, signed so a forged value is refused."""
    token = secrets.token_hex(16)
    return f"{token}.{_signature(token, secret)}"


def owner_from_cookie(value: str | None, secret: bytes) -> str | None:
    """The owner id a cookie stands for, or None for a missing, malformed or forged one.
    The id is a hash of the token: the database never holds what the browser sends."""
    if not value or len(value) > 200 or value.count(".") != 1:
        return None
    token, signature = value.split(".")
    if not hmac.compare_digest(signature, _signature(token, secret)):
        return None
    return "visitor:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def is_admin_token(given: str | None, configured: str) -> bool:
    """Constant-time check of an operator token; never true when none is configured."""
    return (
        bool(configured)
        and given is not None
        and hmac.compare_digest(given.encode(), configured.encode())
    )


def check_mode(mode: str) -> str:
    if mode not in ACCESS_MODES:
        raise ConfigError(f"SONOTAG_ACCESS must be private or shared, not {mode!r}.")
    return mode


# ---------------------------------------------------------------- the cookie middleware

Scope = MutableMapping[str, Any]
ASGIApp = Callable[..., Awaitable[None]]


class OwnerCookie:
    """ASGI middleware: a page request without a valid owner cookie gets one (HttpOnly,
    SameSite=Lax, Secure behind https), so the websocket that follows carries it and the
    script can read it from ``st.context.cookies``; JavaScript never sees it."""

    def __init__(self, app: ASGIApp, secret: bytes) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or self._has_valid_cookie(scope):
            await self.app(scope, receive, send)
            return
        secure = _is_https(scope)
        value = new_cookie_value(self.secret)

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                flags = f"Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax"
                cookie = f"{COOKIE}={value}; {flags}" + ("; Secure" if secure else "")
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _has_valid_cookie(self, scope: Scope) -> bool:
        for name, raw in scope.get("headers") or []:
            if name == b"cookie":
                for part in raw.decode("latin-1").split(";"):
                    key, _, val = part.strip().partition("=")
                    if key == COOKIE and owner_from_cookie(val, self.secret):
                        return True
        return False


def _is_https(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    for name, raw in scope.get("headers") or []:
        if name == b"x-forwarded-proto" and raw.decode("latin-1").strip().lower() == "https":
            return True
    return False


# ---------------------------------------------------------------- client addresses


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``SONOTAG_TRUSTED_PROXIES``: comma-separated addresses or CIDR ranges."""
    nets = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"SONOTAG_TRUSTED_PROXIES: {item!r} is not an address or CIDR range "
                "(e.g. 10.0.0.0/8, 127.0.0.1)."
            ) from None
    return tuple(nets)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Iterable[Any]
) -> str | None:
    """The visitor's address: the peer, or — only while each hop is a trusted proxy —
    the rightmost ``X-Forwarded-For`` entry that is not one (entries further left are
    whatever the client wrote, so they are never believed)."""
    nets = tuple(trusted)

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip().split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in nets)

    if not peer:
        return None
    if not is_trusted(peer):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop.split("%", 1)[0]))
            except ValueError:
                return None  # garbage where an address should be: count by owner only
    return peer

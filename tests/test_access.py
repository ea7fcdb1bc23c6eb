"""Who may see and change what (sonotag_core.access): owner cookies, the visibility rules
over a real store, client addresses behind proxies, the rate limit per visitor, and the
ASGI middleware that sets the cookie. The two-visitor browser tests are in
tests/test_browser.py."""

from __future__ import annotations

import asyncio
import ipaddress
import stat
from pathlib import Path

import pytest
from test_store import SHA, fake_source, random_embeddings

from sonotag_core import access
from sonotag_core.access import OPERATOR, OPERATOR_VIEWER, AccessError, Viewer
from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import ConfigError, LimitError
from sonotag_core.inference.scheduler import RateLimiter
from sonotag_core.media.sources import SourceInfo
from sonotag_core.service import library
from sonotag_core.settings import Settings
from sonotag_core.store.database import Store

SECRET = b"k" * 32
ALICE = Viewer("visitor:alice")
BOB = Viewer("visitor:bob")


# ---------------------------------------------------------------- owner cookies


def last_char_changed(text: str) -> str:
    """``text`` with its last character replaced by another one (never by itself: a fixed
    replacement left 1 in 16 random signatures unchanged, and the test failed then)."""
    return text[:-1] + ("0" if text[-1] != "0" else "1")


def test_a_cookie_names_one_owner_and_cannot_be_forged():
    value = access.new_cookie_value(SECRET)
    owner = access.owner_from_cookie(value, SECRET)
    token, signature = value.split(".")
    assert owner and owner.startswith("visitor:") and token not in owner  # a hash, not the token
    assert access.owner_from_cookie(value, SECRET) == owner  # stable
    assert access.owner_from_cookie(access.new_cookie_value(SECRET), SECRET) != owner
    flipped = last_char_changed(signature)
    forged = [
        f"{token}.{flipped}",
        f"{'0' * 32}.{signature}",
        value + ".x",
        token,
        "",
        None,
        "." * 500,
        value.upper(),
    ]
    for bad in forged:
        assert access.owner_from_cookie(bad, SECRET) is None, bad
    assert access.owner_from_cookie(value, b"another server's key") is None
    assert len(bytes.fromhex(token)) * 8 >= 128


def test_the_server_secret_is_kept_private_and_reused(tmp_path):
    access.server_secret.cache_clear()
    first = access.server_secret(tmp_path)
    path = tmp_path / access.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(first) == 32
    access.server_secret.cache_clear()
    assert access.server_secret(tmp_path) == first  # a restart keeps every cookie valid
    assert access.server_secret(tmp_path, "configured") == b"configured"


def test_admin_tokens():
    assert access.is_admin_token("s3cret", "s3cret")
    assert not access.is_admin_token("s3cre", "s3cret") and not access.is_admin_token(None, "x")
    assert not access.is_admin_token("", "")  # no token configured: nobody is an operator


# ---------------------------------------------------------------- the rules on a real store


def saved(store: Store, cid: str, owner: str, kind: str = "upload") -> str:
    src = fake_source(cid)
    if kind == "url":
        src = SourceInfo(
            "url",
            Path(""),
            "A public video",
            cid,
            "v.webm",
            10.0,
            None,
            f"https://www.youtube.com/watch?v={cid[:11]}",
        )
    return store.add_analysis(
        src,
        random_embeddings(2, seed=len(owner)),
        LabelSet(("a",)),
        hop_s=10.0,
        checkpoint_sha256=SHA,
        model_name="m",
        owner=owner,
    )


@pytest.fixture
def shared_store(tmp_path):
    store = Store(tmp_path)
    ids = {
        "alice": saved(store, "a" * 64, ALICE.owner),
        "bob": saved(store, "b" * 64, BOB.owner),
        "public": saved(store, "d" * 64, BOB.owner, kind="url"),
        "old": saved(store, "e" * 64, OPERATOR),
    }
    return store, ids


def test_visitors_list_their_own_and_public_links(shared_store):
    store, ids = shared_store
    listed = {r.id for r in library.visible_analyses(store, ALICE)}
    assert listed == {ids["alice"], ids["public"]}
    assert {r.id for r in library.visible_analyses(store, BOB)} == {ids["bob"], ids["public"]}
    everything = set(ids.values())
    assert {r.id for r in library.visible_analyses(store, OPERATOR_VIEWER)} == everything
    assert {r.id for r in library.visible_analyses(store, Viewer("x", admin=True))} == everything
    assert {r.id for r in library.visible_analyses(store, Viewer("x", shared=True))} == everything
    assert all(len(i) == 32 for i in ids.values())  # 128-bit share-link ids


def test_search_only_reads_what_the_visitor_may_list(shared_store):
    store, ids = shared_store
    seen = {e.analysis_id for e in store.iter_embeddings(SHA, visible_to=ALICE.owner)}
    assert seen == {ids["alice"], ids["public"]}
    assert len(list(store.iter_embeddings(SHA))) == 4


def test_only_the_owner_or_the_operator_deletes(shared_store):
    store, ids = shared_store
    for victim in ("bob", "public", "old"):
        with pytest.raises(AccessError, match="Only the person who made this analysis"):
            library.delete(store, ALICE, ids[victim])
        assert store.analysis_owner(ids[victim]) is not None  # still there
    assert library.delete(store, ALICE, ids["alice"]) is True
    assert library.delete(store, OPERATOR_VIEWER, ids["bob"]) is True
    assert library.delete(store, ALICE, "f" * 32) is False  # gone already / never was


def test_an_existing_analysis_of_another_visitor_is_not_reused_as_mine(shared_store):
    """Opening the same upload without saving must not hand Alice Bob's analysis id."""
    store, ids = shared_store
    mine = store.latest_analysis_id("b" * 64, 10.0, SHA, visible_to=ALICE.owner)
    assert mine is None
    assert store.latest_analysis_id("b" * 64, 10.0, SHA) == ids["bob"]


# ---------------------------------------------------------------- addresses behind proxies

PROXIES = access.parse_networks("10.0.0.0/8, 127.0.0.1")


@pytest.mark.parametrize(
    "peer, forwarded, expected",
    [
        ("203.0.113.9", [], "203.0.113.9"),  # no proxy
        ("203.0.113.9", ["6.6.6.6"], "203.0.113.9"),  # an untrusted peer's header is a lie
        ("10.1.2.3", ["198.51.100.7"], "198.51.100.7"),  # Railway-like: proxy -> visitor
        ("10.1.2.3", ["6.6.6.6, 198.51.100.7"], "198.51.100.7"),  # spoofed left part ignored
        ("10.1.2.3", ["198.51.100.7, 10.9.9.9"], "198.51.100.7"),  # two trusted hops
        ("10.1.2.3", ["6.6.6.6", "198.51.100.7"], "198.51.100.7"),  # two headers
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", ["not-an-ip"], None),
        (None, ["198.51.100.7"], None),  # Streamlit knows no peer (loopback)
    ],
)
def test_client_address(peer, forwarded, expected):
    assert access.client_address(peer, forwarded, PROXIES) == expected


def test_trusting_no_proxy_uses_the_peer():
    assert access.client_address("10.1.2.3", ["198.51.100.7"], ()) == "10.1.2.3"
    assert PROXIES == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))


def test_bad_access_settings_are_config_errors():
    with pytest.raises(ConfigError, match="SONOTAG_ACCESS must be private or shared"):
        Settings.from_env({"SONOTAG_ACCESS": "public"})
    with pytest.raises(ConfigError, match="SONOTAG_TRUSTED_PROXIES"):
        Settings.from_env({"SONOTAG_TRUSTED_PROXIES": "10.0.0.0/8, railway"})
    s = Settings.from_env({"SONOTAG_ADMIN_TOKEN": "hunter2", "SONOTAG_SECRET": "k"})
    shown = s.as_dict(redact=True)
    assert shown["admin_token"] == shown["secret"] == "(set)" and "hunter2" not in str(shown)


# ---------------------------------------------------------------- the rate limit per visitor


def test_the_rate_limit_counts_the_owner_and_the_address():
    limiter = RateLimiter(2)
    limiter.check("owner:a", "ip:1.2.3.4")
    limiter.check("owner:b", "ip:1.2.3.4")  # another browser behind the same address
    with pytest.raises(LimitError, match="started 2 analyses"):
        limiter.check("owner:cleared-cookie", "ip:1.2.3.4")  # a new cookie is no new allowance
    limiter.check("owner:a")  # a new tab on loopback: same owner, no address known
    with pytest.raises(LimitError, match="started 2 analyses"):
        limiter.check("owner:a", "ip:5.6.7.8")  # the same browser on another network
    limiter.check("owner:d", "ip:9.9.9.9")


def test_a_refused_analysis_counts_for_nobody():
    limiter = RateLimiter(1)
    limiter.check("owner:a")
    with pytest.raises(LimitError):
        limiter.check("owner:a", "ip:1.1.1.1")
    limiter.check("owner:b", "ip:1.1.1.1")  # the refusal did not use up that address


# ---------------------------------------------------------------- the cookie middleware


def run_middleware(headers: list[tuple[bytes, bytes]], scheme: str = "http"):
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "scheme": scheme, "headers": headers, "path": "/"}
    asyncio.run(access.OwnerCookie(app, SECRET)(scope, None, send))
    return [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]


def test_the_middleware_gives_a_browser_without_a_cookie_a_signed_httponly_one():
    [cookie] = run_middleware([])
    name, _, rest = cookie.partition("=")
    value = rest.split(";")[0]
    assert name == access.COOKIE and access.owner_from_cookie(value, SECRET)
    flags = {f.strip() for f in rest.split(";")[1:]}
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= flags and "Secure" not in flags
    # a valid cookie is kept; a forged or foreign one is replaced
    good = f"{access.COOKIE}={value}".encode()
    assert run_middleware([(b"cookie", b"a=1; " + good)]) == []
    assert len(run_middleware([(b"cookie", last_char_changed(good.decode()).encode())])) == 1
    [secure] = run_middleware([(b"x-forwarded-proto", b"https")])
    assert "; Secure" in secure


def test_the_middleware_leaves_websockets_alone():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    asyncio.run(access.OwnerCookie(app, SECRET)({"type": "websocket", "headers": []}, None, None))
    assert calls == ["websocket"]

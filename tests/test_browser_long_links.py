"""Issue 25, items 11 and 13, as a visitor and an operator meet them: ``streamlit run
serve.py`` on loopback (no model needed: nothing is analysed) and Debian's Chromium.

A link of 5000 query fields, which Streamlit 1.67 would drop without a word, is answered
by the server entry's redirect and opens with a warning that says so; the About page of a
server that sees its visitors as 127.0.0.1 tells the operator that the limits count by
cookie only, and behind a same-host proxy that forwards the address it counts by that. Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import contextlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support import serve_app
from test_browser import ARTIFACTS, CHROMIUM, wait_idle
from test_browser import browser as browser  # noqa: F401  (the shared Chromium fixture)

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
sync_api = pytest.importorskip("playwright.sync_api")

LONG_LINK = "/?" + "&".join(["l=siren"] * 5000)


@contextlib.contextmanager
def server_without_model(data: Path, **env_extra: str):
    """serve.py as users start it, without weights: these pages never need the model."""
    env = dict(
        os.environ,
        SONOTAG_MODEL_DIR=str(data / "no-model"),
        SONOTAG_DATA_DIR=str(data),
        SONOTAG_PRELOAD="0",
        **env_extra,
    )
    env.pop("SONOTAG_TRUSTED_PROXIES", None)
    env.update(env_extra)
    data.mkdir(parents=True, exist_ok=True)
    try:
        with serve_app(env, data / "streamlit.log") as base:
            yield base
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_without_model(tmp_path_factory.mktemp("long-links")) as base:
        yield base


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_the_server_redirects_a_link_streamlit_would_drop(server):
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as reply:
        opener.open(server + LONG_LINK, timeout=30)
    assert reply.value.code == 303
    assert reply.value.headers["Location"] == "?link_fields=5000"
    kept = "/?" + "&".join(["l=siren"] * 1000)  # what Streamlit restores is served as is
    with opener.open(server + kept, timeout=30) as page:
        assert page.status == 200


def test_a_too_long_link_opens_with_a_warning_saying_so(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(server + LONG_LINK)
        warning = page.get_by_text("The link was too long to restore")
        sync_api.expect(warning).to_be_visible(timeout=60_000)
        sync_api.expect(warning).to_contain_text("5,000 query fields")
        sync_api.expect(warning).to_contain_text("at most 1,000 fields")
        wait_idle(page)
        assert "link_fields" not in page.url  # a reload or a copy does not repeat it
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "long-link.png"))
    finally:
        page.close()


def test_the_about_page_tells_the_operator_limits_count_by_cookie_on_loopback(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(server + "/about")
        note = page.get_by_text("can count only by owner cookie")
        sync_api.expect(note).to_be_visible(timeout=60_000)
        sync_api.expect(note).to_contain_text("Have the proxy send X-Forwarded-For")
    finally:
        page.close()


def test_a_same_host_proxy_that_forwards_the_address_names_the_visitor(tmp_path, browser):
    """The HTTP server under Streamlit (uvicorn) takes X-Forwarded-For from a peer at
    127.0.0.1 as the visitor's address: such a proxy needs no SONOTAG_TRUSTED_PROXIES, and
    the About page counts by cookie and address, with no warning."""
    with server_without_model(tmp_path / "data") as base:
        context = browser.new_context(extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
        page = context.new_page()
        try:
            page.goto(base + "/about")
            # the limits' note, not the settings table's help below it, which says the
            # same words in lower case (both match a plain text search once it is drawn)
            both = page.get_by_text(re.compile(r"^Counted by owner cookie and by client address"))
            sync_api.expect(both).to_be_visible(timeout=60_000)
            assert page.get_by_text("can count only by owner cookie").count() == 0
        finally:
            context.close()

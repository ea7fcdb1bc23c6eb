"""A link too long to restore (issue 25, item 11): Streamlit drops a query string of more
than 1000 fields without a word; the server entry redirects such a page request to a
marker the page turns into a warning. Fast tier: the middleware over a small Starlette
app, Streamlit's own rule as the reference, and the pages through AppTest without the
model (the real server and the browser: tests/test_browser_long_links.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urljoin

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from streamlit.runtime.state import query_params as st_query_params
from streamlit.testing.v1 import AppTest

from sonotag_core.dashboard import long_links
from sonotag_core.dashboard.long_links import LongLinkRedirect, QueryLimits
from sonotag_core.dashboard.media_links import AUDIO_ROUTE

ROOT = Path(__file__).resolve().parent.parent
STREAMLIT = QueryLimits(
    st_query_params.CLIENT_STATE_QUERY_STRING_MAX_FIELDS,
    st_query_params.CLIENT_STATE_QUERY_STRING_MAX_LENGTH,
)


def fields(n: int, field: str = "l=") -> str:
    return "&".join([field] * n)


# ---------------------------------------------------------------- Streamlit's rule


def test_the_limits_are_read_from_streamlit():
    from sonotag_app import context

    assert context.query_string_limits() == STREAMLIT
    assert STREAMLIT.max_fields == 1000  # Streamlit 1.67; the test above follows a change


@pytest.mark.parametrize(
    "query",
    [
        "",
        fields(999),
        fields(1000),
        fields(1001),
        fields(5000),
        fields(2000, "thr=bad"),
        "&" * 999,  # Streamlit counts ampersands, not pairs
        "&" * 1000,
        "l=" + "a" * STREAMLIT.max_chars,
        "l=" + "a" * (STREAMLIT.max_chars - 2),
    ],
    ids=lambda q: f"{len(q)}chars-{q.count('&') + 1}fields",
)
def test_a_query_is_over_exactly_when_streamlit_drops_it(query):
    dropped = bool(query) and st_query_params.sanitize_query_string(query) == ""
    assert (long_links.overflow(query, STREAMLIT) is not None) == dropped


def test_the_marker_counts_what_went_over():
    assert long_links.overflow(fields(5000), STREAMLIT) == ("link_fields", 5000)
    long = "l=" + "a" * STREAMLIT.max_chars
    assert long_links.overflow(long, STREAMLIT) == ("link_chars", len(long))


# ---------------------------------------------------------------- the middleware


def request(app, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request through an ASGI app, as uvicorn hands it over (starlette's
    TestClient needs httpx, which the project does not install)."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8501),
    }
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], headers, body


@pytest.fixture
def app():
    async def ok(request):
        items = request.query_params.multi_items()
        return PlainTextResponse(f"page {request.url.path} {len(items)}")

    routes = [Route("/{path:path}", ok, methods=["GET", "HEAD", "POST"])]
    return LongLinkRedirect(Starlette(routes=routes), STREAMLIT, exclude=(AUDIO_ROUTE,))


def test_a_page_link_with_too_many_fields_is_sent_to_the_marker(app):
    status, headers, _ = request(app, "GET", "/?" + fields(5000))
    assert status == 303
    assert headers["location"] == "?link_fields=5000"  # relative: the same page
    assert headers["cache-control"] == "no-store"
    target = "/library?" + fields(1500, "q=x")
    status, headers, _ = request(app, "GET", target)
    assert (status, headers["location"]) == (303, "?link_fields=1500")
    followed = urljoin("http://127.0.0.1:8501" + target, headers["location"])
    assert followed == "http://127.0.0.1:8501/library?link_fields=1500"
    assert request(app, "GET", followed.split("8501", 1)[1])[2] == b"page /library 1"
    assert request(app, "HEAD", "/?" + fields(1001))[0] == 303


def test_links_streamlit_keeps_and_other_requests_pass(app):
    assert request(app, "GET", "/?" + fields(1000))[2] == b"page / 1000"
    assert request(app, "GET", "/")[2] == b"page / 0"
    for path in ("/_stcore/health", "/static/js/main.js", "/favicon.png", AUDIO_ROUTE):
        assert request(app, "GET", f"{path}?{fields(5000)}")[0] == 200, path
    assert request(app, "POST", "/?" + fields(5000))[0] == 200


def test_unknown_limits_pass_everything():
    async def ok(request):
        return PlainTextResponse("page")

    app = LongLinkRedirect(Starlette(routes=[Route("/", ok)]), None)
    assert request(app, "GET", "/?" + fields(5000))[2] == b"page"


def test_the_server_puts_the_redirect_in_front_of_the_app(tmp_path):
    """serve.py wraps the app in sonotag_app.server's middleware, Streamlit's own limits
    handed to the redirect."""
    from sonotag_app import context, server
    from sonotag_core.settings import Settings

    assert "server.app_options()" in (ROOT / "serve.py").read_text()
    options = server.app_options(Settings(data_dir=str(tmp_path)).validated())
    [redirect] = [m for m in options["middleware"] if m.cls is LongLinkRedirect]
    assert redirect.kwargs["limits"] == context.query_string_limits() is not None


# ---------------------------------------------------------------- the message


def test_the_message_says_how_many_fields_and_the_limit():
    text = long_links.message({"link_fields": ["5000"]}, STREAMLIT)
    assert text is not None
    assert "too long to restore" in text and "5,000 query fields" in text and "1,000" in text
    text = long_links.message({"link_chars": "600000"}, STREAMLIT)
    assert text is not None and "600,000 query characters" in text and "524,288" in text


@pytest.mark.parametrize("value", ["12", "1000", "abc", "-5000", "²⁵", "9" * 5000, ""])
def test_a_marker_this_server_did_not_write_says_nothing(value):
    assert long_links.message({"link_fields": [value]}, STREAMLIT) is None


# ---------------------------------------------------------------- the pages


def warnings_of(at: AppTest) -> str:
    return " ".join(str(w.value).replace("\\", "") for w in at.warning)


def test_the_analyze_page_says_the_link_was_too_long_and_drops_the_marker(page_env):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.query_params["link_fields"] = "5000"
    at.run()
    assert not at.exception, at.exception
    text = warnings_of(at)
    assert "too long to restore" in text and "5,000 query fields" in text and "1,000" in text
    assert "link_fields" not in at.query_params  # a reload or a copied link does not repeat it
    at.text_area(key="labels_text").set_value("a siren").run()
    assert "too long to restore" in warnings_of(at)  # it stays with the link's other warnings
    assert at.session_state.result is None if "result" in at.session_state else True


def test_a_plain_link_says_nothing(page_env):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.query_params["link_fields"] = "3"  # not a count this server would write
    at.run()
    assert not at.exception and "too long" not in warnings_of(at)


def test_another_page_says_it_too_until_the_visitor_leaves(page_env):
    at = AppTest.from_file(str(ROOT / "pages" / "about.py"), default_timeout=60)
    at.query_params["link_fields"] = "1500"
    at.run()
    assert not at.exception, at.exception
    assert "1,500 query fields" in warnings_of(at)
    assert "link_fields" not in at.query_params
    at.run()
    assert "1,500 query fields" in warnings_of(at)

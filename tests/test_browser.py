"""End to end in a real browser: `streamlit run` on loopback, Debian's Chromium driven by
Playwright, the real openflam code path on the tests' generated checkpoint.

Opens a share link for an example clip, waits for the analysis and the charts, clicks a
chart and checks the audio player jumped there, downloads an export and parses it, then
opens the address-bar link in a fresh browser context and checks the view is restored.
Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from audiogen import make_audio
from support import serve_app

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
RESULTS = "[data-testid='workbench']"  # the player: drawn once an analysis is on screen
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
sync_api = pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def streamlit_server(settings, data: Path, **env_extra: str):
    """``streamlit run serve.py`` on a free loopback port, as users start it (``env_extra``:
    more SONOTAG_* settings); yields the base URL once the health check answers."""
    env = dict(
        os.environ,
        SONOTAG_MODEL_DIR=settings.model_dir,
        SONOTAG_DATA_DIR=str(data),
        SONOTAG_THREADS="2",
        HF_HUB_OFFLINE="1",
        **env_extra,
    )
    try:
        with serve_app(env, data / "streamlit.log") as base:
            yield base
    except RuntimeError as exc:
        pytest.fail(str(exc))


def upload(page, clip: Path) -> None:
    """Choose Upload, give it ``clip``, and wait until the server has every byte."""
    page.get_by_role("radio", name="Upload").or_(
        page.get_by_role("button", name="Upload")
    ).first.click()
    page.locator("input[type=file]").set_input_files(str(clip))
    sync_api.expect(page.get_by_text("is on the server, ready to analyse")).to_be_visible(
        timeout=60_000
    )
    wait_idle(page)


@pytest.fixture(scope="module")
def server(settings, tmp_path_factory):
    with streamlit_server(settings, tmp_path_factory.mktemp("browser-data")) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Streamlit finished running the script (and so the analysis)."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout_ms
    )


def press_until(page, button, outcome, timeout_ms: int = 60_000) -> None:
    """Press ``button`` until ``outcome`` shows. A press that lands while Streamlit is
    still laying the page out (a table drawing its canvas, a phone's sidebar folding
    away) can miss the button, one CI run in many; a visitor presses again. Pressed
    again only if, with the script idle, nothing happened and the button is still there,
    so a press that did register is never repeated."""
    button.click()
    with contextlib.suppress(AssertionError):
        sync_api.expect(outcome).to_be_visible(timeout=timeout_ms // 2)
        return
    wait_idle(page)
    if not outcome.is_visible() and button.is_visible():
        button.click()
    sync_api.expect(outcome).to_be_visible(timeout=timeout_ms)


def download(page, name: str) -> Path:
    """Click a download button and return the file; single formats sit in the "One
    format" menu. Export buttons generate their file on click (deferred): a click that
    lands while a rerun replaces the button's file id gets no file, as Streamlit
    documents, so wait for the script to finish and retry once."""
    button = page.get_by_role("button", name=name, exact=True)
    for attempt in range(2):
        wait_idle(page)
        if not button.is_visible():
            page.get_by_role("button", name="One format").click()
        try:
            with page.expect_download(timeout=20_000) as dl:
                button.click()
            return Path(dl.value.path())
        except sync_api.TimeoutError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def player(page):
    return page.locator(RESULTS).first


def hold_playback(page) -> None:
    """Make the page's <audio> elements count play() calls instead of playing. A playing
    element's currentTime runs on between a seek's end and its "seeked" handler, by more
    than 0.05 s on a loaded machine; held, it stays where the seek put it, so the test
    reads the seek itself and, from ``window.__plays``, that playing was asked for."""
    page.evaluate(
        "() => { window.__plays = 0; HTMLMediaElement.prototype.play = function () {"
        " window.__plays += 1; return Promise.resolve(); }; }"
    )


def seeked_to(page) -> float:
    """Where the player's <audio> element really went after its last seek."""
    page.wait_for_function(
        "() => { const w = document.querySelector(\"[data-testid='workbench']\");"
        " return w && w.dataset.seekedTo !== undefined; }",
        timeout=30_000,
    )
    return float(player(page).get_attribute("data-seeked-to"))


def test_share_link_click_to_play_export_and_restore(server, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    expect = sync_api.expect
    link = f"{server}/?ex=siren-street&l=siren&l=car+horn&l=-music&thr=0.2"
    ctx = browser.new_context(viewport={"width": 1440, "height": 1400}, accept_downloads=True)
    page = ctx.new_page()
    page.goto(link)
    expect(player(page)).to_be_visible(timeout=180_000)
    wait_idle(page)
    expect(page.get_by_text("Could not analyse")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "1-results-1440.png"), full_page=True)

    # click 60 % along the waveform: the player plays from exactly there
    audio = page.locator("audio").first
    expect(audio).to_be_attached()
    assert audio.evaluate("a => a.currentTime") < 1
    box = page.locator(".wb-wave .wb-plot").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    duration = 24.0
    assert abs(seeked_to(page) - 0.6 * duration) <= 0.05  # not floored to 14 s
    page.wait_for_function("() => new URLSearchParams(location.search).has('t')", timeout=30_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "2-after-click.png"), full_page=True)

    # the address bar is the share link: it carries the picked time and labels
    # (Streamlit updates it with history.replaceState, which page.url does not follow)
    url = page.evaluate("location.href")
    q = parse_qs(urlsplit(url).query)
    assert q["ex"] == ["siren-street"] and "-music" in q["l"] and "t" in q
    picked = float(q["t"][0])
    assert abs(picked - 0.6 * duration) <= 0.05, picked

    # a download from the page parses back
    data = json.loads(download(page, "json").read_text())
    assert data["labels"] == ["siren", "car horn", "music"]
    assert len(data["probabilities"]) == 3 and len(data["frame_times_s"]) == 77  # 24 s / 0.3125

    # another browser context restores the same view from the link alone, at that instant
    other = browser.new_context(viewport={"width": 1400, "height": 1800})
    page2 = other.new_page()
    page2.goto(url)
    expect(player(page2)).to_be_visible(timeout=120_000)
    wait_idle(page2)
    expect(page2.locator("textarea").first).to_have_value("siren\ncar horn\n-music")
    page2.wait_for_function(
        f"() => Math.abs(document.querySelector('audio').currentTime - {picked}) <= 0.05",
        timeout=30_000,
    )
    page2.screenshot(path=str(ARTIFACTS / "3-restored.png"), full_page=True)
    other.close()
    ctx.close()


def event_rows(page) -> list[dict]:
    """The events the page shows, read back through its CSV export (grid cells are
    drawn on a canvas)."""
    import csv

    with open(download(page, "csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_an_event_row_plays_from_its_exact_onset(server, browser):
    """Issue 9 C: st.audio floored start_time to whole seconds (an event at 7.5 s played
    from 7 s). A click on an event row now seeks the player to the onset itself."""
    expect = sync_api.expect
    ctx = browser.new_context(viewport={"width": 1440, "height": 1200}, accept_downloads=True)
    page = ctx.new_page()
    page.goto(f"{server}/?ex=siren-street&l=siren&l=car+horn&thr=0.3&med=1")
    expect(player(page)).to_be_visible(timeout=180_000)
    wait_idle(page)
    rows = event_rows(page)
    assert len(rows) >= 2, rows
    fractional = [i for i, r in enumerate(rows) if abs(float(r["onset_s"]) % 1) > 0.1]
    row = fractional[0] if fractional else 1
    onset = float(rows[row]["onset_s"])
    grid = page.locator("[data-testid='stDataFrame']").first
    wb = "document.querySelector(\"[data-testid='workbench']\").dataset"
    there = (  # the player selected that event and went to its onset
        f"() => Math.abs(parseFloat({wb}.selectedOnset) - {onset}) < 1e-6"
        f" && Math.abs(parseFloat({wb}.seekedTo) - {onset}) <= 0.05"
    )
    hold_playback(page)
    for _ in range(3):  # a tick that lands while a loaded machine still lays the grid out
        grid.click(position={"x": 14, "y": 35 * (row + 1) + 17})  # its row-selection cell
        try:
            page.wait_for_function(there, timeout=30_000)
            break
        except sync_api.TimeoutError:
            wait_idle(page)
            if page.evaluate(there):  # it landed late: a second tick would undo it
                break
    assert page.evaluate(there), "the event row never moved the player to its onset"
    assert abs(seeked_to(page) - onset) <= 0.05, (seeked_to(page), onset)
    assert page.evaluate("window.__plays") >= 1  # and plays from there
    page.screenshot(path=str(ARTIFACTS / "13-event-row-seek.png"), full_page=True)
    ctx.close()


VIEW_KEYS = {"Timelines": "timeline", "Heatmap": "heatmap", "Events": "events"}


def plot_edges(page) -> list[tuple[float, float]]:
    return page.locator(".wb-plot").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"
    )


@pytest.mark.parametrize("width", [1440, 390])
def test_every_time_row_shares_one_x_axis_and_the_page_fits(server, browser, width):
    """Issue 9 B: the waveform, spectrogram, every label lane, the events and the heatmap
    share one plot origin and width (within 2 px) in every view; at 390 px nothing
    scrolls sideways."""
    expect = sync_api.expect
    scheme = "dark" if width < 500 else "light"  # the theme follows the browser's preference
    # tall enough that a screenshot shows the whole page (Streamlit scrolls inside its app)
    ctx = browser.new_context(viewport={"width": width, "height": 2600}, color_scheme=scheme)
    page = ctx.new_page()
    page.goto(f"{server}/?ex=siren-street&l=siren&l=car+horn&l=-music&thr=0.2")
    expect(player(page)).to_be_visible(timeout=180_000)
    wait_idle(page)
    for view in ("Timelines", "Heatmap", "Events"):
        page.get_by_role("radio", name=view, exact=True).or_(
            page.get_by_role("button", name=view, exact=True)
        ).first.click()
        expect(player(page)).to_have_attribute("data-view", VIEW_KEYS[view], timeout=30_000)
        wait_idle(page)
        edges = plot_edges(page)
        assert len(edges) == 3 + 3, edges  # waveform, spectrogram, 3 labels, time axis
        lefts, rights = [e[0] for e in edges], [e[1] for e in edges]
        assert max(lefts) - min(lefts) <= 2 and max(rights) - min(rights) <= 2, edges
        assert rights[0] - lefts[0] > width * 0.3, edges  # a real plot, not a sliver
        page.screenshot(path=str(ARTIFACTS / f"14-{view.lower()}-{width}.png"), full_page=True)
    overflow = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth,"
        " document.querySelector(\"[data-testid='stMain']\").scrollWidth]"
    )
    assert overflow[0] <= overflow[1] and overflow[2] <= overflow[1], overflow
    expect(page.get_by_role("button", name="Download all (zip)")).to_be_visible()
    background = page.evaluate(
        "() => getComputedStyle(document.querySelector(\"[data-testid='stApp']\")).backgroundColor"
    )
    rgb = [int(v) for v in re.findall(r"\d+", background)[:3]]
    assert (sum(rgb) / 3 < 80) == (scheme == "dark"), (scheme, background)
    ctx.close()


def test_a_keyboard_review_survives_a_reload(server, browser):
    """Issue 9 D: n selects the next event and plays it, a accepts it; the verdict is
    stored with the analysis, so a reload (or another session) shows it."""
    expect = sync_api.expect
    ctx = browser.new_context(viewport={"width": 1440, "height": 1200})
    page = ctx.new_page()
    page.goto(f"{server}/?ex=siren-street&l=siren&thr=0.3")
    expect(player(page)).to_be_visible(timeout=180_000)
    wait_idle(page)
    assert int(player(page).get_attribute("data-events")) >= 1
    page.get_by_role("heading", level=3).first.click()  # focus out of the text boxes
    hold_playback(page)
    page.keyboard.press("n")
    expect(player(page)).not_to_have_attribute("data-selected-onset", "", timeout=30_000)
    onset = float(player(page).get_attribute("data-selected-onset"))
    # data-seeked-to is the last seek's: on a loaded machine this one's "seeked" may land
    # after the selection shows, so wait for it (it fails if the seek never gets there)
    page.wait_for_function(
        "(t) => { const w = document.querySelector(\"[data-testid='workbench']\");"
        " return w && Math.abs(parseFloat(w.dataset.seekedTo) - t) <= 0.05; }",
        arg=onset,
        timeout=30_000,
    )
    assert abs(seeked_to(page) - onset) <= 0.05
    assert page.evaluate("window.__plays") >= 1  # n plays the event it selects
    page.keyboard.press("a")
    expect(page.get_by_text("1 of", exact=False).first).to_be_visible(timeout=30_000)
    wait_idle(page)
    page.reload()
    expect(player(page)).to_be_visible(timeout=180_000)
    wait_idle(page)
    expect(player(page)).to_have_attribute("data-reviewed", "1", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "15-reviewed-after-reload.png"), full_page=True)
    ctx.close()


def test_library_search_opens_the_moment(server, browser):
    """After the first test stored an analysis: search the Library, open a moment, and
    the Analyze page plays from there. Compare renders both sides."""
    expect = sync_api.expect
    ctx = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = ctx.new_page()
    page.goto(f"{server}/library")
    wait_idle(page)
    expect(page.get_by_text("Stored analyses")).to_be_visible()
    page.get_by_label("A sound, in words").fill("a siren wailing")
    page.get_by_test_id("stForm").get_by_role("button", name="Search").click()
    first = page.get_by_role("link", name="Open here").first
    expect(first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "4-library-search.png"), full_page=True)
    first.click()
    expect(page.locator(RESULTS).first).to_be_visible(timeout=60_000)
    wait_idle(page)
    q = parse_qs(urlsplit(page.evaluate("location.href")).query)
    assert "analysis" in q and q["l"][0] == "a siren wailing", q
    t = float(q["t"][0])
    page.wait_for_function(
        f"() => {{ const a = document.querySelector('audio'); return a && a.currentTime >= {int(t)}; }}",
        timeout=30_000,
    )
    page.screenshot(path=str(ARTIFACTS / "5-opened-from-library.png"), full_page=True)
    page.goto(f"{server}/compare")
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "6-compare-1400.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 1400})
    expect(page.locator("[data-testid='stVegaLiteChart']").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "6-compare-390.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    ctx.close()


def wait_for_any(pages: list, text: str, timeout_s: float):
    """The first of ``pages`` that shows ``text`` within ``timeout_s``; fails otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for page in pages:
            if page.get_by_text(text).count():
                return page
        pages[0].wait_for_timeout(100)
    shown = [page.locator("[data-testid='stMain']").inner_text()[-600:] for page in pages]
    raise AssertionError(f"no page showed {text!r} within {timeout_s:g} s; they show {shown}")


def test_two_sessions_share_the_model_first_come_first_served(server, browser, tmp_path):
    """Two browsers analyse two uploads at once: the second is told it is queued and
    both finish with results."""
    from audiogen import make_audio

    expect = sync_api.expect
    warm = browser.new_page()  # the model is loaded once per server, before the race
    warm.goto(f"{server}/about")
    load = warm.get_by_role("button", name="Load the model now")
    loaded = warm.get_by_text("is loaded")
    expect(load.or_(loaded)).to_be_visible(timeout=60_000)  # the page has rendered
    if load.count():
        load.click()
    expect(loaded).to_be_visible(timeout=120_000)
    warm.close()
    pages, contexts = [], []
    for i in range(2):  # 200 s at hop 5: 40 windows, several seconds of encoding each
        name = f"long {i}.wav" if i else "$5 vs $50 *live* a_b.wav"  # shown as typed
        clip = make_audio(tmp_path / name, 200.0 + i, kind="mix", freq=500 + 200 * i)
        ctx = browser.new_context(viewport={"width": 1200, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{server}/?l=beeping&l=siren&hop=5")
        wait_idle(page)
        upload(page, clip)  # the browser lists the file at once; the server has it later
        contexts.append(ctx)
        pages.append(page)
    for page in pages:  # both press Analyze, a moment apart; each click must register
        page.get_by_role("button", name="Analyze", exact=True).click(timeout=60_000)
        expect(page.get_by_text("Analysing…")).to_be_visible(timeout=60_000)
    # Which click reaches the model first is the server's race, not the test's order.
    queued = wait_for_any(pages, "Queued, position 2", timeout_s=30)
    queued.screenshot(path=str(ARTIFACTS / "7-queued.png"))
    for page in pages:  # the second waits for the first: generous on a loaded machine
        expect(page.locator(RESULTS).first).to_be_visible(timeout=400_000)
        expect(page.get_by_text("Could not analyse")).to_have_count(0)
    heading = pages[0].get_by_role("heading", level=3).first
    expect(heading).to_have_text("$5 vs $50 *live* a_b")
    expect(pages[0].get_by_text("Analysed “$5 vs $50 *live* a_b”")).to_be_visible()
    for ctx in contexts:
        ctx.close()


def test_fresh_server_opens_a_page_link_inside_the_app(settings, browser, tmp_path):
    """The first visitor of a freshly started server opens /about directly (a bookmark, a
    Library link after a redeploy): Streamlit's old multipage mode for a ``pages/`` folder
    would run that page alone, without the app's navigation and title."""
    expect = sync_api.expect
    with streamlit_server(settings, tmp_path) as base:
        page = browser.new_page()
        page.goto(f"{base}/about")
        expect(page.get_by_role("heading", name="About SonoTag")).to_be_visible(timeout=60_000)
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav.get_by_role("link", name="About / System")).to_be_visible()
        expect(nav.get_by_role("link", name="Library")).to_be_visible()
        expect(nav.get_by_role("link", name="streamlit app")).to_have_count(0)
        expect(page).to_have_title("SonoTag")
        page.close()


@contextlib.contextmanager
def canary_server():
    """A loopback HTTP server that counts every request: a page that turns untrusted
    Markdown into an image or a prefetched link would hit it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_markdown_from_a_link_or_the_label_box_fetches_nothing(server, browser):
    """Labels are data: a share link's ``![p](http://…/pixel.png)`` must not make a
    visitor's browser fetch anything, in the per-label sliders, the results, the error
    messages or anywhere else; the label is shown as typed."""
    from urllib.parse import quote

    expect = sync_api.expect
    with canary_server() as (canary, hits):
        image = f"![p]({canary}/link.png)"
        ctx = browser.new_context(viewport={"width": 1440, "height": 1400})
        page = ctx.new_page()
        page.goto(f"{server}/?ex=siren-street&l={quote(image)}&l=siren&thr=0.2")
        expect(page.locator(RESULTS).first).to_be_visible(timeout=180_000)
        wait_idle(page)
        page.get_by_text("Per-label thresholds").click()  # the sliders are labelled by it
        wait_idle(page)
        expect(page.get_by_text(image).first).to_be_visible()  # literally, as typed
        # typed: a label over the length limit is named in the error message
        typed = f"![q]({canary}/typed.png)" + "x" * 120
        box = page.get_by_role("textbox", name="Labels (one per line or")
        box.fill(f"siren\n{typed}\n[r]({canary}/anchor)")
        box.press("Control+Enter")
        expect(page.get_by_text("characters long; the limit is")).to_be_visible(timeout=60_000)
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "8-markdown-labels.png"), full_page=True)
        fetching = page.locator(f"img[src^='{canary}'], a[href^='{canary}']")
        assert fetching.count() == 0, fetching.first.evaluate(
            "e => e.parentElement.parentElement.outerHTML.slice(0, 600)"
        )
        ctx.close()
        assert hits == [], hits


# ---------------------------------------------------------------- two visitors (issue 15)


@pytest.fixture(scope="module")
def private_server(settings, tmp_path_factory):
    """A deployment as the Docker image runs it: SONOTAG_ACCESS=private, and a rate limit
    of 2 analyses an hour so a test can reach it."""
    data = tmp_path_factory.mktemp("private-data")
    with streamlit_server(
        settings, data, SONOTAG_ACCESS="private", SONOTAG_RATE_LIMIT_PER_HOUR="2"
    ) as base:
        yield base


def analysis_id_of(page) -> str:
    sync_api.expect(page).to_have_url(re.compile(r"[?&]analysis=[0-9a-f]{32}"), timeout=60_000)
    return parse_qs(urlsplit(page.url).query)["analysis"][0]


def test_a_visitor_cannot_list_open_as_owner_or_delete_anothers_upload(
    private_server, browser, tmp_path
):
    expect = sync_api.expect
    clip = make_audio(tmp_path / "visitor A private take.wav", 12.0, kind="mix")
    a_ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    a = a_ctx.new_page()
    a.goto(f"{private_server}/?l=a+tone")
    wait_idle(a)
    upload(a, clip)
    a.get_by_role("button", name="Analyze", exact=True).click()
    expect(a.locator(RESULTS).first).to_be_visible(timeout=120_000)
    analysis_id_of(a)  # an upload is shared by its stored analysis: a 128-bit id
    share_link = a.url
    a.goto(f"{private_server}/library")
    wait_idle(a)
    expect(a.get_by_text("visitor A private take")).to_have_count(1)  # A's

    b_ctx = browser.new_context(viewport={"width": 390, "height": 900})  # another browser
    b = b_ctx.new_page()
    b.goto(f"{private_server}/library")
    wait_idle(b)
    expect(b.get_by_text("Nothing stored yet")).to_be_visible()  # B's Library: not A's
    expect(b.get_by_text("visitor A private take")).to_have_count(0)
    b.screenshot(path=str(ARTIFACTS / "9-visitor-b-library-390.png"), full_page=True)
    # B's search finds nothing of A's audio
    b.get_by_role("textbox", name="A sound, in words").fill("a tone")
    b.get_by_role("button", name="Search").click()
    wait_idle(b)
    expect(b.get_by_text("No stored audio to search yet")).to_be_visible(timeout=60_000)
    # through A's share link, B reads the results
    b.goto(share_link)
    expect(b.locator(RESULTS).first).to_be_visible(timeout=120_000)
    wait_idle(b)
    expect(b.get_by_role("heading", name="visitor A private take")).to_be_visible()
    expect(b.get_by_text("Shared with you through its link, read-only")).to_be_visible()
    b.screenshot(path=str(ARTIFACTS / "9-visitor-b-share-link-390.png"), full_page=True)
    # ... but it is not B's: back in B's Library there is still nothing to delete
    b.goto(f"{private_server}/library")
    wait_idle(b)
    expect(b.get_by_text("Nothing stored yet")).to_be_visible()
    expect(b.get_by_role("button", name="Delete")).to_have_count(0)
    # A's analysis is untouched and still A's
    a.goto(f"{private_server}/library")
    wait_idle(a)
    expect(a.get_by_text("visitor A private take")).to_have_count(1)
    a_ctx.close()
    b_ctx.close()


def test_the_rate_limit_holds_across_new_tabs(private_server, browser):
    """Three tabs of one browser are one visitor: with a limit of 2 an hour the third
    analysis is refused (before, each tab was a fresh session with a fresh allowance)."""
    expect = sync_api.expect
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    link = f"{private_server}/?ex=siren-street&l=siren"
    for tab in range(3):
        page = ctx.new_page()
        page.goto(link)  # a share link of an example: opening it runs the analysis
        wait_idle(page)
        refused = page.get_by_text("the most this server allows")
        if tab < 2:
            expect(page.locator(RESULTS).first).to_be_visible(timeout=120_000)
            expect(refused).to_have_count(0)
        else:
            expect(refused).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "10-rate-limit-third-tab.png"))
    ctx.close()


def events_shown(page) -> int:
    metric = page.locator("[data-testid='stMetric']", has_text="Events")
    return int(metric.locator("[data-testid='stMetricValue']").inner_text().strip())


def slide(page, name: str, key: str, url_says: str) -> None:
    """Move the slider labelled ``name`` with the keyboard (Home: minimum, End: maximum),
    then wait until the run it starts has written ``url_says`` into the address bar and
    finished (the key press reruns the script a moment later: waiting only for an idle
    script could read the page of the run before it, on a busy machine)."""
    thumb = page.locator("[data-testid='stSlider']", has_text=name).get_by_role("slider").first
    thumb.focus()
    thumb.press(key)
    sync_api.expect(page).to_have_url(re.compile(url_says), timeout=60_000)
    wait_idle(page)


def test_the_event_threshold_slider_changes_the_events(server, browser):
    """Issue 9 A1: per-label thresholds were fixed at the first render's global value, so
    the main slider changed nothing. Now every label follows it until its own slider is
    moved, and the link holds only the thresholds that differ."""
    expect = sync_api.expect
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server}/?ex=siren-street&l=siren&l=car+horn")
    expect(page.locator(RESULTS).first).to_be_visible(timeout=180_000)
    wait_idle(page)
    slide(page, "Event threshold", "Home", r"thr=0\.01(&|$)")  # every frame is above it
    low = events_shown(page)
    assert "lt=" not in page.url and low >= 2  # one event (at least) per label
    slide(page, "Event threshold", "End", r"thr=0\.99(&|$)")  # nothing is
    assert events_shown(page) == 0
    slide(page, "Event threshold", "Home", r"thr=0\.01(&|$)")
    assert events_shown(page) == low
    # a label's own slider overrides the global one, and only that label
    page.get_by_text("Per-label thresholds").click()
    wait_idle(page)
    slide(page, "car horn", "End", r"lt=car(\+|%20)horn(:|%3A)0\.99")
    with_override = events_shown(page)
    assert 1 <= with_override < low  # car horn has none now, siren still has its own
    page.screenshot(path=str(ARTIFACTS / "11-threshold-slider.png"), full_page=True)
    ctx.close()


def test_deleting_library_rows_down_to_the_last(settings, browser, tmp_path):
    """Issue 9 A2: deleting the last row showed a traceback (the table kept selecting a
    row number that no longer existed), and deleting a middle row left the selection and
    the confirmation on the next analysis. Each deletion now clears the selection and acts
    on the analysis it names only."""
    expect = sync_api.expect
    data = tmp_path / "data"
    data.mkdir()
    with streamlit_server(settings, data) as base:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        examples = (("siren-street", "siren"), ("alarm-clock", "alarm"), ("siren-street", "horn"))
        for ex, label in examples:
            page.goto(f"{base}/?ex={ex}&l={label}")
            expect(page.locator(RESULTS).first).to_be_visible(timeout=180_000)
            wait_idle(page)
            page.get_by_role("button", name="Analyze", exact=True).click()  # stored anew
            wait_idle(page)
        page.goto(f"{base}/library")
        wait_idle(page)
        grid = page.locator("[data-testid='stDataFrame']").first
        stored = int(page.get_by_text(re.compile(r"^\d+ stored")).inner_text().split()[0])
        for row in [1] + [stored - 2 - i for i in range(stored - 1)]:  # a middle one, then the last
            # the row-selection column of that data row (a 35-px header, then 35-px rows)
            grid.click(position={"x": 14, "y": 35 * (row + 1) + 17})
            wait_idle(page)
            page.get_by_role("button", name="Delete").click()
            page.get_by_role("button", name="Delete for good").click()
            stored -= 1
            if stored:
                expect(page.get_by_text(f"{stored} stored")).to_be_visible(timeout=60_000)
            else:
                expect(page.get_by_text("Nothing stored yet")).to_be_visible(timeout=60_000)
            wait_idle(page)
            expect(page.locator("[data-testid='stException']")).to_have_count(0)
            # nothing is selected any more: no confirmation, no "Open" for the next one
            expect(page.get_by_role("button", name="Delete for good")).to_have_count(0)
            expect(page.get_by_role("button", name="Delete")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "12-library-emptied.png"))
        ctx.close()


def test_fast_mode_is_a_toggle_the_view_and_its_link_keep(server, browser):
    """Issue 13: the sidebar's Fast mode toggle encodes in bf16 on the next Analyze; the
    page says which mode is shown, the export's settings and the address bar keep it, and
    the link opens in fast mode."""
    from sonotag_core.inference import fast_mode

    if not fast_mode.offered("auto"):
        pytest.skip("this CPU has no native bf16: the toggle is disabled (fast mode refused)")
    expect = sync_api.expect
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    page.goto(f"{server}/?ex=siren-street&l=siren")
    expect(page.locator(RESULTS).first).to_be_visible(timeout=180_000)
    wait_idle(page)
    said_fast = page.get_by_text("Fast mode: encoded in bfloat16")
    expect(said_fast).to_have_count(0)
    toggle = page.get_by_role("switch", name="Fast mode")
    expect(toggle).not_to_be_checked()
    page.locator("[data-testid='stCheckbox']", has_text="Fast mode").click()
    wait_idle(page)
    expect(toggle).to_be_checked()
    pending = "Press Analyze to encode this audio with a 10-s hop in fast mode"
    expect(page.get_by_text(pending)).to_be_visible()
    assert "fast=" not in page.url  # the view still shows the exact analysis
    assert json.loads(download(page, "json").read_text())["settings"]["fast_mode"] is False
    page.get_by_role("button", name="Analyze", exact=True).click()
    expect(page).to_have_url(re.compile(r"fast=1(&|$)"), timeout=180_000)
    wait_idle(page)
    expect(said_fast).to_be_visible()
    assert json.loads(download(page, "json").read_text())["settings"]["fast_mode"] is True
    page.screenshot(path=str(ARTIFACTS / "13-fast-mode-1440.png"), full_page=True)
    link = page.url
    ctx.close()
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    page = ctx.new_page()
    page.goto(link)  # the shared link: analysed (or reused) in fast mode, toggle on
    expect(page.locator(RESULTS).first).to_be_visible(timeout=180_000)
    wait_idle(page)
    expect(page.get_by_text("Fast mode: encoded in bfloat16")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "13-fast-mode-390.png"), full_page=True)
    ctx.close()

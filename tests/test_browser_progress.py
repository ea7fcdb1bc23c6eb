"""Progress and Cancel in a real browser (issue 9 A6), on the servers and browser of
tests/test_browser.py: Cancel stops an encoding and leaves no file or Library row, the
next Analyze completes, and the progress it shows is honest — the user's file name, a
window total equal to the result's, one stage that never goes back to "Decoding", no
"Loading the model…" once it is loaded.

Every text the progress bar shows is recorded by the page itself (a MutationObserver
installed before the app loads), so no poll can miss a short-lived one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from audiogen import make_audio
from test_browser import ARTIFACTS, CHROMIUM, streamlit_server, upload, wait_idle
from test_browser import browser as browser  # noqa: F401  (the shared Chromium fixture)

from sonotag_core.store.database import Store

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
sync_api = pytest.importorskip("playwright.sync_api")

RECORD_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  for (const bar of document.querySelectorAll("[data-testid='stProgress']")) {
    const text = bar.innerText.trim();
    const seen = window.__progress;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""
COUNT = re.compile(r"(\d+) of (\d+) windows")
STORE_FILES = {"sonotag.db", "sonotag.db-wal", "sonotag.db-shm", "logs/sonotag.log"}


@pytest.fixture(scope="module")
def server_and_data(settings, tmp_path_factory):
    data = tmp_path_factory.mktemp("progress-data")
    with streamlit_server(settings, data) as base:
        yield base, data


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()}


def working_folders(data: Path) -> list[str]:
    """Run folders (``sonotag-*``, download staging) anywhere under the data dir."""
    return [
        str(p)
        for p in data.rglob("*")
        if p.is_dir() and p.name.startswith(("sonotag-", ".download-"))
    ]


def progress_texts(page) -> list[str]:
    return page.evaluate("window.__progress")


def test_cancel_leaves_nothing_and_the_next_run_shows_honest_progress(
    server_and_data, browser, tmp_path
):
    base, data = server_and_data
    expect = sync_api.expect
    clip = make_audio(tmp_path / "three minutes.wav", 180.0, kind="mix")  # 35 windows at hop 5
    ctx = browser.new_context(viewport={"width": 1400, "height": 1200})
    ctx.add_init_script(RECORD_PROGRESS)
    page = ctx.new_page()
    page.goto(f"{base}/?l=beeping&hop=5")
    wait_idle(page)
    upload(page, clip)
    before = files_under(data)
    analyze = page.get_by_role("button", name="Analyze", exact=True)

    analyze.click()
    counting = page.get_by_text(re.compile(r"Encoding three minutes\.wav: \d+ of \d+ windows"))
    expect(counting).to_be_visible(timeout=180_000)
    page.screenshot(path=str(ARTIFACTS / "progress-0-running.png"))
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.get_by_text("Cancelled — nothing was saved.")).to_be_visible(timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "progress-1-cancelled.png"), full_page=True)
    stopped = [(int(m[1]), int(m[2])) for t in progress_texts(page) if (m := COUNT.search(t))]
    assert stopped and max(d for d, _ in stopped) < stopped[-1][1]  # mid-way, not at the end
    assert Store(data).list_analyses(10) == []
    assert files_under(data) - before <= STORE_FILES  # the upload's copy went too
    assert not any((data / "uploads").glob("*")) and working_folders(data) == []
    analysed = page.get_by_text("Analysed “three minutes”")
    expect(analysed).to_have_count(0)

    page.evaluate("window.__progress = []")
    analyze.click()
    expect(analysed).to_be_visible(timeout=180_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "progress-2-after-cancel.png"), full_page=True)
    texts = progress_texts(page)
    windows = page.locator("[data-testid='stMetric']", has_text="Windows")
    shown = int(windows.locator("[data-testid='stMetricValue']").inner_text())
    counts = [(int(m[1]), int(m[2])) for t in texts if (m := COUNT.search(t))]
    assert counts and max(stopped)[1] == shown, texts  # the cancelled run's total too
    assert {total for _, total in counts} == {shown}, texts  # the total is the result's
    assert [d for d, _ in counts] == sorted(d for d, _ in counts), texts
    first = next(i for i, t in enumerate(texts) if t.startswith("Encoding"))
    assert not any("Decoding" in t for t in texts[first:]), texts  # never back to decoding
    assert all("three minutes.wav" in t for t in texts[first:] if COUNT.search(t)), texts
    assert not any("Loading the model" in t for t in texts), texts  # loaded already
    assert len(Store(data).list_analyses(10)) == 1
    assert not any((data / "uploads").glob("*")) and working_folders(data) == []
    ctx.close()

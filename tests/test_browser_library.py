"""The Library's sort, filter and multi-row delete, and the About page, in a real browser
(issue 9 A3, A9): `streamlit run` on loopback and Debian's Chromium, as in test_browser.py,
whose server and browser helpers this file reuses. Screenshots at 1440 and 390 px go to
tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from audiogen import make_audio
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    RESULTS,
    press_until,
    streamlit_server,
    sync_api,
    wait_idle,
)
from test_browser import browser as browser  # noqa: F401  (the shared Chromium fixture)

from sonotag_core.domain.labels import LabelSet
from sonotag_core.media.sources import from_path
from sonotag_core.service import library
from sonotag_core.store.database import Store

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
expect = sync_api.expect
# oldest first; newest first (the default) is the reverse, and by title it is this order
TITLES = ("harbour foghorn", "kitchen kettle", "kitchen timer")


def stored_titles(data: Path) -> list[str]:
    return sorted(r.title for r in Store(data).list_analyses())


def select_row(page, row: int) -> None:
    """Tick a data row's selection box (a 35-px header, then 35-px rows; the box is the
    first column) and wait for the rerun it starts."""
    grid = page.locator("[data-testid='stDataFrame']").first
    grid.click(position={"x": 14, "y": 35 * (row + 1) + 17})
    wait_idle(page)


def no_traceback(page) -> None:
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_library_filter_sort_and_delete_several(settings, model, browser, tmp_path):
    data = tmp_path / "data"
    store = Store(data)
    for i, title in enumerate(TITLES):  # three stored analyses, oldest first
        clip = make_audio(tmp_path / f"{title}.wav", 12.0, kind="mix", freq=300 + 150 * i)
        library.run(
            model,
            from_path(clip),
            LabelSet((title.split()[1],)),
            hop_s=10.0,
            settings=settings,
            store=store,
        )
    assert stored_titles(data) == list(TITLES)
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(settings, data) as base:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{base}/library")
        wait_idle(page)
        expect(page.get_by_text("3 stored")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "library-1440.png"), full_page=True)

        # a filter is plain text, any case: "KETTLE" finds one, "kitchen.*" none
        box = page.get_by_label("Filter", exact=True)
        box.fill("KETTLE")
        box.press("Enter")
        expect(page.get_by_text("1 of 3 match the filter.")).to_be_visible(timeout=30_000)
        wait_idle(page)
        expect(page.get_by_text("kitchen kettle")).to_have_count(1)
        expect(page.get_by_text("kitchen timer")).to_have_count(0)
        expect(page.get_by_text("harbour foghorn")).to_have_count(0)
        box.fill("kitchen.*")
        box.press("Enter")
        expect(page.get_by_text("No stored analysis matches the filter")).to_be_visible()
        box.fill("")
        box.press("Enter")
        expect(page.get_by_text("match the filter")).to_have_count(0, timeout=30_000)
        wait_idle(page)

        # sorted by title, rows 0 and 1 are the foghorn and the kettle (newest first, the
        # default, would make them the timer and the kettle)
        page.locator("[data-testid='stSelectbox']", has_text="Sort").click()
        page.get_by_role("option", name="Title (A–Z)").click()
        wait_idle(page)
        foghorn = page.get_by_role("link", name="Open “harbour foghorn”")
        for _ in range(3):  # a tick that lands before the sort's rerun goes with the old table
            select_row(page, 0)
            try:
                expect(foghorn).to_be_visible(timeout=15_000)
                break
            except AssertionError:
                continue
        expect(foghorn).to_be_visible()
        select_row(page, 1)
        page.get_by_role("button", name="Delete 2 analyses").click()
        wait_idle(page)
        question = page.get_by_text("Delete 2 analyses for good")
        expect(question).to_contain_text("'harbour foghorn', 'kitchen kettle'")
        # the selection moves while the confirmation is open: it still deletes what it names
        select_row(page, 2)
        expect(question).to_contain_text("'harbour foghorn', 'kitchen kettle'")
        expect(page.get_by_text("not what is selected now")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "library-confirm-1440.png"), full_page=True)
        page.get_by_role("button", name="Delete for good").click()
        expect(page.get_by_text("1 stored")).to_be_visible(timeout=60_000)
        wait_idle(page)
        expect(page.get_by_text("Deleted 2 analyses")).to_be_visible()
        assert stored_titles(data) == ["kitchen timer"]  # exactly those two went
        no_traceback(page)
        expect(page.get_by_role("button", name="Delete")).to_have_count(0)  # nothing selected

        # a phone: the table, the filter and the sort fit; then the last row goes too
        phone = browser.new_context(viewport={"width": 390, "height": 900})
        small = phone.new_page()
        small.goto(f"{base}/library")
        wait_idle(small)
        expect(small.get_by_text("kitchen timer")).to_have_count(1)
        small.screenshot(path=str(ARTIFACTS / "library-390.png"), full_page=True)
        overflow = small.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, overflow
        select_row(small, 0)
        small.get_by_role("button", name="Delete 1 analysis").click()
        wait_idle(small)
        small.get_by_role("button", name="Cancel").click()  # changed my mind: nothing goes
        expect(small.get_by_role("button", name="Delete for good")).to_have_count(0)
        wait_idle(small)
        assert stored_titles(data) == ["kitchen timer"]
        small.get_by_role("button", name="Delete 1 analysis").click()  # still selected
        wait_idle(small)
        expect(small.get_by_text("Delete 1 analysis for good: 'kitchen timer'")).to_be_visible()
        small.get_by_role("button", name="Delete for good").click()
        expect(small.get_by_text("Nothing stored yet")).to_be_visible(timeout=60_000)
        wait_idle(small)
        no_traceback(small)
        assert stored_titles(data) == []
        phone.close()
        ctx.close()


def test_about_shows_a_load_error_first_and_the_checkpoint_whole(
    settings, model, browser, tmp_path
):
    ARTIFACTS.mkdir(exist_ok=True)
    # no weights: the red error leads, and the "loads on first analysis" box is gone
    empty = tmp_path / "no-weights"
    empty.mkdir()
    no_weights = dataclasses.replace(settings, model_dir=str(empty))
    with streamlit_server(no_weights, tmp_path, SONOTAG_PRELOAD="0") as base:
        for width in (1440, 390):
            ctx = browser.new_context(viewport={"width": width, "height": 4200})
            page = ctx.new_page()
            page.goto(f"{base}/about")
            wait_idle(page)
            note = page.get_by_text("The model is not loaded yet")
            expect(note).to_be_visible()
            load = page.get_by_role("button", name="Load the model now")
            load.click()
            error = page.get_by_text("sonotag fetch-model").first
            expect(error).to_be_visible(timeout=60_000)
            wait_idle(page)
            expect(note).to_have_count(0, timeout=60_000)  # the rerun after the error, when loaded
            assert error.bounding_box()["y"] < load.bounding_box()["y"]
            no_traceback(page)
            page.screenshot(path=str(ARTIFACTS / f"about-no-weights-{width}.png"), full_page=True)
            ctx.close()

    # loaded: the checkpoint path and its SHA-256 are shown whole (wrapped, not cut off)
    sha = model.info.checkpoint_sha256
    loaded = tmp_path / "loaded"
    loaded.mkdir()
    with streamlit_server(settings, loaded) as base:
        for width in (1440, 390):
            ctx = browser.new_context(viewport={"width": width, "height": 4200})
            page = ctx.new_page()
            page.goto(f"{base}/about")
            wait_idle(page)
            load = page.get_by_role("button", name="Load the model now")
            loaded_note = page.get_by_text("is loaded")
            # nobody presses anything: the model loaded as the server started (or is
            # loading, said so, and the page shows it loaded on the next visit)
            loading = page.get_by_text("Loading the model…")
            expect(loaded_note.or_(loading).first).to_be_visible(timeout=60_000)
            expect(load).to_have_count(0)
            while not loaded_note.count():
                loading.wait_for(state="visible")
                page.reload()
                wait_idle(page)
            expect(load).to_have_count(0)  # nothing left to load
            code = page.locator("[data-testid='stCode']", has_text=re.compile(sha[:16]))
            expect(code).to_have_count(1)
            assert re.sub(r"\s", "", code.inner_text()) == sha
            cut = code.locator("pre").evaluate("e => e.scrollWidth - e.clientWidth")
            assert cut <= 0, (width, cut)  # nothing to scroll to: all of it is in view
            path = page.locator("[data-testid='stCode']", has_text=model.checkpoint_path.name)
            assert re.sub(r"\s", "", path.inner_text()) == str(model.checkpoint_path)
            cut = path.locator("pre").evaluate("e => e.scrollWidth - e.clientWidth")
            assert cut <= 0, (width, cut)
            no_traceback(page)
            page.screenshot(path=str(ARTIFACTS / f"about-{width}.png"), full_page=True)
            ctx.close()


def test_a_batch_output_attached_on_the_library_page_opens_and_plays(
    settings, model, browser, cli_here, tmp_path
):
    """Attach a `sonotag batch` output from the Library page: its three files join the
    table, one opens on the Analyze page with its timeline and its original audio playing;
    Detach removes them and says the files stay."""
    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(3):
        make_audio(folder / f"clip{i}.wav", 8.0, kind="mix", freq=300 + 150 * i)
    out = tmp_path / "out"
    assert cli_here("batch", str(folder), "-o", str(out), "--labels", "a tone; hum") == 0
    data = tmp_path / "data"
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(settings, data) as base:
        ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{base}/library")
        wait_idle(page)
        expect(page.get_by_text("Nothing stored yet")).to_be_visible()
        page.get_by_text("Batch outputs (0 attached)").click()
        page.get_by_label("A `sonotag batch` output folder on this server").fill(str(out))
        page.get_by_role("button", name="Attach").click()
        expect(page.get_by_text("3 stored")).to_be_visible(timeout=60_000)
        wait_idle(page)
        expect(page.get_by_text("3 new, 3 listed")).to_be_visible()
        assert sorted(r.title for r in Store(data).list_analyses()) == [
            "clip0", "clip1", "clip2",
        ]  # fmt: skip
        no_traceback(page)
        page.get_by_text("Batch outputs (1 attached)").click()
        expect(page.get_by_role("button", name="Detach")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "12-attach-1440.png"), full_page=True)

        select_row(page, 0)
        opener = page.get_by_role("link", name=re.compile(r"Open “clip\d”"))
        expect(opener).to_be_visible(timeout=30_000)
        opener.click()
        expect(page.locator(RESULTS).first).to_be_visible(timeout=60_000)
        wait_idle(page)
        no_traceback(page)
        expect(page).to_have_url(re.compile(r"[?&]analysis=[0-9a-f]{32}"))
        # the player has the original file's audio: its 8 s load in the browser
        page.wait_for_function(
            "() => { const a = document.querySelector('audio');"
            " return a && a.duration > 7.9 && a.duration < 8.1; }",
            timeout=60_000,
        )
        page.screenshot(path=str(ARTIFACTS / "12-attached-opened-1440.png"), full_page=True)
        phone = browser.new_context(viewport={"width": 390, "height": 1400}).new_page()
        phone.goto(page.evaluate("location.href"))  # the link alone opens it on a phone
        expect(phone.locator(RESULTS).first).to_be_visible(timeout=60_000)
        wait_idle(phone)
        phone.wait_for_function(
            "() => { const a = document.querySelector('audio'); return a && a.duration > 7.9; }",
            timeout=60_000,
        )
        phone.screenshot(path=str(ARTIFACTS / "12-attached-opened-390.png"), full_page=True)
        phone.context.close()
        page.set_viewport_size({"width": 390, "height": 1400})

        page.goto(f"{base}/library")
        expect(page.get_by_text("3 stored")).to_be_visible(timeout=60_000)
        expect(page.locator("[data-testid='stDataFrame']")).to_be_visible()
        wait_idle(page)  # the table drawn: the rows below it no longer move
        page.get_by_text("Batch outputs (1 attached)").click()
        detach = page.get_by_role("button", name="Detach")
        expect(detach).to_be_visible()
        press_until(page, detach, page.get_by_text("Nothing stored yet"))
        wait_idle(page)
        expect(page.get_by_text("3 analyses removed; its files stay.")).to_be_visible()
        # the copy kept to play the opened file went with its analysis
        expect(page.get_by_text("kept audio: 0 files")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "12-detached-390.png"), full_page=True)
        no_traceback(page)
        assert Store(data).list_analyses() == [] and len(list((out / "parts").iterdir())) == 3
        ctx.close()


def test_the_model_loads_as_the_server_starts_and_the_note_goes_by_itself(
    settings, browser, tmp_path
):
    """Issue 13 (start-up): nobody presses anything, yet the model loads; the Analyze page
    says "Loading the model…" meanwhile and the note leaves on its own once it is ready."""
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(settings, tmp_path) as base:  # the health check answered already
        page = browser.new_context(viewport={"width": 390, "height": 1200}).new_page()
        page.goto(base)
        expect(page.get_by_role("button", name="Analyze", exact=True)).to_be_visible(timeout=60_000)
        note = page.get_by_text("Loading the model…")
        if note.count():  # (on a fast machine the load may be over before the page is up)
            page.screenshot(path=str(ARTIFACTS / "13-loading-390.png"), full_page=True)
        expect(note).to_have_count(0, timeout=120_000)  # gone without a click
        wait_idle(page)
        page.goto(f"{base}/about")
        expect(page.get_by_text("is loaded")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("button", name="Load the model now")).to_have_count(0)
        no_traceback(page)
        page.context.close()

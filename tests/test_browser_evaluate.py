"""The Evaluate page in a real browser (issue 11): pick a stored analysis, upload a DCASE
tsv, read the metrics, Apply -> the Analyze page opens with the calibrated thresholds in
its controls and its address. Screenshots at 1440 and 390 px go to tests/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from audiogen import make_audio
from test_browser import ARTIFACTS, CHROMIUM, RESULTS, streamlit_server, sync_api, wait_idle
from test_browser import browser as browser  # noqa: F401  (the shared Chromium fixture)

from sonotag_core.domain.labels import LabelSet
from sonotag_core.media.sources import from_path
from sonotag_core.service import library
from sonotag_core.store.database import Store

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
expect = sync_api.expect


@pytest.mark.parametrize("width", [1440, 390])
def test_upload_truth_read_metrics_and_apply_on_analyze(settings, model, browser, tmp_path, width):
    data = tmp_path / "data"
    clip = make_audio(tmp_path / "harbour.wav", 20.0, kind="mix", freq=400)
    done = library.run(
        model,
        from_path(clip),
        LabelSet(("foghorn", "gulls")),
        hop_s=10.0,
        settings=settings,
        store=Store(data),
    )
    end = done.embeddings.duration_s
    truth = tmp_path / "truth.tsv"
    truth.write_text(
        "filename\tonset\toffset\tevent_label\n"
        f"harbour.wav\t0\t{end}\tFoghorn\nharbour.wav\t0\t{end}\tgulls\nharbour.wav\t1\t2\twind\n"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(settings, data) as base:
        ctx = browser.new_context(viewport={"width": width, "height": 1400})
        page = ctx.new_page()
        page.goto(f"{base}/evaluate?analysis={done.analysis_id}")
        wait_idle(page)
        page.locator("input[type=file]").set_input_files(str(truth))
        wait_idle(page)
        expect(page.get_by_text("Event F1", exact=True)).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Ground-truth classes left out (no label): wind")).to_be_visible()
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        grids = page.locator("[data-testid='stDataFrame']")  # the mapping and the metrics
        expect(grids).to_have_count(2)
        for i in range(2):
            expect(grids.nth(i)).to_be_visible()
            box = grids.nth(i).bounding_box()
            assert box and box["width"] > 0.5 * min(width, 1100), box  # drawn at full width
        charts = page.locator("[data-testid='stVegaLiteChart']")  # lanes, F1, PSD-ROC
        expect(charts).to_have_count(3, timeout=30_000)
        lanes = charts.nth(0)
        lanes.scroll_into_view_if_needed()
        expect(lanes.locator("svg")).to_be_visible()
        # two truth events (Foghorn, gulls; wind has no label): two lower-lane rects at least,
        # and the legend says which were found or missed
        expect(lanes.locator("g.mark-rect path").nth(1)).to_be_attached()
        expect(lanes.locator("svg")).to_contain_text(re.compile("found|missed"))
        for i in range(3):
            box = charts.nth(i).bounding_box()
            assert box and box["width"] > 0.4 * min(width, 1100), (i, box)
        page.screenshot(path=str(ARTIFACTS / f"11-evaluate-{width}.png"), full_page=True)
        if width == 1440:
            page.get_by_role("button", name="Keep them for later analyses").click()
            expect(page.get_by_text("Kept 2 calibrated threshold(s)")).to_be_visible()
        apply = page.get_by_role("link", name="Apply these thresholds on the Analyze page")
        href = apply.get_attribute("href")
        wanted = dict(item.split(":") for item in parse_qs(urlsplit(href).query)["lt"])
        assert set(wanted) == {"foghorn", "gulls"}
        apply.click()
        page.wait_for_selector(RESULTS, timeout=120_000)
        wait_idle(page)
        query = parse_qs(urlsplit(page.url).query)
        assert sorted(query["lt"]) == sorted(f"{k}:{v}" for k, v in wanted.items())
        assert query["analysis"] == [done.analysis_id]
        page.screenshot(path=str(ARTIFACTS / f"11-applied-{width}.png"), full_page=True)
        ctx.close()
    if width != 1440:
        return
    with streamlit_server(settings, data) as base:  # a restarted server: no model loaded yet
        ctx = browser.new_context(viewport={"width": width, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{base}/?l=foghorn&l=gulls")
        wait_idle(page)
        expect(page.get_by_text("Calibrated for this model: foghorn")).to_be_visible()
        page.get_by_role("button", name="Use the calibrated thresholds").click()
        expect(page).to_have_url(re.compile(r"[?&]lt="))  # the share link takes them
        wait_idle(page)
        query = parse_qs(urlsplit(page.url).query)
        assert sorted(query["lt"]) == sorted(f"{k}:{v}" for k, v in wanted.items())
        page.screenshot(path=str(ARTIFACTS / "11-offer-fresh-server.png"))
        ctx.close()


def test_reviews_as_ground_truth_in_the_browser(settings, model, browser, tmp_path):
    """Two verdicts on a stored analysis -> "This analysis's reviews" -> the table counts
    the accepted one, and the lanes draw the reviewed detections; 390 and 1440 px."""
    from sonotag_core.domain.events import EventParams
    from sonotag_core.domain.review import Review, event_key
    from sonotag_core.service.api import Service, stored_params

    data = tmp_path / "data"
    clip = make_audio(tmp_path / "harbour.wav", 20.0, kind="mix", freq=400)
    store = Store(data)
    labels = LabelSet(("foghorn", "gulls"))
    done = library.run(model, from_path(clip), labels, hop_s=10.0, settings=settings, store=store)
    service = Service(model, settings, store)
    opened = service.open(done.analysis_id)
    params = stored_params(settings, opened.settings)
    assert isinstance(params, EventParams)
    events = service.report(opened, labels, params).events.reset_index(drop=True)
    assert len(events) >= 2, events
    for i, status in ((0, "accepted"), (1, "rejected")):
        e = events.iloc[i]
        key = event_key(str(e.label), float(e.onset_s))
        review = Review(key[0], key[1], float(e.onset_s), float(e.offset_s), status)
        store.set_review(done.analysis_id, review, reviewer="op")
    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(settings, data) as base:
        ctx = browser.new_context(viewport={"width": 390, "height": 1400})
        page = ctx.new_page()
        page.goto(f"{base}/evaluate?analysis={done.analysis_id}")
        wait_idle(page)
        page.get_by_text("This analysis's reviews").click()
        wait_idle(page)
        expect(page.get_by_text("Event F1", exact=True)).to_be_visible(timeout=60_000)
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        expect(page.locator("input[type=file]")).to_have_count(0)  # no upload needed
        charts = page.locator("[data-testid='stVegaLiteChart']")
        expect(charts.first).to_be_visible()
        lanes = charts.first
        lanes.scroll_into_view_if_needed()
        # two reviewed detections and one accepted truth event: three rects
        expect(lanes.locator("g.mark-rect path")).to_have_count(3)
        page.screenshot(path=str(ARTIFACTS / "11-reviews-390.png"), full_page=True)
        page.set_viewport_size({"width": 1440, "height": 1400})
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "11-reviews-1440.png"), full_page=True)
        ctx.close()

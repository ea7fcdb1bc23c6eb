"""Dashboard pages through Streamlit's AppTest.

Most run on the fast tier's stand-in encoder (``app_env``: conftest's ``page_env``): the
pages, the service, the store and the real encode loop run, only the network is a named
stand-in. A few run on the real model code path (``real_app_env``): the tests' generated
random-weight OpenFLAM (real openflam code, real audio encoder size, small text encoder),
so a 20-s example runs in about a second; the numbers are meaningless, the plumbing is real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from audiogen import make_audio
from streamlit.testing.v1 import AppTest

from sonotag_core import exports
from sonotag_core.domain.labels import LabelSet

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 120


@pytest.fixture
def app_env(page_env):
    """The pages on the stand-in encoder (fast tier)."""
    return page_env


@pytest.fixture
def real_app_env(settings, monkeypatch, tmp_path):
    """SONOTAG_* pointing at the generated model; process-wide caches reset around each test."""
    from sonotag_app import context

    monkeypatch.setenv("SONOTAG_MODEL_DIR", settings.model_dir)
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SONOTAG_THREADS", "2")
    for fn in (
        context.settings,
        context.text_cache,
        context.embedding_cache,
        context.link_memo,
        context.store,
        context.rate_limiter,
    ):
        fn.clear()
    context.forget_model()
    yield tmp_path
    context.settings.clear()


def new_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    return at


def qp(at: AppTest, key: str) -> list[str]:
    """A query param as a list (AppTest gives a str for one value, a list for several)."""
    value = at.query_params.get(key, [])
    return [value] if isinstance(value, str) else list(value)


def texts(at: AppTest, kind: str) -> list[str]:
    """What the user reads in these elements: their Markdown with its escapes (and the
    word joiners that keep addresses from becoming links) rendered away."""
    return [
        re.sub(r"\\(.)", r"\1", str(el.value)).replace("\u2060", "") for el in getattr(at, kind)
    ]


def chart_specs(at: AppTest) -> list[dict]:
    return [
        json.loads(el.proto.spec)
        for el in at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
        if getattr(el, "proto", None) is not None and el.proto.spec
    ]


def analyze_button(at: AppTest):
    [button] = [b for b in at.button if b.label == "Analyze"]
    return button


def player(at: AppTest) -> dict | None:
    """What the player component was given (sonotag_core.dashboard.workbench_data's payload)."""
    found = [
        el for el in at.get("bidi_component") if el.proto.component_name == "sonotag_workbench"
    ]
    return json.loads(found[0].proto.json) if found else None


def test_share_link_to_example_runs_and_restores(real_app_env, encoder_calls):
    at = new_app(
        ex="alarm-clock",
        l=["alarm clock beeping", "-silence", "a man speaking"],
        thr="0.3",
        view="heatmap",
    )
    at.run()
    assert not at.exception, at.exception
    assert not texts(at, "error"), texts(at, "error")
    # widgets restored from the link
    assert at.session_state.in_example == "alarm-clock"
    assert at.session_state.thr == pytest.approx(0.3)
    assert at.session_state.view == "heatmap"
    assert "-silence" in at.session_state.labels_text
    # the run happened (20 s -> 2 windows) and produced charts and downloads
    assert sum(encoder_calls) == 2
    shown = player(at)
    assert shown is not None, "no player rendered"
    assert shown["view"] == "heatmap" and shown["duration_s"] == 20.0
    assert [row["display"] for row in shown["labels"]] == [
        "alarm clock beeping",
        "silence (negative)",
        "a man speaking",
    ]
    assert shown["overview"]["n_columns"] > 0 and shown["audio_url"].startswith("/sonotag/audio?")
    downloads = at.get("download_button")
    assert len(downloads) == len(exports.FORMATS) + 1  # each format, and all of them zipped
    # a download does not rerun the page (a rerun mid-download left the button disabled)
    assert all(b.proto.ignore_rerun for b in downloads)
    # the address bar keeps the view
    assert qp(at, "ex") == ["alarm-clock"]
    assert "-silence" in qp(at, "l")


def test_relabel_reuses_embeddings(real_app_env, encoder_calls):
    at = new_app(ex="alarm-clock", l=["alarm clock beeping"])
    at.run()
    assert sum(encoder_calls) == 2
    at.text_area(key="labels_text").set_value("siren\ncar horn\n-music").run()
    assert not at.exception, at.exception
    assert sum(encoder_calls) == 2  # no new audio encoding for new labels
    assert set(qp(at, "l")) == {"siren", "car horn", "-music"}
    # a second session (new AppTest) on the same link reuses the server's cache too
    again = new_app(ex="alarm-clock", l=["door knock"])
    again.run()
    assert not again.exception
    assert sum(encoder_calls) == 2


def test_threshold_change_changes_events_not_embeddings(app_env, encoder_calls):
    at = new_app(ex="siren-street", l=["siren", "car horn"], thr="0.01")
    at.run()
    low = at.session_state.result
    events_low = [m.value for m in at.metric if m.label == "Events"]
    assert {row["threshold"] for row in player(at)["labels"]} == {0.01}
    at.slider(key="thr").set_value(0.99).run()
    events_high = [m.value for m in at.metric if m.label == "Events"]
    # the dashed threshold lines the player draws moved with it (issue 9 A1)
    assert {row["threshold"] for row in player(at)["labels"]} == {0.99}
    assert at.session_state.result is low
    assert int(events_low[0]) >= int(events_high[0])
    assert int(events_low[0]) > 0  # at 0.01 every label is "on" somewhere
    assert sum(encoder_calls) == 3  # 24 s -> 3 windows, encoded once


def test_tampered_params_warn_and_fall_back(app_env):
    at = new_app(thr="abc", hop="7", src="file:///etc/passwd", view="../../etc", t="-3")
    at.run()
    assert not at.exception, at.exception
    [warning] = texts(at, "warning")  # one banner naming every problem (issue 9 A7), not five
    assert warning.startswith("The link has 5 problems") and warning.count("•") == 5, warning
    assert at.session_state.thr == pytest.approx(0.5)
    assert at.session_state.hop == 10.0
    assert at.session_state.view == "timeline"


def test_extreme_but_valid_params_do_not_crash(app_env):
    at = new_app(min="60", gap="10", med="13", thr="0.99", t="99999")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["min"] == 60 and at.session_state.med == 13


def test_link_values_reach_the_browser_with_every_run(app_env):
    """Values a share link seeds are sent with every run, not only the first: a click
    that lands before the browser applied them must not send empty defaults back."""
    at = new_app(l=["beeping", "siren"], hop="5", thr="0.3")
    at.run()
    at.run()  # any later run (a click elsewhere, an upload)
    labels = at.text_area(key="labels_text").proto
    assert labels.set_value and labels.value == "beeping\nsiren"
    hop = at.radio(key="hop").proto
    assert hop.set_value and "5 s (50 % overlap" in str(hop.raw_value)
    thr = at.slider(key="thr").proto
    assert thr.set_value and list(thr.value) == [pytest.approx(0.3)]


def test_a_rerun_with_a_stale_address_keeps_what_the_user_did(app_env):
    """The browser sends its address with every rerun. One sent before it applied the
    page's last write (the loading note's timer, a quick click on a busy machine) is not a
    new link: it reset the mode to Example after an upload had been analysed (seen in a
    busy CI run), and would reset any control the same way."""
    at = new_app(l="a tone")
    at.run()
    at.segmented_control(key="in_mode").set_value("Link").run()
    at.slider(key="thr").set_value(0.3).run()
    assert qp(at, "thr") == ["0.3"]  # the page wrote the new address
    at.query_params.clear()
    at.query_params["l"] = "a tone"  # ...but this rerun carries the first one
    at.run()
    assert not at.exception, at.exception
    assert at.segmented_control(key="in_mode").value == "Link"
    assert at.slider(key="thr").value == pytest.approx(0.3)
    assert qp(at, "thr") == ["0.3"]  # and the address is the page's again


def test_a_hidden_link_box_keeps_its_link(app_env):
    at = new_app()
    at.run()
    at.segmented_control(key="in_mode").set_value("Link").run()
    at.text_input(key="in_link").set_value("https://youtu.be/abcdefghijk").run()
    at.segmented_control(key="in_mode").set_value("Upload").run()
    at.segmented_control(key="in_mode").set_value("Link").run()
    assert not at.exception, at.exception
    assert at.text_input(key="in_link").value == "https://youtu.be/abcdefghijk"


def test_bad_link_shows_message(app_env):
    at = new_app()
    at.run()
    at.segmented_control(key="in_mode").set_value("Link").run()
    at.text_input(key="in_link").set_value("https://vimeo.com/123456").run()
    analyze_button(at).click().run()
    assert not at.exception, at.exception
    errors = " ".join(texts(at, "error"))
    assert "YouTube" in errors or "SoundCloud" in errors, errors


def test_missing_weights_says_how_to_get_them(app_env, monkeypatch, tmp_path):
    from sonotag_app import context

    monkeypatch.setenv("SONOTAG_MODEL_DIR", str(tmp_path / "empty-hub"))
    context.settings.clear()
    context.forget_model()
    at = new_app(ex="alarm-clock", l=["beep"])
    at.run()
    assert not at.exception, at.exception
    errors = " ".join(texts(at, "error"))
    assert "sonotag fetch-model" in errors and "SONOTAG_MODEL_DIR" in errors, errors
    assert not at.get("progress")  # no stale "Locating the checkpoint" bar beside it


def upload_and_run(name: str, data: bytes, mime: str) -> AppTest:
    """Upload ``data`` on the Analyze page and press Analyze."""
    at = new_app(l=["beeping"])
    at.run()
    at.segmented_control(key="in_mode").set_value("Upload").run()
    at.get("file_uploader")[0].upload(name, data, mime).run()
    analyze_button(at).click().run()
    assert not at.exception, at.exception
    return at


def test_upload_runs(app_env, tmp_path, encoder_calls):
    clip = make_audio(tmp_path / "my clip.mp3", 12.0, kind="mix")
    at = upload_and_run("my clip.mp3", clip.read_bytes(), "audio/mpeg")
    assert at.session_state.result.source.title == "my clip"
    # the player gets a signed link to the kept mp3 (served with its own type: issue 9 A8)
    from urllib.parse import parse_qsl, urlsplit

    from sonotag_app import context
    from sonotag_core.dashboard.media_links import media_roots, verify_media_url

    query = dict(parse_qsl(urlsplit(player(at)["audio_url"]).query))
    roots = media_roots(context.settings().data_dir)
    served = verify_media_url(query, secret=context.owner_secret(), roots=roots)
    assert served.suffix == ".mp3" and served == at.session_state.result.source.path
    captions = " ".join(texts(at, "caption"))
    assert "“my clip.mp3” is on the server, ready to analyse" in captions
    assert sum(encoder_calls) == 2
    assert "ex" not in at.query_params and "src" not in at.query_params


def test_titles_are_shown_literally_not_as_markdown(app_env, tmp_path):
    """An upload (or a video) named like Markdown or LaTeX is shown as typed."""
    from sonotag_app import context

    name = "$5 vs $50 *live* [x](http:example.com) #1 a_b.mp3"
    assert context.md_text(name) == (
        r"\$5 vs \$50 \*live\* \[x\]\(http\:example\.com\) \#1 a\_b\.mp3"
    )
    assert context.md_text("plain words, 42") == "plain words, 42"
    clip = make_audio(tmp_path / "clip.mp3", 12.0, kind="mix")
    at = upload_and_run(name, clip.read_bytes(), "audio/mpeg")
    title = "$5 vs $50 *live* [x](http:example.com) #1 a_b"
    assert at.session_state.result.source.title == title
    assert [h.value for h in at.subheader] == [context.md_text(title)]


def test_bad_upload_keeps_page_alive(app_env):
    at = upload_and_run("notes.wav", b"not audio at all\n" * 100, "audio/wav")
    assert "could not be read as audio" in " ".join(texts(at, "error"))
    assert at.session_state.get("result") is None


def test_label_limit_message(app_env):
    at = new_app()
    at.run()
    at.text_area(key="labels_text").set_value("\n".join(f"sound {i}" for i in range(40))).run()
    assert not at.exception
    assert "limit" in " ".join(texts(at, "error"))


def test_about_page(real_app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/about.py").run()
    assert not at.exception, at.exception
    body = " ".join(texts(at, "markdown") + texts(at, "warning"))
    assert "Adobe Research" in body and "noncommercial" in body
    assert "FLAM: Frame-Wise Language-Audio" in body
    at.button[0].click().run()  # load the model from the About page
    assert not at.exception
    assert any("loaded" in s for s in texts(at, "success"))


# ---------------------------------------------------------------- the store in the pages


def stored_ids(tmp_path) -> list[str]:
    from sonotag_core.store.database import Store

    return [a.id for a in Store(tmp_path / "data").list_analyses()]


def test_upload_is_kept_and_its_link_reopens_without_encoding(app_env, tmp_path, encoder_calls):
    clip = make_audio(tmp_path / "field recording.mp3", 12.0, kind="mix")
    at = upload_and_run("field recording.mp3", clip.read_bytes(), "audio/mpeg")
    aid = at.session_state.result.analysis_id
    assert aid and stored_ids(app_env) == [aid]
    assert qp(at, "analysis") == [aid]  # the address bar now shares the upload
    kept = at.session_state.result.source.path
    assert kept.is_file() and "media" in kept.parts
    assert sum(encoder_calls) == 2

    bare = new_app(analysis=aid)  # a fresh browser: stored labels, stored embeddings
    bare.run()
    assert not bare.exception, bare.exception
    assert not texts(bare, "error"), texts(bare, "error")
    assert bare.session_state.labels_text == "beeping"
    assert bare.session_state.result.analysis_id == aid
    assert [m.value for m in bare.metric if m.label == "Analysis time"] == ["from the Library"]
    assert player(bare)["audio_url"] and player(bare)["labels"][0]["name"] == "beeping"
    relabelled = new_app(id=aid, l=["siren", "-music"], t="4.5")
    relabelled.run()
    assert not relabelled.exception
    assert relabelled.session_state.labels_text == "siren\n-music"
    assert relabelled.session_state.picked_t == 4.5
    assert sum(encoder_calls) == 2  # neither link ran the audio encoder
    assert stored_ids(app_env) == [aid]  # nor added copies to the Library


def test_unknown_or_evicted_analysis(app_env, tmp_path):
    at = new_app(id="0123456789abcdef")
    at.run()
    assert not at.exception, at.exception
    assert "no analysis" in " ".join(texts(at, "error"))
    clip = make_audio(tmp_path / "c.wav", 12.0, kind="mix")
    up = upload_and_run("c.wav", clip.read_bytes(), "audio/wav")
    up.session_state.result.source.path.unlink()  # evicted by the storage cap
    again = new_app(id=up.session_state.result.analysis_id)
    again.run()
    assert not again.exception, again.exception
    assert "no longer kept" in " ".join(texts(again, "warning"))
    assert player(again) is not None and player(again)["audio_url"] is None


def test_shared_example_link_adds_one_library_entry(app_env, encoder_calls):
    for _ in range(2):
        at = new_app(ex="alarm-clock", l=["beeping"])
        at.run()
        assert not at.exception
    assert len(stored_ids(app_env)) == 1 and sum(encoder_calls) == 2
    for _ in range(3):  # pressing Analyze keeps it: the one stored copy, never a second
        analyze_button(at).click().run()
        assert not at.exception, at.exception
    assert len(stored_ids(app_env)) == 1 and sum(encoder_calls) == 2


def test_analyze_again_updates_the_stored_analysis_instead_of_copying_it(app_env, encoder_calls):
    """Issue 9 A3: re-running one example filled the Library with identical rows. The same
    audio + hop + model is one stored analysis; new labels and settings update it."""
    from sonotag_core.store.database import Store

    at = new_app(ex="alarm-clock", l=["beeping"])
    at.run()
    [first] = stored_ids(app_env)
    for labels in ("beeping", "alarm clock; -music", "alarm clock; -music"):
        at.text_area(key="labels_text").set_value(labels).run()
        [analyze] = [b for b in at.button if b.label == "Analyze"]
        analyze.click().run()
        assert not at.exception, at.exception
        assert stored_ids(app_env) == [first] and at.session_state.result.analysis_id == first
    stored = Store(app_env / "data").get_analysis(first)
    assert stored.labels == LabelSet(("alarm clock", "music"), frozenset({"music"}))
    at.radio(key="hop").set_value(5.0).run()  # another hop is another stored analysis
    [analyze] = [b for b in at.button if b.label == "Analyze"]
    analyze.click().run()
    assert len(stored_ids(app_env)) == 2 and sum(encoder_calls) > 2  # encoded at hop 5


def test_library_page_lists_and_searches(app_env, encoder_calls):
    new_app(ex="alarm-clock", l=["alarm clock beeping"]).run()
    new_app(ex="siren-street", l=["siren"]).run()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    [table] = at.dataframe
    assert set(table.value["title"]) == {"Alarm clock in a quiet room", "Siren passing a street"}
    at.text_input(key="lib_query").set_value("a siren wailing")
    [b for b in at.button if b.label == "Search"][0].click().run()
    assert not at.exception, at.exception
    label, hits, _ = at.session_state.lib_hits
    assert label == "a siren wailing" and hits
    assert [h.probability for h in hits] == sorted((h.probability for h in hits), reverse=True)
    links = [parse_qs(el.proto.query_string) for el in at.get("page_link")]
    assert len(links) == len(hits)  # one "open here" per moment
    assert links[0]["analysis"] == [hits[0].analysis_id]
    assert float(links[0]["t"][0]) == pytest.approx(hits[0].time_s, abs=0.01)
    assert links[0]["l"][0] == "a siren wailing"  # opens with the searched label first
    assert sum(encoder_calls) == 5  # searching never runs the audio encoder


def test_compare_page(app_env):
    new_app(ex="alarm-clock", l=["alarm clock beeping"]).run()
    new_app(ex="siren-street", l=["siren", "car horn"]).run()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    [spec] = chart_specs(at)
    titles = json.dumps(spec, ensure_ascii=False)
    assert "A · " in titles and "B · " in titles
    table = at.dataframe[0].value
    assert {"A max", "B max"} <= set(table.columns)
    at.segmented_control(key="cmp_mode").set_value("Two label sets on one audio").run()
    at.text_area(key="cmp_lb").set_value("dog barking\nrain").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert {"dog barking", "rain"} <= set(table["label"])


def test_rate_limit_message(app_env, monkeypatch):
    from sonotag_app import context

    monkeypatch.setenv("SONOTAG_RATE_LIMIT_PER_HOUR", "1")
    context.settings.clear()
    at = new_app(ex="alarm-clock", l=["beeping"])
    at.run()  # the shared link's run is the one allowed analysis
    assert not texts(at, "error"), texts(at, "error")
    analyze_button(at).click().run()
    assert not at.exception, at.exception
    assert "SONOTAG_RATE_LIMIT_PER_HOUR" in " ".join(texts(at, "error"))
    assert at.session_state.result is not None  # the earlier result stays on the page
    at.text_area(key="labels_text").set_value("siren").run()  # relabeling is not limited
    assert not texts(at, "error") and at.session_state.result is not None


def test_private_access_each_session_sees_its_own_and_opens_others_read_only(
    app_env, monkeypatch, encoder_calls
):
    """SONOTAG_ACCESS=private without a cookie (AppTest sends none): each session is its
    own visitor. Session 1's analysis of an example is not in session 2's Library or
    Compare, opens for session 2 through its link with a read-only note, and cannot be
    deleted by it."""
    from sonotag_app import context
    from sonotag_core.access import AccessError
    from sonotag_core.service import library

    monkeypatch.setenv("SONOTAG_ACCESS", "private")
    context.settings.clear()
    first = new_app(ex="alarm-clock", l=["alarm clock beeping"])
    first.run()
    [analyze] = [b for b in first.button if b.label == "Analyze"]
    analyze.click().run()
    assert not first.exception, first.exception
    mine = first.session_state.result.analysis_id
    assert mine and len(mine) == 32
    owner = context.store().analysis_owner(mine)
    assert owner.startswith("session:")

    other = AppTest.from_file(APP, default_timeout=TIMEOUT)
    other.run()
    other.switch_page("pages/library.py").run()
    assert not other.exception, other.exception
    assert not other.dataframe  # nothing of session 1's
    assert any("Nothing stored yet" in t for t in texts(other, "info"))
    other.switch_page("pages/compare.py").run()
    assert any("The Library is empty" in t for t in texts(other, "info"))

    shared = new_app(analysis=mine)
    shared.run()
    assert not shared.exception, shared.exception
    assert shared.session_state.result.analysis_id == mine
    assert any("read-only" in t for t in texts(shared, "caption"))
    with pytest.raises(AccessError):
        library.delete(context.store(), library_viewer(shared), mine)
    assert context.store().analysis_owner(mine) == owner  # still there, still theirs


def library_viewer(at: AppTest):
    """The viewer of an AppTest session, as the pages build it."""
    from sonotag_core.access import Viewer

    return Viewer(at.session_state.anon_owner)


def test_a_dashboard_analysis_keeps_the_users_event_settings(real_app_env, tmp_path, capsys):
    """Issue 9 A5 / issue 10: the dashboard stored its analyses with empty settings, so
    ``sonotag library export`` of one fell back to the defaults. The thresholds and the
    smoothing the user chose travel with the stored analysis now."""
    from sonotag_core.cli import main

    at = new_app(
        ex="siren-street",
        l=["siren", "car horn"],
        thr="0.3",
        med="3",
        gap="0.6",
        lt=["car horn:0.8"],
    )
    at.run()
    [analyze] = [b for b in at.button if b.label == "Analyze"]
    analyze.click().run()
    assert not at.exception, at.exception
    analysis_id = at.session_state.result.analysis_id
    out = tmp_path / "stored.json"
    assert main(["library", "export", analysis_id, "--format", "json", "-o", str(out)]) == 0
    settings = json.loads(out.read_text())["settings"]
    assert settings["threshold"] == pytest.approx(0.3)
    assert settings["median_frames"] == 3 and settings["fill_gap_s"] == pytest.approx(0.6)
    assert settings["label_thresholds"] == {"car horn": pytest.approx(0.8)}


def test_the_hop_control_encodes_a_stored_analysis_at_the_new_hop(app_env, tmp_path, encoder_calls):
    """Issue 9 A4: on a stored analysis the hop radio changed only the address bar (10-s
    windows shown under hop=5). Now the link says what is shown until Analyze encodes
    the kept audio at the new hop."""
    clip = make_audio(tmp_path / "hop clip.wav", 20.0, kind="mix")
    aid = upload_and_run(
        "hop clip.wav", clip.read_bytes(), "audio/wav"
    ).session_state.result.analysis_id
    at = new_app(analysis=aid)
    at.run()
    calls = sum(encoder_calls)
    at.radio(key="hop").set_value(5.0).run()
    assert at.session_state.result.hop_s == 10.0 and qp(at, "hop") in ([], ["10"])  # as shown
    assert any("Shown as encoded with a 10-s hop" in c for c in texts(at, "caption"))
    assert sum(encoder_calls) == calls  # nothing encoded yet
    analyze_button(at).click().run()
    assert not at.exception, at.exception
    assert at.session_state.result.hop_s == 5.0 and qp(at, "hop") == ["5"]
    assert sum(encoder_calls) > calls  # the kept audio, encoded again at a 5-s hop
    assert player(at)["duration_s"] == pytest.approx(20.0)
    assert not any("Shown with" in c for c in texts(at, "caption"))


def test_suggested_labels_and_presets_never_duplicate_a_label(app_env):
    """Issue 9 A9: the example's suggested labels are one click away, and a preset adds
    only the labels not already in the box."""
    from sonotag_core.dashboard.presets import PRESETS
    from sonotag_core.media.examples import EXAMPLES

    at = new_app(ex="siren-street", l=["dog barking"])
    at.run()
    [use] = [b for b in at.button if b.label == "Use the suggested labels"]
    use.click().run()
    assert at.session_state.labels_text.splitlines() == list(EXAMPLES["siren-street"].labels)
    name = next(n for n, labels in PRESETS.items() if len(labels) > 1)
    at.text_area(key="labels_text").set_value(PRESETS[name][0].upper()).run()
    at.selectbox(key="preset").set_value(name).run()
    lines = [line.strip().lower() for line in at.session_state.labels_text.splitlines()]
    assert lines.count(PRESETS[name][0].lower()) == 1 and len(lines) == len(PRESETS[name])


def test_a_recording_is_analysed_like_an_upload(app_env, tmp_path, encoder_calls):
    """Issue 9 C: the microphone is a source; what it records is analysed and kept."""
    clip = make_audio(tmp_path / "take.wav", 12.0, kind="mix")
    at = new_app(l=["beeping"])
    at.run()
    at.segmented_control(key="in_mode").set_value("Record").run()
    at.audio_input(key="mic").set_value(("take.wav", clip.read_bytes(), "audio/wav")).run()
    analyze_button(at).click().run()
    assert not at.exception, at.exception
    result = at.session_state.result
    assert result.analysis_id and result.source.title.startswith("Recording ")
    assert qp(at, "analysis") == [result.analysis_id] and sum(encoder_calls) == 2


def evaluated_street(classes: list[str]) -> tuple[str, AppTest]:
    """A stored analysis of the street example (siren, car horn) and the Evaluate page
    after uploading a DCASE tsv in which each of ``classes`` lasts the whole clip."""
    first = new_app(ex="siren-street", l=["siren", "car horn"])
    first.run()
    aid = first.session_state.result.analysis_id
    end = first.session_state.result.embeddings.duration_s
    rows = "".join(f"street.wav\t0\t{end}\t{c}\n" for c in classes)
    truth = "filename\tonset\toffset\tevent_label\n" + rows
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["analysis"] = aid
    at.run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, at.exception
    at.file_uploader(key="ev_truth").upload(
        "truth.tsv", truth.encode(), "text/tab-separated-values"
    )
    at.run()
    assert not at.exception, at.exception
    return aid, at


def test_evaluate_page_scores_truth_and_applies_thresholds_on_analyze(app_env):
    """Upload a DCASE tsv for a stored analysis -> metrics -> Apply -> the Analyze page
    opens it with the calibrated per-label threshold, in its controls and its link."""
    # each sound lasts the whole clip: a low enough threshold finds it exactly (F1 1), so
    # both labels get a calibrated threshold whatever the random weights say
    aid, at = evaluated_street(["Siren", "car horn"])
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Event F1", "Segment F1", "PSDS1", "PSDS2", "AUROC"}
    [table] = [d.value for d in at.dataframe if "n_truth" in d.value.columns]
    assert list(table["label"]) == ["siren", "car horn"]  # "Siren" matched its label
    assert table["n_truth"].tolist() == [1, 1]
    assert ((table["segment_f1"] >= 0) & (table["segment_f1"] <= 1)).all()
    [link] = [parse_qs(el.proto.query_string) for el in at.get("page_link")]
    assert link["analysis"] == [aid]
    best = dict(item.split(":") for item in link["lt"])
    assert set(best) == {"siren", "car horn"}

    applied = new_app(analysis=aid, l=link["l"], lt=link["lt"])
    applied.run()
    assert not applied.exception, applied.exception
    shown = {row["name"]: row["threshold"] for row in player(applied)["labels"]}
    for label, value in best.items():
        assert shown[label] == pytest.approx(float(value))
    assert sorted(qp(applied, "lt")) == sorted(link["lt"])  # it survives in the share link


def test_kept_calibrations_are_offered_on_later_analyses_with_the_label(app_env):
    """Evaluate -> Keep -> any later Analyze run with that label offers the threshold;
    using it moves that label's threshold line (and so its events)."""
    aid, at = evaluated_street(["siren"])
    [b for b in at.button if b.key == "ev_keep"][0].click().run()
    assert not at.exception, at.exception
    assert any("Kept 1 calibrated threshold" in t for t in texts(at, "success"))

    later = new_app(analysis=aid, l=["siren", "car horn"])
    later.run()
    before = {row["name"]: row["threshold"] for row in player(later)["labels"]}
    assert before == {"siren": 0.5, "car horn": 0.5}
    assert any(
        "Calibrated for this model: siren 0.01 (ground truth)" in t for t in texts(later, "caption")
    )
    [b for b in later.button if b.key == "use_calibrated"][0].click().run()
    assert not later.exception, later.exception
    after = {row["name"]: row["threshold"] for row in player(later)["labels"]}
    assert after == {"siren": 0.01, "car horn": 0.5}
    assert "siren:0.01" in qp(later, "lt")  # and the share link carries it
    assert not [b for b in later.button if b.key == "use_calibrated"]  # nothing left to offer


def test_calibrations_are_offered_before_the_model_has_loaded(real_app_env):
    """A fresh server's first visitor: the sidebar draws before any model load, and the
    offer is keyed by the checkpoint's SHA-256, read from the weights on disk."""
    from sonotag_app import context

    aid, at = evaluated_street(["siren"])
    [b for b in at.button if b.key == "ev_keep"][0].click().run()
    context.forget_model()  # as after a restart
    fresh = new_app(l=["siren"])
    fresh.run()
    assert not fresh.exception, fresh.exception
    assert any("Calibrated for this model: siren" in t for t in texts(fresh, "caption"))
    assert [b for b in fresh.button if b.key == "use_calibrated"]


def test_evaluate_page_scores_the_analysis_against_its_own_reviews(app_env):
    """Ground truth from reviews: the events on the analysis's page, one accepted, one
    rejected; the table counts one truth event for that label, and Keep stores a
    calibration whose origin is the reviews."""
    from sonotag_app import context
    from sonotag_core.domain.review import Review, event_key
    from sonotag_core.service.api import stored_params
    from sonotag_core.store.database import Store

    first = new_app(ex="siren-street", l=["siren", "car horn"])
    first.run()
    aid = first.session_state.result.analysis_id
    store = Store(app_env / "data")
    service = context.service(context.model(), store)
    opened = service.open(aid)
    params = stored_params(context.settings(), opened.settings)
    events = service.report(opened, opened.labels, params).events  # what Evaluate computes
    rows = events.reset_index(drop=True)
    assert len(rows) >= 2, rows
    for i, status in ((0, "accepted"), (1, "rejected")):
        e = rows.iloc[i]
        label, onset = str(e.label), float(e.onset_s)
        review = Review(label, event_key(label, onset)[1], onset, float(e.offset_s), status)
        store.set_review(aid, review, reviewer="op")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["analysis"] = aid
    at.run()
    at.switch_page("pages/evaluate.py").run()
    at.radio(key="ev_from").set_value("This analysis's reviews").run()
    assert not at.exception, at.exception
    [table] = [d.value for d in at.dataframe if "n_truth" in d.value.columns]
    accepted = str(rows.iloc[0].label)
    assert int(table.set_index("label").at[accepted, "n_truth"]) == 1
    keep = [b for b in at.button if b.key == "ev_keep"]
    assert keep  # the accepted span is found below its own scores: a best threshold exists
    keep[0].click().run()
    sha = store.get_analysis(aid).checkpoint_sha256
    kept = store.get_calibrations([accepted], sha)
    assert kept and all(c.origin == "reviews" for c in kept.values())

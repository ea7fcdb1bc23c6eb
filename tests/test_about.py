"""What the About page says about the model (issue 9 A9): a failed load leads, and the
"loads on the first analysis" note does not sit above it. And about the per-visitor
limits (issue 25, items 12-13): each limit, what is left, and, for the operator, when a
server that sees only 127.0.0.1 can count visitors by cookie alone."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from sonotag_core.dashboard.about import (
    MODEL_LOADED,
    MODEL_LOADING,
    MODEL_NOT_LOADED,
    model_notices,
)

ABOUT = str(Path(__file__).resolve().parent.parent / "pages" / "about.py")


def test_a_load_error_comes_first_and_replaces_the_first_use_note():
    error = "The OpenFLAM weights are not in /data/hf-hub. Run `sonotag fetch-model`."
    notices = model_notices(loaded=False, error=error)
    assert notices[0] == ("error", error)
    assert all(kind != "info" for kind, _ in notices)  # no blue box at all, let alone above
    assert MODEL_NOT_LOADED not in [text for _, text in notices]


def test_not_loaded_and_loaded():
    assert model_notices(loaded=False) == [("info", MODEL_NOT_LOADED)]
    assert model_notices(loaded=True) == [("success", MODEL_LOADED)]
    assert model_notices(loaded=True, error="stale") == [("success", MODEL_LOADED)]


def test_loading_in_the_background_says_so_until_loaded():
    assert model_notices(loaded=False, loading=True) == [("info", MODEL_LOADING)]
    assert model_notices(loaded=True, loading=True) == [("success", MODEL_LOADED)]


# ---------------------------------------------------------------- limits (issue 25, item 13)


def test_a_loopback_server_tells_the_operator_it_counts_by_cookie():
    from sonotag_core.dashboard.about import (
        COUNTED_BY_BOTH,
        COUNTED_BY_COOKIE,
        LOOPBACK_ONLY,
        LOOPBACK_TRUSTED,
        limit_notes,
    )

    seen = {"limited": True, "address_known": False, "proxies_trusted": False}
    assert limit_notes(loopback=True, **seen) == [("warning", LOOPBACK_ONLY)]
    assert "only by owner cookie" in LOOPBACK_ONLY and "audio allowance" in LOOPBACK_ONLY
    assert "X-Forwarded-For" in LOOPBACK_ONLY and "SONOTAG_TRUSTED_PROXIES" in LOOPBACK_ONLY
    trusted = limit_notes(loopback=True, **{**seen, "proxies_trusted": True})
    assert trusted == [("warning", LOOPBACK_ONLY + LOOPBACK_TRUSTED)]
    assert limit_notes(loopback=False, **seen) == [("caption", COUNTED_BY_COOKIE)]
    known = {**seen, "address_known": True}
    assert limit_notes(loopback=False, **known) == [("caption", COUNTED_BY_BOTH)]
    assert limit_notes(loopback=True, **{**seen, "limited": False}) == []


def test_the_limits_table_names_each_setting():
    from sonotag_core.dashboard.about import limit_rows

    rows = limit_rows(30, 180, 3600.0)
    assert rows["analyses (SONOTAG_RATE_LIMIT_PER_HOUR)"] == "30 per hour"
    assert rows["audio encoded (SONOTAG_AUDIO_MINUTES_PER_HOUR)"] == (
        "3 h of audio per hour; you have 1 h left this hour"
    )
    assert set(limit_rows(0, 0, None).values()) == {"no limit"}


def test_the_about_page_warns_the_operator_of_a_loopback_server(page_env, monkeypatch):
    """AppTest has no client address, as a server behind a same-host proxy that sends no
    X-Forwarded-For sees none."""
    at = AppTest.from_file(ABOUT, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning if "127.0.0.1" in str(w.value)]
    assert "only by owner cookie" in warning and "no forwarded address" not in warning

    from sonotag_app import context

    monkeypatch.setenv("SONOTAG_TRUSTED_PROXIES", "127.0.0.1")  # no help without the header
    context.settings.clear()
    at = AppTest.from_file(ABOUT, default_timeout=60)
    at.run()
    [warning] = [w.value for w in at.warning if "127.0.0.1" in str(w.value)]
    assert "no forwarded address reached this server" in warning

    monkeypatch.setenv("SONOTAG_RATE_LIMIT_PER_HOUR", "0")
    monkeypatch.setenv("SONOTAG_AUDIO_MINUTES_PER_HOUR", "0")
    context.settings.clear()
    at = AppTest.from_file(ABOUT, default_timeout=60)
    at.run()  # no limits: nothing to warn about
    assert not [w for w in at.warning if "127.0.0.1" in str(w.value)]


def test_the_about_page_shows_the_limits_and_what_is_left(page_env, monkeypatch):
    monkeypatch.setenv("SONOTAG_AUDIO_MINUTES_PER_HOUR", "90")
    at = AppTest.from_file(ABOUT, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    [table] = [t for t in at.table if "analyses (SONOTAG_RATE_LIMIT_PER_HOUR)" in str(t.value)]
    cells = table.value.to_string()
    assert "1 h 30 min of audio per hour; you have 1 h 30 min left this hour" in cells
    assert "30 per hour" in cells

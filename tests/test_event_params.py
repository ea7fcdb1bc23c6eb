"""The event-parameter table is the one place a parameter is spelt: adding a row shows up
in the CLI's flags, the share link and the sidebar, and every reader agrees with it."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sonotag_core.dashboard import share
from sonotag_core.domain import event_params
from sonotag_core.domain.event_params import EVENT_PARAMS, EventParam
from sonotag_core.domain.events import EventParams
from sonotag_core.settings import SETTINGS, Settings

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")

FAKE = EventParam(
    "wobble_s",
    float,
    1.5,
    lambda v: float(v),
    0.0,
    4.0,
    0.5,
    "How much the fake parameter wobbles, in seconds.",
    "Wobble (s)",
    "wobble",
    "wob",
    "--wobble",
)


@pytest.fixture
def fake_row(monkeypatch):
    """The table with one more row, as a developer adding a parameter would write it."""
    monkeypatch.setattr(event_params, "EVENT_PARAMS", (*EVENT_PARAMS, FAKE))
    return FAKE


def test_a_new_row_is_a_cli_flag(fake_row, capsys):
    from sonotag_core.cli import main

    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    help_text = capsys.readouterr().out
    assert "--wobble FLOAT" in help_text
    assert "how much the fake parameter wobbles" in " ".join(help_text.split())


def test_a_new_row_round_trips_through_a_share_link(fake_row):
    s = Settings().validated()
    state, warnings = share.from_query_params({"wob": "2.5"}, settings=s, example_ids=())
    assert warnings == [] and state.events["wobble_s"] == 2.5
    assert share.to_query_params(state, settings=s) == {"wob": "2.5"}
    # its default stays out of the link; a value out of its range is refused with its name
    default, _ = share.from_query_params({}, settings=s, example_ids=())
    assert default.events["wobble_s"] == 1.5 and share.to_query_params(default, settings=s) == {}
    _, warnings = share.from_query_params({"wob": "9"}, settings=s, example_ids=())
    assert warnings == ["Ignored the wobble in the link (not a number from 0 to 4); using 1.5."]


def test_a_new_row_is_a_sidebar_control(fake_row, monkeypatch, tmp_path):
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["wob"] = "3"
    at.run()
    assert not at.exception, at.exception
    [slider] = [s for s in at.sidebar.slider if s.label == "Wobble (s)"]
    assert slider.value == 3.0 and (slider.min, slider.max) == (0.0, 4.0)
    slider.set_value(2.0).run()
    assert at.query_params.get("wob") in ("2", ["2"])  # the address bar follows the control


def test_event_params_settings_and_the_table_agree():
    names = [row.name for row in EVENT_PARAMS]
    fields = [f.name for f in dataclasses.fields(EventParams) if f.name != "label_thresholds"]
    assert sorted(fields) == sorted(names)
    defaults = EventParams()
    settings = {row.name: row for row in SETTINGS}
    for row in EVENT_PARAMS:
        assert getattr(defaults, row.name) == row.default
        assert settings[row.name].default == row.default and row.help[1:] in settings[row.name].help
        assert row.allowed(row.default)
    assert len({row.share_key for row in EVENT_PARAMS}) == len(EVENT_PARAMS)
    assert len({row.cli_flag for row in EVENT_PARAMS}) == len(EVENT_PARAMS)


def _string_constants(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_each_share_key_and_cli_flag_is_spelt_once():
    """No reader restates a key or a flag: grep finds each in the table alone."""
    files = [*ROOT.glob("sonotag_core/**/*.py"), *ROOT.glob("sonotag_app/**/*.py")]
    files += [*ROOT.glob("pages/*.py"), *ROOT.glob("*.py")]
    for row in EVENT_PARAMS:
        for spelling in (row.share_key, row.cli_flag):
            found = [
                str(p.relative_to(ROOT))
                for p in files
                if any(re.fullmatch(re.escape(spelling), c) for c in _string_constants(p))
            ]
            assert found == ["sonotag_core/domain/event_params.py"], (spelling, found)

"""Charts: max-pooled plot data, Vega-Lite specs that validate, one "pick" selection on the
timelines that Streamlit accepts, and one colour per label."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import pytest

from sonotag_core.dashboard import charts
from sonotag_core.dashboard.charts import NEGATIVE_COLOR, PALETTE, label_colors
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S, SAMPLE_RATE, frame_count

HOUR_FRAMES = 11_520
SPIKE_LABEL, SPIKE_FRAME = 13, 7_777


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def hour() -> Timeline:
    """One hour, 20 labels of low noise (< 0.5) and a single one-frame spike of 0.99."""
    rng = np.random.default_rng(7)
    probs = (rng.random((20, HOUR_FRAMES)) * 0.5).astype(np.float32)
    probs[SPIKE_LABEL, SPIKE_FRAME] = 0.99
    labels = tuple(f"sound {i}" for i in range(20))
    return Timeline(labels, probs, 3600.0, frozenset({"sound 19"}))


@pytest.fixture(scope="module")
def short() -> Timeline:
    """3 s of audio: 10 frames, the last one starting at 2.8125 s (< 3 s)."""
    n_frames = frame_count(3 * SAMPLE_RATE)
    rng = np.random.default_rng(3)
    probs = rng.random((3, n_frames)).astype(np.float32)
    return Timeline(("dog bark", "car horn", "speech"), probs, 3.0, frozenset({"speech"}))


@pytest.fixture(scope="module")
def events_tl() -> Timeline:
    """Two known dog events, nothing for the others; "speech" is a negative label."""
    probs = np.full((3, 64), 0.1, dtype=np.float32)
    probs[0, 4:8] = 0.9  # 1.25 .. 2.5 s
    probs[0, 40:41] = 0.8  # 12.5 .. 12.8125 s
    probs[2, :] = 0.95  # negative: never an event
    return Timeline(("dog", "cat", "speech"), probs, 20.0, frozenset({"speech"}))


# --------------------------------------------------------------------------- helpers


def spec_of(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """to_dict() validates against the Vega-Lite schema; Altair must not warn either."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return chart.to_dict()


def data_of(
    spec: dict[str, Any], view: dict[str, Any], parent: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A view's rows, inherited from ``parent`` (Altair hoists data shared by all layers)."""
    data = view.get("data") or (parent or {})["data"]
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def mark_type(layer: dict[str, Any]) -> str:
    mark = layer["mark"]
    return mark if isinstance(mark, str) else mark["type"]


def mark_prop(layer: dict[str, Any], name: str) -> Any:
    mark = layer["mark"]
    return None if isinstance(mark, str) else mark.get(name)


def layers_of(row: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [layer for layer in row["layer"] if mark_type(layer) == kind]


def pick_params(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every param named "pick", anywhere in the spec."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.extend(p for p in node.get("params", []) if p.get("name") == charts.PICK)
            for key in ("layer", "vconcat", "hconcat", "concat"):
                for child in node.get(key, []):
                    walk(child)
            if isinstance(node.get("spec"), dict):
                walk(node["spec"])

    walk(spec)
    return found


def assert_pick(param: dict[str, Any], *, nearest: bool) -> None:
    select = param["select"]
    assert select["type"] == "point"
    assert select["fields"] == ["time_s"]
    assert select["on"] == "click"
    assert select.get("nearest", False) is nearest
    assert select["toggle"] is False


# --------------------------------------------------------------------------- frames


def tidy(timeline: Timeline, max_points: int = 3000) -> pd.DataFrame:
    """The pooled values as ``time_s, label, probability`` rows (what each row plots)."""
    values, starts, _ = charts.pooled_probabilities(timeline, max_points)
    return pd.DataFrame(
        {
            "time_s": np.tile(starts, len(timeline.labels)),
            "label": np.repeat(np.asarray(timeline.labels, dtype=object), len(starts)),
            "probability": values.reshape(-1),
        }
    )


def test_short_audio_keeps_every_frame(short: Timeline) -> None:
    df = tidy(short)
    pd.testing.assert_frame_equal(df, short.to_frame_df())
    assert len(df) == 3 * short.n_frames == 30
    assert df["time_s"].max() == pytest.approx((short.n_frames - 1) * FRAME_S)
    assert df["time_s"].max() < short.duration_s
    _, starts, ends = charts.pooled_probabilities(short, 3000)
    assert ends[-1] == short.duration_s  # the last bin ends at the audio's end, not after


def test_hour_is_capped_and_a_one_frame_spike_survives(hour: Timeline) -> None:
    df = tidy(hour, max_points=3000)
    per_label = df.groupby("label", sort=False).size()
    assert list(per_label.index) == list(hour.labels)
    assert (per_label <= 3000).all()
    assert (per_label == 2880).all()  # 11 520 frames in bins of 4
    spike = df[df["label"] == f"sound {SPIKE_LABEL}"]
    assert spike["probability"].max() == pytest.approx(0.99, abs=1e-6)
    at = spike.loc[spike["probability"].idxmax(), "time_s"]
    assert at == (SPIKE_FRAME // 4) * 4 * FRAME_S  # the bin that holds the spike, at its start
    # every other label stays under its noise ceiling: the max came from the spike only
    assert df.loc[df["label"] != f"sound {SPIKE_LABEL}", "probability"].max() < 0.5
    times = spike["time_s"].to_numpy()
    assert times[0] == 0.0 and np.all(np.diff(times) == 4 * FRAME_S)
    assert times[-1] < hour.duration_s


def test_pooling_is_the_max_of_each_bin_including_a_partial_last_bin() -> None:
    rng = np.random.default_rng(11)
    probs = rng.random((2, 1001)).astype(np.float32)
    tl = Timeline(("a", "b"), probs, 1001 * FRAME_S, frozenset())
    df = tidy(tl, max_points=100)  # bins of 11 frames -> 91 bins, last one full
    got = df[df["label"] == "b"]["probability"].to_numpy()
    want = [probs[1, i : i + 11].max() for i in range(0, 1001, 11)]
    assert len(got) == len(want) == 91
    np.testing.assert_allclose(got, want)
    df = tidy(tl, max_points=10)  # bins of 101 -> 10 bins, the last has 92 frames
    got = df[df["label"] == "a"]["probability"].to_numpy()
    want = [probs[0, i : i + 101].max() for i in range(0, 1001, 101)]
    np.testing.assert_allclose(got, want)


def test_bad_point_budget_is_refused(short: Timeline) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        tidy(short, max_points=0)


# --------------------------------------------------------------------------- timeline chart


def test_timeline_spec(short: Timeline) -> None:
    thresholds = {"dog bark": 0.4, "car horn": 0.65, "speech": 0.5}
    spec = spec_of(charts.timeline_chart(short, thresholds=thresholds))
    rows = spec["vconcat"]
    assert len(rows) == 3

    # exactly one "pick" (and one "zoom"), at the top level, naming one view per row
    picks = pick_params(spec)
    assert len(picks) == 1 and picks[0] in spec["params"]
    assert_pick(picks[0], nearest=True)
    hit_layers = [layers_of(row, "point")[0] for row in rows]
    assert picks[0]["views"] == [layer["name"] for layer in hit_layers]
    assert len(set(picks[0]["views"])) == 3
    (zoom,) = [p for p in spec["params"] if p["name"] == charts.ZOOM]
    assert zoom["bind"] == "scales" and zoom["select"]["encodings"] == ["x"]
    assert all("params" not in layer for row in rows for layer in row["layer"])
    assert spec["resolve"]["scale"]["x"] == "shared"

    for i, (row, label) in enumerate(zip(rows, short.labels, strict=True)):
        negative = label in short.negatives
        (line,) = layers_of(row, "line")
        (area,) = layers_of(row, "area")
        values = data_of(spec, line, row)
        assert [v["time_s"] for v in values] == pytest.approx(list(short.frame_times_s))
        assert [v["probability"] for v in values] == pytest.approx(short.probabilities[i].tolist())
        for layer in (line, area):
            assert layer["encoding"]["y"]["field"] == "probability"
            assert layer["encoding"]["y"]["scale"]["domain"] == [0.0, 1.0]
            x = layer["encoding"]["x"]
            assert x["field"] == "time_s" and x["scale"]["domain"] == [0.0, 3.0]
        # each label its own colour (the player's too), negatives grey
        assert mark_prop(line, "color") == charts.label_colors(short.labels, short.negatives)[label]
        title = row["title"]["text"]
        assert title == (f"{label} (negative)" if negative else label)
        rules = [r for r in layers_of(row, "rule") if r["encoding"].get("y")]
        if negative:
            assert rules == []  # negatives never produce events: no threshold to show
        else:
            (rule,) = rules
            assert mark_prop(rule, "strokeDash")
            assert data_of(spec, rule, row) == [{"threshold": thresholds[label]}]
        hit = hit_layers[i]
        assert mark_prop(hit, "opacity") == 0
        assert hit["encoding"]["x"]["field"] == "time_s"
    assert rows[-1]["layer"][0]["encoding"]["x"]["axis"]["title"] == "time (s)"


def test_timeline_hour_spec_is_capped(hour: Timeline) -> None:
    spec = spec_of(charts.timeline_chart(hour, thresholds={}, max_points=3000))
    assert len(spec["vconcat"]) == 20
    sizes = [len(data_of(spec, layers_of(row, "line")[0], row)) for row in spec["vconcat"]]
    assert sizes == [2880] * 20
    spike_row = spec["vconcat"][SPIKE_LABEL]
    line = layers_of(spike_row, "line")[0]
    peak = max(v["probability"] for v in data_of(spec, line, spike_row))
    assert peak == pytest.approx(0.99, abs=1e-6)
    assert len(pick_params(spec)) == 1
    assert len(pick_params(spec)[0]["views"]) == 20


def test_timeline_without_labels_still_has_pick() -> None:
    tl = Timeline((), np.zeros((0, 40), dtype=np.float32), 12.4)
    spec = spec_of(charts.timeline_chart(tl, thresholds={}))
    assert len(pick_params(spec)) == 1


# --------------------------------------------------------------------------- other charts


def test_scores_chart(events_tl: Timeline) -> None:
    spec = spec_of(charts.scores_chart(events_tl.clip_scores()))
    bars, ticks = spec["layer"]
    values = data_of(spec, bars, spec)
    assert [v["name"] for v in values] == ["speech (negative)", "dog", "cat"]  # ranked by max
    assert bars["encoding"]["y"]["sort"] == [v["name"] for v in values]
    assert bars["encoding"]["x"]["field"] == "max"
    assert ticks["encoding"]["x"]["field"] == "mean"
    color = bars["encoding"]["color"]
    assert color["condition"] == [{"test": "datum.negative", "value": charts.NEGATIVE_COLOR}]
    assert color["value"] == charts.COLOR
    assert [v["negative"] for v in values] == [True, False, False]
    assert pick_params(spec) == []


# --------------------------------------------------------------------------- Streamlit

APP = """
import numpy as np
import streamlit as st

from sonotag_core.dashboard import charts
from sonotag_core.domain.events import EventParams, detect_events, empty_events
from sonotag_core.domain.timeline import Timeline

rng = np.random.default_rng(0)
labels = ("dog", "car horn", "speech")
probs = (rng.random((3, 200)) * 0.6).astype(np.float32)
probs[0, 50:60] = 0.9
tl = Timeline(labels, probs, 62.4, frozenset({"speech"}))
events = detect_events(tl, EventParams(threshold=0.5))
event = st.altair_chart(
    charts.timeline_chart(tl, thresholds={l: 0.5 for l in labels}),
    on_select="rerun",
    selection_mode="pick",
    key="timeline",
    width="stretch",
)
st.text(f"timeline={event['selection']['pick']}")
st.altair_chart(charts.scores_chart(tl.clip_scores()))
"""


def run_app(script: str) -> Any:
    from streamlit.testing.v1 import AppTest  # noqa: TID251 (tests only; core stays UI-free)

    return AppTest.from_string(script, default_timeout=30).run()


def test_streamlit_accepts_the_timeline_with_its_pick_selection() -> None:
    at = run_app(APP)
    assert not at.exception, [e.message for e in at.exception]
    charts_out = [el for el in at.main.children.values() if el.type == "vega_lite_chart"]
    assert len(charts_out) == 2
    assert list(charts_out[0].proto.selection_mode) == ["pick"]
    assert len(pick_params(json.loads(charts_out[0].proto.spec))) == 1
    assert list(charts_out[1].proto.selection_mode) == []
    assert [t.value for t in at.text] == ["timeline={}"]  # nothing picked before a click


def test_streamlit_check_can_fail() -> None:
    """The harness does catch a chart without "pick" (so the test above means something)."""
    at = run_app(
        APP.split("built = {")[0]
        + 'st.altair_chart(charts.scores_chart(tl.clip_scores()), on_select="rerun",'
        + ' selection_mode="pick", key="s")\n'
    )
    assert at.exception
    assert "does not have any selections" in at.exception[0].message


def test_core_never_imports_streamlit() -> None:
    code = "import sys, sonotag_core.dashboard.charts; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_each_label_keeps_one_colour_and_negatives_are_grey():
    colors = label_colors(["dog", "-x", "cat", "bird"], {"-x"})
    assert colors == {
        "dog": PALETTE[0],
        "-x": NEGATIVE_COLOR,
        "cat": PALETTE[1],
        "bird": PALETTE[2],
    }
    many = label_colors([f"l{i}" for i in range(12)])
    assert many["l10"] == PALETTE[0] and len(set(many.values())) == len(PALETTE)

"""The player's data (sonotag_core.workbench_data), the one time formatter and the label
colours: what the browser draws is exactly what the timeline and the events say."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from sonotag_core.charts import NEGATIVE_COLOR, PALETTE, label_colors
from sonotag_core.timefmt import clock
from sonotag_core.timeline import Timeline
from sonotag_core.workbench_data import probability_bytes, workbench_payload


@pytest.mark.parametrize(
    ("seconds", "decimals", "text"),
    [
        (0, 2, "0:00.00"),
        (7.5, 2, "0:07.50"),
        (75.5, 2, "1:15.50"),
        (599.999, 2, "10:00.00"),  # rounds up across the minute
        (3725, 2, "1:02:05.00"),
        (3725, 0, "1:02:05"),
        (-3, 1, "0:00.0"),
    ],
)
def test_clock_reads_as_minutes_and_hours(seconds, decimals, text):
    assert clock(seconds, decimals) == text


def test_clock_with_hours_lines_up():
    assert clock(75.5, hours=True) == "0:01:15.50"


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


def test_probabilities_travel_as_one_byte_per_frame():
    probs = np.array([[0.0, 0.5, 1.0, np.nan, 1.7, -0.2]])
    (encoded,) = probability_bytes(probs)
    assert list(base64.b64decode(encoded)) == [0, 128, 255, 0, 255, 0]


def test_payload_is_json_and_matches_the_timeline_and_events():
    tl = Timeline(("siren", "music"), np.array([[0.1, 0.9, 0.8], [0.2, 0.3, 0.4]]), 0.9,
                  frozenset({"music"}))  # fmt: skip
    events = pd.DataFrame({"label": ["siren"], "onset_s": [0.3125], "offset_s": [0.9],
                           "peak": [0.9], "mean": [0.85], "status": ["accepted"]})  # fmt: skip
    payload = workbench_payload(
        tl, events, thresholds={"siren": 0.4, "music": 0.5}, colors=label_colors(tl.labels, tl.negatives),
        view="heatmap", seek={"t": 0.3125, "nonce": 3, "play": True}, selected=0,
    )  # fmt: skip
    back = json.loads(json.dumps(payload))  # JSON-safe all the way down
    assert back["duration_s"] == 0.9 and back["frame_s"] == 0.3125 and back["view"] == "heatmap"
    siren, music = back["labels"]
    assert siren["threshold"] == 0.4 and music["threshold"] is None  # negatives: no events
    assert music["display"] == "music (negative)" and music["color"] == NEGATIVE_COLOR
    assert len(base64.b64decode(siren["probs"])) == tl.n_frames
    assert back["events"] == [{"id": 0, "label": "siren", "onset_s": 0.3125, "offset_s": 0.9,
                               "status": "accepted"}]  # fmt: skip
    assert back["seek"] == {"t": 0.3125, "nonce": 3, "play": True} and back["selected"] == 0


def test_an_unknown_view_falls_back_to_timelines():
    tl = Timeline(("a",), np.zeros((1, 2)), 0.625)
    empty = pd.DataFrame(columns=["label", "onset_s", "offset_s", "peak", "mean"])
    payload = workbench_payload(tl, empty, thresholds={}, colors={}, view="scores")
    assert payload["view"] == "timeline" and payload["events"] == []

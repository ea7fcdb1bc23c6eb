"""The player's data (sonotag_core.dashboard.workbench_data): what the browser draws is exactly what
the timeline and the events say."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd

from sonotag_core.dashboard.charts import NEGATIVE_COLOR, label_colors
from sonotag_core.dashboard.workbench_data import probability_bytes, workbench_payload
from sonotag_core.domain.timeline import Timeline


def test_probabilities_travel_as_one_byte_per_frame():
    probs = np.array([[0.0, 0.5, 1.0, np.nan, 1.7, -0.2]])
    (encoded,) = probability_bytes(probs)
    assert list(base64.b64decode(encoded)) == [0, 128, 255, 0, 255, 0]


def test_payload_is_json_and_matches_the_timeline_and_events():
    tl = Timeline(
        ("siren", "music"), np.array([[0.1, 0.9, 0.8], [0.2, 0.3, 0.4]]), 0.9, frozenset({"music"})
    )
    events = pd.DataFrame(
        {
            "label": ["siren"],
            "onset_s": [0.3125],
            "offset_s": [0.9],
            "peak": [0.9],
            "mean": [0.85],
            "status": ["accepted"],
        }
    )
    payload = workbench_payload(
        tl,
        events,
        thresholds={"siren": 0.4, "music": 0.5},
        colors=label_colors(tl.labels, tl.negatives),
        view="heatmap",
        seek={"t": 0.3125, "nonce": 3, "play": True},
        selected=0,
    )
    back = json.loads(json.dumps(payload))  # JSON-safe all the way down
    assert back["duration_s"] == 0.9 and back["frame_s"] == 0.3125 and back["view"] == "heatmap"
    siren, music = back["labels"]
    assert siren["threshold"] == 0.4 and music["threshold"] is None  # negatives: no events
    assert music["display"] == "music (negative)" and music["color"] == NEGATIVE_COLOR
    assert len(base64.b64decode(siren["probs"])) == tl.n_frames
    assert back["events"] == [
        {"id": 0, "label": "siren", "onset_s": 0.3125, "offset_s": 0.9, "status": "accepted"}
    ]
    assert back["seek"] == {"t": 0.3125, "nonce": 3, "play": True} and back["selected"] == 0


def test_an_unknown_view_falls_back_to_timelines():
    tl = Timeline(("a",), np.zeros((1, 2)), 0.625)
    empty = pd.DataFrame(columns=["label", "onset_s", "offset_s", "peak", "mean"])
    payload = workbench_payload(tl, empty, thresholds={}, colors={}, view="scores")
    assert payload["view"] == "timeline" and payload["events"] == []

"""End to end on generated audio: a tone, a noise burst and espeak-ng speech at known
times, through the real OpenFLAM code (random weights), scored against a DCASE tsv of
those times. Random weights detect nothing in particular, so the checks are what must
hold for any model: the pipeline runs, every metric is a number in [0, 1], and the
ground truth lands where the sounds are, on the timeline's frame grid."""

from __future__ import annotations

import math
import shutil

import pytest
from audiogen import make_scene

from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.truth import parse_truth
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.media import sources
from sonotag_core.service import evaluate as ev
from sonotag_core.service.api import Service
from sonotag_core.store.database import Store

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

LABELS = LabelSet(("tone", "noise", "speech"))


@pytest.fixture
def scene(tmp_path):
    """A 24-s scene; onsets on the 0.3125-s frame grid (frames 8, 32 and 48)."""
    path = tmp_path / "scene.wav"
    truth = make_scene(
        path,
        24.0,
        [
            ("tone", 8 * FRAME_S, 2.0),
            ("noise", 32 * FRAME_S, 1.25),
            ("speech", 48 * FRAME_S, "the cat sat on the mat"),
        ],
    )
    rows = "".join(f"scene.wav\t{on:.6f}\t{off:.6f}\t{k}\n" for on, off, k in truth)
    (tmp_path / "truth.tsv").write_text("filename\tonset\toffset\tevent_label\n" + rows)
    return path, truth


def test_generated_scene_is_scored_through_the_real_model(
    scene, tmp_path, model, text_cache, settings
):
    path, known = scene
    service = Service(model, settings.with_(hop_s=5.0), Store(tmp_path / "data"), text_cache)
    analysed = service.analyse(
        sources.from_path(str(path)), LABELS, hop_s=5.0, params=EventParams(), save=True
    )
    truth = parse_truth((tmp_path / "truth.tsv").read_bytes(), name="truth.tsv")
    thresholds = {x: 0.5 for x in LABELS.labels}
    done = ev.evaluate_analysis(service, analysed, LABELS, truth, thresholds)

    table = done.evaluation.per_label.set_index("label")
    assert table["n_truth"].tolist() == [1, 1, 1]
    metrics = ["f1", "precision", "recall", "segment_f1", "psds1", "psds2", "best_f1"]
    for label in LABELS.labels:
        for m in metrics:
            assert 0.0 <= table.at[label, m] <= 1.0, (label, m)
        auroc = table.at[label, "auroc"]
        assert math.isnan(auroc) or 0.0 <= auroc <= 1.0
    for key, value in done.evaluation.macro.items():
        assert math.isnan(value) or 0.0 <= value <= 1.0, key

    # the truth lane is where the sounds were placed, on the timeline's frame grid
    [(name, events)] = done.truth.items()
    timeline = done.timelines[name]
    assert timeline.n_frames == math.ceil(timeline.duration_s / FRAME_S)
    for (on, off, label), (k_on, k_off, kind) in zip(events, known, strict=True):
        assert label == kind
        assert on == pytest.approx(k_on, abs=1e-5) and off == pytest.approx(k_off, abs=1e-5)
    onsets = [on / FRAME_S for on, _, _ in events]
    assert onsets == pytest.approx([8, 32, 48], abs=1e-4)
    speech = events[2]
    assert 0.5 < speech[1] - speech[0] < 4.0  # espeak-ng spoke, and silence was cut

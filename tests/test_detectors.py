"""Detectors as JSON cards: exported from one data dir and imported into another they give
identical probabilities; a card for another checkpoint, a NaN weight, a pickle file are
refused; other owners' detectors are neither listed nor found; a detector scores its
label in the service's timeline (a no-review one exactly as the text does) and the report
names it."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
from standin import STANDIN_SHA256
from test_teach import ALICE, BOB, LABEL
from test_teach import taught as taught  # noqa: F401  (the taught library fixture)

from sonotag_core import exports
from sonotag_core.access import OPERATOR_VIEWER
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import DetectorError
from sonotag_core.service import detectors as det
from sonotag_core.service import teach
from sonotag_core.service.api import Service
from sonotag_core.store.database import Store


def test_a_card_moves_between_data_dirs_with_identical_probabilities(
    taught, tmp_path, standin_model, standin_settings
):
    store, service, ids, _ = taught
    detector = service.refine(LABEL, viewer=ALICE).detector
    text = det.card_json(detector)
    assert json.loads(text)["probe"]["weights"] == [float(w) for w in detector.probe.weights]
    # another server: its own data dir, the same audio stored there
    other_dir = tmp_path / "other"
    shutil.copytree(store.data_dir, other_dir)
    other = Store(other_dir)
    for d in other.list_detectors():
        other.delete_detector(d.owner, d.name)
    assert other.list_detectors() == []
    imported = det.import_card(other, text.encode(), STANDIN_SHA256, BOB)
    assert (imported.name, imported.version, imported.owner) == (LABEL, 1, BOB.owner)
    assert imported.threshold == detector.threshold and imported.examples == detector.examples
    there = Service(standin_model, standin_settings, other).with_detectors([imported])
    here = service.with_detectors([detector])
    labels = LabelSet((LABEL, "dog"))
    a = here.timeline(here.open(ids[3]), labels).probabilities
    b = there.timeline(there.open(ids[3]), labels).probabilities
    np.testing.assert_array_equal(a, b)
    stored = det.find_detector(other, BOB, LABEL).probe  # read back from the store
    np.testing.assert_array_equal(stored.weights, detector.probe.weights)
    assert (stored.bias, stored.prior_bias) == (detector.probe.bias, detector.probe.prior_bias)


def test_bad_cards_are_refused(taught):
    store, service, *_ = taught
    card = service.refine(LABEL, viewer=ALICE).detector.card()
    other = "f0" * 32
    with pytest.raises(DetectorError) as err:
        det.read_card(json.dumps(card).encode(), other)
    assert STANDIN_SHA256[:12] in str(err.value) and other[:12] in str(err.value)
    nan = json.loads(json.dumps(card))
    nan["probe"]["weights"][3] = float("nan")
    with pytest.raises(DetectorError, match="not a finite number|not a number"):
        det.read_card(json.dumps(nan).encode(), STANDIN_SHA256)  # NaN: Python's JSON
    with pytest.raises(DetectorError, match="not a finite number"):
        det.from_card(nan, STANDIN_SHA256)
    with pytest.raises(DetectorError, match="pickle"):
        det.read_card(pickle.dumps(card), STANDIN_SHA256)
    with pytest.raises(DetectorError, match="pickle"):
        det.read_card(pickle.dumps(card, protocol=0), STANDIN_SHA256)
    short = json.loads(json.dumps(card))
    short["probe"]["weights"] = short["probe"]["weights"][:10]
    for bad in (b"[1, 2]", b"{", json.dumps(short).encode(), b"\x00\x01"):
        with pytest.raises(DetectorError):
            det.read_card(bad, STANDIN_SHA256)
    huge = json.loads(json.dumps(card))
    huge["probe"]["weights"][0] = 1e9
    with pytest.raises(DetectorError, match="beyond"):
        det.from_card(huge, STANDIN_SHA256)


def test_other_owners_detectors_are_not_visible_or_changeable(taught):
    store, service, *_ = taught
    service.refine(LABEL, viewer=ALICE)
    assert det.list_detectors(store, BOB) == []
    with pytest.raises(DetectorError, match="no detector"):
        det.find_detector(store, BOB, LABEL)
    with pytest.raises(DetectorError, match="no detector"):
        det.delete_detector(store, BOB, LABEL)
    assert det.find_detector(store, OPERATOR_VIEWER, LABEL).owner == ALICE.owner
    assert det.find_detector(store, ALICE, f"{LABEL}@1").version == 1
    assert det.delete_detector(store, ALICE, LABEL) == 1
    assert det.list_detectors(store, ALICE) == []


def test_a_detector_scores_its_label_and_the_report_says_which(taught, standin_model):
    store, service, ids, _ = taught
    # no reviews: the text's own probe gives the text's probabilities
    prior = teach.text_prior(service.texts, LABEL)
    plain = det.Detector(LABEL, LABEL, STANDIN_SHA256, prior, version=1)
    labels = LabelSet((LABEL, "dog"))
    analysed = service.open(ids[0])
    text = service.timeline(analysed, labels).probabilities
    same = service.with_detectors([plain]).timeline(analysed, labels).probabilities
    np.testing.assert_allclose(same, text, atol=1e-6)
    detector = service.refine(LABEL, viewer=ALICE).detector
    report = service.with_detectors([detector]).report(analysed, labels, EventParams())
    assert report.settings["detectors"][LABEL]["name"] == LABEL
    assert report.settings["detectors"][LABEL]["version"] == 1
    assert json.loads(exports.export_text(report, "json"))["settings"]["detectors"][LABEL]
    assert "detectors" not in service.report(analysed, labels, EventParams()).settings
    with pytest.raises(DetectorError, match="made for the OpenFLAM checkpoint"):
        Service(standin_model, service.settings, store, detectors={
            LABEL: det.Detector(LABEL, LABEL, "0" * 64, prior)})  # fmt: skip


def test_evaluate_side_by_side_on_the_same_truth(taught):
    from sonotag_core.domain.truth import parse_truth
    from sonotag_core.domain.windows import FRAME_S
    from sonotag_core.service.evaluate import evaluate_side_by_side

    store, service, ids, _ = taught
    detector = service.refine(LABEL, viewer=ALICE).detector
    rows = [f"scene3.wav\t{a * FRAME_S}\t{(a + 6) * FRAME_S}\t{LABEL}" for a in (20, 100)]
    header = "filename\tonset\toffset\tevent_label"
    truth = parse_truth("\n".join([header, *rows]) + "\n", name="truth.tsv")
    both = evaluate_side_by_side(
        service, service.open(ids[3]), LabelSet((LABEL,)), truth, {LABEL: 0.5}, [detector]
    )
    assert both.detectors == {LABEL: f"{LABEL} v1"}
    text, refined = both.text.evaluation.per_label, both.refined.evaluation.per_label
    assert refined["best_f1"].iloc[0] >= text["best_f1"].iloc[0]
    assert refined["best_f1"].iloc[0] > 0.9
    assert not (both.text.shown.probabilities == both.refined.shown.probabilities).all()

"""`sonotag detector` (refine, list, show, export, import, next, delete) and `--detector`
on `sonotag analyze` and `sonotag batch`, on the stand-in model (fast tier)."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest
from audiogen import make_audio
from test_teach import LABEL
from test_teach import taught as taught  # noqa: F401  (the taught library fixture)

from sonotag_core.cli import main


@pytest.fixture
def cli(monkeypatch, taught, standin_model):
    """``sonotag`` in this process on the stand-in model, over the taught library."""
    from sonotag_core.inference import model

    store = taught[0]
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(store.data_dir))
    monkeypatch.setattr(model, "load_model", lambda *a, **k: standin_model)
    monkeypatch.setattr(
        model, "known_checkpoint_sha256", lambda *a, **k: standin_model.info.checkpoint_sha256
    )
    return lambda *args: main([str(a) for a in args])


def test_refine_list_show_export_import_delete(cli, taught, capsys, tmp_path):
    assert cli("detector", "list") == 0
    assert "no detectors yet" in capsys.readouterr().err
    assert cli("detector", "refine", LABEL) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{LABEL} v1: event F1") and "text alone" in out
    assert "4 accepted" in err and "weak" in err  # the CLI is the operator: every analysis
    assert cli("detector", "refine", LABEL, "--name", "mine") == 0
    capsys.readouterr()
    assert cli("detector", "list") == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["name", "version", "label"]
    assert [line.split()[:2] for line in listing[1:]] == [["mine", "1"], [LABEL, "1"]]
    assert cli("detector", "show", "mine") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["label"] == LABEL and "weights" not in shown["probe"]
    card = tmp_path / "card.json"
    assert cli("detector", "export", f"{LABEL}@1", "-o", card) == 0
    assert json.loads(card.read_text())["format"] == "sonotag-detector"
    assert cli("detector", "import", card, "--name", "copy") == 0
    assert "imported copy v1" in capsys.readouterr().err
    bad = tmp_path / "card.pkl"
    bad.write_bytes(pickle.dumps(json.loads(card.read_text())))
    assert cli("detector", "import", bad) == 1
    assert "pickle" in capsys.readouterr().err
    assert cli("detector", "delete", "copy") == 0
    assert cli("detector", "show", "copy") == 1
    assert "no detector" in capsys.readouterr().err
    assert cli("detector", "refine", "dog") == 1
    assert "no positive example" in capsys.readouterr().err


def test_next_lists_moments_to_review(cli, taught, capsys, tmp_path):
    assert cli("detector", "refine", LABEL) == 0
    out = tmp_path / "next.tsv"
    assert cli("detector", "next", LABEL, "--detector", LABEL, "--count", "5", "-o", out) == 0
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(r[4] == LABEL for r in rows)
    assert len({r[3] for r in rows[:4]}) == 4  # round-robin over the four scenes


def test_analyze_and_batch_with_a_detector(cli, taught, capsys, tmp_path):
    assert cli("detector", "refine", LABEL) == 0
    card = tmp_path / "card.json"
    assert cli("detector", "export", LABEL, "-o", card) == 0
    audio = make_audio(tmp_path / "tone.wav", 12.0)
    report = tmp_path / "report.json"
    assert cli("analyze", audio, "--labels", "dog", "--detector", card, "--format", "json",
               "-o", report) == 0  # fmt: skip
    doc = json.loads(report.read_text())
    assert doc["labels"] == ["dog", LABEL]  # the detector's label is scored too
    assert doc["settings"]["detectors"][LABEL]["version"] == 1
    by_name = tmp_path / "by_name.json"
    assert cli("analyze", audio, "--labels", LABEL, "--detector", LABEL, "--format", "json",
               "-o", by_name) == 0  # fmt: skip
    again = json.loads(by_name.read_text())["probabilities"]  # from the stored float16
    np.testing.assert_allclose(again, doc["probabilities"][1:], atol=1e-3)
    assert cli("analyze", audio, "--labels", "x", "--detector", "nobody") == 1
    assert "no detector" in capsys.readouterr().err
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"{audio}\n")
    out = tmp_path / "batch"
    assert cli("batch", manifest, "-o", out, "--labels", LABEL, "--detector", card) == 0
    spec = json.loads((out / "_batch.json").read_text())
    assert spec["events"]["detectors"] == {LABEL: f"{LABEL} v1"}
    # a rerun with another detector is refused rather than mixed into the same table
    assert cli("batch", manifest, "-o", out, "--labels", LABEL) == 1
    events = tmp_path / "events.csv"
    assert cli("batch", "events", out, "-o", events) == 0
    assert list(csv.DictReader(events.open())) is not None

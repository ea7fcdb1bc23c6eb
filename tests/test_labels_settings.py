"""Label parsing limits and the settings table."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from sonotag_core.errors import LimitError
from sonotag_core.labels import parse_labels
from sonotag_core.settings import SETTINGS_HELP, Settings, settings_table_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_parse_labels_splits_negatives_and_dedupes():
    ls = parse_labels(
        "dog barking; siren\n-music ;  dog   barking;;\t", max_labels=10, max_chars=50
    )
    assert ls.labels == ("dog barking", "siren", "music")
    assert ls.negatives == {"music"}
    assert ls.positives == ("dog barking", "siren")
    assert parse_labels(ls.to_text(), max_labels=10, max_chars=50) == ls


def test_negative_by_option_and_control_chars():
    ls = parse_labels(["rain\x00", "wind"], max_labels=5, max_chars=20, negatives=["wind"])
    assert ls.labels == ("rain", "wind") and ls.negatives == {"wind"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one label"),
        (" ; \n -", "at least one label"),
        ("a" * 101, "100"),
        (";".join(f"l{i}" for i in range(33)), "limit is 32"),
    ],
)
def test_label_limits(text, message):
    with pytest.raises(LimitError, match=message):
        parse_labels(text, max_labels=32, max_chars=100)


def test_every_setting_is_documented_in_the_readme():
    names = {f.name for f in fields(Settings)}
    assert names == set(SETTINGS_HELP)
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", readme, re.S)
    assert block, "README lacks the settings table markers"
    assert block.group(1).strip() == settings_table_markdown().strip(), (
        "regenerate with `sonotag settings`"
    )


def test_settings_from_env_and_errors():
    s = Settings.from_env(
        {"SONOTAG_HOP_S": "5", "SONOTAG_THREADS": "1", "SONOTAG_MAX_DURATION_S": "60"}
    )
    assert (s.hop_s, s.threads, s.max_duration_s) == (5.0, 1, 60.0)
    with pytest.raises(LimitError, match="SONOTAG_BATCH_SIZE"):
        Settings.from_env({"SONOTAG_BATCH_SIZE": "many"})
    with pytest.raises(LimitError, match="Hop"):
        Settings.from_env({"SONOTAG_HOP_S": "3"})
    with pytest.raises(LimitError, match="Threshold"):
        Settings.from_env({"SONOTAG_THRESHOLD": "1.5"})


def test_threads_follow_the_container_cpu_quota(tmp_path):
    from sonotag_core.settings import available_cpus

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # docker --cpus 1.5
    assert available_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cpu_max) == available_cpus(tmp_path / "absent") >= 1
    cpu_max.write_text("800000 100000\n")  # a quota above the cores we may run on
    assert available_cpus(cpu_max) == available_cpus(tmp_path / "absent")

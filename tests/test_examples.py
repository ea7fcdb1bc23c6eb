"""Built-in example clips (sonotag_core.media.examples): generated once, deterministic, and only
by their id."""

from __future__ import annotations

import numpy as np
import pytest

from sonotag_core.errors import SourceError
from sonotag_core.media import decode
from sonotag_core.media.examples import EXAMPLES, example_path


@pytest.mark.parametrize("example_id", list(EXAMPLES))
def test_examples_are_generated_once_and_decode(tmp_path, example_id):
    path = example_path(example_id, tmp_path)
    audio = decode.decode_all(path)
    assert audio.size == pytest.approx(EXAMPLES[example_id].seconds * 48_000, abs=1)
    assert 0.05 < float(np.abs(audio).max()) <= 1.0  # audible, not clipped
    mtime = path.stat().st_mtime_ns
    assert example_path(example_id, tmp_path) == path and path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left


def test_examples_are_deterministic(tmp_path):
    a = example_path("alarm-clock", tmp_path / "a").read_bytes()
    b = example_path("alarm-clock", tmp_path / "b").read_bytes()
    assert a == b


def test_unknown_example(tmp_path):
    with pytest.raises(SourceError, match="no example"):
        example_path("../../etc/passwd", tmp_path)
    assert not (tmp_path / "examples").exists() or not any((tmp_path / "examples").iterdir())

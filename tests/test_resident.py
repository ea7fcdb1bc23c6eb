"""An encoder's weights leave resident memory while the other one runs, and come back
with the same numbers (sonotag_core.inference.resident, LoadedModel.use_encoder).

Measured in a fresh process: the kernel reclaims only pages that no other mapping
shares, and this test session keeps other models of the same checkpoint loaded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

from sonotag_core.inference.resident import weight_ranges

PROBE = textwrap.dedent(
    """
    import json, mmap, sys
    import numpy as np
    from sonotag_core.domain.windows import WINDOW_SAMPLES, iter_windows
    from sonotag_core.inference.encode import encode_windows
    from sonotag_core.inference.model import load_model
    from sonotag_core.inference.resident import weight_ranges
    from sonotag_core.inference.scoring import TextCache
    from sonotag_core.settings import Settings

    def resident(module):
        # share of the weights' pages mapped in this process (what RSS counts): the
        # "present" bit of /proc/self/pagemap (mincore would ask the page cache)
        inside = total = 0
        with open("/proc/self/pagemap", "rb") as pagemap:
            for start, end in weight_ranges(module):
                pages = (end - start) // mmap.PAGESIZE
                pagemap.seek(start // mmap.PAGESIZE * 8)
                entries = np.frombuffer(pagemap.read(pages * 8), dtype="<u8")
                inside += int(((entries >> 63) & 1).sum())
                total += pages
        return inside / total

    model = load_model(Settings(model_dir=sys.argv[1], threads=2).validated())
    net = model.net
    labels = ("a dog barking", "rain on a roof")
    text_first = TextCache(model).encode(labels).features
    seen = {"text_after_text": resident(net.text_branch)}
    rng = np.random.default_rng(0)
    audio = [rng.standard_normal(WINDOW_SAMPLES * 2).astype(np.float32) * 0.1]
    first = [f for _, f in encode_windows(model, iter_windows(iter(audio), WINDOW_SAMPLES), batch_size=0)]
    seen["text_after_audio"] = resident(net.text_branch)
    seen["audio_after_audio"] = resident(net.audio_branch)
    text_again = TextCache(model).encode(labels).features
    seen["audio_after_text"] = resident(net.audio_branch)
    again = [f for _, f in encode_windows(model, iter_windows(iter(audio), WINDOW_SAMPLES), batch_size=0)]
    seen["text_same"] = bool(np.array_equal(text_first, text_again))
    seen["audio_same"] = bool(np.array_equal(np.concatenate(first), np.concatenate(again)))
    print(json.dumps(seen))
    """
)


def test_each_encoder_leaves_memory_while_the_other_runs_and_returns_unchanged(settings, tmp_path):
    # its own copy of the checkpoint: the kernel keeps pages another mapping shares, and
    # this session's model maps the generated one
    hub = shutil.copytree(settings.model_dir, tmp_path / "hub", symlinks=True)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(hub)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["text_after_text"] > 0.5  # read by the encoding: resident
    assert seen["audio_after_audio"] > 0.5
    assert seen["text_after_audio"] < 0.1  # handed back while the audio encoder ran
    assert seen["audio_after_text"] < 0.1
    assert seen["text_same"] and seen["audio_same"]  # read back from the file: same weights


def test_weight_ranges_are_whole_pages_inside_the_tensors():
    """Only pages wholly inside the weights are named: a neighbour's page is left alone."""
    import mmap

    import torch

    net = torch.nn.Sequential(torch.nn.Linear(1000, 1000), torch.nn.Linear(3, 3))
    page = mmap.PAGESIZE
    ranges = weight_ranges(net)
    assert ranges and all(a % page == 0 and b % page == 0 and b > a for a, b in ranges)
    spans = [
        (
            p.untyped_storage().data_ptr(),
            p.untyped_storage().data_ptr() + p.untyped_storage().nbytes(),
        )
        for p in net.parameters()
    ]
    assert all(any(s <= a and b <= e for s, e in spans) for a, b in ranges)
    big = net[0].weight.untyped_storage().nbytes()
    assert sum(b - a for a, b in ranges) >= big - 2 * page  # the 4 MB weight, less its ends

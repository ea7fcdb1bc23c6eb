"""The one service every front end calls (sonotag_core.service.api): the run rules written
once, and the dashboard, the CLI and batch getting the same result through it."""

from __future__ import annotations

import re
from pathlib import Path

from audiogen import make_audio

from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.review import Review
from sonotag_core.media.sources import SourceInfo, from_path
from sonotag_core.service.api import LinkMemo, Service, run_settings
from sonotag_core.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
LABELS = LabelSet(("beeping",))


def test_a_run_is_stored_with_the_event_settings_it_used(tmp_path, model, settings, encoder_calls):
    """Issue 10: dashboard analyses were saved with empty settings, so `sonotag library
    export` lost the user's thresholds; the service keeps what the run used."""
    store = Store(tmp_path / "data")
    service = Service(model, settings, store)
    params = EventParams(
        threshold=0.3,
        label_thresholds={"beeping": 0.7},
        median_frames=3,
        fill_gap_s=0.5,
        min_event_s=0.6,
    )
    clip = from_path(make_audio(tmp_path / "clip.wav", 12.0, kind="mix"))
    done = service.analyse(clip, LABELS, hop_s=10.0, params=params)
    stored = store.get_analysis(done.analysis_id)
    assert stored.settings == run_settings(10.0, params) and stored.settings["median_frames"] == 3
    assert not done.reused and sum(encoder_calls) == 2
    again = service.analyse(clip, LABELS, hop_s=10.0, params=params, save=False)
    assert again.reused and again.analysis_id == done.analysis_id and sum(encoder_calls) == 2


def test_the_report_carries_the_stored_verdicts(tmp_path, model, settings):
    store = Store(tmp_path / "data")
    service = Service(model, settings, store)
    clip = from_path(make_audio(tmp_path / "clip.wav", 12.0, kind="mix"))
    params = EventParams(threshold=0.01)  # every frame is above it: one event per label
    done = service.analyse(clip, LABELS, hop_s=10.0, params=params)
    event = service.report(done, LABELS, params).events.iloc[0]
    verdict = Review.of_event(event["label"], event["onset_s"], event["offset_s"], "accepted")
    store.set_review(done.analysis_id, verdict, reviewer="operator")
    opened = service.open(done.analysis_id)
    assert list(service.report(opened, LABELS, params).events["status"]) == ["accepted"]


def test_the_link_memo_is_bounded_and_forgets_deleted_files(tmp_path):
    memo = LinkMemo(max_entries=2)
    files = [tmp_path / f"{i}.m4a" for i in range(3)]
    for i, f in enumerate(files):
        f.write_bytes(b"x")
        memo.put(f"u{i}", SourceInfo("url", f, str(i), "c" * 64, f.name))
    assert memo.get("u0") is None and memo.get("u2") is not None  # the oldest went
    files[1].unlink()
    assert memo.get("u1") is None and len(memo.items) == 1


def test_the_run_rules_are_written_once():
    """No front end looks up stored links or embeddings, or saves, on its own: they call
    the service (grep the front ends for the store's run calls)."""
    rules = re.compile(
        r"\b(stored_link|get_embeddings|add_analysis|save_analysis|known_embeddings|"
        r"embed_source|open_analysis|library\.run|score|build_report|search_library)\("
    )
    front_ends = [
        ROOT / "sonotag_core" / "cli.py",
        *sorted(ROOT.glob("ui_*.py")),
        *sorted((ROOT / "pages").glob("*.py")),
    ]
    found = {p.name: rules.findall(p.read_text()) for p in front_ends}
    assert not any(found.values()), found

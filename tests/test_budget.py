"""The per-visitor audio budget (issue 25, item 12): minutes of audio encoded per hour,
counted by the same keys as the rate limit and charged as the decoded length becomes
known; reused embeddings cost nothing. Fast tier: the stand-in encoder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from audiogen import make_audio
from streamlit.testing.v1 import AppTest

from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import LimitError
from sonotag_core.inference.embedding_cache import EmbeddingCache
from sonotag_core.inference.scheduler import AudioBudget, audio_meter, charging
from sonotag_core.media import sources
from sonotag_core.service import analysis, library
from sonotag_core.settings import DEFAULTS, SETTINGS, Settings

ROOT = Path(__file__).resolve().parent.parent
LABELS = LabelSet(("a tone",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def unstated_flac(path: Path, seconds: float) -> Path:
    """A FLAC written to a pipe: its header states no length (ffprobe finds none), as the
    72-KB file of hours of silence of the hostile run."""
    data = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i"]
        + [f"anullsrc=r=48000:cl=mono,atrim=duration={seconds}", "-f", "flac", "pipe:1"],
        check=True,
        capture_output=True,
    ).stdout
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- the account


def test_each_key_has_its_minutes_per_hour_and_they_free_up_an_hour_later():
    clock = Clock()
    budget = AudioBudget(2, clock=clock)  # 120 s
    owner, address = "owner:a", "ip:198.51.100.7"
    meter = budget.meter(owner, address)
    meter.charge("'x'", 50.0)
    assert budget.left_s(owner, address) == 70.0
    assert budget.left_s("owner:b", address) == 70.0  # a fresh cookie, the same address
    assert budget.left_s("owner:b") == 120.0
    clock.now += 600
    with pytest.raises(LimitError) as err:
        budget.meter("owner:b", address).charge("'y'", 80.0)
    text = str(err.value)
    assert text.startswith("Stopped after 1 min of 'y': nothing was saved")
    assert "SONOTAG_AUDIO_MINUTES_PER_HOUR" in text and "encodes 2 min of audio" in text
    assert "More frees up in about 60 min" in text  # a whole minute: when the 70 s go
    assert budget.left_s(owner, address) == 0.0  # counted up to the allowance, no further
    clock.now += 3000  # an hour after the first charge
    assert budget.left_s(owner, address) == 50.0
    clock.now += 600
    assert budget.left_s(owner, address) == 120.0


def test_zero_is_no_budget():
    budget = AudioBudget(0)
    meter = budget.meter("owner:a")
    meter.check("'x'", 10 * 3600.0)
    meter.charge("'x'", 10 * 3600.0)
    assert budget.left_s("owner:a") is None and meter.allowance() is None


def test_a_stated_length_over_what_is_left_is_refused_before_anything_is_charged():
    clock = Clock()
    budget = AudioBudget(60, clock=clock)
    meter = budget.meter("owner:a")
    meter.charge("'first'", 40 * 60.0)
    clock.now += 15 * 60
    with pytest.raises(LimitError) as err:
        meter.check("'long.flac'", 30 * 60.0)
    text = str(err.value)
    assert text.startswith("'long.flac' is 30 min long, more than the 20 min of audio you have")
    assert "try again in about 45 min" in text  # when 30 min are free again
    with pytest.raises(LimitError) as err:
        meter.check("'longer.flac'", 2 * 3600.0)
    assert "longer than the 1 h of audio this server encodes per visitor per hour" in str(err.value)
    assert budget.left_s("owner:a") == 20 * 60.0
    meter.check("'short.flac'", 10 * 60.0)  # fits: nothing said, nothing charged


def test_the_setting_is_a_row_of_the_table_and_zero_means_no_limit():
    assert "audio_minutes_per_hour" in [row.name for row in SETTINGS]
    assert DEFAULTS.audio_minutes_per_hour == 180
    env = Settings.from_env({"SONOTAG_AUDIO_MINUTES_PER_HOUR": "0"})
    assert env.audio_minutes_per_hour == 0
    with pytest.raises(Exception, match="SONOTAG_AUDIO_MINUTES_PER_HOUR"):
        Settings.from_env({"SONOTAG_AUDIO_MINUTES_PER_HOUR": "-1"})


# ---------------------------------------------------------------- in the analysis


def test_a_file_of_unstated_length_stops_when_the_allowance_runs_out(
    tmp_path, standin_model, standin_settings
):
    clip = unstated_flac(tmp_path / "silence.flac", 150.0)
    assert analysis.decode.probe(clip).duration_s is None  # nothing to refuse it by up front
    budget = AudioBudget(1)
    meter = budget.meter("owner:a")
    with pytest.raises(LimitError) as err, charging(meter):
        analysis.embed_file(standin_model, clip, hop_s=10.0, settings=standin_settings)
    text = str(err.value)
    assert text.startswith("Stopped after 1 min of 'silence.flac': nothing was saved")
    assert "SONOTAG_AUDIO_MINUTES_PER_HOUR" in text
    assert budget.left_s("owner:a") == 0.0
    assert meter.charged_s <= 70.0  # decoding stopped one block past the allowance
    assert audio_meter() is None  # the meter was this run's only


def test_a_stated_length_is_refused_before_encoding_and_a_fitting_one_is_charged_exactly(
    tmp_path, standin_model, standin_settings, encoder_calls
):
    clip = make_audio(tmp_path / "talk.wav", 150.0)
    budget = AudioBudget(1)
    longer = "^'talk.wav' is 2 min long, longer than the 1 min of audio this server encodes"
    with pytest.raises(LimitError, match=longer):
        with charging(budget.meter("owner:a")):
            analysis.embed_file(standin_model, clip, hop_s=10.0, settings=standin_settings)
    assert sum(encoder_calls) == 0 and budget.left_s("owner:a") == 60.0
    short = make_audio(tmp_path / "short.wav", 25.0)
    with charging(budget.meter("owner:a")):
        analysis.embed_file(standin_model, short, hop_s=10.0, settings=standin_settings)
    assert budget.left_s("owner:a") == pytest.approx(35.0, abs=0.05)


def test_reused_embeddings_cost_nothing(tmp_path, standin_model, standin_settings, encoder_calls):
    clip = make_audio(tmp_path / "tone.wav", 30.0)
    src = sources.from_path(clip)
    cache = EmbeddingCache()
    budget = AudioBudget(1)
    where = {"settings": standin_settings, "store": None, "cache": cache}
    for _ in range(3):  # the first run encodes; the others reuse its embeddings
        with charging(budget.meter("owner:a")):
            library.run(standin_model, src, LABELS, hop_s=10.0, **where)
    assert sum(encoder_calls) == 3  # windows, once
    assert budget.left_s("owner:a") == pytest.approx(30.0, abs=0.05)


def test_the_queue_message_shows_the_allowance():
    clock = Clock()
    budget = AudioBudget(60, clock=clock)
    meter = budget.meter("owner:a")
    meter.charge("'x'", 15 * 60.0)
    text = analysis._queued(1, meter).message
    assert text == (
        "Queued, position 2: 1 analysis ahead of yours. "
        "Your audio allowance: 45 min of 1 h left this hour"
    )
    assert analysis._queued(2).message == "Queued, position 3: 2 analyses ahead of yours"
    assert analysis._queued(1, AudioBudget(0).meter("k")).message.endswith("of yours")


# ---------------------------------------------------------------- in the dashboard


def app(**params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at


def shown(at: AppTest, kind: str) -> str:
    return " ".join(str(el.value).replace("\\", "") for el in getattr(at, kind))


def test_the_dashboard_stops_a_run_the_allowance_cannot_pay_and_says_why(
    page_env, monkeypatch, encoder_calls
):
    from sonotag_app import context

    budget = AudioBudget(0.1)  # 6 s: less than any example
    monkeypatch.setattr(context, "audio_budget", lambda: budget)
    at = app(ex="alarm-clock", l=["beeping"])
    at.run()  # the shared link's run
    assert not at.exception, at.exception
    error = shown(at, "error")
    assert error.startswith("'alarm-clock.wav' is 20 s long, longer than the 6 s"), error
    assert "SONOTAG_AUDIO_MINUTES_PER_HOUR" in error
    assert sum(encoder_calls) == 0

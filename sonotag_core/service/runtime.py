"""The dashboard's one door into the layers below the service: what a long-running front
end holds (the model and its caches, the store, the per-visitor limits) and the sources it
turns a visitor's input into. The app imports these from here, never from ``store/``,
``inference/`` or ``media/`` directly (tests/test_layers.py), so what the UI may reach is
this list, and a change below the service that the UI would feel shows up here."""

from __future__ import annotations

from pathlib import Path

from sonotag_core.inference import fast_mode
from sonotag_core.inference.embedding_cache import EmbeddingCache
from sonotag_core.inference.model import LoadedModel, known_checkpoint_sha256, load_model
from sonotag_core.inference.scheduler import AudioBudget, RateLimiter, charging
from sonotag_core.inference.scoring import TextCache
from sonotag_core.media import sources
from sonotag_core.media.examples import EXAMPLES, example_path
from sonotag_core.media.sources import SourceInfo, sweep_working_copies
from sonotag_core.store.database import AnalysisSummary, Store

__all__ = [
    "EXAMPLES",
    "AnalysisSummary",
    "AudioBudget",
    "EmbeddingCache",
    "LoadedModel",
    "RateLimiter",
    "SourceInfo",
    "Store",
    "TextCache",
    "audio_overview",
    "charging",
    "example_path",
    "fast_mode_offered",
    "known_checkpoint_sha256",
    "load_model",
    "sources",
    "sweep_working_copies",
]


def fast_mode_offered(device: str) -> bool:
    """Whether fast mode (bf16 audio encoder) runs natively on this device."""
    return fast_mode.offered(device)


def audio_overview(path: str | Path, content_id: str, data_dir: str | Path) -> dict:
    """The player's waveform and spectrogram overview of a kept audio file (cached on disk
    under the data dir, keyed by its content)."""
    from sonotag_core.media import overview  # lazy: its signal imports cost every start

    folder = overview.overview_dir(data_dir)
    return overview.cached_overview(Path(path), folder, key=content_id).to_payload()

"""The finished analysis as exporters and UIs see it: source, model, settings, timeline, events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from sonotag_core.domain.timeline import Timeline


@dataclass(frozen=True)
class ModelInfo:
    """Which model produced the numbers (for provenance in every export)."""

    name: str
    openflam_version: str
    checkpoint_sha256: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Report:
    """Everything an export needs. ``events`` has columns label, onset_s, offset_s, peak,
    mean, plus ``status`` and ``reviewed_label`` once reviews are applied
    (:func:`.review.with_reviews`; without them every event counts as unreviewed).
    ``created`` (UTC, ISO 8601) is when these results were made: the JSON says so, and
    exporting one report twice gives the same bytes."""

    source: Mapping[str, Any]
    model: ModelInfo
    settings: Mapping[str, Any]
    timeline: Timeline
    events: pd.DataFrame
    extra: Mapping[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=_now)

    @property
    def clip_scores(self) -> pd.DataFrame:
        return self.timeline.clip_scores()

    @property
    def file_name(self) -> str:
        """Name used in per-file exports (DCASE ``filename`` column)."""
        src = self.source
        return str(src.get("file_name") or src.get("url") or src.get("title") or "audio")

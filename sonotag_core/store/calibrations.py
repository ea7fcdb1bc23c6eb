"""Calibrations: per-label thresholds chosen on ground truth or reviews, kept per model.

One threshold per (label text, checkpoint): a threshold fitted for one model means
nothing for another, and the newest calibration of a label replaces the older one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sonotag_core.domain.calibration import Calibration
from sonotag_core.store.connection import StoreBase


class CalibrationsMixin(StoreBase):
    """Calibrated thresholds (part of :class:`~.database.Store`)."""

    def save_calibrations(
        self, calibrations: Iterable[Calibration], checkpoint_sha256: str, *, owner: str
    ) -> int:
        """Keep these per-label thresholds for this model, replacing older ones of the
        same labels; returns how many were kept."""
        rows = [
            (
                c.label,
                checkpoint_sha256,
                c.threshold,
                c.origin,
                json.dumps(dict(c.detail)),
                owner,
                c.created,
            )
            for c in calibrations
        ]
        with self._guard("save the calibrated thresholds"), self._tx() as db:
            db.executemany(
                "INSERT INTO calibrations (label, checkpoint_sha256, threshold, origin, detail, "
                "owner, created) VALUES (?,?,?,?,?,?,?) ON CONFLICT(label, checkpoint_sha256) "
                "DO UPDATE SET threshold=excluded.threshold, origin=excluded.origin, "
                "detail=excluded.detail, owner=excluded.owner, created=excluded.created",
                rows,
            )
        return len(rows)

    def get_calibrations(
        self, labels: Iterable[str], checkpoint_sha256: str
    ) -> dict[str, Calibration]:
        """The stored thresholds of these label texts for this model (labels without one
        are absent)."""
        wanted = list(dict.fromkeys(labels))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self._guard("read the calibrated thresholds"):
            rows = (
                self._conn()
                .execute(
                    "SELECT label, threshold, origin, detail, created FROM calibrations "
                    f"WHERE checkpoint_sha256 = ? AND label IN ({marks})",
                    (checkpoint_sha256, *wanted),
                )
                .fetchall()
            )
        return {
            r[0]: Calibration(r[0], float(r[1]), r[2], json.loads(r[3]), float(r[4])) for r in rows
        }

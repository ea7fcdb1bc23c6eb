"""Reviews: verdicts on the events of stored analyses (:mod:`sonotag_core.domain.review`).

A verdict is keyed by (analysis, label, onset frame): a second verdict on an event replaces
the first, and verdicts go with their analysis. Low level on purpose: the store does not
decide who may write them; callers check ``access.check_change`` before they call
set_review or clear_review, as for deleting.
"""

from __future__ import annotations

from sonotag_core.domain.review import Review
from sonotag_core.store.connection import StoreBase


class ReviewsMixin(StoreBase):
    """Verdicts on events (part of :class:`~.database.Store`)."""

    def set_review(self, analysis_id: str, review: Review, *, reviewer: str) -> bool:
        """Record ``reviewer``'s verdict on one event of a stored analysis, replacing any
        earlier verdict on that event (same label and onset frame). False when there is
        no such analysis."""
        with self._guard("save the review"), self._tx() as db:
            if db.execute("SELECT 1 FROM analyses WHERE id = ?", (analysis_id,)).fetchone() is None:
                return False
            db.execute(
                "INSERT INTO reviews (analysis_id, label, onset_frame, onset_s, offset_s, status, "
                "relabel, reviewer, updated) VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(analysis_id, label, onset_frame) DO UPDATE SET "
                "onset_s=excluded.onset_s, offset_s=excluded.offset_s, status=excluded.status, "
                "relabel=excluded.relabel, reviewer=excluded.reviewer, updated=excluded.updated",
                (
                    analysis_id,
                    review.label,
                    review.onset_frame,
                    review.onset_s,
                    review.offset_s,
                    review.status,
                    review.relabel,
                    str(reviewer),
                    review.updated,
                ),
            )
        return True

    def clear_review(self, analysis_id: str, label: str, onset_frame: int) -> bool:
        """Forget the verdict on one event (it is unreviewed again); False if there was none."""
        with self._guard("clear the review"), self._tx() as db:
            n = db.execute(
                "DELETE FROM reviews WHERE analysis_id = ? AND label = ? AND onset_frame = ?",
                (analysis_id, str(label), int(onset_frame)),
            ).rowcount
        return n == 1

    def get_reviews(self, analysis_id: str) -> list[Review]:
        """Every verdict on a stored analysis, in time order (empty: none, or no analysis)."""
        with self._guard("read the reviews"):
            rows = (
                self._conn()
                .execute(
                    "SELECT label, onset_frame, onset_s, offset_s, status, relabel, updated "
                    "FROM reviews WHERE analysis_id = ? ORDER BY onset_frame, label",
                    (analysis_id,),
                )
                .fetchall()
            )
        return [Review(*row) for row in rows]

"""Spans: stretches of stored analyses a reviewer marked where no event was detected
(:class:`sonotag_core.domain.review.Span`): ``added`` (an event the model missed) or
``negative`` (checked: no such sound here).

One span per (analysis, label, onset frame, kind): marking the same start again replaces
the first (a corrected end). Spans go with their analysis. Low level on purpose, as for
verdicts: the store does not decide who may write them; the service checks
``access.check_change`` first (:mod:`sonotag_core.service.spans`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sonotag_core.domain.review import Span, onset_frame
from sonotag_core.store.connection import StoreBase

_COLUMNS = "label, onset_s, offset_s, kind, id, updated"


class SpansMixin(StoreBase):
    """Marked spans (part of :class:`~.database.Store`)."""

    def add_span(self, analysis_id: str, span: Span, *, reviewer: str) -> Span | None:
        """Keep ``reviewer``'s span on a stored analysis (replacing one of the same label,
        kind and onset frame); the stored span (with its id), or None when there is no
        such analysis."""
        with self._guard("save the marked span"), self._tx() as db:
            if db.execute("SELECT 1 FROM analyses WHERE id = ?", (analysis_id,)).fetchone() is None:
                return None
            row = db.execute(
                "INSERT INTO spans (analysis_id, label, onset_frame, onset_s, offset_s, kind, "
                "reviewer, updated) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(analysis_id, label, onset_frame, kind) DO UPDATE SET "
                "onset_s=excluded.onset_s, offset_s=excluded.offset_s, "
                "reviewer=excluded.reviewer, updated=excluded.updated RETURNING id",
                (
                    analysis_id,
                    span.label,
                    onset_frame(span.onset_s),
                    span.onset_s,
                    span.offset_s,
                    span.kind,
                    str(reviewer),
                    span.updated,
                ),
            ).fetchone()
        return Span(span.label, span.onset_s, span.offset_s, span.kind, int(row[0]), span.updated)

    def delete_span(self, analysis_id: str, span_id: int) -> bool:
        """Forget one span of an analysis; False if it had no such span."""
        with self._guard("delete the marked span"), self._tx() as db:
            n = db.execute(
                "DELETE FROM spans WHERE analysis_id = ? AND id = ?", (analysis_id, int(span_id))
            ).rowcount
        return n == 1

    def get_spans(self, analysis_id: str) -> list[Span]:
        """Every span of a stored analysis, in time order (empty: none, or no analysis)."""
        with self._guard("read the marked spans"):
            rows = (
                self._conn()
                .execute(
                    f"SELECT {_COLUMNS} FROM spans WHERE analysis_id = ? "
                    "ORDER BY onset_s, label, kind",
                    (analysis_id,),
                )
                .fetchall()
            )
        return [Span(*row) for row in rows]

    def spans_of(self, analysis_ids: Sequence[str], label: str) -> dict[str, list[Span]]:
        """The spans of ``label`` on each of these analyses (those with none left out)."""
        out: dict[str, list[Span]] = {}
        ids = list(dict.fromkeys(analysis_ids))
        with self._guard("read the marked spans"):
            for i in range(0, len(ids), 500):  # SQLite's bound on parameters
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = (
                    self._conn()
                    .execute(
                        f"SELECT analysis_id, {_COLUMNS} FROM spans WHERE label = ? "
                        f"AND analysis_id IN ({marks}) ORDER BY onset_s",
                        (str(label), *chunk),
                    )
                    .fetchall()
                )
                for aid, *row in rows:
                    out.setdefault(aid, []).append(Span(*row))
        return out

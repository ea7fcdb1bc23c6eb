"""Marking what the model missed, and verdicts, under the access rules of analyses.

A span (:class:`~sonotag_core.domain.review.Span`) is kept with a stored analysis like a
verdict: ``added`` (an event of its label the model missed) or ``negative`` ("checked: no
<label> here"). Whoever may open an analysis (its share link) reads its spans and
verdicts; only its owner (or the operator) may add, change or delete them
(:func:`~sonotag_core.access.check_change`), the rule for deleting the analysis itself.
Every front end (the player, the CLI) goes through these functions.
"""

from __future__ import annotations

from sonotag_core.access import Viewer, check_change
from sonotag_core.domain.review import ADDED, NEGATIVE, Review, Span
from sonotag_core.errors import NotFoundError
from sonotag_core.store.database import Store
from sonotag_core.untrusted import quoted


def _no_analysis(analysis_id: str) -> NotFoundError:
    return NotFoundError(
        f"There is no stored analysis {quoted(analysis_id)}: it was deleted, or the link "
        "comes from another SonoTag server."
    )


def check_may_review(store: Store, viewer: Viewer, analysis_id: str) -> None:
    """NotFoundError for an unknown analysis, AccessError for someone else's."""
    owner = store.analysis_owner(analysis_id)
    if owner is None:
        raise _no_analysis(analysis_id)
    check_change(viewer, owner, "review")


def mark_span(store: Store, viewer: Viewer, analysis_id: str, span: Span) -> Span:
    """Keep ``span`` on the analysis (clipped to its audio; replacing a span of the same
    label, kind and onset frame); the stored span, with its id."""
    check_may_review(store, viewer, analysis_id)
    stored = store.get_analysis(analysis_id)
    if stored is None:  # deleted meanwhile
        raise _no_analysis(analysis_id)
    kept = store.add_span(
        analysis_id, span.within(stored.embeddings.duration_s), reviewer=viewer.owner
    )
    if kept is None:
        raise _no_analysis(analysis_id)
    return kept


def list_spans(store: Store, analysis_id: str) -> list[Span]:
    """The spans of an analysis, in time order (read-only: anyone who can open it)."""
    return store.get_spans(analysis_id)


def delete_span(store: Store, viewer: Viewer, analysis_id: str, span_id: int) -> bool:
    """Forget one span; False when it is already gone."""
    check_may_review(store, viewer, analysis_id)
    return store.delete_span(analysis_id, span_id)


def set_verdict(store: Store, viewer: Viewer, analysis_id: str, review: Review) -> None:
    """Keep a verdict on one event (replacing an earlier one on it)."""
    check_may_review(store, viewer, analysis_id)
    if not store.set_review(analysis_id, review, reviewer=viewer.owner):
        raise _no_analysis(analysis_id)


def clear_verdict(
    store: Store, viewer: Viewer, analysis_id: str, label: str, onset_frame: int
) -> bool:
    """Forget the verdict on one event; False when it had none."""
    check_may_review(store, viewer, analysis_id)
    return store.clear_review(analysis_id, label, onset_frame)


def answer_moment(
    store: Store,
    viewer: Viewer,
    analysis_id: str,
    label: str,
    onset_s: float,
    offset_s: float,
    *,
    present: bool,
) -> Span:
    """A verdict on a moment that is not a detected event (a Review next item, a Find
    similar result): "yes, ``label`` is here" keeps an ``added`` span, "no" a
    ``negative`` one, so either teaches the label's detector."""
    kind = ADDED if present else NEGATIVE
    return mark_span(store, viewer, analysis_id, Span(label, onset_s, offset_s, kind))

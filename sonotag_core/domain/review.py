"""Verdicts on detected events: accept, reject or relabel, kept with the stored analysis.

Events are recomputed from the frame probabilities whenever thresholds or smoothing
change, so a verdict cannot point at a row of one events table. It is keyed by what
identifies an event across re-renders with the same settings: its label and its onset
frame index, ``round(onset_s / FRAME_S)`` (onsets always lie on the 0.3125-s grid, and
rounding absorbs float noise). A verdict whose event no longer exists (other settings)
is kept, but matches nothing until the settings that made it come back.

Spelling of the ``status`` column that :func:`apply_reviews` adds: ``"accepted"``,
``"rejected"``, or ``""`` (:data:`UNREVIEWED`) for an event nobody has judged yet.
``reviewed_label`` holds the correct label where an event was relabelled, else ``""``;
a relabel always means "accepted, as that label".

**Spans** (:class:`Span`) are what a reviewer marks where no event was: ``added`` (the
sound is there, an event of that label the model missed) or ``negative`` ("checked: no
<label> here"). :func:`with_reviews` appends them to the events table after the detected
events (so a detected event's row number never moves), with ``status`` ``added`` or
``negative`` and the model's own peak and mean probability over the span for that label
(NaN where the label is not scored). They are counted per label by
:func:`review_counts`, kept by :func:`accepted_only` (``added`` only: the sound is there),
and taken as truth by :mod:`.review_truth`.
"""

from __future__ import annotations

import dataclasses
import math
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sonotag_core.domain.report import Report
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import ConfigError
from sonotag_core.untrusted import quoted

ACCEPTED = "accepted"
REJECTED = "rejected"
UNREVIEWED = ""
STATUSES: tuple[str, ...] = (ACCEPTED, REJECTED)
ADDED = "added"  # a span: an event of its label that the model missed
NEGATIVE = "negative"  # a span: "checked: no <label> here"
SPAN_KINDS: tuple[str, ...] = (ADDED, NEGATIVE)
#: every status a row of a reviewed events table may have, besides UNREVIEWED
REVIEWED: tuple[str, ...] = (*STATUSES, *SPAN_KINDS)
MAX_SPAN_S = 600.0  # a span marks a moment, not a file: 10 minutes at most
STATUS_COLUMN = "status"
RELABEL_COLUMN = "reviewed_label"
MAX_RELABEL_CHARS = 200  # a label, not a note: bounds what one verdict can store

EventKey = tuple[str, int]


def onset_frame(onset_s: float) -> int:
    """The frame index an onset falls on (onsets are frame starts, 0.3125 s apart)."""
    value = float(onset_s)
    if not (math.isfinite(value) and value >= 0.0):
        raise ConfigError(f"An event onset must be a time in seconds >= 0, not {onset_s!r}.")
    return int(round(value / FRAME_S))


def event_key(label: str, onset_s: float) -> EventKey:
    """What a verdict is stored under: the label and the onset frame index."""
    return (str(label), onset_frame(onset_s))


def check_status(status: str) -> str:
    """``status`` if it is a verdict, else a :class:`ConfigError` naming the valid ones."""
    if status not in STATUSES:
        raise ConfigError(
            f"A review status is {' or '.join(repr(s) for s in STATUSES)}, not {quoted(status)}."
        )
    return status


def _clean_relabel(text: str | None, what: str = "The corrected label") -> str | None:
    """Control characters dropped, spacing collapsed; empty means "no relabel"."""
    if text is None:
        return None
    cleaned = " ".join(
        "".join(ch for ch in str(text) if unicodedata.category(ch)[0] != "C").split()
    )
    if len(cleaned) > MAX_RELABEL_CHARS:
        raise ConfigError(
            f"{what} {quoted(cleaned, 40)} is {len(cleaned)} characters long; "
            f"the limit is {MAX_RELABEL_CHARS}."
        )
    return cleaned or None


@dataclass(frozen=True)
class Review:
    """A verdict on one event of one stored analysis; ``relabel`` (the correct label)
    implies accepted. ``onset_s``/``offset_s`` are the event's times when it was judged,
    kept so a verdict can be exported or shown even if its event is not recomputed."""

    label: str
    onset_frame: int
    onset_s: float
    offset_s: float
    status: str
    relabel: str | None = None
    updated: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        check_status(self.status)
        if not str(self.label).strip():
            raise ConfigError("A review needs the label of the event it judges.")
        relabel = _clean_relabel(self.relabel)
        if relabel is not None and self.status != ACCEPTED:
            raise ConfigError(
                "A relabelled event is accepted as the new label; it cannot also be rejected."
            )
        if relabel == self.label:
            relabel = None  # "relabelled" as itself: a plain accept
        onset, offset = float(self.onset_s), float(self.offset_s)
        if not (math.isfinite(offset) and offset >= onset):
            raise ConfigError(f"An event ends at or after its onset, not at {self.offset_s!r}.")
        if int(self.onset_frame) != onset_frame(onset):
            raise ConfigError(
                f"Onset frame {self.onset_frame} does not match the onset {onset} s "
                f"(frame {onset_frame(onset)})."
            )
        object.__setattr__(self, "label", str(self.label))
        object.__setattr__(self, "onset_frame", int(self.onset_frame))
        object.__setattr__(self, "onset_s", onset)
        object.__setattr__(self, "offset_s", offset)
        object.__setattr__(self, "relabel", relabel)
        object.__setattr__(self, "updated", float(self.updated))

    @classmethod
    def of_event(
        cls,
        label: str,
        onset_s: float,
        offset_s: float,
        status: str,
        *,
        relabel: str | None = None,
    ) -> Review:
        """A verdict on the event (label, onset_s, offset_s) of an events table, now."""
        return cls(str(label), onset_frame(onset_s), onset_s, offset_s, status, relabel)

    @property
    def key(self) -> EventKey:
        return (self.label, self.onset_frame)


def _by_key(reviews: Iterable[Review] | Mapping[EventKey, Review]) -> dict[EventKey, Review]:
    """One verdict per event: given several for one key, the latest ``updated`` wins."""
    items = reviews.values() if isinstance(reviews, Mapping) else reviews
    out: dict[EventKey, Review] = {}
    for review in items:
        old = out.get(review.key)
        if old is None or review.updated >= old.updated:
            out[review.key] = review
    return out


def apply_reviews(
    events: pd.DataFrame, reviews: Iterable[Review] | Mapping[EventKey, Review]
) -> pd.DataFrame:
    """A copy of ``events`` with ``status`` and ``reviewed_label`` columns (replaced if
    already there); every other column and the row order stay as they were."""
    verdicts = _by_key(reviews)
    out = events.copy()
    statuses: list[str] = []
    relabels: list[str] = []
    labels = out["label"].astype(str).tolist() if len(out) else []
    onsets = out["onset_s"].astype(float).tolist() if len(out) else []
    for label, onset in zip(labels, onsets, strict=True):
        review = verdicts.get(event_key(label, onset))
        statuses.append(UNREVIEWED if review is None else review.status)
        relabels.append((review.relabel or "") if review is not None else "")
    out[STATUS_COLUMN] = pd.Series(statuses, index=out.index, dtype=object)
    out[RELABEL_COLUMN] = pd.Series(relabels, index=out.index, dtype=object)
    return out


def with_reviews(
    report: Report,
    reviews: Iterable[Review] | Mapping[EventKey, Review],
    spans: Iterable[Span] = (),
) -> Report:
    """The report with its events carrying the verdicts, and the marked ``spans`` as rows
    of their own after the detected events (:func:`add_spans`): what the table shows and
    every export writes, so the two always agree."""
    events = add_spans(apply_reviews(report.events, reviews), spans, report.timeline)
    return dataclasses.replace(report, events=events)


def check_kind(kind: str) -> str:
    """``kind`` if it is a span kind, else a :class:`ConfigError` naming the valid ones."""
    if kind not in SPAN_KINDS:
        raise ConfigError(
            f"A marked span is {' or '.join(repr(k) for k in SPAN_KINDS)}, not {quoted(kind)}."
        )
    return kind


@dataclass(frozen=True)
class Span:
    """A stretch of one stored analysis marked by a reviewer where no event was detected:
    ``added`` (an event of ``label`` the model missed) or ``negative`` (checked: no
    ``label`` here). ``id`` is the store's (None before it is stored)."""

    label: str
    onset_s: float
    offset_s: float
    kind: str
    id: int | None = None
    updated: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        label = _clean_relabel(self.label, "The label of a span")
        if label is None:
            raise ConfigError("A marked span needs the label it is about.")
        onset, offset = float(self.onset_s), float(self.offset_s)
        if not (math.isfinite(onset) and onset >= 0.0):
            raise ConfigError(f"A span starts at a time in seconds >= 0, not {self.onset_s!r}.")
        if not (math.isfinite(offset) and offset > onset):
            raise ConfigError(
                f"A span ends after it starts ({onset:g} s), not at {self.offset_s!r}."
            )
        if offset - onset > MAX_SPAN_S:
            raise ConfigError(
                f"A span is at most {MAX_SPAN_S:g} s long; this one is {offset - onset:g} s."
            )
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "onset_s", onset)
        object.__setattr__(self, "offset_s", offset)
        object.__setattr__(self, "id", None if self.id is None else int(self.id))
        object.__setattr__(self, "updated", float(self.updated))

    @property
    def first_frame(self) -> int:
        """The first frame the span touches."""
        return int(math.floor(self.onset_s / FRAME_S + 1e-9))

    @property
    def stop_frame(self) -> int:
        """One past the last frame the span touches (at least one frame)."""
        return max(self.first_frame + 1, int(math.ceil(self.offset_s / FRAME_S - 1e-9)))

    def within(self, duration_s: float) -> Span:
        """The span clipped to an audio of ``duration_s`` (ConfigError if it starts after)."""
        if self.onset_s >= duration_s:
            raise ConfigError(
                f"The span starts at {self.onset_s:g} s, after the end of the audio "
                f"({duration_s:g} s)."
            )
        return dataclasses.replace(self, offset_s=min(self.offset_s, float(duration_s)))


def add_spans(events: pd.DataFrame, spans: Iterable[Span], timeline: Timeline) -> pd.DataFrame:
    """``events`` (with ``status``/``reviewed_label`` from :func:`apply_reviews`) with one
    row per span appended, in time order: ``status`` ``added`` or ``negative``, ``peak``
    and ``mean`` the model's probability of the span's label over its frames (NaN when
    the timeline does not score that label). The detected rows keep their positions."""
    spans = sorted(spans, key=lambda s: (s.onset_s, s.label, s.kind))
    if not spans:
        return events
    rows: dict[str, list[Any]] = {
        "label": [],
        "onset_s": [],
        "offset_s": [],
        "peak": [],
        "mean": [],
    }
    row_of = {label: i for i, label in enumerate(timeline.labels)}
    for span in spans:
        i = row_of.get(span.label)
        values = (
            timeline.probabilities[i, span.first_frame : span.stop_frame]
            if i is not None
            else np.zeros(0)
        )
        rows["label"].append(span.label)
        rows["onset_s"].append(span.onset_s)
        rows["offset_s"].append(span.offset_s)
        rows["peak"].append(float(values.max()) if values.size else math.nan)
        rows["mean"].append(float(values.mean()) if values.size else math.nan)
    extra = pd.DataFrame(rows)
    extra[STATUS_COLUMN] = pd.Series([s.kind for s in spans], dtype=object)
    extra[RELABEL_COLUMN] = pd.Series([""] * len(spans), dtype=object)
    if not len(events):
        return extra.reset_index(drop=True)
    extra = extra.reindex(columns=list(dict.fromkeys([*events.columns, *extra.columns])))
    return pd.concat([events, extra], ignore_index=True)


def detected_only(events: pd.DataFrame) -> pd.DataFrame:
    """The rows the model detected (marked spans left out)."""
    return events.loc[~_column(events, STATUS_COLUMN).isin(SPAN_KINDS)]


def spans_of(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The marked spans of one kind in a table from :func:`with_reviews`."""
    return events.loc[_column(events, STATUS_COLUMN) == check_kind(kind)]


def _column(events: pd.DataFrame, name: str) -> pd.Series:
    if name in events.columns:
        return events[name].fillna("").astype(str)
    return pd.Series([""] * len(events), index=events.index, dtype=object)


def accepted_only(events: pd.DataFrame) -> pd.DataFrame:
    """The accepted events and the ``added`` spans (a table without ``status`` has none),
    each under its corrected label where it was relabelled: what a reviewed export writes
    (everything a reviewer said is there)."""
    keep = _column(events, STATUS_COLUMN).isin([ACCEPTED, ADDED])
    out = events.loc[keep].copy()
    relabel = _column(out, RELABEL_COLUMN)
    out["label"] = relabel.where(relabel != "", out["label"].astype(str)).astype(object)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class ReviewCount:
    """How far the review of one label has got."""

    label: str
    events: int
    accepted: int
    rejected: int
    relabelled: int  # part of ``accepted``
    added: int = 0  # marked spans: events the model missed (not part of ``events``)
    negative: int = 0  # marked spans: "checked: no <label> here"

    @property
    def reviewed(self) -> int:
        """Detected events with a verdict (marked spans are counted apart)."""
        return self.accepted + self.rejected

    @property
    def examples(self) -> int:
        """Everything a reviewer said about this label: verdicts and marked spans."""
        return self.reviewed + self.added + self.negative

    def summary(self) -> str:
        """``dog barking: 12 of 40 reviewed (10 accepted, 2 rejected); 3 added, 1 checked
        absent`` (the last part only when spans were marked)."""
        text = (
            f"{self.label}: {self.reviewed} of {self.events} reviewed "
            f"({self.accepted} accepted, {self.rejected} rejected"
        )
        text += f"; {self.relabelled} relabelled)" if self.relabelled else ")"
        marked = [f"{self.added} added"] if self.added else []
        marked += [f"{self.negative} checked absent"] if self.negative else []
        return text + (f"; {', '.join(marked)}" if marked else "")


def review_counts(
    events_with_status: pd.DataFrame, labels: Sequence[str] | None = None
) -> dict[str, ReviewCount]:
    """Per-label counts of a table from :func:`apply_reviews` or :func:`with_reviews`
    (marked spans counted as ``added``/``negative``, not as events), in ``labels`` order
    when given (labels without events included, with zeros), else in order of
    appearance."""
    status = _column(events_with_status, STATUS_COLUMN).tolist()
    relabel = _column(events_with_status, RELABEL_COLUMN).tolist()
    names = events_with_status["label"].astype(str).tolist() if len(events_with_status) else []
    order = list(dict.fromkeys([*(labels or ()), *names])) if labels is not None else names
    tally = {label: [0, 0, 0, 0, 0, 0] for label in dict.fromkeys(order)}
    for label, st, rl in zip(names, status, relabel, strict=True):
        counts = tally.setdefault(label, [0, 0, 0, 0, 0, 0])
        if st in SPAN_KINDS:
            counts[4 if st == ADDED else 5] += 1
            continue
        counts[0] += 1
        counts[1] += st == ACCEPTED
        counts[2] += st == REJECTED
        counts[3] += st == ACCEPTED and rl != ""
    return {label: ReviewCount(label, *counts) for label, counts in tally.items()}

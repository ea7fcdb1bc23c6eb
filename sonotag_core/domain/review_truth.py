"""Reviewed events as ground truth: accepted = the sound is there, rejected = it is not,
and the reviewed spans are the only known territory (nobody listened anywhere else).
Marked spans (:class:`~.review.Span`) count the same way: an ``added`` span is a truth
event of its label the model missed, a ``negative`` span a reviewed stretch with none.

Each reviewed event becomes a short "file" of its own: the frames it covers, cut from the
analysis's timeline. A label is scored only on the spans reviewed *for it* (its own events,
and events relabelled to it), so an unreviewed stretch never counts as a miss or a false
alarm, and one label's verdicts say nothing about another's. Within a span, the accepted
event is the truth for its (reviewed) label; a rejected span holds no truth, so whatever
the label detects there is a false alarm. At the thresholds the events were found at,
event precision is accepted / reviewed; the best-F1 threshold is the calibration the
reviews support. The metrics are ``sed_scores_eval``'s (:func:`.evaluation.evaluate`),
one label at a time, the macro row their mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sonotag_core.domain.evaluation import Evaluation, evaluate
from sonotag_core.domain.review import (
    ACCEPTED,
    ADDED,
    NEGATIVE,
    RELABEL_COLUMN,
    REVIEWED,
    STATUS_COLUMN,
)
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.errors import TruthError

Span = tuple[float, float, str]


@dataclass(frozen=True)
class ReviewedTerritory:
    """The reviewed spans as timelines (name -> Timeline), their truth, which spans
    each label is scored on, and the accepted events on the whole file's time axis."""

    spans: Mapping[str, Timeline]
    truth: Mapping[str, list[Span]]
    files_of: Mapping[str, list[str]]
    accepted: list[Span]


def reviewed_territory(
    timeline: Timeline, events: pd.DataFrame, labels: Sequence[str]
) -> ReviewedTerritory:
    """Cut each reviewed event's (and marked span's) frames out of ``timeline``
    (``events``: the report's, with ``status`` and ``reviewed_label``); labels outside
    ``labels`` are ignored. ``added`` spans are truth like accepted events, ``negative``
    spans hold none like rejected ones."""
    if STATUS_COLUMN not in events or not events[STATUS_COLUMN].isin(REVIEWED).any():
        raise TruthError(
            "This analysis has no reviewed events yet: accept or reject some events on "
            "the Analyze page (or `sonotag library review`), mark what the model missed, "
            "or upload ground truth."
        )
    names = set(labels)
    spans: dict[str, Timeline] = {}
    truth: dict[str, list[Span]] = {}
    files_of: dict[str, list[str]] = {x: [] for x in labels}
    accepted: list[Span] = []
    relabels = events[RELABEL_COLUMN] if RELABEL_COLUMN in events else None
    for i, e in enumerate(events.itertuples(index=False)):
        status = getattr(e, STATUS_COLUMN)
        if status not in REVIEWED or e.label not in names:
            continue
        present = status in (ACCEPTED, ADDED)  # REJECTED and NEGATIVE: not there
        relabel = relabels.iloc[i] if relabels is not None else None
        relabelled = isinstance(relabel, str) and relabel != ""  # "" = kept its label
        said = str(relabel) if status == ACCEPTED and relabelled else e.label
        name = f"{e.label}@{float(e.onset_s):.3f}s"
        if status in (ADDED, NEGATIVE):
            name += f" ({status})"  # a span may start where an event of its label does
        first = int(math.floor(float(e.onset_s) / FRAME_S + 1e-9))
        stop = max(first + 1, int(math.ceil(float(e.offset_s) / FRAME_S - 1e-9)))
        start = first * FRAME_S
        length = min(stop * FRAME_S, timeline.duration_s) - start
        spans[name] = Timeline(
            timeline.labels,
            np.ascontiguousarray(timeline.probabilities[:, first:stop]),
            length,
            timeline.negatives,
        )
        on, off = float(e.onset_s) - start, min(float(e.offset_s) - start, length)
        truth[name] = [(on, off, said)] if present and said in names else []
        if truth[name]:
            accepted.append((float(e.onset_s), float(e.offset_s), said))
        for label in dict.fromkeys([e.label, said]):
            if label in files_of:
                files_of[label].append(name)
    return ReviewedTerritory(spans, truth, files_of, accepted)


def evaluate_reviews(
    territory: ReviewedTerritory, thresholds: Mapping[str, float], labels: Sequence[str]
) -> Evaluation:
    """Each label scored on its own reviewed spans; labels without any are NaN rows."""
    parts: list[Evaluation] = []
    empty: list[str] = []
    for label in labels:
        files = territory.files_of.get(label, [])
        spans = {f: territory.spans[f] for f in files}
        mine = {f: [t for t in territory.truth[f] if t[2] == label] for f in files}
        if not any(mine.values()):  # nothing accepted: no truth to score against
            empty.append(label)
            continue
        parts.append(evaluate(spans, mine, thresholds, labels=[label]))
    if not parts:
        raise TruthError(
            "No reviewed event was accepted for these labels, so there is nothing to find: "
            "accept the right detections too, not only reject the wrong ones."
        )
    table = pd.concat([p.per_label for p in parts], ignore_index=True)
    missing = pd.DataFrame({"label": empty, "n_truth": 0})
    missing["threshold"] = [float(thresholds.get(x, 0.5)) for x in empty]
    table = pd.concat([table, missing], ignore_index=True) if empty else table
    order = {x: i for i, x in enumerate(labels)}
    table = table.sort_values("label", key=lambda s: s.map(order), ignore_index=True)
    macro = {k: _mean([p.macro[k] for p in parts]) for k in parts[0].macro}
    return Evaluation(
        table,
        macro,
        tuple(territory.spans),
        {**parts[0].settings, "truth": "reviewed events (reviewed spans only)"},
        pd.concat([p.f1_curves for p in parts], ignore_index=True),
        pd.concat([p.psd_roc for p in parts], ignore_index=True),
    )


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan

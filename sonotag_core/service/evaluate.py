"""Evaluate a stored analysis against ground truth or its reviews, and calibrate per-label
thresholds from either: the one place the CLI and the Evaluate page do it.

Which truth rows belong to the analysis: the rows of its file name (the upload's or
download's name, matched on the base name), else — when the truth names a single file —
that file's rows; anything else is refused with the names the truth holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath

import pandas as pd

from sonotag_core.domain.calibration import Calibration, from_evaluation, from_reviews
from sonotag_core.domain.evaluation import Evaluation, evaluate
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.review import REVIEWED, STATUS_COLUMN
from sonotag_core.domain.review_truth import evaluate_reviews, reviewed_territory
from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.truth import (
    ClassMatch,
    GroundTruth,
    check_against,
    events_for_labels,
    match_classes,
)
from sonotag_core.errors import TruthError
from sonotag_core.service.api import Service
from sonotag_core.service.detectors import Detector
from sonotag_core.service.library import Analysed


@dataclass(frozen=True)
class Evaluated:
    """An evaluation with how the truth was matched: ``truth`` and ``timelines`` per
    evaluated file (truth classes renamed to labels), for the views drawn over them."""

    evaluation: Evaluation
    match: ClassMatch
    truth: Mapping[str, list[tuple[float, float, str]]]
    timelines: Mapping[str, Timeline]
    #: what the page draws on the whole file's time axis: a timeline and its truth
    shown: Timeline
    shown_truth: list[tuple[float, float, str]]
    #: the detections to draw when not all of the timeline's count (reviews: the reviewed)
    shown_detections: pd.DataFrame | None = None

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.timelines)


def _name(analysed: Analysed) -> str:
    src = analysed.source
    return PurePath(str(src.file_name or src.title or "audio")).name


def rows_for(truth: GroundTruth, name: str) -> GroundTruth:
    """The truth's rows for ``name`` (matched as :meth:`GroundTruth.for_file` matches),
    else, when the truth names one file only, that file's rows."""
    try:
        return truth.for_file(name)
    except TruthError:
        files = truth.files()
        if len(files) == 1:
            return truth.for_file(files[0])
        raise


def evaluate_analysis(
    service: Service,
    analysed: Analysed,
    labels: LabelSet,
    truth: GroundTruth,
    thresholds: Mapping[str, float],
    *,
    mapping: Mapping[str, str] | None = None,
) -> Evaluated:
    """Score ``labels`` on a kept analysis against the truth rows of its file."""
    rows = rows_for(truth, _name(analysed))
    return evaluate_files(
        service, {rows.files()[0]: analysed}, labels, rows, thresholds, mapping=mapping
    )


def evaluate_files(
    service: Service,
    analysed: Mapping[str, Analysed],
    labels: LabelSet,
    truth: GroundTruth,
    thresholds: Mapping[str, float],
    *,
    mapping: Mapping[str, str] | None = None,
) -> Evaluated:
    """Score ``labels`` on several analyses at once (file name in the truth -> its
    analysis): one table over all of them, as DCASE scores a whole evaluation set.
    Truth rows of files not in ``analysed`` are left out; the caller says which."""
    durations = {f: a.embeddings.duration_s for f, a in analysed.items()}
    rows = check_against(truth.only(list(durations)), durations)
    positive = [x for x in labels.labels if x not in labels.negatives]
    match = match_classes(rows.classes(), positive, mapping)
    events = events_for_labels(rows, match)
    timelines = {f: service.timeline(a, labels) for f, a in analysed.items()}
    mine = {f: list(events.get(f, [])) for f in timelines}
    result = evaluate(timelines, mine, thresholds, labels=positive)
    first = next(iter(timelines))
    return Evaluated(result, match, mine, timelines, timelines[first], mine[first])


def evaluate_from_reviews(
    service: Service, analysed: Analysed, labels: LabelSet, params: EventParams
) -> Evaluated:
    """Score ``labels`` against the analysis's own verdicts (:mod:`.review_truth`): the
    events at ``params`` with their reviews, each reviewed span the only known ground."""
    report = service.report(analysed, labels, params)
    positive = [x for x in labels.labels if x not in labels.negatives]
    territory = reviewed_territory(report.timeline, report.events, positive)
    thresholds = {x: params.threshold_for(x) for x in positive}
    result = evaluate_reviews(territory, thresholds, positive)
    match = ClassMatch({x: x for x in positive}, [], [])
    return Evaluated(
        result,
        match,
        territory.truth,
        territory.spans,
        report.timeline,
        territory.accepted,
        report.events[report.events[STATUS_COLUMN].isin(REVIEWED)],
    )


def calibrate_from_truth(
    evaluated: Evaluated, truth_name: str, origin: str = "ground truth"
) -> list[Calibration]:
    """Each label's best-F1 threshold on that truth (``origin`` "reviews" when the
    truth was the analysis's reviewed events)."""
    table = evaluated.evaluation.per_label.set_index("label")
    best = evaluated.evaluation.best_thresholds()
    f1 = {k: float(table.at[k, "best_f1"]) for k in best}
    return from_evaluation(best, f1, truth_name, origin)


def calibrate_from_reviews(
    service: Service, analysed: Analysed, labels: LabelSet, params, target_precision: float
) -> tuple[list[Calibration], dict[str, str]]:
    """A logistic fit of the reviewed events' peaks (accepted vs rejected) per label."""
    report = service.report(analysed, labels, params)
    events = report.events
    if STATUS_COLUMN not in events:
        events = pd.DataFrame(columns=["label", "peak", STATUS_COLUMN])
    return from_reviews(events, target_precision)


@dataclass(frozen=True)
class SideBySide:
    """The same truth scored twice: each label by its text alone, and by its refined
    detector where one is given (``detectors``: label -> ``name vN``)."""

    text: Evaluated
    refined: Evaluated
    detectors: Mapping[str, str]


def evaluate_side_by_side(
    service: Service,
    analysed: Analysed,
    labels: LabelSet,
    truth: GroundTruth,
    thresholds: Mapping[str, float],
    detectors: Sequence[Detector],
    *,
    mapping: Mapping[str, str] | None = None,
) -> SideBySide:
    """Text-only and refined on the same ground truth (Evaluate's comparison). The
    refined side uses each detector's calibrated threshold where it has one."""
    plain = replace(service, detectors={})
    refined = plain.with_detectors(detectors)
    tuned = {**thresholds}
    tuned.update({d.label: d.threshold for d in detectors if d.threshold is not None})
    return SideBySide(
        evaluate_analysis(plain, analysed, labels, truth, thresholds, mapping=mapping),
        evaluate_analysis(refined, analysed, labels, truth, tuned, mapping=mapping),
        {d.label: d.ref for d in detectors},
    )

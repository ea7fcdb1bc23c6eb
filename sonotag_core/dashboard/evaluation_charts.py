"""The Evaluate page's charts (Altair only): event F1 against threshold, each label's
PSD-ROC, and detections against ground truth in lanes.

The curves come from :mod:`sonotag_core.domain.evaluation_curves` as step functions (a
row holds until the next one), so the lines are drawn ``step-after``: a straight line
between two operating points would show F1 values no threshold gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import altair as alt
import pandas as pd

from sonotag_core.dashboard.charts import FIT_X, TIME_TITLE, Width, chart_data, label_colors
from sonotag_core.domain.evaluation_curves import (
    FALSE_ALARM,
    FOUND,
    HIT,
    MAX_EFPR,
    MISSED,
    STATUS,
    truth_overlap,
)

DETECTED, TRUTH = "detected", "truth"  #: the two lanes of a label, top to bottom
STATUSES = (HIT, FALSE_ALARM, FOUND, MISSED)
#: hit and found green, the errors orange and red (legible on light and dark themes)
STATUS_COLORS = ("#54a24b", "#f58518", "#72b7b2", "#e45756")
MEASURE_DASH = {"f1": [1, 0], "precision": [5, 3], "recall": [2, 2]}
CURRENT_DASH, BEST_DASH = [1, 0], [4, 3]


def _labels(*groups: Iterable[object]) -> list[str]:
    """Every label named, in first-seen order (curves first, then the rules)."""
    out: dict[str, None] = {}
    for group in groups:
        out.update(dict.fromkeys(str(n) for n in group))
    return list(out)


def _label_color(labels: Sequence[str], colors: Mapping[str, str] | None) -> alt.Color:
    """Colour by label: the page's palette when given (the player's colours), else the
    palette in this chart's label order."""
    palette = {**label_colors(labels), **(colors or {})}
    return alt.Color(
        "label:N",
        scale=alt.Scale(domain=list(labels), range=[palette[n] for n in labels]),
        legend=alt.Legend(title=None, orient="bottom", columns=3, labelLimit=160),
    )


# --------------------------------------------------------------------------- F1


def _rules(
    current: Mapping[str, float], best: Mapping[str, float], labels: Sequence[str]
) -> pd.DataFrame:
    rows = [
        {"label": n, "which": which, "threshold": float(values[n])}
        for which, values in (("current", current), ("best", best))
        for n in labels
        if n in values
    ]
    return pd.DataFrame(rows, columns=["label", "which", "threshold"])


def f1_threshold_chart(
    curves: pd.DataFrame,
    current: Mapping[str, float],
    best: Mapping[str, float],
    *,
    show_precision_recall: bool = False,
    colors: Mapping[str, str] | None = None,
    height: int = 260,
    width: Width = "container",
) -> alt.LayerChart:
    """Event F1 against threshold per label (from :func:`.evaluation_curves.f1_curves`),
    with a solid rule at each label's current threshold and a dashed one at its best;
    precision (dashed) and recall (dotted) when asked. Both axes are [0, 1]."""
    measures = ["f1", "precision", "recall"] if show_precision_recall else ["f1"]
    long = curves.melt(
        id_vars=["label", "threshold"], value_vars=measures, var_name="measure"
    ).astype({"label": str, "measure": str})
    labels = _labels(pd.unique(curves["label"]), current, best)
    color = _label_color(labels, colors)
    x = alt.X("threshold:Q", title="threshold", scale=alt.Scale(domain=[0.0, 1.0], nice=False))
    lines = (
        alt.Chart(chart_data(long))
        .mark_line(interpolate="step-after", strokeWidth=1.75, clip=True)
        .encode(
            x=x,
            y=alt.Y("value:Q", title="event F1", scale=alt.Scale(domain=[0.0, 1.0])),
            color=color,
            strokeDash=alt.StrokeDash(
                "measure:N",
                scale=alt.Scale(domain=measures, range=[MEASURE_DASH[m] for m in measures]),
                legend=alt.Legend(title=None, orient="bottom") if len(measures) > 1 else None,
            ),
            tooltip=[
                alt.Tooltip("label:N"),
                alt.Tooltip("measure:N"),
                alt.Tooltip("threshold:Q", format=".3f", title="from threshold"),
                alt.Tooltip("value:Q", format=".3f"),
            ],
        )
    )
    rules = _rules(current, best, labels)
    rule_tooltip = [
        alt.Tooltip("label:N"),
        alt.Tooltip("which:N", title="threshold"),
        alt.Tooltip("threshold:Q", format=".2f", title="value"),
    ]
    layers = [lines]
    for which, dash in (("current", CURRENT_DASH), ("best", BEST_DASH)):
        layers.append(
            alt.Chart(rules[rules["which"] == which])
            .mark_rule(strokeDash=dash, strokeWidth=1.25, opacity=0.9)
            .encode(x=x, color=color, tooltip=rule_tooltip)
        )
    return alt.LayerChart(layer=layers, height=height, width=width, autosize=FIT_X)


# --------------------------------------------------------------------------- PSD-ROC


def psd_roc_chart(
    curves: pd.DataFrame,
    *,
    max_efpr: float = MAX_EFPR,
    colors: Mapping[str, str] | None = None,
    height: int = 260,
    width: Width = "container",
) -> alt.Chart:
    """Each label's PSD-ROC (from :func:`.evaluation_curves.psd_roc_curves`): the share
    of truth events found against false positives per hour, a staircase up to
    ``max_efpr`` (the area under it over ``max_efpr`` is the label's PSDS)."""
    labels = _labels(pd.unique(curves["label"]))
    data = curves.astype({"label": str})
    return (
        alt.Chart(chart_data(data))
        .mark_line(interpolate="step-after", strokeWidth=1.75, clip=True)
        .encode(
            x=alt.X(
                "efpr:Q",
                title="false positives per hour",
                scale=alt.Scale(domain=[0.0, float(max_efpr)], nice=False),
            ),
            y=alt.Y("tpr:Q", title="share of truth found", scale=alt.Scale(domain=[0.0, 1.0])),
            color=_label_color(labels, colors),
            tooltip=[
                alt.Tooltip("label:N"),
                alt.Tooltip("efpr:Q", format=".1f", title="false positives / h"),
                alt.Tooltip("tpr:Q", format=".3f", title="found"),
            ],
        )
        .properties(height=height, width=width, autosize=FIT_X)
    )


# --------------------------------------------------------------------------- lanes


def _lane(events: pd.DataFrame, lane: str) -> pd.DataFrame:
    """One lane's rects: label, lane, onset, offset, status (either column spelling)."""

    def pick(*names: str) -> pd.Series:
        return events[next(n for n in names if n in events.columns)]

    return pd.DataFrame(
        {
            "label": pick("label", "event_label").astype(str).to_numpy(),
            "lane": lane,
            "onset": pick("onset", "onset_s").astype(float).to_numpy(),
            "offset": pick("offset", "offset_s").astype(float).to_numpy(),
            "status": events[STATUS].astype(str).to_numpy(),
        }
    )


def lane_rows(detections: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The lanes chart's data, one row per rect: statuses from
    :func:`.evaluation_curves.truth_overlap` unless both frames already have them."""
    if STATUS not in detections.columns or STATUS not in truth.columns:
        detections, truth = truth_overlap(detections, truth)
    return pd.concat([_lane(detections, DETECTED), _lane(truth, TRUTH)], ignore_index=True)


def truth_lane_chart(
    detections: pd.DataFrame,
    truth: pd.DataFrame,
    duration_s: float,
    *,
    row_height: int = 34,
    width: Width = "container",
) -> alt.Chart:
    """One row per label, detections in its upper lane and truth in its lower one, on
    one time axis; colour says hit / false alarm (detections) and found / missed (truth).

    The lanes are a y offset within each label's band, so the chart stays one view
    (container width, readable on a phone); long label names are cut on the axis and
    given whole in the tooltip.
    """
    rows = lane_rows(detections, truth)
    labels = list(pd.unique(rows["label"]))
    end = float(duration_s) if duration_s > 0 else 1.0
    return (
        alt.Chart(
            chart_data(rows),
            title=alt.TitleParams(
                "upper lane: detected · lower lane: truth", anchor="start", fontSize=11
            ),
        )
        .mark_rect(clip=True, cornerRadius=1)
        .encode(
            x=alt.X("onset:Q", title=TIME_TITLE, scale=alt.Scale(domain=[0.0, end], nice=False)),
            x2="offset:Q",
            y=alt.Y("label:N", sort=labels, title=None, axis=alt.Axis(labelLimit=110)),
            yOffset=alt.YOffset(
                "lane:N", sort=[DETECTED, TRUTH], scale=alt.Scale(paddingInner=0.15)
            ),
            color=alt.Color(
                f"{STATUS}:N",
                scale=alt.Scale(domain=list(STATUSES), range=list(STATUS_COLORS)),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=[
                alt.Tooltip("label:N"),
                alt.Tooltip("lane:N"),
                alt.Tooltip(f"{STATUS}:N"),
                alt.Tooltip("onset:Q", format=".2f", title="onset (s)"),
                alt.Tooltip("offset:Q", format=".2f", title="offset (s)"),
            ],
        )
        .properties(height=max(row_height * len(labels), row_height), width=width, autosize=FIT_X)
    )

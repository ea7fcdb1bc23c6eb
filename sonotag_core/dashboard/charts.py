"""The Altair charts outside the player (no Streamlit here): the Compare page's timelines
and the clip scores, and the label colours the player shares with them.

The Analyze page draws timelines, heatmap and events in the workbench component
(``frontend/workbench.js``). The Compare timelines keep one selection named ``"pick"``
(a click marks that time in every row) and an x-zoom named ``"zoom"``.

Long audio is max-pooled before plotting: one hour is 11 520 frames per label, more than
a browser should draw per row, and taking the max within each bin (rather than a mean or
every n-th frame) keeps a one-frame event visible at any zoom-out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

import altair as alt
import numpy as np
import pandas as pd

from sonotag_core.domain.timeline import Timeline
from sonotag_core.domain.windows import FRAME_S

PICK = "pick"  #: name of the click selection on every clickable chart
ZOOM = "zoom"  #: name of the x-only scale-bound zoom/pan selection
TIME_FIELD = "time_s"  #: the one field the pick selection exposes
TIME_TITLE = "time (s)"

COLOR = "#4c78a8"  #: positive labels
NEGATIVE_COLOR = "#9e9e9e"  #: negative labels (context for the model, never events)
THRESHOLD_COLOR = "#e45756"
PICKED_COLOR = "#f58518"
MEAN_COLOR = "#222222"
NEGATIVE_SUFFIX = " (negative)"
MAX_FRAME_ROWS = 5000  #: Altair's default max_rows for DataFrame data
#: one colour per label, in label order (Tableau 10, legible on light and dark themes)
PALETTE: tuple[str, ...] = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#eeca3b",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#bab0ac",
)

Width = int | Literal["container"]  # pixels, or "container" to fill the parent

# Single views fit their width to the container but keep ``height`` as the plot height
# (Streamlit's default for single views, "fit", would squeeze the axes into ``height``).
FIT_X = alt.AutoSizeParams(type="fit-x", contains="padding")


def label_colors(
    labels: Sequence[str], negatives: frozenset[str] | set[str] = frozenset()
) -> dict[str, str]:
    """Label -> colour, the same in the player, the charts and Compare: positives take
    the palette in order (cycling past ten), negatives are grey."""
    positives = [label for label in labels if label not in negatives]
    colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(positives)}
    return {label: colors.get(label, NEGATIVE_COLOR) for label in labels}


# --------------------------------------------------------------------------- data frames


def _max_pool(probabilities: np.ndarray, max_bins: int) -> tuple[np.ndarray, int]:
    """(labels, frames) -> (labels, <= max_bins) by max over runs of ``b`` frames; returns b.

    Max, not mean: a 0.3 s spike must survive when an hour is squeezed into a few
    thousand pixels. Bins are whole frames so bin starts stay on the frame grid.
    """
    if max_bins < 1:
        raise ValueError(f"the number of points per label must be >= 1, not {max_bins}")
    probs = np.asarray(probabilities, dtype=np.float64)
    n_labels, n_frames = probs.shape
    if n_frames <= max_bins:
        return probs, 1
    per_bin = -(-n_frames // max_bins)  # ceil
    n_bins = -(-n_frames // per_bin)
    padded = np.full((n_labels, n_bins * per_bin), np.nan, dtype=np.float64)
    padded[:, :n_frames] = probs
    # fmax skips NaN (a compared timeline padded past its end) unless a whole bin is NaN
    return np.fmax.reduce(padded.reshape(n_labels, n_bins, per_bin), axis=2), per_bin


def pooled_probabilities(
    timeline: Timeline, max_bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-pooled probabilities (labels, bins) with each bin's start and end time.

    Short audio keeps every frame. Longer audio is binned over whole frames, each bin
    at its start time with the max probability inside it, so no event disappears."""
    pooled, per_bin = _max_pool(timeline.probabilities, max_bins)
    bin_s = per_bin * FRAME_S
    starts = np.arange(pooled.shape[1], dtype=np.float64) * bin_s
    ends = np.minimum(starts + bin_s, float(timeline.duration_s))
    return pooled, starts, ends


def chart_data(df: pd.DataFrame) -> pd.DataFrame | alt.InlineData:
    """The frame itself, or inline records past Altair's default 5 000-row limit.

    Streamlit ships DataFrames as Arrow whatever their size, but a plain ``to_dict()`` or
    ``save()`` refuses big frames; inline records keep every chart serializable.
    """
    if len(df) <= MAX_FRAME_ROWS:
        return df
    return alt.InlineData(values=json.loads(df.to_json(orient="records")))


# --------------------------------------------------------------------------- selections


def _pick() -> alt.Parameter:
    """Click picks the nearest time (no shift-toggle: at most one point)."""
    return alt.selection_point(
        name=PICK, fields=[TIME_FIELD], on="click", nearest=True, toggle=False
    )


def _zoom() -> alt.Parameter:
    """Zoom/pan on time only: probabilities keep their fixed [0, 1] axis."""
    return alt.selection_interval(name=ZOOM, bind="scales", encodings=["x"])


def _top_level(param: alt.Parameter, views: list[str]) -> alt.TopLevelSelectionParameter:
    """One top-level definition listing its views, instead of one copy per concat row.

    Copies of a param in several concatenated views are merged by Altair with a warning
    and generated view names; declaring it once with explicit names is deterministic.
    """
    spec = param.param
    if alt.utils.is_undefined(spec):
        raise ValueError(f"parameter {param.name!r} has no selection definition")
    return alt.TopLevelSelectionParameter(**spec.to_dict(), views=views)


def _time_x(duration_s: float, *, axis: alt.Axis | None = None) -> alt.X:
    domain_end = float(duration_s) if duration_s > 0 else FRAME_S
    return alt.X(
        f"{TIME_FIELD}:Q",
        title=TIME_TITLE,
        scale=alt.Scale(domain=[0.0, domain_end], nice=False, zero=False),
        axis=axis if axis is not None else alt.Axis(title=TIME_TITLE),
    )


def _display_label(label: str, negatives: frozenset[str] | set[str]) -> str:
    return f"{label}{NEGATIVE_SUFFIX}" if label in negatives else label


# --------------------------------------------------------------------------- charts


def timeline_chart(
    timeline: Timeline,
    *,
    thresholds: Mapping[str, float],
    height_per_label: int = 70,
    width: Width = "container",
    max_points: int = 3000,
) -> alt.VConcatChart:
    """One row per label: probability line + light area on [0, 1], dashed threshold rule.

    Rows are a vconcat of layered charts sharing one x scale (Streamlit's selections work
    with it; a facet would need the thresholds joined into the data). Each row has an
    invisible point layer at a constant height, so a click anywhere in a row picks the
    nearest time. Negative labels are grey, titled "(negative)", and get no threshold
    rule: they never produce events. Labels absent from ``thresholds`` get no rule.
    A rule marks the picked time in every row.
    """
    pooled, starts, _ = pooled_probabilities(timeline, max_points)
    labels = list(timeline.labels)
    duration = float(timeline.duration_s)
    y = alt.Y(
        "probability:Q",
        scale=alt.Scale(domain=[0.0, 1.0]),
        axis=alt.Axis(title=None, values=[0.0, 0.5, 1.0]),
    )
    rows: list[alt.LayerChart] = []
    views: list[str] = []
    row_names = labels if labels else ["(no labels)"]
    palette = label_colors(labels, timeline.negatives)
    for i, label in enumerate(row_names):
        negative = label in timeline.negatives
        color = palette.get(label, COLOR)
        last = i == len(row_names) - 1
        axis = alt.Axis(title=TIME_TITLE) if last else alt.Axis(title=None, labels=False)
        x = _time_x(duration, axis=axis)
        if labels:
            data = pd.DataFrame({TIME_FIELD: starts, "probability": pooled[i]})
        else:  # still a valid chart with the pick selection, just nothing to draw
            data = pd.DataFrame({TIME_FIELD: starts[:0], "probability": starts[:0]})
        base = alt.Chart(chart_data(data)).encode(x=x)
        view = f"timeline_hits_{i}"
        views.append(view)
        layers: list[alt.Chart] = [
            base.mark_area(color=color, opacity=0.18, clip=True).encode(y=y),
            base.mark_line(color=color, strokeWidth=1.25, clip=True).encode(y=y),
        ]
        if label in thresholds and not negative:
            rule_data = pd.DataFrame({"threshold": [float(thresholds[label])]})
            layers.append(
                alt.Chart(rule_data)
                .mark_rule(color=THRESHOLD_COLOR, strokeDash=[4, 3], strokeWidth=1)
                .encode(
                    y=alt.Y("threshold:Q", scale=alt.Scale(domain=[0.0, 1.0]), title=None),
                    tooltip=[alt.Tooltip("threshold:Q", format=".2f")],
                )
            )
        layers.append(
            base.mark_rule(color=PICKED_COLOR, strokeWidth=1.5, clip=True).transform_filter(
                alt.ParameterPredicate(param=PICK, empty=False)
            )
        )
        layers.append(
            base.mark_point(opacity=0, size=30)
            .encode(
                y=alt.datum(0.5),  # constant height: "nearest" then means nearest in time
                tooltip=[
                    alt.Tooltip(f"{TIME_FIELD}:Q", title=TIME_TITLE, format=".2f"),
                    alt.Tooltip("probability:Q", format=".3f"),
                ],
            )
            .properties(name=view)
        )
        title = alt.TitleParams(
            _display_label(label, timeline.negatives),
            anchor="start",
            fontSize=12,
            color=NEGATIVE_COLOR if negative else alt.Undefined,
        )
        # constructors with every property at once: each .properties()/.resolve_scale()
        # call deep-copies the chart, which costs ~0.5 s for an hour of 32 labels
        rows.append(alt.LayerChart(layer=layers, title=title, height=height_per_label, width=width))
    return alt.VConcatChart(
        vconcat=rows,
        spacing=10,
        params=[_top_level(_pick(), views), _top_level(_zoom(), views)],
        resolve=alt.Resolve(scale=alt.ScaleResolveMap(x="shared")),
    )


def scores_chart(
    clip_scores: pd.DataFrame, *, row_height: int = 20, width: Width = "container"
) -> alt.LayerChart:
    """Labels ranked by their clip max (bars), with the clip mean as a dark tick.

    Takes :meth:`Timeline.clip_scores` (label, max, mean, negative); negatives are grey
    and marked "(negative)".
    """
    df = pd.DataFrame(clip_scores).copy()
    if "negative" not in df:
        df["negative"] = False
    df = df.sort_values("max", ascending=False, kind="stable").reset_index(drop=True)
    df["negative"] = df["negative"].astype(bool)
    df["name"] = [
        f"{lbl}{NEGATIVE_SUFFIX}" if neg else str(lbl)
        for lbl, neg in zip(df["label"], df["negative"], strict=True)
    ]
    order = list(df["name"])
    y = alt.Y("name:N", sort=order, title=None)
    x_scale = alt.Scale(domain=[0.0, 1.0])
    tooltip = [
        alt.Tooltip("label:N"),
        alt.Tooltip("max:Q", format=".3f"),
        alt.Tooltip("mean:Q", format=".3f"),
        alt.Tooltip("negative:N"),
    ]
    base = alt.Chart(df).encode(y=y, tooltip=tooltip)
    bars = base.mark_bar().encode(
        x=alt.X("max:Q", scale=x_scale, title="clip score (bar: max, tick: mean)"),
        color=alt.when(alt.datum.negative)
        .then(alt.value(NEGATIVE_COLOR))
        .otherwise(alt.value(COLOR)),
    )
    ticks = base.mark_tick(color=MEAN_COLOR, thickness=2).encode(x=alt.X("mean:Q", scale=x_scale))
    height = max(row_height * len(order), row_height)
    return alt.layer(bars, ticks).properties(height=height, width=width, autosize=FIT_X)

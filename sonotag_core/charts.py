"""Timeline, heatmap, events and clip-score charts as Altair objects (no Streamlit here).

The page renders them with ``st.altair_chart(chart, on_select="rerun",
selection_mode="pick", key=...)`` and turns the click into a time with :func:`pick_time`.
Every clickable chart defines exactly one selection named ``"pick"`` whose only field is
``time_s``, so one parser serves them all. ``selection_mode="pick"`` matters: the charts
also carry an x-zoom selection named ``"zoom"``, which must not trigger reruns.

Long audio is max-pooled before plotting: one hour is 11 520 frames per label, more than
a browser should draw per row, and taking the max within each bin (rather than a mean or
every n-th frame) keeps a one-frame event visible at any zoom-out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Literal

import altair as alt
import numpy as np
import pandas as pd

from .timeline import Timeline
from .windows import FRAME_S

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
NO_EVENTS_TEXT = "no events above threshold"
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
_FIT_X = alt.AutoSizeParams(type="fit-x", contains="padding")


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


def _tidy(labels: Sequence[str], values: np.ndarray, starts: np.ndarray) -> pd.DataFrame:
    n_labels, n_points = values.shape
    return pd.DataFrame(
        {
            "time_s": np.tile(starts, n_labels),
            "label": np.repeat(np.asarray(list(labels), dtype=object), n_points),
            "probability": values.reshape(-1),
        }
    )


def _pooled(timeline: Timeline, max_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-pooled probabilities (labels, bins) with each bin's start and end time."""
    pooled, per_bin = _max_pool(timeline.probabilities, max_bins)
    bin_s = per_bin * FRAME_S
    starts = np.arange(pooled.shape[1], dtype=np.float64) * bin_s
    ends = np.minimum(starts + bin_s, float(timeline.duration_s))
    return pooled, starts, ends


def chart_frame(timeline: Timeline, max_points: int = 3000) -> pd.DataFrame:
    """Tidy ``time_s, label, probability`` rows, at most ``max_points`` per label.

    Short audio keeps every frame. Longer audio is binned over whole frames, each bin
    plotted at its start time with the max probability inside it, so no event disappears.
    """
    pooled, starts, _ = _pooled(timeline, max_points)
    return _tidy(timeline.labels, pooled, starts)


def heatmap_frame(timeline: Timeline, max_columns: int = 600) -> pd.DataFrame:
    """Like :func:`chart_frame` (max-pooled) plus ``time_end_s``, the cell's right edge.

    The last cell ends at ``duration_s``, never past the end of the audio.
    """
    pooled, starts, ends = _pooled(timeline, max_columns)
    df = _tidy(timeline.labels, pooled, starts)
    df.insert(1, "time_end_s", np.tile(ends, len(timeline.labels)))
    return df


def _chart_data(df: pd.DataFrame) -> pd.DataFrame | alt.InlineData:
    """The frame itself, or inline records past Altair's default 5 000-row limit.

    Streamlit ships DataFrames as Arrow whatever their size, but a plain ``to_dict()`` or
    ``save()`` refuses big frames; inline records keep every chart serializable.
    """
    if len(df) <= MAX_FRAME_ROWS:
        return df
    return alt.InlineData(values=json.loads(df.to_json(orient="records")))


# --------------------------------------------------------------------------- selections


def _pick(*, nearest: bool) -> alt.Parameter:
    """Click picks one time (no shift-toggle, so the payload holds at most one point)."""
    return alt.selection_point(
        name=PICK, fields=[TIME_FIELD], on="click", nearest=nearest, toggle=False
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
    pooled, starts, _ = _pooled(timeline, max_points)
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
        base = alt.Chart(_chart_data(data)).encode(x=x)
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
        params=[_top_level(_pick(nearest=True), views), _top_level(_zoom(), views)],
        resolve=alt.Resolve(scale=alt.ScaleResolveMap(x="shared")),
    )


def heatmap_chart(
    timeline: Timeline,
    *,
    max_columns: int = 600,
    row_height: int = 22,
    width: Width = "container",
) -> alt.Chart:
    """Label x time cells coloured by probability (max-pooled, so nothing short is lost).

    The data goes wide (one row per time bin, one column per label) and is folded back to
    label x time in the browser: 32 labels x 600 bins would be 19 200 tidy rows, past
    Altair's default row limit, and the wide table is a third of the size. A click on a
    cell picks its start time; cells tile the plot, so "nearest" is not needed (and would
    cost a Voronoi over every cell).
    """
    pooled, starts, ends = _pooled(timeline, max_columns)
    # safe field names, any label text (typed as transform_fold's list wants)
    keys: list[str | alt.FieldName] = [f"p{i}" for i in range(len(timeline.labels))]
    wide = pd.DataFrame(
        {TIME_FIELD: starts, "time_end_s": ends, **dict(zip(keys, pooled, strict=True))}
    )
    order = [_display_label(lbl, timeline.negatives) for lbl in timeline.labels]
    names = alt.InlineData(
        values=[{"key": k, "label": name} for k, name in zip(keys, order, strict=True)]
    )
    return (
        alt.Chart(_chart_data(wide))
        .transform_fold(keys, as_=["key", "probability"])
        .transform_lookup(lookup="key", from_=alt.LookupData(names, "key", ["label"]))
        .mark_rect()
        .encode(
            x=_time_x(timeline.duration_s),
            x2="time_end_s:Q",
            y=alt.Y("label:N", sort=order, scale=alt.Scale(domain=order), title=None),
            color=alt.Color(
                "probability:Q",
                scale=alt.Scale(scheme="viridis", domain=[0.0, 1.0]),
                legend=alt.Legend(title="probability"),
            ),
            tooltip=[
                alt.Tooltip("label:N"),
                alt.Tooltip(f"{TIME_FIELD}:Q", title="from (s)", format=".2f"),
                alt.Tooltip("time_end_s:Q", title="to (s)", format=".2f"),
                alt.Tooltip("probability:Q", title="max probability", format=".3f"),
            ],
        )
        .add_params(_pick(nearest=False), _zoom())
        .properties(height=max(row_height * len(order), row_height), width=width, autosize=_FIT_X)
    )


def events_chart(
    events: pd.DataFrame,
    labels: Sequence[str],
    duration_s: float,
    *,
    row_height: int = 22,
    width: Width = "container",
) -> alt.LayerChart:
    """Gantt bars (onset -> offset) per label; every label gets a row, events or not.

    The pick selection is on a ``time_s`` copy of ``onset_s``, so :func:`pick_time` reads
    every chart the same way. "nearest" lets a click pick a bar narrower than a pixel.
    With no events the chart still has its axes, a note, and the pick selection.
    """
    columns = ["label", "onset_s", "offset_s", "peak", "mean"]
    data = pd.DataFrame(events, columns=columns).reset_index(drop=True)
    data = data[data["label"].isin(list(labels))].reset_index(drop=True)  # no ghost rows
    data[TIME_FIELD] = data["onset_s"].astype(np.float64)
    order = list(labels)
    y = alt.Y("label:N", scale=alt.Scale(domain=order), sort=order, title=None)
    bars = (
        alt.Chart(_chart_data(data))
        .mark_bar(color=COLOR, stroke=COLOR, strokeWidth=1.5, clip=True)
        .encode(
            x=_time_x(duration_s),
            x2="offset_s:Q",
            y=y,
            tooltip=[
                alt.Tooltip("label:N"),
                alt.Tooltip("onset_s:Q", title="onset (s)", format=".2f"),
                alt.Tooltip("offset_s:Q", title="offset (s)", format=".2f"),
                alt.Tooltip("peak:Q", format=".3f"),
                alt.Tooltip("mean:Q", format=".3f"),
            ],
        )
        .add_params(_pick(nearest=True), _zoom())
        .properties(name="event_bars")
    )
    layers: list[alt.Chart] = [bars]
    height = max(row_height * len(order), 2 * row_height)
    if data.empty:
        note = pd.DataFrame({"text": [NO_EVENTS_TEXT]})
        layers.append(
            alt.Chart(note)
            .mark_text(color=NEGATIVE_COLOR, fontSize=13, align="center", baseline="middle")
            .encode(
                text="text:N",
                x=alt.datum(max(float(duration_s), 0.0) / 2),  # middle of the time axis
                y=alt.value(height / 2),
            )
        )
    return alt.layer(*layers).properties(height=height, width=width, autosize=_FIT_X)


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
    return alt.layer(bars, ticks).properties(height=height, width=width, autosize=_FIT_X)


# --------------------------------------------------------------------------- events back


def pick_time(event: Any) -> float | None:
    """The picked time from ``st.altair_chart(..., on_select="rerun")``'s return value.

    Expects ``{"selection": {"pick": [{"time_s": 12.5, ...}]}}``; anything else (None,
    an empty selection, missing keys, a non-numeric, negative or non-finite time) gives
    None. Never raises: a chart payload must not crash the page.
    """
    try:
        picks = event["selection"][PICK]
        if not isinstance(picks, (list, tuple)) or not picks:
            return None
        value = picks[0][TIME_FIELD]
        if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
            return None
        t = float(value)
    except Exception:  # any malformed payload means "no pick"
        return None
    return t if math.isfinite(t) and t >= 0.0 else None

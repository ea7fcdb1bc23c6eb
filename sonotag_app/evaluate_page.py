"""The Evaluate page's widgets: pick a stored analysis, upload ground truth, map its
classes to labels, read the per-label metrics, and apply the calibrated thresholds on
the Analyze page (a link that carries them, so they survive in its share link)."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import streamlit as st

from sonotag_app import context
from sonotag_app.keys import KEYS, keyed
from sonotag_core.access import Viewer
from sonotag_core.dashboard.charts import label_colors
from sonotag_core.dashboard.evaluation_charts import (
    f1_threshold_chart,
    psd_roc_chart,
    truth_lane_chart,
)
from sonotag_core.domain.events import EventParams, detect_events
from sonotag_core.domain.truth import GroundTruth, match_classes, parse_truth
from sonotag_core.errors import SonoTagError
from sonotag_core.exports import evaluation_csv
from sonotag_core.service import detectors as det_service
from sonotag_core.service import evaluate as ev
from sonotag_core.service import library
from sonotag_core.service.api import Service, stored_params
from sonotag_core.service.detectors import Detector
from sonotag_core.service.library import Analysed
from sonotag_core.service.runtime import Store

ANALYZE = "pages/analyze.py"
NONE = "(no label)"
METRICS = {
    "f1": "Event F1",
    "segment_f1": "Segment F1",
    "psds1": "PSDS1",
    "psds2": "PSDS2",
    "auroc": "AUROC",
}


def pick_analysis(store: Store, me: Viewer) -> str | None:
    """A stored analysis (``?analysis=ID`` preselects it), or None with a note."""
    rows = library.visible_analyses(store, me)
    if not rows:
        st.info("The Library is empty: analyse something on the Analyze page first.")
        return None
    names = {r.id: library.describe(r) for r in rows}
    ids = list(names)
    wanted = st.query_params.get("analysis")
    index = ids.index(wanted) if wanted in ids else 0
    return st.selectbox(
        "Stored analysis",
        ids,
        index=index,
        format_func=names.__getitem__,
        key=KEYS.evaluate_analysis,
    )


def upload_truth() -> GroundTruth | None:
    """The uploaded ground truth, parsed; a bad file says what is wrong."""
    up = st.file_uploader(
        "Ground truth: DCASE tsv (filename, onset, offset, event_label), an Audacity label "
        "track or a Raven selection table",
        type=["tsv", "txt", "csv"],
        key=KEYS.evaluate_truth,
    )
    if up is None:
        return None
    try:
        return parse_truth(up.getvalue(), name=up.name)
    except SonoTagError as exc:
        context.error(exc)
        return None


def mapping_table(truth: GroundTruth, labels: list[str]) -> dict[str, str]:
    """Ground-truth classes -> labels: exact names first, editable; unmatched are listed."""
    auto = match_classes(truth.classes(), labels)
    table = pd.DataFrame(
        {"class": truth.classes(), "label": [auto.pairs.get(c, NONE) for c in truth.classes()]}
    )
    edited = st.data_editor(
        table,
        hide_index=True,
        disabled=["class"],
        column_config={
            "label": st.column_config.SelectboxColumn("label", options=[NONE, *labels]),
        },
        key=keyed("ev_map", "|".join(truth.classes()), "|".join(labels)),
        width="stretch",
    )
    return {str(r["class"]): str(r["label"]) for _, r in edited.iterrows() if r["label"] != NONE}


def keep(service: Service, evaluated: ev.Evaluated, truth: tuple[str, str]) -> None:
    """Store the best-F1 thresholds for this model: the Analyze page offers them for
    every later analysis with these labels. ``truth``: (what, origin)."""
    cals = ev.calibrate_from_truth(evaluated, *truth)
    try:
        if service.store is None:
            raise SonoTagError("The result store is not available: nothing was kept.")
        n = service.store.save_calibrations(
            cals, service.model.info.checkpoint_sha256, owner=context.viewer().owner
        )
    except SonoTagError as exc:
        context.error(exc)
        return
    st.session_state[KEYS.evaluate_kept] = f"Kept {n} calibrated threshold(s) for later analyses."


def views(evaluated: ev.Evaluated, params: EventParams, labels: list[str]) -> None:
    """Detections over the ground truth on the time axis, then event F1 against
    threshold and the PSD-ROC per label."""
    e = evaluated.evaluation
    colors = label_colors(labels)
    timeline = evaluated.shown
    found = evaluated.shown_detections
    if found is None:
        found = detect_events(timeline, params)
    truth = pd.DataFrame(evaluated.shown_truth, columns=["onset", "offset", "label"])
    st.markdown("**Detections and ground truth**")
    st.altair_chart(
        truth_lane_chart(found[["label", "onset_s", "offset_s"]], truth, timeline.duration_s),
        key=KEYS.evaluate_lanes,
    )
    if e.f1_curves.empty:
        return
    left, right = st.columns(2)
    current = {str(r.label): float(r.threshold) for r in e.per_label.itertuples()}
    left.markdown("**Event F1 against threshold**")
    left.altair_chart(
        f1_threshold_chart(e.f1_curves, current, e.best_thresholds(), colors=colors),
        key=KEYS.evaluate_f1,
    )
    right.markdown("**PSD-ROC (scenario 1)**")
    right.altair_chart(psd_roc_chart(e.psd_roc, colors=colors), key=KEYS.evaluate_roc)


def results(
    service: Service,
    evaluated: ev.Evaluated,
    analysis_id: str,
    labels: list[str],
    truth: tuple[str, str],
    params: EventParams,
) -> None:
    """Macro metrics, the per-label table, downloads and Apply."""
    e = evaluated.evaluation
    if evaluated.match.unmatched_classes:
        st.caption(
            context.md_text(
                "Ground-truth classes left out (no label): "
                + ", ".join(evaluated.match.unmatched_classes)
            )
        )
    cols = st.columns(len(METRICS))
    for col, (key, name) in zip(cols, METRICS.items(), strict=True):
        value = e.macro.get(key)
        col.metric(name, "–" if value is None or pd.isna(value) else f"{value:.3f}")
    st.dataframe(e.per_label, hide_index=True, width="stretch", key=KEYS.evaluate_table)
    views(evaluated, params, labels)
    a, b = st.columns(2)
    a.download_button("Evaluation (CSV)", evaluation_csv(e), "evaluation.csv", "text/csv")
    b.download_button(
        "Evaluation (JSON)",
        json.dumps(e.as_dict(), indent=2, allow_nan=False),
        "evaluation.json",
        "application/json",
    )
    best = e.best_thresholds()
    if not best:
        return
    shown = ", ".join(f"{k} {v:.2f}" for k, v in best.items())
    st.markdown(context.md_text(f"Thresholds that maximise event F1: {shown}"))
    if service.store is not None:
        st.button(
            "Keep them for later analyses with these labels",
            key=KEYS.evaluate_keep,
            on_click=keep,
            args=(service, evaluated, truth),
        )
    if note := st.session_state.pop(KEYS.evaluate_kept, None):
        st.success(note)
    st.page_link(
        ANALYZE,
        label="Apply these thresholds on the Analyze page",
        icon=":material/tune:",
        query_params={
            "analysis": analysis_id,
            "l": labels,
            "lt": [f"{k}:{v:.2f}" for k, v in best.items()],
        },
    )


FROM_FILE, FROM_REVIEWS = "A file", "This analysis's reviews"


def evaluate(store: Store, me: Viewer) -> None:
    """The whole page below its title."""
    analysis_id = pick_analysis(store, me)
    if analysis_id is None:
        return
    origin = st.radio(
        "Ground truth from",
        [FROM_FILE, FROM_REVIEWS],
        horizontal=True,
        key=KEYS.evaluate_from,
        help="Reviews: accepted events are right, rejected ones wrong; only the reviewed "
        "spans count (nobody listened anywhere else).",
    )
    truth = upload_truth() if origin == FROM_FILE else None
    if origin == FROM_FILE and truth is None:
        return
    try:
        service = context.service(context.model(), store)
        analysed = service.open(analysis_id)
        labels = analysed.labels
        assert labels is not None
        positive = [x for x in labels.labels if x not in labels.negatives]
        # the analysis's own event settings: its reviews were made on those events
        params = stored_params(context.settings(), analysed.settings)
        thresholds = {x: params.threshold_for(x) for x in positive}
        params = dataclasses.replace(params, label_thresholds=thresholds)
        if truth is None:
            with st.spinner("Scoring against the reviewed events…"):
                done = ev.evaluate_from_reviews(service, analysed, labels, params)
            name, kind = "reviewed events", "reviews"
        else:
            chosen = mapping_table(truth, positive)
            with st.spinner("Scoring against the ground truth…"):
                done = ev.evaluate_analysis(
                    service, analysed, labels, truth, thresholds, mapping=chosen
                )
            name, kind = str(st.session_state[KEYS.evaluate_truth].name), "ground truth"
    except SonoTagError as exc:
        context.error(exc)
        return
    results(service, done, analysis_id, list(labels.labels), (name, kind), params)
    if truth is not None:
        side_by_side(service, analysed, truth, thresholds, chosen)


#: the per-label columns the comparison of text alone and refined shows
COMPARED = ("f1", "psds1", "auroc", "threshold")


def side_by_side(
    service: Service,
    analysed: Analysed,
    truth: GroundTruth,
    thresholds: dict[str, float],
    mapping: dict[str, str],
) -> None:
    """Each label with a refined detector scored twice on the same ground truth: by its
    text alone and by the detector (the viewer's newest version made with this model)."""
    labels = analysed.labels
    if labels is None or service.store is None:
        return
    sha = service.model.info.checkpoint_sha256
    newest: dict[str, Detector] = {}
    for d in det_service.list_detectors(service.store, context.viewer()):
        if d.checkpoint_sha256 == sha and d.label in labels.positives:
            newest[d.label] = d  # listed by name then version: the last is the newest
    if not newest:
        return
    st.subheader("Text alone and refined")
    st.caption(
        "The same ground truth scored by each label's text alone and by its refined "
        "detector (at the detector's calibrated threshold)."
    )
    try:
        with st.spinner("Scoring the refined detectors…"):
            side = ev.evaluate_side_by_side(
                service, analysed, labels, truth, thresholds, list(newest.values()), mapping=mapping
            )
    except SonoTagError as exc:
        context.error(exc)
        return
    text = side.text.evaluation.per_label.set_index("label")
    refined = side.refined.evaluation.per_label.set_index("label")
    rows = []
    for label, ref in side.detectors.items():
        if label not in text.index or label not in refined.index:
            continue
        row: dict[str, object] = {"label": label, "detector": ref}
        for column in COMPARED:
            row[f"{column} (text)"] = text.at[label, column]
            row[f"{column} (refined)"] = refined.at[label, column]
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key=KEYS.evaluate_compared)


def render() -> None:
    """Lay out the Evaluate page."""
    context.start_page("evaluate")
    st.title("Evaluate")
    st.caption(
        "How well does each label work on this audio? Upload what really happens in it and "
        "SonoTag scores its frame probabilities with sed_scores_eval (the DCASE metrics)."
    )
    try:
        store = context.store()
    except SonoTagError as exc:
        context.error(exc)
        st.stop()
    evaluate(store, context.viewer())

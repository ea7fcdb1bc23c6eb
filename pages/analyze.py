"""Analyze: audio in, labels in, timelines, events, playback, exports and a share link out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

import ui_state
from sonotag_core import charts, exports, library, share, sources
from sonotag_core.analysis import report_for
from sonotag_core.errors import LimitError, SonoTagError
from sonotag_core.events import EventParams
from sonotag_core.examples import EXAMPLES, example_path
from sonotag_core.labels import LabelSet, parse_labels
from sonotag_core.presets import PRESETS, preset_text

ui_state.leave_legacy_page_mode()
S = ui_state.settings()
MODES = ("Example", "Link", "Upload", "Library")
VIEWS = {"timeline": "Timelines", "heatmap": "Heatmap", "events": "Events", "scores": "Scores"}
HOPS = {10.0: "10 s (fast)", 5.0: "5 s (50 % overlap, 2x slower)"}
LT_OVERRIDES = "lt_overrides"  # label -> the threshold the user set for it
# widgets a share link sets (per-label thresholds "lt::<label>" too)
LINKED_KEYS = "in_mode in_link in_example in_analysis labels_text thr hop med min_ev gap view"

# ---------------------------------------------------------------- state from the link


def current_params() -> dict[str, list[str]]:
    return {k: st.query_params.get_all(k) for k in st.query_params}


def stored_labels_text(analysis_id: str) -> str | None:
    """The labels a stored analysis was made with, as the label box shows them."""
    try:
        stored = ui_state.store().get_labels(analysis_id)
    except SonoTagError:
        return None
    return None if stored is None else labels_text(stored)


def labels_text(label_set: LabelSet) -> str:
    """The label box's text: one label per line, negatives with a leading '-'."""
    return label_set.to_text().replace("; ", "\n")  # labels never contain ';'


def load_link_state(params: dict[str, list[str]]) -> None:
    """The query params become the widgets' values: once per session, and again when a
    link inside the app (Library, Compare) brings new ones."""
    state, warnings = share.from_query_params(params, settings=S, example_ids=EXAMPLES)
    ss = st.session_state
    ss[ui_state.WARNINGS] = warnings
    ss.in_mode = "Library" if state.analysis else "Link" if state.link else "Example"
    ss.in_link = state.link or ""
    ss.in_example = state.example or next(iter(EXAMPLES))
    ss.in_analysis = state.analysis
    ss.labels_text = labels_text(state.label_set)
    if state.analysis and not params.get("l"):  # a bare ?analysis= link: the stored labels
        ss.labels_text = stored_labels_text(state.analysis) or ss.labels_text
    ss.thr, ss.hop, ss.med = state.threshold, state.hop_s, state.median_frames
    ss.min_ev, ss.gap, ss.view = state.min_event_s, state.fill_gap_s, state.view
    ss[LT_OVERRIDES] = dict(state.label_thresholds)  # the link's; the rest follow thr
    for label, value in state.label_thresholds.items():
        ss[f"lt::{label}"] = value
    ss[ui_state.PICKED_T] = state.t
    ss.auto_run = bool(state.link or state.example or state.analysis) and bool(params)
    ss[ui_state.URL_LOADED] = True


_params = current_params()
if not st.session_state.get(ui_state.URL_LOADED) or (
    _params and _params != st.session_state.get(ui_state.QP_WRITTEN)
):
    load_link_state(_params)
ui_state.keep_widget_values(
    [*LINKED_KEYS.split(), *(k for k in st.session_state if k.startswith("lt::"))]
)

st.title("SonoTag")
st.caption("Find when any sound happens in any audio, from words alone.")
for w in st.session_state.get(ui_state.WARNINGS, []):
    ui_state.warning(w)

# ---------------------------------------------------------------- inputs


def library_picker() -> None:
    """Choose a stored analysis; choosing one loads its labels into the label box."""
    try:
        rows = library.visible_analyses(ui_state.store(), ui_state.viewer())
    except SonoTagError as exc:
        ui_state.error(exc)
        return
    names = {r.id: library.describe(r) for r in rows}
    current = st.session_state.get("in_analysis")
    if current and current not in names:
        names = {current: f"analysis {current}", **names}
    if not names:
        st.info("The Library is empty: analyse an example, a link or an upload first.")
        return

    def use_stored_labels() -> None:
        text = stored_labels_text(st.session_state.in_analysis or "")
        if text:
            st.session_state.labels_text = text

    st.selectbox("Stored analysis", list(names), key="in_analysis", format_func=names.get,
                 on_change=use_stored_labels)  # fmt: skip
    st.caption("Stored audio is never encoded again: new labels and thresholds only need "
               "the text encoder.")  # fmt: skip


left, right = st.columns([3, 2], gap="large")
with left:
    mode = st.segmented_control("Audio", MODES, key="in_mode", required=True) or "Example"
    upload = None
    if mode == "Link":
        st.text_input(
            "YouTube or SoundCloud link", key="in_link",
            placeholder="https://www.youtube.com/watch?v=… or https://soundcloud.com/artist/track",
        )  # fmt: skip
    elif mode == "Upload":
        upload = st.file_uploader(
            "Audio or video file",
            type=["wav", "mp3", "flac", "ogg", "opus", "m4a", "aac", "webm", "mp4", "mkv", "mov"],
        )
        if upload is not None:  # the server has every byte: Analyze will find it
            st.caption(f"“{ui_state.md_text(upload.name)}” is on the server, ready to analyse. Once analysed it "
                       "is kept in the Library; its share link opens it there.")  # fmt: skip
        else:
            st.caption("An analysed upload is kept in the Library of this server; its share "
                       "link opens it there.")  # fmt: skip
    elif mode == "Library":
        library_picker()
    else:
        st.selectbox(
            "Example clip", list(EXAMPLES), key="in_example",
            format_func=lambda k: f"{EXAMPLES[k].title} ({EXAMPLES[k].seconds:.0f} s)",
        )  # fmt: skip
        ex = EXAMPLES[st.session_state.in_example]
        st.caption(f"{ex.description} Suggested labels: {'; '.join(ex.labels)}")

with right:

    def add_preset() -> None:
        name = st.session_state.preset
        if name:
            current = st.session_state.get("labels_text", "").strip()
            st.session_state.labels_text = (current + "\n" if current else "") + preset_text(
                name
            ).replace("; ", "\n")
            st.session_state.preset = None

    st.text_area(
        "Labels (one per line or separated by ;)", key="labels_text", height=140,
        help="Describe sounds in words. A leading '-' marks a negative prompt: it is scored "
        "and shown, but never produces events.",
    )  # fmt: skip
    st.selectbox("Add a preset", list(PRESETS), index=None, key="preset", on_change=add_preset,
                 placeholder="Add labels from a preset…")  # fmt: skip

try:
    labels = parse_labels(
        st.session_state.labels_text, max_labels=S.max_labels, max_chars=S.max_label_chars
    )
except LimitError as exc:
    labels = None
    ui_state.error(exc)

def set_override(label: str) -> None:
    """The user moved this label's own slider: it keeps that value from now on (moving it
    back onto the global threshold makes it follow the global one again)."""
    value = float(st.session_state[f"lt::{label}"])
    overrides = st.session_state.setdefault(LT_OVERRIDES, {})
    if abs(value - st.session_state.thr) < 1e-9:
        overrides.pop(label, None)
    else:
        overrides[label] = value


with st.sidebar:
    st.header("Settings")
    st.radio("Window hop", list(HOPS), key="hop", format_func=HOPS.get,
             help="5 s overlaps windows and averages them: smoother, twice the compute.")  # fmt: skip
    st.slider("Event threshold", 0.01, 0.99, key="thr", step=0.01)
    st.select_slider("Smoothing (median frames)", list(range(1, share.MEDIAN_FRAMES_MAX + 1, 2)), key="med",
                     help="1 = off. 3 removes one-frame (0.31 s) spikes.")  # fmt: skip
    st.slider("Minimum event length (s)", 0.0, share.MIN_EVENT_S_MAX, key="min_ev", step=0.1)
    st.slider("Fill gaps shorter than (s)", 0.0, share.FILL_GAP_S_MAX, key="gap", step=0.05)
    if labels is not None and labels.positives:
        overrides = st.session_state.setdefault(LT_OVERRIDES, {})
        with st.expander("Per-label thresholds"):
            st.caption("A label follows the event threshold until you move its own slider.")
            for label in labels.positives:
                key = f"lt::{label}"
                if label not in overrides:  # follows the global threshold, wherever it is
                    st.session_state[key] = st.session_state.thr
                st.slider(ui_state.md_text(label), 0.01, 0.99, key=key, step=0.01,
                          on_change=set_override, args=(label,))  # fmt: skip


def label_thresholds() -> dict[str, float]:
    """The thresholds the user set per label; every other label uses the global one."""
    if labels is None:
        return {}
    overrides = st.session_state.get(LT_OVERRIDES, {})
    return {label: float(overrides[label]) for label in labels.positives if label in overrides}


# ---------------------------------------------------------------- run


def resolve(progress: ui_state.ProgressBar, store, model) -> sources.SourceInfo:
    """The selected input as a local file: a stored link's kept audio, else a download
    (remembered per server), an upload or an example."""
    data_dir = Path(S.data_dir)
    if mode == "Example":
        ex_id = st.session_state.in_example
        return sources.from_path(example_path(ex_id, data_dir), title=EXAMPLES[ex_id].title)
    if mode == "Upload":
        if upload is None:
            raise SonoTagError(
                "Choose a file to upload first. If one is still uploading, press Analyze "
                "again when it says it is ready."
            )
        return sources.from_upload(upload.getvalue(), upload.name, data_dir / sources.UPLOADS_DIR)
    link = sources.parse_link(st.session_state.in_link.strip())
    info = store and library.stored_link(store, link.url, hop_s=float(st.session_state.hop),
                                         checkpoint_sha256=model.info.checkpoint_sha256)  # fmt: skip
    memo = ui_state.link_memo()
    info = info or memo.get(link.url)
    if info is None:
        workdir = data_dir / sources.DOWNLOADS_DIR  # the store moves it into media/ when saved
        workdir.mkdir(parents=True, exist_ok=True)
        info = sources.from_url(
            link.url, workdir, max_duration_s=S.max_duration_s, progress=progress
        )
        memo.put(link.url, info)
    return dataclasses.replace(info, start_s=link.start_s)  # keep the link's &t=


def open_store():
    """The result store, or None with a warning: a broken store must not stop analyses."""
    try:
        return ui_state.store()
    except SonoTagError as exc:
        ui_state.warning(f"{exc} Analyses work, but are not saved in the Library.")
        return None


def event_params() -> EventParams:
    """The event settings the sidebar shows now (kept with a saved analysis, too)."""
    return EventParams.from_settings(
        S, threshold=st.session_state.thr, label_thresholds=label_thresholds(),
        median_frames=st.session_state.med, fill_gap_s=st.session_state.gap,
        min_event_s=st.session_state.min_ev,
    )  # fmt: skip


def run_analysis(save: bool) -> None:
    with st.status("Analysing…", expanded=True) as status:
        bar = ui_state.ProgressBar()
        try:
            bar.bar.progress(0.0, text="Loading the OpenFLAM model (first run only)…")
            model = ui_state.model(bar)
            store = open_store()
            if mode == "Library":
                if store is None or not st.session_state.get("in_analysis"):
                    raise SonoTagError("Choose a stored analysis first.")
                done = library.open_analysis(store, model, st.session_state.in_analysis)
            else:
                ui_state.rate_limiter().check(*ui_state.user_keys())
                hop_s = float(st.session_state.hop)
                done = library.run(
                    model, resolve(bar, store, model), labels, hop_s=hop_s,
                    settings=S, store=store, cache=ui_state.embedding_cache(), save=save,
                    progress=bar, viewer=ui_state.viewer(), update_existing=True,
                    run_settings={"hop_s": hop_s, **event_params().as_settings()},
                )  # fmt: skip
            st.session_state[ui_state.RESULT] = done
            bar.done(f"Done: {done.embeddings.n_windows} window(s) in {done.seconds:.1f} s")
            status.update(label=f"Analysed “{ui_state.md_text(done.source.title)}”", state="complete",
                          expanded=False)  # fmt: skip
        except SonoTagError as exc:
            bar.clear()
            status.update(label="Could not analyse this audio", state="error", expanded=True)
            ui_state.error(exc)


clicked = st.button("Analyze", type="primary", disabled=labels is None)
auto = st.session_state.pop("auto_run", False)
if clicked or auto:
    run_analysis(save=clicked)  # opening a shared link adds no copy to the Library

# ---------------------------------------------------------------- results

result: library.Analysed | None = st.session_state.get(ui_state.RESULT)
report = None
if result is not None and labels is not None:
    try:
        params = event_params()
        report = report_for(
            ui_state.model(), ui_state.text_cache(), result.source, result.embeddings,
            labels, params, hop_s=result.hop_s,
        )  # fmt: skip
    except SonoTagError as exc:
        ui_state.error(exc)

if report is not None:
    src, tl, events = result.source, report.timeline, report.events

    def pick_from(key: str) -> None:
        t = charts.pick_time(st.session_state.get(key))
        if t is not None:
            st.session_state[ui_state.PICKED_T] = t

    def pick_event_row() -> None:
        rows = (st.session_state.get("event_table") or {}).get("selection", {}).get("rows", [])
        if rows and rows[0] < len(events):
            st.session_state[ui_state.PICKED_T] = float(events.iloc[rows[0]]["onset_s"])

    st.subheader(ui_state.md_text(src.title))
    if ui_state.shared_with_me(result.analysis_id):
        st.caption("Shared with you through its link, read-only: only the person who made it "
                   "can delete it. Analyze it again to keep a copy of your own.")  # fmt: skip
    m = st.columns(4)
    m[0].metric("Duration", f"{tl.duration_s:.1f} s")
    m[1].metric("Windows", result.embeddings.n_windows)
    m[2].metric("Events", len(events))
    took = (
        "from the Library"
        if result.seconds == 0 and result.analysis_id
        else f"{result.seconds:.1f} s"
    )
    m[3].metric("Analysis time", took)

    picked = st.session_state.get(ui_state.PICKED_T)
    if picked is None and src.start_s:
        picked = src.start_s  # a link's &t= is where playback starts
    start = int(picked) if picked is not None and 0 <= picked < tl.duration_s else 0
    if result.warning:
        ui_state.warning(result.warning)
    if src.path.is_file():
        st.audio(str(src.path), format=ui_state.audio_mime(src.path), start_time=start,
                 autoplay=picked is not None)  # fmt: skip
        st.caption(f"Playing from {start} s — click a chart or an event row to jump."
                   if picked is not None else "Click a chart or an event row to play from there.")  # fmt: skip

    view = st.segmented_control("View", list(VIEWS), key="view", format_func=VIEWS.get,
                                required=True) or "timeline"  # fmt: skip
    thresholds = {lab: params.threshold_for(lab) for lab in tl.labels}
    if view == "timeline":
        chart = charts.timeline_chart(tl, thresholds=thresholds)
    elif view == "heatmap":
        chart = charts.heatmap_chart(tl)
    elif view == "events":
        chart = charts.events_chart(events, tl.labels, tl.duration_s)
    else:
        chart = charts.scores_chart(report.clip_scores)
    key = f"chart_{view}"
    if view == "scores":
        st.altair_chart(chart, width="stretch")
    else:
        st.altair_chart(chart, on_select=lambda k=key: pick_from(k), selection_mode="pick",
                        key=key, width="stretch")  # fmt: skip
        if view != "events":
            st.altair_chart(charts.events_chart(events, tl.labels, tl.duration_s),
                            on_select=lambda: pick_from("chart_events_below"),
                            selection_mode="pick", key="chart_events_below",
                            width="stretch")  # fmt: skip

    st.markdown("**Events**")
    if len(events):
        st.dataframe(events, hide_index=True, on_select=pick_event_row,
                     selection_mode="single-row", key="event_table",
                     column_config={"peak": st.column_config.NumberColumn(format="%.3f"),
                                    "mean": st.column_config.NumberColumn(format="%.3f")})  # fmt: skip
    else:
        st.info("No events above the threshold. Lower the threshold or try other labels.")

    st.markdown("**Download**")
    stem = Path(src.title or "sonotag").stem or "sonotag"
    cols = st.columns(len(exports.FORMATS))
    for col, (name, fmt) in zip(cols, exports.FORMATS.items(), strict=True):
        col.download_button(
            name, data=lambda n=name: exports.export_text(report, n), file_name=stem + fmt.suffix,
            mime=fmt.mime, help=fmt.description, key=f"dl_{name}", on_click="ignore",
        )  # fmt: skip

# ---------------------------------------------------------------- share

if labels is not None:
    link = None
    if mode == "Link" and st.session_state.in_link.strip():
        try:
            link = sources.parse_link(st.session_state.in_link.strip()).url
        except SonoTagError:
            link = None
    stored_id = result.analysis_id if result is not None else None
    view_state = share.ViewState(
        link=link,
        example=st.session_state.in_example if mode == "Example" else None,
        # uploads and Library picks are shared by their stored analysis
        analysis=stored_id if mode in ("Upload", "Library") else None,
        labels=labels.labels,
        negatives=labels.negatives,
        threshold=float(st.session_state.thr),
        label_thresholds=label_thresholds(),
        hop_s=float(st.session_state.hop),
        median_frames=int(st.session_state.med),
        min_event_s=float(st.session_state.min_ev),
        fill_gap_s=float(st.session_state.gap),
        view=st.session_state.get("view") or "timeline",
        t=st.session_state.get(ui_state.PICKED_T),
    )
    written = share.to_query_params(view_state, settings=S)
    st.query_params.from_dict(written)
    st.session_state[ui_state.QP_WRITTEN] = {
        k: list(v) if isinstance(v, list) else [v] for k, v in written.items()
    }
    with st.expander("Share this view", icon=":material/share:"):
        base = (st.context.url or "").split("?")[0]
        st.code(share.share_url(base, view_state, settings=S), language=None, wrap_lines=True)
        st.caption("The address bar holds this link too. Opening it restores the audio, "
                   "labels, settings and the selected moment.")  # fmt: skip

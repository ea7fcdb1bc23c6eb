"""Analyze: audio in, labels in, timelines, events, playback, exports and a share link out."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import streamlit as st

import ui_state
import ui_workbench
from sonotag_core import library, share, sources
from sonotag_core.analysis import report_for
from sonotag_core.errors import LimitError, SonoTagError
from sonotag_core.events import EventParams
from sonotag_core.examples import EXAMPLES, example_path
from sonotag_core.labels import LabelSet, parse_labels
from sonotag_core.presets import PRESETS, merge_labels
from sonotag_core.progress import RunHandle

ui_state.leave_legacy_page_mode()
S = ui_state.settings()
MODES = ("Example", "Link", "Upload", "Record", "Library")
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
# Messages that come and go sit in containers that are always there: an element's place on
# the page is its identity, and the player must keep its place (and its playback) when a
# message or the progress box appears or goes above it.
with st.container():
    if link_problems := share.combined_warning(st.session_state.get(ui_state.WARNINGS, [])):
        ui_state.warning(link_problems)  # one banner, however many parameters were wrong

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
    elif mode == "Record":
        upload = st.audio_input("Record from the microphone", sample_rate=48_000, key="mic")
        st.caption("Recorded at 48 kHz and analysed like an upload; once analysed it is kept "
                   "in the Library.")  # fmt: skip
    elif mode == "Library":
        library_picker()
    else:
        st.selectbox(
            "Example clip", list(EXAMPLES), key="in_example",
            format_func=lambda k: f"{EXAMPLES[k].title} ({EXAMPLES[k].seconds:.0f} s)",
        )  # fmt: skip
        ex = EXAMPLES[st.session_state.in_example]
        st.caption(f"{ex.description} Suggested labels: {ui_state.md_text('; '.join(ex.labels))}")

        def use_suggested() -> None:
            st.session_state.labels_text = merge_labels(
                "", EXAMPLES[st.session_state.in_example].labels
            )

        st.button("Use the suggested labels", on_click=use_suggested, key="use_suggested",
                  help="Replaces the labels in the box with this example's.")  # fmt: skip

with right:

    def add_preset() -> None:
        name = st.session_state.preset
        if name:
            # labels already in the box are not added twice
            st.session_state.labels_text = merge_labels(
                st.session_state.get("labels_text", ""), PRESETS[name]
            )
            st.session_state.preset = None

    st.text_area(
        "Labels (one per line or separated by ;)", key="labels_text", height=140,
        help="Describe sounds in words. A leading '-' marks a negative prompt: it is scored "
        "and shown, but never produces events.",
    )  # fmt: skip
    st.selectbox("Add a preset", list(PRESETS), index=None, key="preset", on_change=add_preset,
                 placeholder="Add labels from a preset…")  # fmt: skip

label_problem = st.container()
try:
    labels = parse_labels(
        st.session_state.labels_text, max_labels=S.max_labels, max_chars=S.max_label_chars
    )
except LimitError as exc:
    labels = None
    with label_problem:
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
    if mode == "Record":
        if upload is None:
            raise SonoTagError("Record something first: press the microphone, then stop.")
        name = time.strftime("Recording %Y-%m-%d %H.%M.%S.wav")
        return sources.from_upload(upload.getvalue(), name, data_dir / sources.UPLOADS_DIR)
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


CANCEL, RUN, CANCELLED = "cancel_run", "run_state", "run_cancelled"  # session keys
CANCEL_WAIT_S = 120.0  # how long the rerun waits for the cancelled run to stop


def cancel_run() -> None:
    """The Cancel button's callback: the click stops the running script at its next
    progress update (one batch at most) and starts this rerun, which says what became
    of it (:func:`show_cancelled`)."""
    st.session_state[CANCELLED] = True


def show_cancelled() -> None:
    """The rerun after a Cancel click. The stopped run unwinds in its own thread (removing
    its files as it goes), so wait for it: the message then says what really happened."""
    run: RunHandle | None = st.session_state.get(RUN)
    if run is None:
        return
    with st.spinner("Stopping the analysis…"):
        stopped = run.wait(CANCEL_WAIT_S)
    if run.result is not None:  # it had finished and been kept before the click arrived
        st.session_state[ui_state.RESULT] = run.result
        st.info("The analysis had already finished when Cancel was pressed.")
    elif stopped:
        st.info("Cancelled — nothing was saved.", icon=":material/cancel:")
    else:
        st.warning("Cancelling: the analysis stops at its next step and saves nothing.")


def run_analysis(save: bool) -> None:
    run = RunHandle()
    st.session_state[RUN] = run
    try:
        with st.status("Analysing…", expanded=True) as status:
            cancel = st.empty()
            cancel.button("Cancel", key=CANCEL, on_click=cancel_run,
                          help="Stop this analysis: nothing is saved.")  # fmt: skip
            bar = ui_state.ProgressBar()
            try:
                model = ui_state.model(bar)  # "Loading the OpenFLAM model" only if it loads
                store = open_store()
                hop_s = float(st.session_state.hop)
                source = None
                if mode == "Library":
                    if store is None or not st.session_state.get("in_analysis"):
                        raise SonoTagError("Choose a stored analysis first.")
                    done = library.open_analysis(store, model, st.session_state.in_analysis)
                    if save and abs(done.hop_s - hop_s) > 1e-9:  # Analyze at another hop
                        if not done.source.path.is_file():
                            raise SonoTagError(
                                f"This analysis was encoded with a {done.hop_s:g}-s hop and its "
                                "audio is no longer kept on this server, so it cannot be encoded "
                                "at another hop. Analyse the file or link again."
                            )
                        source = done.source  # the kept audio, encoded at the new hop
                else:
                    source = resolve(bar, store, model)
                if source is not None:
                    ui_state.rate_limiter().check(*ui_state.user_keys())
                    done = library.run(
                        model, source, labels, hop_s=hop_s,
                        settings=S, store=store, cache=ui_state.embedding_cache(), save=save,
                        progress=bar, viewer=ui_state.viewer(), update_existing=True,
                        run_settings={"hop_s": hop_s, **event_params().as_settings()},
                    )  # fmt: skip
                run.result = done  # no Streamlit call in between: a cancel cannot land here
                st.session_state[ui_state.RESULT] = done
                cancel.empty()
                bar.done(f"Done: {done.embeddings.n_windows} window(s) in {done.seconds:.1f} s")
                status.update(label=f"Analysed “{ui_state.md_text(done.source.title)}”",
                              state="complete", expanded=False)  # fmt: skip
            except SonoTagError as exc:
                cancel.empty()
                bar.clear()
                status.update(label="Could not analyse this audio", state="error", expanded=True)
                ui_state.error(exc)
    finally:  # however it ended, a stopped one included: a Cancel's rerun waits for this
        run.finish()


clicked = st.button("Analyze", type="primary", disabled=labels is None)
auto = st.session_state.pop("auto_run", False)
with st.container():
    if clicked or auto:
        st.session_state.pop(CANCELLED, None)
        run_analysis(save=clicked)  # opening a shared link adds no copy to the Library
    elif st.session_state.pop(CANCELLED, False):
        show_cancelled()

# ---------------------------------------------------------------- results

result: library.Analysed | None = st.session_state.get(ui_state.RESULT)
report = None
with st.container():
    if result is not None and labels is not None:
        try:
            params = event_params()
            report = report_for(
                ui_state.model(), ui_state.text_cache(), result.source, result.embeddings,
                labels, params, hop_s=result.hop_s,
            )  # fmt: skip
        except SonoTagError as exc:
            ui_state.error(exc)
    if result is not None and abs(result.hop_s - float(st.session_state.hop)) > 1e-9:
        st.caption(f"Shown with a {result.hop_s:g}-s window hop. Press Analyze to encode this "
                   f"audio at a {float(st.session_state.hop):g}-s hop.")  # fmt: skip
with st.container():
    if report is not None:
        ui_workbench.show(result, report, params, VIEWS)

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
        analysis=stored_id if mode in ("Upload", "Record", "Library") else None,
        labels=labels.labels,
        negatives=labels.negatives,
        threshold=float(st.session_state.thr),
        label_thresholds=label_thresholds(),
        hop_s=result.hop_s if result is not None else float(st.session_state.hop),  # what is shown
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

"""The Analyze page's run: the chosen input through the service (sonotag_core.service.api),
with its progress box and a Cancel that leaves nothing behind, and the report of what is
on screen."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from sonotag_app import analyze_inputs, context
from sonotag_app.analyze_inputs import Inputs
from sonotag_app.keys import KEYS
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet
from sonotag_core.domain.progress import RunHandle
from sonotag_core.domain.report import Report
from sonotag_core.errors import SonoTagError
from sonotag_core.service import detectors as det_service
from sonotag_core.service.api import Service
from sonotag_core.service.detectors import Detector
from sonotag_core.service.library import Analysed
from sonotag_core.service.runtime import EXAMPLES, charging, example_path, sources

CANCEL, RUN, CANCELLED = "cancel_run", "run_state", "run_cancelled"  # session keys
CANCEL_WAIT_S = 120.0  # how long the rerun waits for the cancelled run to stop


def resolve(inputs: Inputs, progress: context.ProgressBar, service: Service) -> sources.SourceInfo:
    """The selected input as a local file: a stored link's kept audio, else a download
    (remembered per server), an upload, a recording or an example."""
    data_dir = Path(context.settings().data_dir)
    ss = st.session_state
    if inputs.mode == "Example":
        ex_id = ss[KEYS.example]
        return sources.from_path(example_path(ex_id, data_dir), title=EXAMPLES[ex_id].title)
    if inputs.mode == "Record":
        if inputs.upload is None:
            raise SonoTagError("Record something first: press the microphone, then stop.")
        name = time.strftime("Recording %Y-%m-%d %H.%M.%S.wav")
        return sources.from_upload(inputs.upload.getvalue(), name, data_dir / sources.UPLOADS_DIR)
    if inputs.mode == "Upload":
        if inputs.upload is None:
            raise SonoTagError(
                "Choose a file to upload first. If one is still uploading, press Analyze "
                "again when it says it is ready."
            )
        return sources.from_upload(
            inputs.upload.getvalue(), inputs.upload.name, data_dir / sources.UPLOADS_DIR
        )
    # downloads go to downloads/; the store moves a saved one into media/
    return service.link_source(
        str(ss[KEYS.link]).strip(),
        data_dir / sources.DOWNLOADS_DIR,
        hop_s=inputs.hop_s,
        progress=progress,
    )


def open_store():
    """The result store, or None with a warning: a broken store must not stop analyses."""
    try:
        return context.store()
    except SonoTagError as exc:
        context.warning(f"{exc} Analyses work, but are not saved in the Library.")
        return None


def _cancel_run() -> None:
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
        st.session_state[KEYS.result] = run.result
        st.info("The analysis had already finished when Cancel was pressed.")
    elif stopped:
        st.info("Cancelled — nothing was saved.", icon=":material/cancel:")
    else:
        st.warning("Cancelling: the analysis stops at its next step and saves nothing.")


def _analysed(inputs: Inputs, save: bool, bar: context.ProgressBar) -> Analysed:
    model = context.model(bar)  # "Loading the model…" only while it loads
    store = open_store()
    service = context.service(model, store, fast=inputs.fast)
    source = None
    if inputs.mode == "Library":
        if store is None or not st.session_state.get(KEYS.analysis):
            raise SonoTagError("Choose a stored analysis first.")
        done = service.open(st.session_state[KEYS.analysis])
        if not (save and (abs(done.hop_s - inputs.hop_s) > 1e-9 or done.fast != inputs.fast)):
            return done
        if not done.source.path.is_file():  # Analyze at another hop or mode needs the audio
            raise SonoTagError(
                f"This analysis was encoded {_encoding(done.hop_s, done.fast)} and its audio "
                "is no longer kept on this server, so it cannot be encoded again. Analyse the "
                "file or link again."
            )
        source = done.source  # the kept audio, encoded at the new hop
    else:
        source = resolve(inputs, bar, service)
    if inputs.labels is None:  # the button is disabled then; never trust that
        raise SonoTagError("Type at least one label first.")
    keys = context.user_keys()
    context.rate_limiter().check(*keys)
    # the audio it encodes is charged to this visitor; reused embeddings cost nothing
    with charging(context.audio_budget().meter(*keys)):
        return service.analyse(
            source,
            inputs.labels,
            hop_s=inputs.hop_s,
            params=inputs.event_params(),
            save=save,
            viewer=context.viewer(),
            update_existing=True,
            progress=bar,
        )


def run_analysis(inputs: Inputs, save: bool) -> None:
    """One run in a status box with its progress bar and a Cancel button."""
    run = RunHandle()
    st.session_state[RUN] = run
    try:
        with st.status("Analysing…", expanded=True) as status:
            cancel = st.empty()
            cancel.button(
                "Cancel",
                key=CANCEL,
                on_click=_cancel_run,
                help="Stop this analysis: nothing is saved.",
            )
            bar = context.ProgressBar()
            try:
                done = _analysed(inputs, save, bar)
                run.result = done  # no Streamlit call in between: a cancel cannot land here
                st.session_state[KEYS.result] = done
                cancel.empty()
                bar.done(f"Done: {done.embeddings.n_windows} window(s) in {done.seconds:.1f} s")
                status.update(
                    label=f"Analysed “{context.md_text(done.source.title)}”",
                    state="complete",
                    expanded=False,
                )
            except SonoTagError as exc:
                cancel.empty()
                bar.clear()
                status.update(label="Could not analyse this audio", state="error", expanded=True)
                context.error(exc)
    finally:  # however it ended, a stopped one included: a Cancel's rerun waits for this
        run.finish()


def run_if_asked(inputs: Inputs, clicked: bool) -> None:
    """Analyze pressed, or a link with audio opened; or the rerun after a Cancel."""
    if clicked or st.session_state.pop(KEYS.auto_run, False):
        st.session_state.pop(CANCELLED, None)
        run_analysis(inputs, save=clicked)  # opening a shared link adds no copy to the Library
    elif st.session_state.pop(CANCELLED, False):
        show_cancelled()


def report(inputs: Inputs, result: Analysed | None) -> tuple[Report, EventParams] | None:
    """The report of what is on screen (relabeling: no audio encoder), or None."""
    if result is None or inputs.labels is None:
        return None
    try:
        params = inputs.event_params()
        service = context.service(context.model(), context.store_or_none())
        labels = inputs.labels
        if detectors := refined_detectors(service):
            service = service.with_detectors(detectors)
            extra = [d.label for d in detectors if d.label not in labels.labels]
            labels = LabelSet((*labels.labels, *extra), labels.negatives) if extra else labels
        shown = service.report(result, labels, params)
    except SonoTagError as exc:
        context.error(exc)
        return None
    if abs(result.hop_s - inputs.hop_s) > 1e-9 or result.fast != inputs.fast:
        st.caption(
            f"Shown as encoded {_encoding(result.hop_s, result.fast)}. Press Analyze to "
            f"encode this audio {_encoding(inputs.hop_s, inputs.fast)}."
        )
    elif result.fast:
        st.caption(
            "Fast mode: encoded in bfloat16, every probability within 0.01 of the exact path."
        )
    return shown, params


def refined_detectors(service: Service) -> list[Detector]:
    """The stored detectors the sidebar (or the link) chose, for this model; one that is
    not found (another owner's, deleted, a typo in a link) is said, not fatal."""
    chosen = analyze_inputs.chosen_detectors()
    if not chosen or service.store is None:
        return []
    found, missing = [], []
    for name, version in chosen:
        try:
            d = det_service.find_detector(service.store, context.viewer(), name, version or None)
            found.append(det_service.check_for_model(d, service.model.info.checkpoint_sha256))
        except SonoTagError as exc:
            missing.append(str(exc))
    for text in missing:
        context.warning(f"A refined detector is not used: {text}")
    return found


def _encoding(hop_s: float, fast: bool) -> str:
    """How an analysis was (or will be) encoded, in words: "with a 10-s hop in fast mode"."""
    return f"with a {hop_s:g}-s hop" + (" in fast mode" if fast else "")

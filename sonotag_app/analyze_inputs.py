"""The Analyze page's inputs: what the user chose (audio, labels, settings), read from and
written back to the address bar, so the URL is always the share link of the view.

The widgets' session keys are one typed table (:data:`KEYS`), not strings scattered over
the page; a run of the page reads them once into an :class:`Inputs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from sonotag_app import context
from sonotag_app.keys import KEYS, event_key, label_key
from sonotag_core.dashboard import share
from sonotag_core.dashboard.presets import PRESETS, merge_labels
from sonotag_core.domain.event_params import EventParam, event_params
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import LabelSet, parse_labels
from sonotag_core.errors import LimitError, SonoTagError
from sonotag_core.service import detectors as det_service
from sonotag_core.service import library
from sonotag_core.service.library import Analysed
from sonotag_core.service.runtime import EXAMPLES, sources

MODES = ("Example", "Link", "Upload", "Record", "Library")
VIEWS = {"timeline": "Timelines", "heatmap": "Heatmap", "events": "Events", "scores": "Scores"}
HOPS = {10.0: "10 s (fast)", 5.0: "5 s (50 % overlap, 2x slower)"}
UPLOAD_TYPES = ["wav", "mp3", "flac", "ogg", "opus", "m4a", "aac", "webm", "mp4", "mkv", "mov"]
FAST_HELP = (
    "Encodes the audio in bfloat16: 1.6-2x faster, every probability within 0.01 of the "
    "exact path. Kept apart from exact analyses; exports and the share link say it was used."
)
FAST_REFUSED = (
    "Fast mode needs a CPU with AMX or AVX512-BF16 (or a GPU), which this server lacks; "
    "analyses run on the exact path."
)


@dataclass(frozen=True)
class Inputs:
    """What the user chose in this run of the page."""

    mode: str
    upload: Any  # the uploaded or recorded file (Streamlit's UploadedFile), or None
    labels: LabelSet | None  # None while the label box does not parse
    hop_s: float
    fast: bool  # fast mode (bf16 audio encoder) for the next Analyze

    def label_thresholds(self) -> dict[str, float]:
        """The thresholds the user set per label; every other label uses the global one."""
        if self.labels is None:
            return {}
        overrides = st.session_state.get(KEYS.lt_overrides, {})
        return {lab: float(overrides[lab]) for lab in self.labels.positives if lab in overrides}

    def event_params(self) -> EventParams:
        """The event settings the sidebar shows now (kept with a saved analysis, too)."""
        ss = st.session_state
        return EventParams.from_settings(
            context.settings(),
            label_thresholds=self.label_thresholds(),
            **{row.name: ss[event_key(row)] for row in event_params()},
        )


# ---------------------------------------------------------------- the link -> the widgets


def labels_text(label_set: LabelSet) -> str:
    """The label box's text: one label per line, negatives with a leading '-'."""
    return label_set.to_text().replace("; ", "\n")  # labels never contain ';'


def stored_labels_text(analysis_id: str) -> str | None:
    """The labels a stored analysis was made with, as the label box shows them."""
    try:
        stored = context.store().get_labels(analysis_id)
    except SonoTagError:
        return None
    return None if stored is None else labels_text(stored)


def _load_link_state(params: dict[str, list[str]]) -> None:
    state, warnings = share.from_query_params(
        params, settings=context.settings(), example_ids=EXAMPLES
    )
    ss = st.session_state
    ss[KEYS.warnings] = warnings
    ss[KEYS.mode] = "Library" if state.analysis else "Link" if state.link else "Example"
    ss[KEYS.link] = state.link or ""
    ss[KEYS.example] = state.example or next(iter(EXAMPLES))
    ss[KEYS.analysis] = state.analysis
    ss[KEYS.labels] = labels_text(state.label_set)
    if state.analysis and not params.get("l"):  # a bare ?analysis= link: the stored labels
        ss[KEYS.labels] = stored_labels_text(state.analysis) or ss[KEYS.labels]
    for row in event_params():
        ss[event_key(row)] = state.events[row.name]
    ss[KEYS.hop] = state.hop_s
    ss[KEYS.fast] = state.fast and context.fast_mode_offered()
    if state.fast and not ss[KEYS.fast]:
        warnings.append(FAST_REFUSED)
    ss[KEYS.view] = state.view
    ss[KEYS.lt_overrides] = dict(state.label_thresholds)  # the link's; the rest follow thr
    for label, value in state.label_thresholds.items():
        ss[label_key(label)] = value
    ss[KEYS.picked_t] = state.t
    ss[KEYS.detectors] = [share.detector_ref(n, v) for n, v in state.detectors]
    ss[KEYS.auto_run] = bool(state.link or state.example or state.analysis) and bool(params)
    ss[KEYS.url_loaded] = True


def load_link_state() -> None:
    """The query params become the widgets' values: once per session, and again when a
    link inside the app (Library, Compare) brings new ones. Never on the page's own
    reruns: their address is the one this page wrote, or a stale one (see
    ``context.take_arrival``) that must not undo what the user did since."""
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    ss = st.session_state
    arrived = context.take_arrival("analyze")
    too_long = context.take_long_link_warning()  # the link was dropped: its defaults, said so
    if (
        not ss.get(KEYS.url_loaded)
        or too_long
        or (arrived and params and params != ss.get(KEYS.qp_written))
    ):
        _load_link_state(params)
    if too_long:
        ss[KEYS.warnings] = [too_long, *ss[KEYS.warnings]]
    context.keep_widget_values(
        [*KEYS.link_widgets(), *(k for k in ss if k.startswith(label_key("")))]
    )


def show_link_warnings() -> None:
    if problems := share.combined_warning(st.session_state.get(KEYS.warnings, [])):
        context.warning(problems)  # one banner, however many parameters were wrong


# ---------------------------------------------------------------- widgets


def _library_picker() -> None:
    """Choose a stored analysis; choosing one loads its labels into the label box."""
    try:
        rows = library.visible_analyses(context.store(), context.viewer())
    except SonoTagError as exc:
        context.error(exc)
        return
    names = {r.id: library.describe(r) for r in rows}
    current = st.session_state.get(KEYS.analysis)
    if current and current not in names:
        names = {current: f"analysis {current}", **names}
    if not names:
        st.info("The Library is empty: analyse an example, a link or an upload first.")
        return

    def use_stored_labels() -> None:
        text = stored_labels_text(st.session_state[KEYS.analysis] or "")
        if text:
            st.session_state[KEYS.labels] = text

    st.selectbox(
        "Stored analysis",
        list(names),
        key=KEYS.analysis,
        format_func=names.__getitem__,
        on_change=use_stored_labels,
    )
    st.caption(
        "Stored audio is never encoded again: new labels and thresholds only need the text encoder."
    )


def _example_picker() -> None:
    st.selectbox(
        "Example clip",
        list(EXAMPLES),
        key=KEYS.example,
        format_func=lambda k: f"{EXAMPLES[k].title} ({EXAMPLES[k].seconds:.0f} s)",
    )
    ex = EXAMPLES[st.session_state[KEYS.example]]
    st.caption(f"{ex.description} Suggested labels: {context.md_text('; '.join(ex.labels))}")

    def use_suggested() -> None:
        labels = EXAMPLES[st.session_state[KEYS.example]].labels
        st.session_state[KEYS.labels] = merge_labels("", labels)

    st.button(
        "Use the suggested labels",
        on_click=use_suggested,
        key=KEYS.use_suggested,
        help="Replaces the labels in the box with this example's.",
    )


def _audio_inputs() -> tuple[str, Any]:
    """The audio column: returns the mode and the uploaded or recorded file."""
    mode = st.segmented_control("Audio", MODES, key=KEYS.mode, required=True) or "Example"
    upload = None
    if mode == "Link":
        st.text_input(
            "YouTube or SoundCloud link",
            key=KEYS.link,
            placeholder="https://www.youtube.com/watch?v=… or https://soundcloud.com/artist/track",
        )
    elif mode == "Upload":
        upload = st.file_uploader("Audio or video file", type=UPLOAD_TYPES)
        if upload is not None:  # the server has every byte: Analyze will find it
            st.caption(
                f"“{context.md_text(upload.name)}” is on the server, ready to analyse. "
                "Once analysed it is kept in the Library; its share link opens it there."
            )
        else:
            st.caption(
                "An analysed upload is kept in the Library of this server; its share "
                "link opens it there."
            )
    elif mode == "Record":
        upload = st.audio_input("Record from the microphone", sample_rate=48_000, key=KEYS.mic)
        st.caption(
            "Recorded at 48 kHz and analysed like an upload; once analysed it is kept "
            "in the Library."
        )
    elif mode == "Library":
        _library_picker()
    else:
        _example_picker()
    return mode, upload


def _label_inputs() -> None:
    def add_preset() -> None:
        name = st.session_state[KEYS.preset]
        if name:  # labels already in the box are not added twice
            st.session_state[KEYS.labels] = merge_labels(
                st.session_state.get(KEYS.labels, ""), PRESETS[name]
            )
            st.session_state[KEYS.preset] = None

    st.text_area(
        "Labels (one per line or separated by ;)",
        key=KEYS.labels,
        height=140,
        help="Describe sounds in words. A leading '-' marks a negative prompt: it is scored "
        "and shown, but never produces events.",
    )
    st.selectbox(
        "Add a preset",
        list(PRESETS),
        index=None,
        key=KEYS.preset,
        on_change=add_preset,
        placeholder="Add labels from a preset…",
    )


def _use_calibrated(thresholds: dict[str, float]) -> None:
    """Set each label's own slider to its stored calibration (they become overrides)."""
    overrides = st.session_state.setdefault(KEYS.lt_overrides, {})
    for label, value in thresholds.items():
        st.session_state[label_key(label)] = round(float(value), 2)
        overrides[label] = round(float(value), 2)


def _set_override(label: str) -> None:
    """The user moved this label's own slider: it keeps that value from now on (moving it
    back onto the global threshold makes it follow the global one again)."""
    value = float(st.session_state[label_key(label)])
    overrides = st.session_state.setdefault(KEYS.lt_overrides, {})
    if abs(value - st.session_state[KEYS.threshold]) < 1e-9:
        overrides.pop(label, None)
    else:
        overrides[label] = value


def _event_widget(row: EventParam) -> None:
    """The sidebar's control of one event parameter: a slider over the row's range (a
    select slider over its choices for a whole-number row)."""
    if row.type is int:
        st.select_slider(row.ui_label, row.choices(), key=event_key(row), help=row.help)
    else:
        low, high = float(row.low), float(row.high)
        st.slider(row.ui_label, low, high, key=event_key(row), step=row.step, help=row.help)


def _detector_picker() -> None:
    """The stored refined detectors to score their labels with (``det`` in the link)."""
    ss = st.session_state
    try:
        found = det_service.list_detectors(context.store(), context.viewer())
    except SonoTagError:
        found = []
    refs = {share.detector_ref(d.name, d.version): d for d in found}
    chosen = [r for r in ss.get(KEYS.detectors) or [] if isinstance(r, str)]
    if not refs and not chosen:
        return
    ss[KEYS.detectors] = chosen  # a link's unknown name stays (and is reported) until changed

    def describe(ref: str) -> str:
        if d := refs.get(ref):
            return f"{d.label} · {d.name} v{d.version}"
        name, version = share.parse_detector_ref(ref) or (ref, -1)
        newest = [d for d in found if d.name == name] if version == 0 else []
        if newest:  # a bare name (a link's): its newest version
            d = max(newest, key=lambda x: x.version)
            return f"{d.label} · {d.name} (newest: v{d.version})"
        return f"{ref} (not found)"

    st.multiselect(
        "Refined detectors",
        list(dict.fromkeys([*refs, *chosen])),
        key=KEYS.detectors,
        format_func=describe,
        help="Score a label with a detector refined from reviews (Teach page) instead of "
        "its words alone; the label is added to the view if it is not in the box.",
    )


def _settings_sidebar(labels: LabelSet | None) -> None:
    ss = st.session_state
    st.header("Settings")
    st.radio(
        "Window hop",
        list(HOPS),
        key=KEYS.hop,
        format_func=HOPS.__getitem__,
        help="5 s overlaps windows and averages them: smoother, twice the compute.",
    )
    fast_offered = context.fast_mode_offered()
    st.toggle(
        "Fast mode",
        key=KEYS.fast,
        disabled=not fast_offered,
        help=FAST_HELP if fast_offered else FAST_REFUSED,
    )
    for row in event_params():
        _event_widget(row)
    _detector_picker()
    if labels is None or not labels.positives:
        return
    overrides = ss.setdefault(KEYS.lt_overrides, {})
    offered = {
        label: c
        for label, c in context.calibrations(labels.positives).items()
        if abs(float(ss.get(label_key(label), ss[KEYS.threshold])) - round(c.threshold, 2)) > 1e-9
    }
    with st.expander("Per-label thresholds", expanded=bool(offered)):
        st.caption("A label follows the event threshold until you move its own slider.")
        if offered:
            st.caption(
                context.md_text(
                    "Calibrated for this model: "
                    + ", ".join(f"{k} {c.threshold:.2f} ({c.origin})" for k, c in offered.items())
                )
            )
            st.button(
                "Use the calibrated thresholds",
                key=KEYS.use_calibrated,
                on_click=_use_calibrated,
                args=({k: c.threshold for k, c in offered.items()},),
            )
        for label in labels.positives:
            if label not in overrides:  # follows the global threshold, wherever it is
                ss[label_key(label)] = ss[KEYS.threshold]
            st.slider(
                context.md_text(label),
                0.01,
                0.99,
                key=label_key(label),
                step=0.01,
                on_change=_set_override,
                args=(label,),
            )


def render() -> Inputs:
    """The input widgets (audio, labels, the settings sidebar) and what they hold now."""
    left, right = st.columns([3, 2], gap="large")
    with left:
        mode, upload = _audio_inputs()
    with right:
        _label_inputs()
    problem = st.container()  # always there: the results below keep their place
    s = context.settings()
    try:
        labels: LabelSet | None = parse_labels(
            st.session_state[KEYS.labels], max_labels=s.max_labels, max_chars=s.max_label_chars
        )
    except LimitError as exc:
        labels = None
        with problem:
            context.error(exc)
    with st.sidebar:
        _settings_sidebar(labels)
    ss = st.session_state
    return Inputs(mode, upload, labels, float(ss[KEYS.hop]), bool(ss.get(KEYS.fast)))


# ---------------------------------------------------------------- the view -> the link


def chosen_detectors() -> tuple[tuple[str, int], ...]:
    """The detectors chosen in the sidebar (or by the link), as (name, version)."""
    refs = (share.parse_detector_ref(str(r)) for r in st.session_state.get(KEYS.detectors) or [])
    return tuple(r for r in refs if r is not None)


def _shared_link(inputs: Inputs) -> str | None:
    text = str(st.session_state.get(KEYS.link, "")).strip()
    if inputs.mode != "Link" or not text:
        return None
    try:
        return sources.parse_link(text).url
    except SonoTagError:
        return None


def view_state(inputs: Inputs, result: Analysed | None) -> share.ViewState | None:
    """What is on screen, as a share link describes it (None while the labels are bad)."""
    if inputs.labels is None:
        return None
    ss = st.session_state
    stored_id = result.analysis_id if result is not None else None
    return share.ViewState(
        link=_shared_link(inputs),
        example=ss[KEYS.example] if inputs.mode == "Example" else None,
        # uploads, recordings and Library picks are shared by their stored analysis
        analysis=stored_id if inputs.mode in ("Upload", "Record", "Library") else None,
        labels=inputs.labels.labels,
        negatives=inputs.labels.negatives,
        events={row.name: row.type(ss[event_key(row)]) for row in event_params()},
        label_thresholds=inputs.label_thresholds(),
        hop_s=result.hop_s if result is not None else inputs.hop_s,  # what is shown
        fast=result.fast if result is not None else inputs.fast,
        view=ss.get(KEYS.view) or "timeline",
        t=ss.get(KEYS.picked_t),
        detectors=chosen_detectors(),
    )


def write_share_link(inputs: Inputs, result: Analysed | None) -> None:
    """The address bar becomes the share link of this view; *Share this view* shows it."""
    state = view_state(inputs, result)
    if state is None:
        return
    s = context.settings()
    written = share.to_query_params(state, settings=s)
    st.query_params.from_dict(written)
    st.session_state[KEYS.qp_written] = {
        k: list(v) if isinstance(v, list) else [v] for k, v in written.items()
    }
    with st.expander("Share this view", icon=":material/share:"):
        base = (st.context.url or "").split("?")[0]
        st.code(share.share_url(base, state, settings=s), language=None, wrap_lines=True)
        st.caption(
            "The address bar holds this link too. Opening it restores the audio, "
            "labels, settings and the selected moment."
        )

"""About / System: model status, versions, settings in effect, licence and citation."""

from __future__ import annotations

import streamlit as st

from sonotag_app import context
from sonotag_app.keys import KEYS
from sonotag_core import access
from sonotag_core.dashboard.about import (
    BIBTEX,
    CITATION,
    LICENCE_NOTE,
    limit_notes,
    limit_rows,
    model_notices,
    versions,
)
from sonotag_core.errors import SonoTagError
from sonotag_core.service import library
from sonotag_core.settings import SETTINGS_HELP


def render() -> None:
    """Lay out the About / System page."""
    context.start_page("about")
    S = context.settings()
    st.title("About SonoTag")
    st.markdown(
        "SonoTag finds **when** sounds happen in audio from free-text labels, using Adobe's "
        "[OpenFLAM](https://github.com/adobe-research/openflam) frame-wise language-audio model "
        "(HTSAT audio encoder + RoBERTa text encoder, 32 frames of 0.3125 s per 10-s window)."
    )

    st.header("Model")
    model = context.model_if_loaded()
    notices = st.container()  # filled below, once a press of the button has had its outcome
    load_error = context.background_error()
    button = st.empty()
    loading = model is None and context.model_loading()
    if model is None and not loading and button.button("Load the model now"):
        try:
            with st.spinner("Loading the OpenFLAM model…"):
                model = context.model()
            button.empty()  # loaded: the button has nothing left to do
        except SonoTagError as exc:
            load_error = str(exc)
    with notices:
        for kind, text in model_notices(model is not None, load_error, loading=loading):
            if kind == "error":
                context.error(text)
            else:
                getattr(st, kind)(context.md_text(text))
    if model is not None:
        st.table(
            {
                "device": model.device,
                "threads": str(model.threads),
                "openflam": model.info.openflam_version,
            }
        )
        # whole and copyable: a table cell cuts a long path or a 64-digit hash off
        st.caption("Checkpoint")
        st.code(str(model.checkpoint_path), language=None, wrap_lines=True)
        st.caption("Checkpoint SHA-256")
        st.code(model.info.checkpoint_sha256, language=None, wrap_lines=True)

    st.header("Storage")
    try:
        store = context.store()
        usage = store.media_usage()
        st.table(
            {
                "stored analyses": str(store.count_analyses()),
                "kept audio (SONOTAG_MEDIA_CAP_MB)": f"{library.usage_text(usage)}; the least "
                "recently played goes first",
            }
        )
        st.caption("Database")
        st.code(str(store.path), language=None, wrap_lines=True)
    except SonoTagError as exc:
        context.error(exc)

    st.header("Access")
    me = context.viewer()
    if me.shared:
        st.caption(
            "SONOTAG_ACCESS=shared: every visitor sees, opens and may delete every analysis."
        )
    else:
        st.caption(
            "SONOTAG_ACCESS=private: you see your own analyses and those made from public "
            "links; another visitor's opens only through its share link, read-only."
        )
    if S.admin_token and not me.admin:
        given = st.text_input(
            "Operator token",
            type="password",
            key=KEYS.admin_token,
            help="SONOTAG_ADMIN_TOKEN: sees and may delete every analysis.",
        )
        if given:
            if access.is_admin_token(given, S.admin_token):
                st.session_state[KEYS.admin] = True
                st.rerun()
            st.error("That is not the operator token.")
    elif me.admin:
        st.success("Operator: you see and may delete every analysis on this server.")

    st.header("Limits per visitor")
    keys = context.user_keys()
    st.table(
        limit_rows(
            S.rate_limit_per_hour,
            S.audio_minutes_per_hour,
            context.audio_budget().left_s(*keys),
        )
    )
    for kind, text in limit_notes(
        limited=S.rate_limit_per_hour > 0 or S.audio_minutes_per_hour > 0,
        address_known=context.client_address() is not None,
        loopback=context.sees_loopback(),
        proxies_trusted=bool(S.trusted_proxies.strip()),
    ):
        getattr(st, kind)(text)

    st.header("Versions")
    st.table(versions())

    st.header("Settings in effect")
    st.caption("Set with environment variables (SONOTAG_…); see the README.")
    st.table(
        [
            {
                "variable": f"SONOTAG_{name.upper()}",
                "value": str(value),
                "meaning": SETTINGS_HELP[name],
            }
            for name, value in S.as_dict(redact=True).items()
        ]
    )

    st.header("Licence")
    st.warning(LICENCE_NOTE)
    st.header("Credits and citation")
    st.markdown(
        "Model: OpenFLAM by Adobe Research. Downloads: yt-dlp. Decoding: FFmpeg. "
        "Dashboard: Streamlit and Altair."
    )
    st.markdown(CITATION)
    st.code(BIBTEX, language="bibtex")

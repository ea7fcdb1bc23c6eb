"""Library: every stored analysis (open, delete) and a search of all stored audio."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

import ui_state
from sonotag_core import access, library
from sonotag_core.errors import SonoTagError
from sonotag_core.search import search_library
from sonotag_core.sources import format_duration
from sonotag_core.timeline import timecode

ui_state.leave_legacy_page_mode()
S = ui_state.settings()
ANALYZE = "pages/analyze.py"

st.title("Library")
me = ui_state.viewer()
try:
    store = ui_state.store()
except SonoTagError as exc:
    ui_state.error(exc)
    st.stop()

# ---------------------------------------------------------------- search all audio

st.subheader("Search all stored audio")
with st.form("library_search", border=False):
    query = st.text_input("A sound, in words", key="lib_query", max_chars=S.max_label_chars,
                          placeholder="a siren wailing")  # fmt: skip
    searched = st.form_submit_button("Search", icon=":material/search:")
if searched and query.strip():
    try:
        model = ui_state.model()
        with st.spinner("Searching every stored recording…"):
            t0 = time.perf_counter()
            hits = search_library(store, ui_state.text_cache(), query.strip(), top_k=20,
                                  checkpoint_sha256=model.info.checkpoint_sha256,
                                  max_label_chars=S.max_label_chars,
                                  visible_to=me.scope)  # fmt: skip
        st.session_state.lib_hits = (query.strip(), hits, time.perf_counter() - t0)
    except SonoTagError as exc:
        ui_state.error(exc)

if found := st.session_state.get("lib_hits"):
    label, hits, took = found
    if not hits:
        st.info(
            f"No stored audio to search yet for “{ui_state.md_text(label)}”: analyse something first."
        )
    else:
        st.caption(f"Top {len(hits)} moments for “{ui_state.md_text(label)}” ({took:.2f} s). Open one to play "
                   "it and see the timeline from there.")  # fmt: skip
        for hit in hits:
            cols = st.columns([1, 1, 4, 1.3], vertical_alignment="center")
            cols[0].markdown(f"**{timecode(hit.time_s)}**")
            cols[1].progress(hit.probability, text=f"{hit.probability:.2f}")
            cols[2].markdown(ui_state.md_text(hit.title or "(untitled)"))
            # the searched label first, then the stored ones (negatives keep their '-')
            stored = [("-" + x) if x in hit.labels.negatives else x for x in hit.labels.labels]
            labels = [label, *(x for x in stored if x.lstrip("-") != label)][: S.max_labels]
            cols[3].page_link(ANALYZE, label="Open here", icon=":material/play_arrow:",
                              query_params={"analysis": hit.analysis_id, "t": f"{hit.time_s:.2f}",
                                            "l": labels})  # fmt: skip

# ---------------------------------------------------------------- stored analyses

st.subheader("Stored analyses")
rows = library.visible_analyses(store, me)
if me.sees_all:  # the server's disk use is the operator's business, not a visitor's
    st.caption(f"{len(rows)} stored; kept audio: {library.usage_text(store.media_usage())} "
               "(the least recently played goes first).")  # fmt: skip
else:
    st.caption(f"{len(rows)} yours or from public links; others' uploads are not listed.")
if not rows:
    st.info("Nothing stored yet: every analysis you run on the Analyze page lands here.")
    st.stop()

table = pd.DataFrame(
    {
        "title": [r.title for r in rows],
        "source": [r.url or r.kind for r in rows],
        "duration": [format_duration(r.duration_s) if r.duration_s else "" for r in rows],
        "labels": [r.labels_text for r in rows],
        "model": [r.model_name for r in rows],
        "analysed": [time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)) for r in rows],
    }
)
# a deletion starts a new table (new key): the old selection pointed at a row number, which
# would now name the next analysis (or none: the last row's number, an IndexError)
generation = st.session_state.setdefault("lib_table_generation", 0)
picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row",
                      key=f"lib_table_{generation}", width="stretch")  # fmt: skip
chosen = [i for i in (picked.selection.rows if picked else []) if 0 <= i < len(rows)]
if chosen:
    row = rows[chosen[0]]
    a, b = st.columns(2)
    a.page_link(ANALYZE, label=f"Open “{ui_state.md_text(row.title)}”", icon=":material/open_in_new:",
                query_params={"analysis": row.id})  # fmt: skip
    if not access.can_change(me, row.owner):
        b.caption("Read-only: made from a public link by another visitor.")
    else:
        with b.popover("Delete", icon=":material/delete:"):
            st.write(f"Delete the analysis of “{ui_state.md_text(row.title)}”? Its audio and embeddings go too "
                     "unless another analysis uses them.")  # fmt: skip
            if st.button("Delete for good", type="primary", key=f"del_{row.id}"):
                try:
                    library.delete(store, me, row.id)
                    st.session_state.lib_table_generation = generation + 1
                    st.toast(f"Deleted “{ui_state.md_text(row.title)}”.")
                    st.rerun()
                except SonoTagError as exc:
                    ui_state.error(exc)

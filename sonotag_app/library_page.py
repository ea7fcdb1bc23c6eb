"""The Library page's widgets: search all stored audio, the table of stored analyses,
open and delete with a confirmation that names what it deletes (pages/library.py lays
them out)."""

from __future__ import annotations

import hashlib
import time

import pandas as pd
import streamlit as st

from sonotag_app import context, similar_panel
from sonotag_app.keys import KEYS, keyed
from sonotag_core import access
from sonotag_core.access import Viewer
from sonotag_core.domain.timefmt import clock, duration
from sonotag_core.errors import SonoTagError
from sonotag_core.service import attach, library
from sonotag_core.service.runtime import AnalysisSummary, Store

ANALYZE = "pages/analyze.py"


def search(store: Store, me: Viewer) -> None:
    """A search of every stored recording the visitor may see; each hit opens there."""
    S = context.settings()
    st.subheader("Search all stored audio")
    with st.form("library_search", border=False):
        query = st.text_input(
            "A sound, in words",
            key=KEYS.library_query,
            max_chars=S.max_label_chars,
            placeholder="a siren wailing",
        )
        searched = st.form_submit_button("Search", icon=":material/search:")
    if searched and query.strip():
        try:
            service = context.service(context.model(), store)
            with st.spinner("Searching every stored recording…"):
                t0 = time.perf_counter()
                hits = service.search(query.strip(), top_k=20, viewer=me)
            st.session_state[KEYS.library_hits] = (query.strip(), hits, time.perf_counter() - t0)
        except SonoTagError as exc:
            context.error(exc)

    if found := st.session_state.get(KEYS.library_hits):
        label, hits, took = found
        if not hits:
            st.info(
                f"No stored audio to search yet for “{context.md_text(label)}”: analyse something first."
            )
        else:
            st.caption(
                f"Top {len(hits)} moments for “{context.md_text(label)}” ({took:.2f} s). Open one to play "
                "it and see the timeline from there."
            )
            for hit in hits:
                cols = st.columns([1, 1, 4, 1.3], vertical_alignment="center")
                cols[0].markdown(f"**{clock(hit.time_s, 1)}**")
                cols[1].progress(hit.probability, text=f"{hit.probability:.2f}")
                cols[2].markdown(context.md_text(hit.title or "(untitled)"))
                # the searched label first, then the stored ones (negatives keep their '-')
                stored = [("-" + x) if x in hit.labels.negatives else x for x in hit.labels.labels]
                labels = [label, *(x for x in stored if x.lstrip("-") != label)][: S.max_labels]
                cols[3].page_link(
                    ANALYZE,
                    label="Open here",
                    icon=":material/play_arrow:",
                    query_params={
                        "analysis": hit.analysis_id,
                        "t": f"{hit.time_s:.2f}",
                        "l": labels,
                    },
                )


def stored(store: Store, me: Viewer) -> None:
    """The stored analyses: filter, sort, select; open one, delete some."""
    st.subheader("Stored analyses")
    rows = library.visible_analyses(store, me)
    if me.sees_all:  # the server's disk use is the operator's business, not a visitor's
        st.caption(
            f"{len(rows)} stored; kept audio: {library.usage_text(store.media_usage())} "
            "(the least recently played goes first)."
        )
    else:
        st.caption(f"{len(rows)} yours or from public links; others' uploads are not listed.")
    # the outcome of the last deletion, said once, after the rerun that cleared the table
    for kind, text in st.session_state.pop(KEYS.library_deleted_notes, None) or []:
        (st.success if kind == "success" else st.warning)(context.md_text(text))
    if not rows:
        st.info("Nothing stored yet: every analysis you run on the Analyze page lands here.")
        return
    f_col, s_col = st.columns([3, 1], vertical_alignment="bottom")
    needle = f_col.text_input(
        "Filter",
        key=KEYS.library_filter,
        max_chars=200,
        placeholder="words in a title, link or label",
    )
    order = (
        s_col.selectbox("Sort", list(library.SORTS), key=KEYS.library_sort) or library.DEFAULT_SORT
    )
    shown = library.filter_analyses(library.sort_analyses(rows, order), needle)
    if needle.strip():
        st.caption(f"{len(shown)} of {len(rows)} match the filter.")
    pending = st.session_state.get(KEYS.library_confirm)
    chosen: list[AnalysisSummary] = []
    if not shown:
        st.info(
            "No stored analysis matches the filter: all its words must appear in the "
            "title, the link or the labels."
        )
    else:
        chosen = table_of(shown)
        if chosen and not pending:  # while a confirmation is open, it is the only action
            actions(me, chosen)
    if pending:
        confirmation(store, me, pending, [r.id for r in chosen])


def batch_outputs(store: Store, me: Viewer) -> None:
    """Attach a `sonotag batch` output (its items join the table above, embeddings left in
    its files) or detach one; only for those who may read the server's folders."""
    if not attach.may_attach(me):
        return
    attached = store.attachments()
    with st.expander(f"Batch outputs ({len(attached)} attached)", icon=":material/folder_data:"):
        with st.form(KEYS.library_attach_form, border=False):
            folder = st.text_input(
                "A `sonotag batch` output folder on this server",
                key=KEYS.library_attach_path,
                max_chars=1000,
                placeholder="/data/archive-out",
            )
            go = st.form_submit_button("Attach", icon=":material/link:")
        if go and folder.strip():
            try:
                with st.spinner("Reading the batch output…"):
                    done = attach.attach_output(store, folder.strip(), me)
                st.session_state[KEYS.library_deleted_notes] = [
                    ("success", f"Attached {done.out}: {done.added} new, {done.listed} listed.")
                ]
                st.rerun()
            except SonoTagError as exc:
                context.error(exc)
        for i, (out, items, when) in enumerate(attached):
            cols = st.columns([5, 1.2], vertical_alignment="center")
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(when))
            cols[0].markdown(f"{context.md_text(out)} · {items} analyses · {stamp}")
            if cols[1].button("Detach", key=keyed("lib_detach", i), icon=":material/link_off:"):
                try:
                    gone = attach.detach_output(store, out, me)
                    st.session_state[KEYS.library_deleted_notes] = [
                        ("success", f"Detached {out}: {gone} analyses removed; its files stay.")
                    ]
                    st.session_state[KEYS.library_generation] = (
                        st.session_state.get(KEYS.library_generation, 0) + 1
                    )
                    st.rerun()
                except SonoTagError as exc:
                    context.error(exc)


def ask_to_delete(items: list[tuple[str, str]]) -> None:
    """The confirmation names, and will delete, exactly these (id, title) pairs: the rows
    selected when the button was pressed, whatever the table shows by the time of the click."""
    st.session_state[KEYS.library_confirm] = items


def table_of(shown: list[AnalysisSummary]) -> list[AnalysisSummary]:
    """The rows as a table with multi-row selection; returns the selected ones."""
    table = pd.DataFrame(
        {
            "title": [r.title for r in shown],
            "source": [r.url or r.kind for r in shown],
            "duration": [duration(r.duration_s) if r.duration_s else "" for r in shown],
            "labels": [r.labels_text for r in shown],
            "model": [r.model_name for r in shown],
            "analysed": [time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)) for r in shown],
        }
    )
    # A selection is a list of row numbers of the table it was made in (sorting by a
    # column header keeps them: they count in `shown`'s order). The key names the rows
    # shown and a deletion counter, so another filter, order or set of rows is a new table
    # with nothing selected: a row number never comes to name another analysis, or a row
    # that is gone (the IndexError of deleting the last row).
    generation = st.session_state.setdefault(KEYS.library_generation, 0)
    ids = hashlib.sha256(" ".join(r.id for r in shown).encode()).hexdigest()[:16]
    picked = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        key=keyed("lib_table", generation, ids),
        width="stretch",
    )
    rows = picked.selection.rows if picked else []
    return [shown[i] for i in dict.fromkeys(rows) if 0 <= i < len(shown)]


def actions(me: Viewer, chosen: list[AnalysisSummary]) -> None:
    """Open (one row) and Delete N (the selected rows this visitor may delete)."""
    mine = [r for r in chosen if access.can_change(me, r.owner)]
    theirs = [r for r in chosen if not access.can_change(me, r.owner)]
    a, b = st.columns(2)
    if len(chosen) == 1:
        row = chosen[0]
        a.page_link(
            ANALYZE,
            label=f"Open “{context.md_text(row.title)}”",
            icon=":material/open_in_new:",
            query_params={"analysis": row.id},
        )
    else:
        a.caption(f"{len(chosen)} selected; select just one to open it.")
    if mine:
        b.button(
            f"Delete {library.analyses(len(mine))}",
            icon=":material/delete:",
            on_click=ask_to_delete,
            args=([(r.id, r.title) for r in mine],),
        )
    if theirs:
        names = library.name_list([r.title for r in theirs])
        b.caption(
            context.md_text(f"Read-only, made from a public link by another visitor: {names}.")
        )


def confirmation(
    store: Store, me: Viewer, pending: list[tuple[str, str]], selected: list[str]
) -> None:
    """Delete for good / Cancel for the captured rows. Either closes it, and a deletion
    starts a new table: nothing selected, no button left under the cursor."""
    with st.container(border=True):
        st.markdown(context.md_text(library.delete_question([t for _, t in pending])))
        if set(selected) != {i for i, _ in pending}:
            st.caption(
                "That is what was selected when you pressed Delete, not what is "
                "selected now: Cancel to choose again."
            )
        buttons = st.container(horizontal=True)
        if buttons.button("Delete for good", type="primary", key=KEYS.library_delete_confirmed):
            done = library.delete_many(store, me, [i for i, _ in pending])
            st.session_state[KEYS.library_deleted_notes] = done.notes(dict(pending))
            st.session_state[KEYS.library_confirm] = None
            st.session_state[KEYS.library_generation] = (
                st.session_state.get(KEYS.library_generation, 0) + 1
            )
            st.rerun()
        if buttons.button("Cancel", key=KEYS.library_delete_cancelled):
            st.session_state[KEYS.library_confirm] = None
            st.rerun()


def render() -> None:
    """Lay out the Library page."""
    context.start_page("library")
    st.title("Library")
    me = context.viewer()
    try:
        store = context.store()
    except SonoTagError as exc:
        context.error(exc)
        st.stop()
    search(store, me)
    if example := st.session_state.get(KEYS.similar):  # Find similar, from Analyze
        st.caption("Or by example: the span or event chosen on the Analyze page.")
        similar_panel.show([example.get("label") or "sound"])
    stored(store, me)
    batch_outputs(store, me)

"""Every ``st.session_state`` key of the dashboard, in one typed table.

A widget's key is its value's name in the session, and several pages and modules read the
same value (the Analyze page's source, the picked time, the last result), so a key is
spelt once, here, and read as ``KEYS.name``. Keys made per item (a download per format, a
Detach button per attached folder) are built by :func:`keyed`; an event parameter's
sidebar control is keyed by its share key (:func:`event_key`), so a link and the session
use one name for it. Values are the strings tests and old sessions know.
"""

from __future__ import annotations

from dataclasses import dataclass

from sonotag_core.domain.event_params import EventParam, event_param, event_params


@dataclass(frozen=True)
class SessionKeys:
    """The table: attribute -> session key."""

    # Analyze, the widgets a share link sets (the event parameters' too: event_key)
    mode: str = "in_mode"
    link: str = "in_link"
    example: str = "in_example"
    analysis: str = "in_analysis"
    labels: str = "labels_text"
    hop: str = "hop"
    fast: str = "fast"
    view: str = "view"
    # Analyze, the other inputs
    use_suggested: str = "use_suggested"
    mic: str = "mic"
    preset: str = "preset"
    use_calibrated: str = "use_calibrated"
    lt_overrides: str = "lt_overrides"  # label -> the threshold the user set for it
    auto_run: str = "auto_run"  # a link with audio in it was opened: analyse it once
    # Analyze, the player and the event table
    player: str = "workbench"
    seek: str = "wb_seek"  # {"t", "nonce", "play"}: where the player jumps on its next render
    selected: str = "wb_selected"  # the event id the player and the table have selected
    review_error: str = "wb_review_error"  # a verdict that could not be stored, shown once
    event_filter: str = "event_filter"
    event_table: str = "event_table"
    download_reviewed: str = "dl_reviewed"
    detectors: str = "det"  # the stored detectors ("name:vN") that score their labels
    similar: str = "wb_similar"  # the Find similar example {analysis_id, at, to, label}
    similar_hits: str = "wb_similar_hits"  # (example, not_text, hits) found for it
    similar_not: str = "wb_similar_not"  # the "…but not <text>" box
    similar_notes: str = "wb_similar_notes"  # what the last a / r on a result did
    similar_panel: str = "similar_panel"  # the result list (its CSS class: st-key-similar_panel)
    download_all: str = "dl_all"
    # every page: what the session carries between runs and pages
    result: str = "result"  # the last analysed audio (sonotag_core.service.library.Analysed)
    url_loaded: str = "url_loaded"  # query params were read into the widgets once per session
    picked_t: str = "picked_t"  # playback time picked on a chart or the event table
    warnings: str = "link_warnings"
    qp_written: str = "qp_written"  # the query params Analyze last wrote (to spot new links)
    admin: str = "admin"  # this session gave SONOTAG_ADMIN_TOKEN on the About page
    anon_owner: str = "anon_owner"  # the owner of a session without a cookie (AppTest, bare mode)
    nav_checked: str = "nav_checked"  # leave_legacy_page_mode() looked at the first run
    page_now: str = "page_now"  # the page the session's latest run drew (start_page)
    arrived: str = "page_arrived"  # a page the session came to from another, until it takes it
    long_link: str = "long_link"  # (page, warning): opened through a link too long to restore
    # About
    admin_token: str = "admin_token_input"
    # Compare
    compare_mode: str = "cmp_mode"
    compare_a: str = "cmp_a"
    compare_b: str = "cmp_b"
    compare_labels: str = "cmp_shared"
    compare_one: str = "cmp_one"
    compare_labels_a: str = "cmp_la"
    compare_labels_b: str = "cmp_lb"
    compare_threshold: str = "cmp_thr"
    # Evaluate
    evaluate_analysis: str = "ev_id"
    evaluate_truth: str = "ev_truth"
    evaluate_lanes: str = "ev_lanes"
    evaluate_f1: str = "ev_f1"
    evaluate_roc: str = "ev_roc"
    evaluate_table: str = "ev_table"
    evaluate_keep: str = "ev_keep"
    evaluate_from: str = "ev_from"
    evaluate_compared: str = "ev_compared"  # text alone and refined, side by side
    evaluate_kept: str = "ev_kept"  # what Keep stored, said after its rerun
    # Teach
    teach_label: str = "teach_label"
    teach_detector: str = "teach_detector"  # the detector (name:vN) the cards act on
    teach_import: str = "teach_import"
    teach_import_done: str = "teach_import_done"  # the uploaded card already imported
    teach_queue: str = "teach_queue"  # teach_page.Queue: the Review next session
    teach_queue_from_similar: str = "teach_from_similar"  # go to Teach: a queue was made
    teach_player: str = "teach_player"
    teach_notes: str = "teach_notes"  # what the last action did, said after its rerun
    # Library
    library_query: str = "lib_query"
    library_hits: str = "lib_hits"  # the last search's moments
    library_attach_form: str = "lib_attach"
    library_filter: str = "lib_filter"
    library_sort: str = "lib_sort"
    library_attach_path: str = "lib_attach_path"
    library_delete_confirmed: str = "lib_delete_confirmed"
    library_delete_cancelled: str = "lib_delete_cancelled"
    library_confirm: str = "lib_confirm_delete"  # [(id, title)] the open confirmation deletes
    library_deleted_notes: str = "lib_deleted_notes"  # what the last deletion did, said after
    library_generation: str = "lib_table_generation"  # +1 per deletion: a new table

    @property
    def threshold(self) -> str:
        """The event threshold's control (every label without its own follows it)."""
        return event_key(event_param("threshold"))

    def link_widgets(self) -> list[str]:
        """The widgets a share link sets, which a visit to another page must not reset."""
        fixed = [self.mode, self.link, self.example, self.analysis, self.labels]
        events = (event_key(r) for r in event_params())
        return [*fixed, self.hop, self.fast, self.view, self.detectors, *events]


KEYS = SessionKeys()


def event_key(row: EventParam) -> str:
    """The session key of an event parameter's sidebar control: its share-link key."""
    return row.share_key


def label_key(label: str) -> str:
    """The session key of one label's own threshold slider."""
    return f"lt::{label}"


def keyed(prefix: str, *parts: object) -> str:
    """A key made per item: ``prefix`` and the item's parts (``keyed("dl", "csv")``)."""
    return "_".join([prefix, *map(str, parts)])

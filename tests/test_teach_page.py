"""The Teach page through AppTest on the stand-in (fast tier): refine a reviewed label into
a stored detector with its cross-validated metrics, export and import cards (a bad one
refused with a message), and Review next: answers keep spans, every five the detector
refits and the queue's lane says so. Also Analyze with a stored detector (``det`` link)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_teach import LABEL, OTHER, SOUND, add, scene

from sonotag_app.keys import KEYS
from sonotag_core.access import Viewer
from sonotag_core.domain.review import ADDED, Review, Span
from sonotag_core.domain.windows import FRAME_S
from sonotag_core.store.database import Store

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TEACH = "pages/teach.py"


@pytest.fixture
def reviewed(page_env):
    """The page's store with four stand-in scenes of sirens and look-alikes, three of them
    reviewed (an accepted siren, an added span, a rejected look-alike each)."""
    store = Store(page_env / "data")
    ids = []
    for k in range(4):
        emb = scene(40.0, {20: SOUND, 60: OTHER, 100: SOUND}, seed=k)
        ids.append(add(store, f"scene{k}", emb, "operator"))
    for aid in ids[:3]:
        store.set_review(
            aid, Review.of_event(LABEL, 20 * FRAME_S, 26 * FRAME_S, "accepted"), reviewer="op"
        )
        store.add_span(aid, Span(LABEL, 100 * FRAME_S, 106 * FRAME_S, ADDED), reviewer="op")
        store.set_review(
            aid, Review.of_event(LABEL, 60 * FRAME_S, 66 * FRAME_S, "rejected"), reviewer="op"
        )
    return store, ids


def teach_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page(TEACH)
    return at.run()


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, [b.label for b in at.button]
    return found[0]


def texts(at: AppTest) -> str:
    """Every message and Markdown text, Markdown escapes removed (the page shows names
    literally: context.md_text)."""
    kinds = ("success", "error", "info", "markdown", "warning", "caption")
    return " ".join(str(e.value) for kind in kinds for e in getattr(at, kind)).replace("\\", "")


def test_refine_lists_the_detector_with_its_metrics(reviewed):
    at = teach_page()
    assert not at.exception
    assert at.selectbox(key=KEYS.teach_label).value == LABEL  # offered from the Library
    assert "No detectors yet" in texts(at)
    button(at, f"Refine “{LABEL}”").click().run()
    assert not at.exception
    assert f"Saved {LABEL} v1: event F1" in texts(at)
    table = at.dataframe[0].value
    assert list(table["version"]) == [1]
    assert "text alone" in table["metrics"][0] and "reviews" in table["metrics"][0]
    assert 0.0 < float(table["threshold"][0]) < 1.0


def test_cards_import_refuses_a_pickle_and_takes_a_card(reviewed, standin_model):
    from sonotag_core.access import OPERATOR_VIEWER
    from sonotag_core.service import detectors as det
    from sonotag_core.service.api import Service
    from sonotag_core.settings import Settings

    store, _ = reviewed
    service = Service(standin_model, Settings.from_env(), store)
    card = det.card_json(service.refine(LABEL, viewer=OPERATOR_VIEWER, save=False).detector)
    at = teach_page()
    at.file_uploader(key=KEYS.teach_import).upload(
        "evil.json", pickle.dumps({"a": 1}), "application/json"
    ).run()
    assert not at.exception
    assert "Not imported:" in texts(at) and "pickle" in texts(at)
    at.file_uploader(key=KEYS.teach_import).upload(
        "siren.json", card.encode(), "application/json"
    ).run()
    assert "Imported siren v1 (siren)" in texts(at)
    assert [d.ref for d in det.list_detectors(store, OPERATOR_VIEWER)] == ["siren v1"]


def test_five_answers_in_review_next_refit_the_queue(reviewed):
    store, _ = reviewed
    at = teach_page()
    button(at, "Start reviewing").click().run()
    assert not at.exception
    queue = at.session_state[KEYS.teach_queue]
    assert queue.item is not None and queue.lane() == "text only"
    before = queue.reviews
    assert "Is there" in texts(at)
    for k in range(5):
        button(at, "Yes (a)" if k % 2 == 0 else "No (r)").click().run()
        assert not at.exception
    queue = at.session_state[KEYS.teach_queue]
    assert queue.answered == 5
    assert queue.refit and queue.reviews == before + 5
    assert queue.lane() == f"refit on {before + 5} reviews"
    assert "5 answered here" in texts(at) and "F1 (cross-val)" in texts(at)
    spans = [s for aid in {i.analysis_id for i in queue.items} for s in store.get_spans(aid)]
    assert spans  # the answers are kept as marked spans


def test_analyze_scores_a_label_with_a_stored_detector_from_its_link(reviewed, standin_model):
    from sonotag_core.access import OPERATOR_VIEWER
    from sonotag_core.service.api import Service
    from sonotag_core.settings import Settings

    store, ids = reviewed
    Service(standin_model, Settings.from_env(), store).refine(LABEL, viewer=OPERATOR_VIEWER)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["analysis"] = ids[3]
    at.query_params["l"] = "dog"
    at.query_params["det"] = "siren:v1"
    at.run()
    assert not at.exception
    assert "Scored by refined detectors: siren · refined v1" in texts(at)
    assert at.multiselect(key=KEYS.detectors).value == ["siren:v1"]
    at.query_params.clear()
    at2 = AppTest.from_file(APP, default_timeout=120)
    at2.query_params["analysis"] = ids[3]
    at2.query_params["det"] = "nobody:v9"
    at2.run()
    assert not at2.exception
    assert "A refined detector is not used: There is no detector" in texts(at2)


def test_a_share_link_visitor_sees_marked_spans_but_cannot_mark(page_env, monkeypatch):
    """Private access: someone else's analysis opened through its link lists its marked
    spans with the events (status added / negative), read-only: the player is told it
    cannot review, and marking through the app's handler is refused by the service."""
    from sonotag_app import analyze_workbench

    monkeypatch.setenv("SONOTAG_ACCESS", "private")
    store = Store(page_env / "data")
    aid = add(store, "alices", scene(40.0, {20: SOUND}, seed=1), "visitor:alice")
    store.add_span(aid, Span(LABEL, 100 * FRAME_S, 106 * FRAME_S, ADDED), reviewer="alice")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["analysis"] = aid
    at.query_params["l"] = LABEL
    at.run()
    assert not at.exception
    assert "read-only" in texts(at)
    table = at.dataframe[0].value
    assert "added" in set(table["status"])
    assert not [b for b in at.button if str(b.label).startswith("Delete this marked span")]
    # the trigger's handler goes through the service's access rule
    session: dict = {}
    monkeypatch.setattr(analyze_workbench.st, "session_state", session)
    monkeypatch.setattr(analyze_workbench.context, "viewer", lambda: Viewer("visitor:bob"))
    monkeypatch.setattr(analyze_workbench.context, "store", lambda: store)
    assert analyze_workbench.mark_span(aid, LABEL, 1.0, 2.0, ADDED) is False
    assert len(store.get_spans(aid)) == 1
    assert "Only the person who made this analysis" in session[KEYS.review_error]


def test_evaluate_shows_text_alone_and_refined_on_the_same_truth(reviewed, standin_model):
    """Evaluate against a ground-truth file: a label with a refined detector is scored
    twice, by its text and by the detector, in one table under the usual one."""
    from sonotag_core.access import OPERATOR_VIEWER
    from sonotag_core.service.api import Service
    from sonotag_core.settings import Settings

    store, ids = reviewed
    Service(standin_model, Settings.from_env(), store).refine(LABEL, viewer=OPERATOR_VIEWER)
    truth = "filename\tonset\toffset\tevent_label\n" + "".join(
        f"scene3.wav\t{f * FRAME_S:.4f}\t{(f + 6) * FRAME_S:.4f}\t{LABEL}\n" for f in (20, 100)
    )
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["analysis"] = ids[3]  # the one nobody reviewed
    at.run()
    at.switch_page("pages/evaluate.py").run()
    at.file_uploader(key=KEYS.evaluate_truth).upload(
        "truth.tsv", truth.encode(), "text/tab-separated-values"
    ).run()
    assert not at.exception, at.exception
    assert "Text alone and refined" in [h.value for h in at.subheader]
    [table] = [d.value for d in at.dataframe if "detector" in d.value.columns]
    assert list(table["label"]) == [LABEL] and list(table["detector"]) == [f"{LABEL} v1"]
    for column in ("f1", "psds1", "auroc"):
        assert 0.0 <= table[f"{column} (text)"][0] <= 1.0
        assert 0.0 <= table[f"{column} (refined)"][0] <= 1.0
    assert table["threshold (refined)"][0] != table["threshold (text)"][0]  # its own cut

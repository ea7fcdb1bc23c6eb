"""Share links: the view round-trips through query params; hostile params never raise."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sonotag_core.settings import Settings
from sonotag_core.share import ViewState, from_query_params, share_url, to_query_params

S = Settings().validated()
EXAMPLES = {"alarm-clock", "siren-street"}


def parse(params):
    return from_query_params(params, settings=S, example_ids=EXAMPLES)


label = st.text(
    alphabet=st.characters(blacklist_categories=("C", "Z"), blacklist_characters=";-"),
    min_size=1, max_size=20,
)  # fmt: skip


@hsettings(max_examples=150, deadline=None)
@given(
    labels=st.lists(label, min_size=1, max_size=8, unique=True),
    neg_mask=st.lists(st.booleans(), min_size=8, max_size=8),
    thr=st.integers(1, 99),
    hop=st.sampled_from([10.0, 5.0]),
    med=st.sampled_from([1, 3, 5, 15]),
    view=st.sampled_from(["timeline", "heatmap", "events", "scores"]),
    t=st.one_of(st.none(), st.integers(0, 100000).map(lambda x: x / 100)),
    example=st.sampled_from([None, "alarm-clock"]),
)
def test_round_trip(labels, neg_mask, thr, hop, med, view, t, example):
    negatives = frozenset(x for x, n in zip(labels, neg_mask, strict=False) if n)
    lt = {labels[0]: 0.25} if labels[0] not in negatives else {}
    state = ViewState(example=example, labels=tuple(labels), negatives=negatives, threshold=thr / 100,
                      label_thresholds=lt, hop_s=hop, median_frames=med, view=view, t=t)  # fmt: skip
    back, warnings = parse(to_query_params(state, settings=S))
    assert warnings == []
    assert back == state


def test_defaults_give_an_empty_query_and_short_links():
    state, warnings = parse({})
    assert warnings == [] and to_query_params(state, settings=S) == {}
    assert share_url("http://host/", state, settings=S) == "http://host/"


def test_share_url_parses_back():
    state = ViewState(link="https://www.youtube.com/watch?v=dQw4w9WgXcQ", labels=("a: b", "café", "x"),
                      negatives=frozenset({"x"}), label_thresholds={"a: b": 0.3}, t=12.34)  # fmt: skip
    url = share_url("http://127.0.0.1:8501/", state, settings=S)
    back, warnings = parse(parse_qs(urlsplit(url).query))
    assert warnings == [] and back == state


@pytest.mark.parametrize(
    "params",
    [
        {"thr": "abc"},
        {"thr": "nan"},
        {"thr": "5"},
        {"hop": "7"},
        {"med": "4"},
        {"med": "2.5"},
        {"t": "-3"},
        {"t": "inf"},
        {"view": "../../etc"},
        {"ex": "../../etc/passwd"},
        {"id": "../../x"},
        {"src": "file:///etc/passwd"},
        {"src": "http://127.0.0.1/"},
        {"src": "https://vimeo.com/1"},
        {"l": ["x" * 10_000]},
        {"l": [f"s{i}" for i in range(500)]},
        {"lt": "unknownlabel:0.3"},
        {"lt": ["dog barking:2"]},
        {"min": "1e9"},
        {"gap": "-1"},
        {"ex": "alarm-clock", "src": "https://youtu.be/dQw4w9WgXcQ"},
    ],
)
def test_hostile_params_warn_and_use_defaults(params):
    state, warnings = parse(params)
    assert warnings, params
    assert (
        0 < state.threshold < 1
        and state.hop_s in (10.0, 5.0)
        and state.view in ("timeline", "heatmap", "events", "scores")
    )
    assert state.example in (None, *EXAMPLES) and (state.analysis is None)
    assert len(state.labels) <= S.max_labels and all(
        len(x) <= S.max_label_chars for x in state.labels
    )
    assert state.t is None or state.t >= 0


def test_control_characters_and_lists_vs_strings():
    state, _ = parse({"l": ["dog\x00 barking", "\x1b[31msiren", "-music"], "thr": ["0.2", "0.3"]})
    assert state.labels == ("dog barking", "[31msiren", "music")
    assert state.negatives == {"music"} and state.threshold == 0.3
    single, _ = parse({"l": "siren", "ex": "alarm-clock"})
    assert single.labels == ("siren",) and single.example == "alarm-clock"

"""Share links: the view round-trips through query params; hostile params never raise."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from sonotag_core.dashboard.share import (
    DEFAULT_LABELS,
    VIEWS,
    ViewState,
    combined_warning,
    default_state,
    from_query_params,
    params,
    share_url,
    to_query_params,
)
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.labels import parse_labels
from sonotag_core.settings import Settings

S = Settings().validated()
D = default_state(S)
EXAMPLES = {"alarm-clock", "siren-street"}
YT = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
SC = "https://soundcloud.com/artist/track"


def parse(params, settings=S):
    return from_query_params(params, settings=settings, example_ids=EXAMPLES)


def assert_valid(state: ViewState, settings: Settings = S) -> None:
    """What the page relies on: every field usable as-is, whatever the link said."""
    assert sum(x is not None for x in (state.link, state.example, state.analysis)) <= 1
    assert state.example in (None, *EXAMPLES)
    assert state.link in (None, YT, SC) or state.link.startswith(
        ("https://www.youtube.com/watch?v=", "https://soundcloud.com/")
    )
    assert state.analysis is None or (
        8 <= len(state.analysis) <= 64 and set(state.analysis) <= set("0123456789abcdef")
    )
    parsed = parse_labels(
        ["-" + x if x in state.negatives else x for x in state.labels],
        max_labels=settings.max_labels,
        max_chars=settings.max_label_chars,
    )
    assert parsed.labels == state.labels and parsed.negatives == state.negatives
    assert set(state.label_thresholds) <= set(parsed.positives)
    assert 0.01 <= state.threshold <= 0.99
    assert all(0.01 <= v <= 0.99 for v in state.label_thresholds.values())
    assert state.hop_s in (10.0, 5.0)
    ev = state.events
    assert ev["median_frames"] in (1, 3, 5, 7, 9, 11, 13, 15)
    assert 0 <= ev["min_event_s"] <= 60 and 0 <= ev["fill_gap_s"] <= 10
    assert state.view in VIEWS
    assert state.t is None or 0 <= state.t <= settings.max_duration_s
    EventParams.from_settings(
        settings,
        label_thresholds=state.label_thresholds,
        **state.events,
    )


# ---------------------------------------------------------------- round trip

word = st.text(
    alphabet=st.characters(exclude_categories=("C", "Z"), exclude_characters=";"),
    min_size=1,
    max_size=12,
)
label = st.one_of(
    st.lists(word, min_size=1, max_size=4)
    .map(" ".join)
    .filter(lambda x: not x.startswith("-") and len(x) <= S.max_label_chars),
    st.sampled_from(
        ["a: b", "x:0.3", "ends with:", ":", "café au lait", "狗 叫", "C++ & 50% = #1?", "a-b"]
    ),
)
micro = st.integers(0, 10**6)  # values with at most 6 decimals, as the URL keeps them


@st.composite
def view_states(draw):
    labels = draw(st.lists(label, min_size=1, max_size=S.max_labels, unique=True))
    negatives = frozenset(x for x in labels if draw(st.booleans()))
    positives = [x for x in labels if x not in negatives]
    lt_labels = draw(st.lists(st.sampled_from(positives), unique=True)) if positives else []
    source = draw(st.sampled_from(["none", "example", "youtube", "soundcloud", "analysis"]))
    return ViewState(
        link={"youtube": YT, "soundcloud": SC}.get(source),
        example="alarm-clock" if source == "example" else None,
        analysis=draw(st.from_regex(r"[0-9a-f]{8,64}", fullmatch=True))
        if source == "analysis"
        else None,
        labels=tuple(labels),
        negatives=negatives,
        label_thresholds={x: draw(st.integers(1, 99)) / 100 for x in lt_labels},
        hop_s=draw(st.sampled_from([10.0, 5.0])),
        fast=draw(st.booleans()),
        events={
            "threshold": draw(st.integers(10_000, 990_000)) / 1e6,
            "median_frames": draw(st.sampled_from(range(1, 16, 2))),
            "min_event_s": draw(st.integers(0, 60 * 10**6)) / 1e6,
            "fill_gap_s": draw(st.integers(0, 10 * 10**6)) / 1e6,
        },
        view=draw(st.sampled_from(VIEWS)),
        t=draw(
            st.one_of(st.none(), st.integers(0, int(S.max_duration_s) * 100).map(lambda x: x / 100))
        ),
    )


@hsettings(max_examples=300, deadline=None)
@given(state=view_states())
def test_round_trip(state):
    assert_valid(state)
    params = to_query_params(state, settings=S)
    assert parse(params) == (state, [])
    # the same through a real URL: urlencode(doseq) on the way out, parse_qs on the way in
    url = share_url("http://127.0.0.1:8501/", state, settings=S)
    assert parse(parse_qs(urlsplit(url).query)) == (state, [])


@pytest.mark.parametrize(
    "state",
    [
        ViewState(
            link=YT,
            labels=("a: b", "café", "x"),
            negatives=frozenset({"x"}),
            label_thresholds={"a: b": 0.3},
            t=12.34,
        ),
        ViewState(labels=("x:0.3", "k:"), label_thresholds={"x:0.3": 0.7, "k:": 0.01}),
        ViewState(example="siren-street", labels=("C++ & 50% = #1?", "a+b", "é/ü?"), view="scores"),
        ViewState(
            analysis="0123abcd",
            hop_s=5.0,
            events={"median_frames": 15, "min_event_s": 60.0, "fill_gap_s": 0.0},
            t=0.0,
        ),
        ViewState(labels=DEFAULT_LABELS, negatives=frozenset({"siren"})),
    ],
)
def test_round_trip_explicit(state):
    params = to_query_params(state, settings=S)
    assert parse(params) == (state, [])
    url = share_url("http://127.0.0.1:8501/", state, settings=S)
    assert parse(parse_qs(urlsplit(url).query)) == (state, [])


def test_defaults_give_an_empty_query_and_the_bare_base_url():
    state, warnings = parse({})
    assert state == D and warnings == []
    assert to_query_params(state, settings=S) == {}
    assert share_url("http://host/", state, settings=S) == "http://host/"
    # defaults come from Settings, and a default value is still left out
    custom = Settings(threshold=0.3, hop_s=5.0, median_frames=3).validated()
    state, warnings = from_query_params({}, settings=custom, example_ids=EXAMPLES)
    got = (state.threshold, state.hop_s, state.events["median_frames"])
    assert got == (0.3, 5.0, 3) and not warnings
    assert to_query_params(state, settings=custom) == {}
    assert to_query_params(replace(state, hop_s=10.0), settings=custom) == {"hop": "10"}


def test_only_changed_values_are_written_compactly():
    state = replace(
        D.with_events(threshold=0.1 + 0.2, median_frames=3, min_event_s=0.35000000000000003),
        hop_s=5.0,
        view="heatmap",
        t=12.345678,
    )
    assert to_query_params(state, settings=S) == {
        "thr": "0.3",
        "med": "3",
        "hop": "5",
        "min": "0.35",
        "view": "heatmap",
        "t": "12.35",
    }
    assert to_query_params(replace(D, t=0.0), settings=S) == {"t": "0"}
    assert to_query_params(replace(D, labels=("siren",)), settings=S) == {"l": ["siren"]}
    url = share_url(
        "http://h/", replace(D, labels=("a b", "-x"), example="alarm-clock"), settings=S
    )
    assert url == "http://h/?ex=alarm-clock&l=a+b&l=-x"


def test_any_parsed_link_reparses_to_itself():
    """Values are rounded as they are read, so a hand-edited link is stable after one pass."""
    state, warnings = parse({"thr": "0.123456789", "t": "1.239", "min": "0.0000001"})
    assert warnings == [] and (state.threshold, state.t, state.events["min_event_s"]) == (
        0.123457,
        1.24,
        0,
    )
    assert parse(to_query_params(state, settings=S)) == (state, [])


# ---------------------------------------------------------------- hostile params


HOSTILE_SINGLE = [
    {"thr": "abc"},
    {"thr": "nan"},
    {"thr": "NaN"},
    {"thr": "5"},
    {"thr": "0"},
    {"thr": "-0.5"},
    {"thr": "0x1p-2"},
    {"thr": "1_0"},
    {"thr": "٠.٥"},  # Arabic-Indic digits: float() would accept them
    {"thr": ""},
    {"hop": "7"},
    {"hop": "inf"},
    {"med": "4"},
    {"med": "2.5"},
    {"med": "17"},
    {"med": "1e400"},
    {"min": "1e9"},
    {"gap": "-1"},
    {"t": "-3"},
    {"t": "inf"},
    {"t": "1e999"},
    {"t": "12:30"},
    {"view": "../../etc"},
    {"view": "[click me](https://evil.example)"},
    {"ex": "../../etc/passwd"},
    {"ex": "alarm-clock/../../x"},
    {"id": "../../x"},
    {"id": "ABCDEF12"},
    {"id": "abc"},
    {"id": "a" * 65},
    {"src": "file:///etc/passwd"},
    {"src": "http://127.0.0.1/"},
    {"src": "http://localhost:8501/"},
    {"src": "https://vimeo.com/1"},
    {"src": "https://[x"},  # urlsplit raises ValueError inside parse_link
    {"src": "https://:red[hi].com/"},
    {"src": "https://**bold**.com/$x$"},
    {"src": "javascript:alert(1)"},
    {"src": "; rm -rf / #"},
    {"l": ["x" * 10_000]},
    {"l": ""},
    {"l": ["-", " ; ;", "\x00\x01"]},
    {"lt": "unknownlabel:0.3"},
    {"lt": ["dog barking:2"]},
    {"lt": "dog barking"},
    {"lt": "dog barking:nan"},
    {"lt": ["x" * 3000 + ":0.3"]},
    {"thr": "0.3" * 1000},
    {"fast": "yes"},
    {"fast": "**1**"},
]


@pytest.mark.parametrize("params", HOSTILE_SINGLE, ids=lambda p: repr(p)[:40])
def test_hostile_values_warn_and_keep_the_defaults(params):
    state, warnings = parse(params)
    assert warnings, params
    assert state == D
    assert_valid(state)
    for w in warnings:  # nothing from the URL that Markdown/LaTeX would interpret
        assert not set(w) & set("[]*$`<>"), w
        assert "evil" not in w and "passwd" not in w and "rm -rf" not in w


def test_long_and_many_labels_are_cut_to_the_limits():
    state, warnings = parse({"l": [f"s{i}" for i in range(500)]})
    assert state.labels == tuple(f"s{i}" for i in range(S.max_labels))
    assert warnings == [
        f"The link has 500 labels; kept the first {S.max_labels} and dropped "
        f"{500 - S.max_labels} (SONOTAG_MAX_LABELS is {S.max_labels})."
    ]
    state, warnings = parse({"l": ["y" * 150, "ok"]})
    assert state.labels == ("y" * S.max_label_chars, "ok") and len(warnings) == 1
    # ";" splits like the label box, and the split can also exceed the limit
    state, warnings = parse({"l": ";".join(f"s{i}" for i in range(40))})
    assert len(state.labels) == S.max_labels and warnings
    assert_valid(state)
    # a 10 000-character label is dropped before any work; the others stay
    state, warnings = parse({"l": ["x" * 10_000, "siren"]})
    assert state.labels == ("siren",) and len(warnings) == 1


@pytest.mark.parametrize("joined", [False, True], ids=["repeated", "one value with ;"])
def test_a_link_with_1000_labels_says_how_many_were_dropped(joined):
    """Issue 9 A7: 1000 labels in a link (repeated, or one "a;b;…" value longer than any
    single value may be) were cut to the defaults or the limit without saying how many."""
    labels = [f"label {i}" for i in range(1000)]
    state, warnings = parse({"l": ";".join(labels) if joined else labels})
    assert state.labels == tuple(labels[: S.max_labels])
    assert len(warnings) == 1, warnings
    assert "1000 labels" in warnings[0] and f"dropped {1000 - S.max_labels}" in warnings[0]
    assert combined_warning(warnings) == warnings[0]


def test_several_bad_params_make_one_message_naming_each():
    bad = {
        "thr": "abc",
        "hop": "3",
        "med": "4",
        "min": "x",
        "gap": "y",
        "view": "zz",
        "t": "q",
        "ex": "nope",
        "l": [f"s{i}" for i in range(40)],
    }
    state, warnings = parse(bad)
    assert state == replace(D, labels=tuple(f"s{i}" for i in range(S.max_labels)))
    message = combined_warning(warnings)
    assert message is not None and message.startswith(f"The link has {len(warnings)} problems")
    for what in (
        "example",
        "threshold",
        "window hop",
        "smoothing",
        "minimum event length",
        "gap filling",
        "view",
        "playback time",
        "40 labels",
    ):
        assert message.count(what) >= 1, what
    lines = message.splitlines()
    assert len(lines) == 1 + len(warnings) == 10  # a heading, then one line per problem
    assert [line.rstrip().removeprefix("• ") for line in lines[1:]] == warnings
    assert not set(message) & set("[]*$`<>")  # nothing Markdown would act on


def test_combined_warning_of_nothing_or_repeats():
    assert combined_warning([]) is None and combined_warning(["", "  "]) is None
    assert combined_warning(["Ignored x.", "Ignored x."]) == "Ignored x."


def test_control_characters_and_nul_bytes_in_labels():
    state, warnings = parse({"l": ["dog\x00 barking", "\x1b[31msiren", "-mu\tsic\u200b", "a\r\nb"]})
    assert state.labels == ("dog barking", "[31msiren", "music", "a", "b")
    assert state.negatives == {"music"} and warnings == []
    assert_valid(state)


def test_strings_and_lists_are_both_accepted():
    as_lists, w1 = parse({"l": ["siren"], "thr": ["0.2", "0.3"], "ex": ["alarm-clock"]})
    as_strs, w2 = parse({"l": "siren", "thr": "0.3", "ex": "alarm-clock"})
    assert as_lists == as_strs and w1 == w2 == []
    assert as_strs.labels == ("siren",) and as_strs.threshold == 0.3
    assert as_strs.example == "alarm-clock"
    assert parse({"thr": []}) == (D, [])


def test_per_label_thresholds():
    params = {"l": ["a: b", "siren", "-music"], "lt": ["a: b:0.25", " siren :0.7", "music:0.3"]}
    state, warnings = parse(params)
    assert state.label_thresholds == {"a: b": 0.25, "siren": 0.7}
    assert len(warnings) == 1 and "1 per-label threshold" in warnings[0]  # negatives: none
    state, warnings = parse({"lt": [f"siren:0.{i}" for i in range(1, 10)] + ["x:0.2"] * 5000})
    assert state.label_thresholds == {"siren": 0.9} and len(warnings) == 1


def test_one_audio_source_with_precedence_id_src_ex():
    both = {"ex": "alarm-clock", "src": "https://youtu.be/dQw4w9WgXcQ?t=30"}
    state, warnings = parse(both)
    assert (state.link, state.example) == (YT, None) and len(warnings) == 1
    state, warnings = parse({**both, "id": "deadbeef"})
    assert (state.analysis, state.link, state.example) == ("deadbeef", None, None)
    assert len(warnings) == 1
    state, warnings = parse({"id": "nothex!!", "ex": "alarm-clock"})  # invalid ones don't count
    assert state.example == "alarm-clock" and len(warnings) == 1


def test_links_are_canonicalized():
    state, warnings = parse({"src": "youtu.be/dQw4w9WgXcQ"})
    assert state.link == YT and warnings == []
    state, warnings = parse({"src": "https://m.soundcloud.com/artist/track"})
    assert warnings == [] and state.link == SC
    assert to_query_params(state, settings=S) == {"src": SC}


def test_unknown_params_are_ignored_silently():
    params = {"utm_source": "x" * 5000, "embed": "true", "fbclid": ["a", "b"], "": ""}
    assert parse(params) == (D, [])


fuzz_value = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "0.5",
            "5",
            "3",
            "-1",
            "nan",
            "inf",
            "1e308",
            "alarm-clock",
            "heatmap",
            YT,
            "https://youtu.be/dQw4w9WgXcQ",
            "deadbeef",
            "siren:0.3",
            "-x",
        ]
    ),
)


@hsettings(max_examples=300, deadline=None)
@given(
    params=st.dictionaries(
        st.one_of(st.sampled_from(params()), st.text(max_size=5)),
        st.one_of(fuzz_value, st.lists(fuzz_value, max_size=5)),
        max_size=8,
    )
)
def test_fuzzed_params_never_raise_and_reparse_to_themselves(params):
    state, warnings = parse(params)
    assert_valid(state)
    assert all(isinstance(w, str) and w for w in warnings)
    assert parse(to_query_params(state, settings=S)) == (state, [])


def test_a_real_query_string_round_trips_through_urlencode():
    query = urlencode(
        {"l": ["dog barking", "-music"], "lt": ["dog barking:0.2"], "t": "3"}, doseq=True
    )
    state, warnings = parse(parse_qs(query))
    assert warnings == [] and state.t == 3.0 and state.label_thresholds == {"dog barking": 0.2}


def test_analysis_param_and_its_short_alias():
    state, warnings = parse({"analysis": "deadbeef01"})
    assert state.analysis == "deadbeef01" and not warnings
    assert to_query_params(state, settings=S)["analysis"] == "deadbeef01"
    assert parse({"id": "deadbeef02"})[0].analysis == "deadbeef02"  # the short alias
    assert parse({"analysis": "deadbeef03", "id": "deadbeef04"})[0].analysis == "deadbeef03"


def test_fast_mode_is_in_the_link_only_when_it_differs_from_the_server_default():
    assert to_query_params(replace(D, fast=True), settings=S) == {"fast": "1"}
    assert parse({"fast": "1"}) == (replace(D, fast=True), [])
    on = Settings(fast=True).validated()  # a server that runs fast by default
    assert to_query_params(replace(default_state(on), fast=False), settings=on) == {"fast": "0"}
    assert parse({"fast": "0"}, settings=on)[0].fast is False
    assert parse({}, settings=on)[0].fast is True


# ---------------------------------------------------------------- det (issue 27)


def test_detectors_round_trip_by_name_and_version():
    state = ViewState(labels=("siren",), detectors=(("siren", 3), ("a:b", 2), ("dogs", 0)))
    params = to_query_params(state, settings=S)
    assert params["det"] == ["siren:v3", "a:b:v2", "dogs"]
    back, warnings = parse(params)
    assert back.detectors == state.detectors and not warnings
    url = share_url("http://127.0.0.1:8501/", state, settings=S)
    assert parse(parse_qs(urlsplit(url).query))[0].detectors == state.detectors


@pytest.mark.parametrize(
    "value",
    ["", ":v3", "x" * 101 + ":v1", "siren:vv", "siren:v1234567", "siren:-1", "\x00\x01:v2", "a:b"],
)
def test_a_bad_detector_in_a_link_is_dropped_with_a_warning_that_repeats_nothing(value):
    state, warnings = parse({"det": [value, "siren:v2"]})
    assert state.detectors == (("siren", 2),)
    assert len(warnings) == 1 and "Ignored 1 detector" in warnings[0]
    assert value.strip() not in warnings[0] or not value.strip()


def test_detector_names_are_cleaned_and_a_flood_is_bounded():
    state, _ = parse({"det": ["  siren \t wail :4", "siren wail:v4"]})
    assert state.detectors == (("siren wail", 4),)  # spacing collapsed, duplicates once
    state, warnings = parse({"det": [f"d{i}:v1" for i in range(5000)]})
    assert len(state.detectors) == 16 and "Ignored 4984 detectors" in warnings[0]

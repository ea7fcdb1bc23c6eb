"""Untrusted text, hostile on purpose: labels (the label box, the CLI, share links), upload
names and links with invisible or direction-changing characters, huge lengths and counts,
shell and path syntax. Bounded work, clean messages, and nothing reaching a path or a
shell. (Link forms, hostile query values and control characters in labels that other
tests already cover are not repeated here.)"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from audiogen import make_audio

from sonotag_core import share, sources
from sonotag_core.cli import main
from sonotag_core.errors import LimitError, SourceError
from sonotag_core.labels import parse_labels
from sonotag_core.settings import Settings

S = Settings()
INVISIBLE = {
    "rtl override": "\u202e",
    "ltr override": "\u202d",
    "pop direction": "\u202c",
    "rtl isolate": "\u2067",
    "pop isolate": "\u2069",
    "zero-width joiner": "\u200d",
    "zero-width space": "\u200b",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "nul": "\x00",
    "escape": "\x1b",
    "delete": "\x7f",
    "c1 control": "\x9b",
}


def limits(text, **kw):
    return parse_labels(text, max_labels=S.max_labels, max_chars=S.max_label_chars, **kw)


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_and_direction_characters_are_dropped_from_labels(char):
    parsed = limits(f"{char}dog{char} barking; si{char}ren{char}; -{char}music")
    assert parsed.labels == ("dog barking", "siren", "music")
    assert parsed.negatives == {"music"}


def test_a_reversed_label_stays_what_it_says():
    """An RTL override would show "siren" while the text is "neris": the override goes,
    so what is scored and exported is what the user sees."""
    assert limits("\u202eneris\u202c").labels == ("neris",)
    with pytest.raises(LimitError, match="at least one label"):
        limits("\u2067\u202e\u200d\ufeff ; \x00\x1b")


def test_a_10000_character_label_is_refused_quickly_with_a_short_message():
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=f"limit is {S.max_label_chars}") as err:
        limits("a" * 10_000)
    assert time.perf_counter() - t0 < 0.5
    assert len(str(err.value)) < 300 and "10000 characters" in str(err.value)


def test_10000_labels_are_refused_quickly():
    t0 = time.perf_counter()
    with pytest.raises(LimitError, match=f"10000 labels given; the limit is {S.max_labels}"):
        limits(";".join(f"label {i}" for i in range(10_000)))
    with pytest.raises(LimitError, match="10000 labels"):
        limits([f"label {i}" for i in range(10_000)])
    assert time.perf_counter() - t0 < 1.0


def test_shell_and_path_syntax_is_only_text():
    text = "$(touch /tmp/x); `id`; ../../etc/passwd; a|b && c > /dev/null"
    parsed = limits(text)
    assert parsed.labels == ("$(touch /tmp/x)", "`id`", "../../etc/passwd",
                             "a|b && c > /dev/null")  # fmt: skip


# ---------------------------------------------------------------- share links


def test_10000_labels_and_thresholds_in_a_link_are_cut_quickly():
    params = {"l": [f"\u202elabel {i}" for i in range(10_000)],
              "lt": [f"label {i}:0.3" for i in range(10_000)]}  # fmt: skip
    t0 = time.perf_counter()
    state, warnings = share.from_query_params(params, settings=S, example_ids=())
    assert time.perf_counter() - t0 < 2.0
    assert state.labels == tuple(f"label {i}" for i in range(S.max_labels))
    assert len(state.label_thresholds) == S.max_labels
    assert 1 <= len(warnings) <= 3 and all(len(w) <= 300 for w in warnings)


def test_direction_characters_in_link_labels_are_dropped():
    state, warnings = share.from_query_params(
        {"l": ["\u202eneris", "dog\u200d barking", "\u2067\u2069"]}, settings=S, example_ids=()
    )
    assert state.labels == ("neris", "dog barking") and warnings == []
    again, _ = share.from_query_params(
        share.to_query_params(state, settings=S), settings=S, example_ids=()
    )
    assert again == state


# ---------------------------------------------------------------- links


@pytest.mark.parametrize(
    "link",
    [
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ\u202e",
        "https://youtu.be/dQw4w9WgXcQ\x00",
        "https://www.youtube.com\u200b/watch?v=dQw4w9WgXcQ",
        "\ufeffhttps://youtu.be/dQw4w9WgXcQ",
    ],
)
def test_links_with_invisible_characters_are_refused(link):
    with pytest.raises(SourceError, match="control characters"):
        sources.parse_link(link)


def test_lookalike_hosts_are_refused():
    for link in ("https://ｙｏｕｔｕｂｅ.com/watch?v=dQw4w9WgXcQ",  # fullwidth letters
                 "https://www.youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
                 "https://xn--yutube-wqf.com/watch?v=dQw4w9WgXcQ"):  # fmt: skip
        with pytest.raises(SourceError, match="not supported"):
            sources.parse_link(link)


# ---------------------------------------------------------------- upload names


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd\x00.wav",
        "..\\..\\windows\\evil.wav",
        "/etc/cron.d/job.wav",
        "\u202evaw.exe",
        "clip.wav\x00.sh",
        "x" * 10_000 + ".wav",
        "....wav",
        "",
    ],
    ids=["traversal+nul", "backslashes", "absolute", "rtl", "nul-suffix", "10000", "dots", "empty"],
)
def test_upload_names_never_reach_a_path(tmp_path, name):
    data = make_audio(tmp_path / "src.wav", 1.0).read_bytes()
    uploads = tmp_path / "uploads"
    info = sources.from_upload(data, name, uploads)
    assert info.path.parent == uploads and info.path.resolve().parent == uploads.resolve()
    assert info.path.name.startswith(hashlib.sha256(data).hexdigest()[:16])
    assert all(c.isalnum() or c == "." for c in info.path.name)
    assert [p.name for p in uploads.iterdir()] == [info.path.name]
    for text in (info.title, info.file_name):
        assert len(text) <= 200 and not any(c in text for c in "\x00\u202e\n")


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli(monkeypatch, cli_env, tmp_path):
    for key, value in cli_env.items():
        if key.startswith(("SONOTAG_", "HF_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(tmp_path / "data"))
    return lambda *args: main(list(args))


def test_cli_refuses_huge_labels_in_one_short_line(tmp_path, cli, capsys):
    clip = make_audio(tmp_path / "c.wav", 2.0)
    for labels in ("x" * 10_000, ";".join(["y"] * 5 + [f"l{i}" for i in range(10_000)])):
        assert cli("analyze", str(clip), "--labels", labels, "-q") == 1
        err = capsys.readouterr().err
        assert err.startswith("sonotag: error: ") and err.count("\n") == 1 and len(err) < 300


def test_cli_labels_and_file_names_are_only_data(tmp_path, cli, capsys, monkeypatch):
    """Shell syntax in labels is scored and exported as text; a file whose name has no
    usable stem ("...wav") still gets its exports, named "sonotag.*", inside -o."""
    monkeypatch.chdir(tmp_path)
    clip = make_audio(tmp_path / "...wav", 12.0, kind="mix")  # its stem: ".."
    labels = "$(touch pwned); ../../escape; `touch pwned2`"
    out = tmp_path / "out"
    assert cli("analyze", str(clip), "--labels", labels, "--format", "all", "-o", str(out),
               "-q") == 0  # fmt: skip
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6 and all(name.startswith("sonotag.") for name in written), written
    frames = (out / "sonotag.frames.csv").read_text()
    assert "$(touch pwned)" in frames and "../../escape" in frames
    assert not list(tmp_path.glob("pwned*")) and not (tmp_path.parent / "escape").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["...wav", "data", "out"]
    assert Path(out / "sonotag.json").stat().st_size > 0

"""The settings table: one row per setting, and everything reads it (environment, README,
launch scripts, the defaults of EventParams and the share-link view)."""

from __future__ import annotations

import ast
import math
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from sonotag_core.dashboard.share import ViewState
from sonotag_core.domain.events import EventParams
from sonotag_core.domain.windows import FRAME_S, WINDOW_S
from sonotag_core.errors import ConfigError
from sonotag_core.settings import (
    DEFAULTS,
    SETTINGS,
    SETTINGS_HELP,
    Settings,
    check_hop,
    settings_table_markdown,
)

ROOT = Path(__file__).resolve().parents[1]

#: A value each checked setting must refuse (a row whose check is missing here fails below).
BAD_VALUES: dict[str, str] = {
    "device": "gpu",
    "backend": "openvino",
    "batch_size": "-1",
    "max_duration_s": "nan",
    "max_labels": "0",
    "max_label_chars": "0",
    "hop_s": "3",
    "threshold": "1.5",
    "median_frames": "4",
    "fill_gap_s": "-1",
    "min_event_s": "inf",
    "media_cap_mb": "0",
    "max_upload_mb": "0",
    "rate_limit_per_hour": "-1",
    "audio_minutes_per_hour": "-5",
    "access": "public",
    "trusted_proxies": "not-an-address",
}


def test_every_row_has_name_type_default_help_and_the_dataclass_is_the_table() -> None:
    assert [r.name for r in SETTINGS] == [f.name for f in fields(Settings)]
    for row in SETTINGS:
        assert row.type in (str, int, float, bool) and isinstance(row.default, row.type), row
        assert row.help.strip() and row.env == "SONOTAG_" + row.name.upper()
        assert getattr(DEFAULTS, row.name) == row.default
    assert dict(SETTINGS_HELP) == {r.name: r.help for r in SETTINGS}  # a view, not a copy


def test_every_setting_is_documented_in_the_readme_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", readme, re.S)
    assert block, "README lacks the settings table markers"
    assert block.group(1).strip() == settings_table_markdown().strip(), (
        "regenerate with `sonotag settings`"
    )
    for row in SETTINGS:
        shown = "" if row.default == "" else str(row.default)
        assert f"| `{row.env}` | `{shown}` | {row.help} |" in block.group(1)


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {"SONOTAG_HOP_S": "5", "SONOTAG_THREADS": "1", "SONOTAG_MAX_DURATION_S": "60"}
    )
    assert (s.hop_s, s.threads, s.max_duration_s) == (5.0, 1, 60.0)
    assert Settings.from_env({"SONOTAG_THRESHOLD": ""}).threshold == DEFAULTS.threshold


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_environment_value_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({f"SONOTAG_{name.upper()}": BAD_VALUES[name]})


def test_every_checked_setting_has_a_bad_value_above() -> None:
    assert {r.name for r in SETTINGS if r.check is not None} == set(BAD_VALUES)


def test_messages_name_what_to_change() -> None:
    with pytest.raises(ConfigError, match="SONOTAG_BATCH_SIZE='many' is not a valid int"):
        Settings.from_env({"SONOTAG_BATCH_SIZE": "many"})
    with pytest.raises(ConfigError, match="Hop must be a multiple of 0.3125 s"):
        Settings.from_env({"SONOTAG_HOP_S": "3"})
    with pytest.raises(ConfigError, match="Threshold"):
        Settings.from_env({"SONOTAG_THRESHOLD": "1.5"})
    with pytest.raises(ConfigError, match="SONOTAG_MEDIA_CAP_MB"):
        Settings().with_(media_cap_mb=math.nan)


def test_check_hop_follows_the_frame_grid() -> None:
    for frames in (1, 16, round(WINDOW_S / FRAME_S)):
        check_hop(frames * FRAME_S)
    for bad in (FRAME_S / 2, 1.5 * FRAME_S, WINDOW_S + FRAME_S, 0.0, -FRAME_S):
        with pytest.raises(ConfigError):
            check_hop(bad)


def test_threads_follow_the_container_cpu_quota(tmp_path: Path) -> None:
    from sonotag_core.settings import available_cpus

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # docker --cpus 1.5
    assert available_cpus(cpu_max) == 1
    cpu_max.write_text("max 100000\n")
    assert available_cpus(cpu_max) == available_cpus(tmp_path / "absent") >= 1
    cpu_max.write_text("800000 100000\n")  # a quota above the cores we may run on
    assert available_cpus(cpu_max) == available_cpus(tmp_path / "absent")


# ---------------------------------------------------------------- defaults come from the table


def test_event_and_view_defaults_are_the_tables() -> None:
    p, v = EventParams(), ViewState()
    for name in ("threshold", "median_frames", "fill_gap_s", "min_event_s"):
        assert getattr(p, name) == v.events[name] == getattr(DEFAULTS, name), name
    assert v.hop_s == DEFAULTS.hop_s


def _python_files() -> list[Path]:
    files = [*ROOT.glob("*.py"), *ROOT.glob("pages/*.py"), *ROOT.glob("sonotag_core/**/*.py")]
    return [f for f in files if f.name != "settings.py" or f.parent.name != "sonotag_core"]


def _restated(tree: ast.AST) -> list[tuple[int, str]]:
    """Annotated fields and typed parameters named like a setting whose default is the
    setting's default literal (``threshold: float = 0.5``)."""
    defaults = {r.name: r.default for r in SETTINGS if r.default != ""}
    hits = []
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.expr | None, ast.expr | None]] = []
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            pairs.append((node.target.id, node.annotation, node.value))
        elif isinstance(node, ast.arguments):
            positional = node.posonlyargs + node.args
            with_default = positional[len(positional) - len(node.defaults) :]
            pairs += [
                (a.arg, a.annotation, d) for a, d in zip(with_default, node.defaults, strict=True)
            ]
            pairs += [
                (a.arg, a.annotation, d)
                for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True)
            ]
        for name, annotation, value in pairs:
            if name not in defaults or not isinstance(value, ast.Constant):
                continue
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue
            if annotation is not None and literal == defaults[name]:
                hits.append((value.lineno, name))
    return hits


def test_the_restated_default_finder_finds_one() -> None:
    """The finder below is not vacuous: it flags the pattern this change removed."""
    src = "class P:\n    threshold: float = 0.5\ndef f(*, fill_gap_s: float = 0.32): ...\n"
    assert _restated(ast.parse(src)) == [(2, "threshold"), (3, "fill_gap_s")]


def test_no_python_module_restates_a_default() -> None:
    found = {
        f"{path.relative_to(ROOT)}:{line} {name}"
        for path in _python_files()
        for line, name in _restated(ast.parse(path.read_text(), str(path)))
    }
    assert not found, f"take these from sonotag_core.settings.DEFAULTS: {sorted(found)}"


def test_no_launch_file_restates_a_default() -> None:
    texts = {
        p.relative_to(ROOT): p.read_text()
        for p in [ROOT / "Dockerfile", *ROOT.glob("scripts/*.sh"), *ROOT.glob(".streamlit/*")]
        if p.is_file()
    }
    for path, text in texts.items():
        for row in SETTINGS:
            # a shell fallback ${SONOTAG_X:-default} or an ENV / assignment of the default
            values = re.findall(rf"\${{{row.env}:-([^}}]*)}}", text)
            values += [v.strip("\"'") for v in re.findall(rf"\b{row.env}=(\S+)", text)]
            assert str(row.default) not in values, f"{path} restates {row.env}'s default"
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert not re.search(r"^\s*maxUploadSize\s*=", config, re.M)


# ---------------------------------------------------------------- the launch commands read it


def test_module_prints_the_effective_value() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTAG_")}
    run = [sys.executable, "-m", "sonotag_core.settings"]
    out = subprocess.run([*run, "max_upload_mb"], env=env, capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, f"{DEFAULTS.max_upload_mb}\n"), out.stderr
    env["SONOTAG_MAX_UPLOAD_MB"] = "77"
    out = subprocess.run([*run, "max_upload_mb", "hop_s"], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["77", str(DEFAULTS.hop_s)]
    env["SONOTAG_MAX_UPLOAD_MB"] = "lots"
    out = subprocess.run([*run, "max_upload_mb"], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == ""
    assert "SONOTAG_MAX_UPLOAD_MB='lots' is not a valid int" in out.stderr
    out = subprocess.run([*run, "nope"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "max_upload_mb" in out.stderr


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _launch_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTAG_")}
    return dict(env, PYTHONPATH=str(ROOT), ARGS_OUT=str(tmp_path / "args"), **extra)


def _upload_flag(tmp_path: Path) -> str:
    args = (tmp_path / "args").read_text().splitlines()
    return args[args.index("--server.maxUploadSize") + 1]


@pytest.mark.parametrize("upload_mb", [None, "123"])
def test_run_sh_passes_the_setting_to_streamlit(tmp_path: Path, upload_mb: str | None) -> None:
    """scripts/run.sh as written, in a copy whose install step and Streamlit are stand-ins
    (the stand-in python runs the real one for everything but ``-m streamlit``)."""
    root = tmp_path / "repo"
    shutil.copy(ROOT / "scripts" / "run.sh", _mkdir(root / "scripts") / "run.sh")
    _executable(root / "scripts" / "install.sh", "#!/bin/sh\nexit 0\n")
    _executable(
        root / ".venv" / "bin" / "python",
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "streamlit" ]; then\n'
        '  shift 2; printf "%s\\n" "$@" > "$ARGS_OUT"; exit 0\n'
        "fi\n"
        f'exec "{sys.executable}" "$@"\n',
    )
    env = _launch_env(tmp_path, **({"SONOTAG_MAX_UPLOAD_MB": upload_mb} if upload_mb else {}))
    run_sh = ["bash", str(root / "scripts" / "run.sh")]
    proc = subprocess.run(run_sh, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert _upload_flag(tmp_path) == (upload_mb or str(DEFAULTS.max_upload_mb))


def _docker_cmd() -> str:
    cmd = re.search(r'^CMD \["sh", "-c", "(.*)"\]$', (ROOT / "Dockerfile").read_text(), re.M)
    assert cmd, "the Dockerfile's CMD is not sh -c"
    return cmd.group(1).replace('\\"', '"')


@pytest.mark.parametrize("upload_mb", [None, "42", "0", "x"])
def test_docker_cmd_passes_the_setting_to_streamlit(tmp_path: Path, upload_mb: str | None) -> None:
    """The image's CMD, with a stand-in ``streamlit`` on PATH: the flag it gets is the
    setting's value; a bad value stops the container before Streamlit starts."""
    bin_dir = tmp_path / "bin"
    _executable(bin_dir / "streamlit", '#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_OUT"\n')
    _executable(bin_dir / "python", f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the venv's
    env = _launch_env(tmp_path, PATH=f"{bin_dir}:{os.environ['PATH']}", PORT="8599")
    if upload_mb is not None:
        env["SONOTAG_MAX_UPLOAD_MB"] = upload_mb
    proc = subprocess.run(["sh", "-c", _docker_cmd()], env=env, capture_output=True, text=True)
    if upload_mb in ("0", "x"):
        assert proc.returncode != 0 and "SONOTAG_MAX_UPLOAD_MB" in proc.stderr
        assert not (tmp_path / "args").exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert _upload_flag(tmp_path) == (upload_mb or str(DEFAULTS.max_upload_mb))


def test_a_switch_reads_the_usual_spellings() -> None:
    for raw, want in (("0", False), ("false", False), ("no", False), ("1", True), ("on", True)):
        assert Settings.from_env({"SONOTAG_PRELOAD": raw}).preload is want, raw


def test_auto_means_chosen_for_this_machine() -> None:
    s = Settings.from_env({"SONOTAG_BATCH_SIZE": "auto", "SONOTAG_THREADS": "AUTO"})
    assert s.batch_size == 0 and s.threads >= 1  # 0: encode_windows picks it per device
    with pytest.raises(ConfigError, match="SONOTAG_MAX_LABELS"):
        Settings.from_env({"SONOTAG_MAX_LABELS": "auto"})

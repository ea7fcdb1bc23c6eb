"""Deployment files: Dockerfile, .dockerignore, railway.json, the container entry point,
scripts/install.sh's choices (compilers, torch index).

There is no container engine in CI, so the image is checked here without building it:
hadolint lints the Dockerfile, a small parser checks the properties the deployment relies on,
the weights stage's RUN runs with a stand-in `sonotag`, and the image's install path
(scripts/install.sh with the Dockerfile's own variables, in a fresh venv, from a copy of
exactly what the builder stage copies) is run for real. scripts/image-check.sh builds and
runs the real image where docker, podman or buildah is present.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
BASE_IMAGE = "python:3.11-slim"


# --- a minimal Dockerfile reader (instructions, stages) ---------------------------------


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instr: str) -> list[str]:
        return [args for name, args in self.instructions if name == instr]

    def one(self, instr: str) -> str:
        found = self.all(instr)
        assert len(found) == 1, f"stage {self.name}: expected one {instr}, found {found}"
        return found[0]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue  # comments inside a continued instruction are dropped by Docker too
        if s.endswith("\\"):
            buf += s[:-1].rstrip() + " "
            continue
        buf += s
        name, _, args = buf.partition(" ")
        out.append((name.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a continued instruction"
    return out


def parse_dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARGs (name -> default) and the stages by name, in file order."""
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for name, args in instructions(DOCKERFILE.read_text()):
        if name == "FROM":
            words = args.split()
            assert len(words) == 3 and words[1].upper() == "AS", f"unnamed stage: FROM {args}"
            current = Stage(words[0], words[2])
            stages[current.name] = current
        elif current is None:
            assert name == "ARG", f"{name} before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            current.instructions.append((name, args))
    return global_args, stages


def stage_args(stage: Stage) -> dict[str, str]:
    return {k: v for k, _, v in (a.partition("=") for a in stage.all("ARG"))}


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, eq, value = word.partition("=")
            assert eq, f"ENV without '=': {args}"
            env[key] = value
    return env


def copies(stage: Stage) -> list[tuple[list[str], str, dict[str, str]]]:
    """(sources, destination, flags) of each COPY."""
    out = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        out.append((paths[:-1], paths[-1], flags))
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec (JSON) form: {args}"
    return value


def chain(stages: dict[str, Stage], build_args: dict[str, str]) -> list[Stage]:
    """The image's stage (the last one) and each stage it is built FROM, in that order."""
    out = [list(stages.values())[-1]]
    while True:
        base = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m.group(1)], out[-1].base)
        if base not in stages:
            return out
        assert stages[base] not in out, f"FROM cycle at {base}"
        out.append(stages[base])


# --- .dockerignore, with Docker's semantics ---------------------------------------------


def _segment_regex(part: str) -> str:
    rx, j = "", 0
    while j < len(part):
        c = part[j]
        if c == "*":
            rx += "[^/]*"
        elif c == "?":
            rx += "[^/]"
        elif c == "[":
            end = part.index("]", j)
            rx += part[j : end + 1]
            j = end
        else:
            rx += re.escape(c)
        j += 1
    return rx


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex on relative paths."""
    parts = pattern.strip("/").split("/")
    rx = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            rx += ".*" if last else "(?:[^/]+/)*"
        else:
            rx += _segment_regex(part) + ("" if last else "/")
    return re.compile(rx)


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _glob_regex(line.lstrip("!"))))
    return rules


def ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            result = not negate
    return result


# --- lint --------------------------------------------------------------------------------


def test_hadolint_is_clean() -> None:
    exe = Path(sys.executable).parent / "hadolint"
    hadolint = str(exe) if exe.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the test extra (bash scripts/test.sh)"
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


# --- Dockerfile properties ---------------------------------------------------------------


def test_build_args_and_stages() -> None:
    global_args, stages = parse_dockerfile()
    assert global_args.get("BAKE_WEIGHTS") == "0"
    assert stage_args(stages["builder"]).get("TORCH") == "cpu"
    # multi-stage, and the image is the last stage whatever BAKE_WEIGHTS is: no FROM names a
    # stage through a variable (`FROM runtime-${BAKE_WEIGHTS}`: buildah and podman cannot
    # resolve it, "runtime-0: image not known")
    assert list(stages) == ["builder", "weights", "runtime"]
    for stage in stages.values():
        assert "$" not in stage.base, f"FROM {stage.base} AS {stage.name}"
    assert stages["builder"].base == BASE_IMAGE
    assert stages["runtime"].base == BASE_IMAGE
    for bake in ("0", "1"):
        stack = chain(stages, {"BAKE_WEIGHTS": bake})
        assert [st.name for st in stack] == ["runtime"]
    # the weights stage always exists: `sonotag fetch-model` runs only when BAKE_WEIGHTS=1
    weights = stages["weights"]
    assert weights.base == "builder"
    assert "BAKE_WEIGHTS" in stage_args(weights)
    # and the image always copies its folder, empty or not, where the entry point looks
    runtime = stages["runtime"]
    baked = [(srcs, dest) for srcs, dest, f in copies(runtime) if f.get("from") == "weights"]
    assert baked == [([WEIGHTS_DIR], WEIGHTS_DIR)]
    env = env_of(runtime)
    assert env["SONOTAG_BAKED_MODEL_DIR"] == WEIGHTS_DIR
    assert "HF_HUB_OFFLINE" not in env  # the entry point sets it, for baked weights only
    entry = ENTRYPOINT.read_text()
    assert f"image_model_dir={env['SONOTAG_MODEL_DIR']} " in entry


WEIGHTS_DIR = "/opt/sonotag/hf-hub"


def _weights_run(tmp_path: Path, bake: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The weights stage's RUN as written, with its folder under tmp_path and a stand-in
    `sonotag` that records how it was called."""
    _, stages = parse_dockerfile()
    (run,) = stages["weights"].all("RUN")
    folder = tmp_path / "hf-hub"
    calls = tmp_path / "calls"
    fake = tmp_path / "sonotag"
    fake.write_text(f'#!/bin/sh\necho "$* $SONOTAG_MODEL_DIR" >> {calls}\n')
    fake.chmod(0o755)
    assert WEIGHTS_DIR in run and "/opt/venv/bin/sonotag" in run
    script = run.replace(WEIGHTS_DIR, str(folder)).replace("/opt/venv/bin/sonotag", str(fake))
    proc = subprocess.run(
        ["sh", "-c", script],
        env=dict(os.environ, BAKE_WEIGHTS=bake),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc, calls


def test_weights_stage_fetches_only_when_asked(tmp_path: Path) -> None:
    proc, calls = _weights_run(tmp_path, "0")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "hf-hub").is_dir() and not list((tmp_path / "hf-hub").iterdir())
    assert not calls.exists()  # nothing fetched: the folder the image copies stays empty

    proc, calls = _weights_run(tmp_path, "1")
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().split() == ["fetch-model", str(tmp_path / "hf-hub")]

    proc, calls = _weights_run(tmp_path, "yes")
    assert proc.returncode != 0 and "BAKE_WEIGHTS must be 0 or 1" in proc.stderr


def install_run() -> tuple[dict[str, str], list[str]]:
    """The builder's RUN of scripts/install.sh: its variable assignments and its command."""
    _, stages = parse_dockerfile()
    runs = [r for r in stages["builder"].all("RUN") if "scripts/install.sh" in r]
    assert len(runs) == 1, runs
    words = shlex.split(runs[0])
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return env, words


def test_builder_runs_the_readme_install_script() -> None:
    _, stages = parse_dockerfile()
    env, command = install_run()
    assert command == ["bash", "scripts/install.sh"]
    assert env["SONOTAG_EDITABLE"] == "0"  # a regular install in the image
    assert env["SONOTAG_SKIP_APT"] == "1"  # ffmpeg belongs to the runtime stage
    assert env["SONOTAG_SLIM"] == "1"  # without the packages' own test suites
    # the compilers come from the builder's apt line instead: sed_scores_eval's Cython
    # extension is C++ (setuptools calls g++), gcc alone does not build it
    apt = " ".join(r for r in stages["builder"].all("RUN") if "apt-get install" in r)
    for package in ("gcc", "g++", "libc6-dev"):
        assert re.search(rf"(?<!\S){re.escape(package)}(?!\S)", apt), package
    assert env["SONOTAG_TORCH_INDEX"] == "https://download.pytorch.org/whl/${TORCH}"
    # the venv it makes is the one the runtime copies (same path: venvs do not move)
    runtime = stages["runtime"]
    venv_copies = [c for c in copies(runtime) if c[2].get("from") == "builder"]
    assert venv_copies == [([env["SONOTAG_VENV"]], env["SONOTAG_VENV"], {"from": "builder"})]
    assert env_of(runtime)["PATH"].startswith(env["SONOTAG_VENV"] + "/bin:")
    # and the README's install is this very script
    assert "bash scripts/install.sh" in (ROOT / "scripts" / "run.sh").read_text()
    assert "bash scripts/install.sh test" in (ROOT / "scripts" / "test.sh").read_text()


def test_runtime_stage() -> None:
    _, stages = parse_dockerfile()
    runtime = stages["runtime"]
    # Debian's ffmpeg and nothing to build with
    apt = " ".join(r for r in runtime.all("RUN") if "apt-get" in r)
    assert "apt-get install -y --no-install-recommends ffmpeg" in apt
    assert "rm -rf /var/lib/apt/lists/*" in apt
    for tool in ("build-essential", "gcc", "g++", "make", "curl", "git"):
        assert not re.search(rf"\b{re.escape(tool)}\b", apt), tool
    # a non-root user that owns /data
    user = runtime.one("USER")
    assert user.split(":")[0] not in ("root", "0")
    setup = " ".join(runtime.all("RUN"))
    assert "useradd --uid 1000" in setup and "chown sonotag:sonotag /data" in setup
    assert user == "1000:1000"
    env = env_of(runtime)
    assert env["SONOTAG_DATA_DIR"] == "/data"
    assert env["SONOTAG_ACCESS"] == "private"  # a deployment: visitors see their own work
    assert env["SONOTAG_MODEL_DIR"].startswith("/data/")
    assert env["PORT"] == "8501" and runtime.one("EXPOSE") == "8501"
    assert not runtime.all("VOLUME")  # Railway refuses VOLUME; volumes are mounted on /data
    # streamlit on $PORT and 0.0.0.0, through sh -c so $PORT expands
    cmd = exec_form(runtime.one("CMD"))
    assert cmd[:2] == ["sh", "-c"] and len(cmd) == 3
    # the upload limit is read from the settings table first (a bad value stops it there)
    prelude, _, launch = cmd[2].partition(" && ")
    assert prelude == "upload_mb=$(python -m sonotag_core.settings max_upload_mb)"
    line = shlex.split(launch)
    assert line[:4] == ["exec", "streamlit", "run", "serve.py"]  # the app behind its middleware
    opts = dict(zip(line[4::2], line[5::2], strict=True))
    assert opts == {
        "--server.port": "$PORT",
        "--server.address": "0.0.0.0",
        "--server.headless": "true",
        "--server.fileWatcherType": "none",
        "--browser.gatherUsageStats": "false",
        # the upload limit is a setting (SONOTAG_MAX_UPLOAD_MB), as in scripts/run.sh
        "--server.maxUploadSize": "$upload_mb",
    }
    assert exec_form(runtime.one("ENTRYPOINT")) == ["sonotag-entrypoint"]
    # HEALTHCHECK: python's urllib (slim has no curl) on Streamlit's health endpoint
    health = runtime.one("HEALTHCHECK")
    options, _, check = health.partition(" CMD ")
    assert "--start-period=" in options
    check_cmd = exec_form(check)
    assert check_cmd[:2] == ["python", "-c"]
    assert "urllib.request" in check_cmd[2] and "http://127.0.0.1:%s/_stcore/health" in check_cmd[2]
    assert "os.environ.get('PORT'" in check_cmd[2]


def test_image_holds_the_app_and_the_context_holds_what_the_image_copies() -> None:
    _, stages = parse_dockerfile()
    rules = dockerignore_rules()
    for stage in stages.values():
        for sources, _, flags in copies(stage):
            if "from" in flags:
                continue
            for src in sources:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
                assert not ignored(src, rules), f"COPY {src}: excluded by .dockerignore"
    runtime_sources = {
        s for srcs, _, f in copies(stages["runtime"]) if "from" not in f for s in srcs
    }
    # the entry files, the app package (its player's frontend inside) and the page shims
    for module in ROOT.glob("*.py"):
        assert module.name in runtime_sources, f"{module.name} is not copied into the image"
    assert {"sonotag_app", "pages", ".streamlit"} <= runtime_sources
    assert "scripts/docker-entrypoint.sh" in runtime_sources


def test_streamlit_config_fits_the_container() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["headless"] is True
    assert config["server"]["fileWatcherType"] == "none"
    # the upload limit is the setting SONOTAG_MAX_UPLOAD_MB, passed by run.sh and the CMD
    assert "maxUploadSize" not in config["server"]
    assert config["browser"]["gatherUsageStats"] is False


# --- railway.json, .dockerignore ---------------------------------------------------------


def test_railway_json() -> None:
    config = json.loads((ROOT / "railway.json").read_text())
    assert config["build"]["builder"] == "DOCKERFILE"
    assert config["build"]["dockerfilePath"] == "Dockerfile"
    deploy = config["deploy"]
    assert deploy["healthcheckPath"] == "/_stcore/health"
    assert isinstance(deploy["healthcheckTimeout"], int) and deploy["healthcheckTimeout"] >= 60
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert isinstance(deploy["restartPolicyMaxRetries"], int)
    assert deploy["restartPolicyMaxRetries"] > 0


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/artifacts/clip.wav",
        "bench/.cache/x.npy",
        "sonotag_core/__pycache__/model.cpython-311.pyc",
        "sonotag.egg-info/PKG-INFO",
        ".pytest_cache/v/cache",
    ],
)
def test_dockerignore_excludes(path: str) -> None:
    assert ignored(path, dockerignore_rules())


def test_dockerignore_matcher_semantics() -> None:
    rules = [(False, _glob_regex("*")), (True, _glob_regex("src/keep.py"))]
    assert ignored("a.py", rules) and ignored("src/other.py", rules)
    assert not ignored("src/keep.py", rules)
    rules = [(False, _glob_regex("**/__pycache__"))]
    assert ignored("__pycache__/a.pyc", rules) and ignored("a/b/__pycache__/c.pyc", rules)
    assert not ignored("a/pycache.py", rules)


def test_dockerignore_comment_lists_what_the_dockerfile_copies() -> None:
    """The header's indented list is exactly the build context's sources of every COPY."""
    listed: set[str] = set()
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            listed.update(word.rstrip("/") for word in line[1:].split())
    _, stages = parse_dockerfile()
    copied = {
        src.rstrip("/")
        for stage in stages.values()
        for srcs, _, flags in copies(stage)
        if "from" not in flags
        for src in srcs
    }
    assert listed == copied, f"only listed: {listed - copied}; only copied: {copied - listed}"


# --- the container entry point -----------------------------------------------------------

ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)


def _entry_env(data: Path, user: str = "nobody") -> dict[str, str]:
    env = dict(os.environ, SONOTAG_DATA_DIR=str(data), SONOTAG_USER=user)
    # `python` is the image's venv interpreter; here, this one
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


@needs_root
def test_entrypoint_as_root_hands_the_volume_over_and_drops_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "hf-hub").mkdir(parents=True)
    (data / "hf-hub" / "left-by-root").write_text("x")
    proc = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'id -u; echo "$HOME"'],
        env=_entry_env(data),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["65534", "/nonexistent"]
    for p in (data, data / "hf-hub", data / "hf-hub" / "left-by-root"):
        assert p.stat().st_uid == 65534, p


@needs_root
def test_entrypoint_as_user_refuses_an_unwritable_volume() -> None:
    # not under tmp_path (pytest's base temp dir is private to root), and with its own copy of
    # the script: nobody may not be able to enter the checkout either
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        script = Path(tmp) / "entrypoint.sh"
        shutil.copy(ENTRYPOINT, script)
        script.chmod(0o755)
        _entrypoint_as_nobody(script, Path(tmp) / "data")


def _entrypoint_as_nobody(script: Path, data: Path) -> None:
    data.mkdir(mode=0o755)  # root-owned, as Railway mounts a volume
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    proc = subprocess.run(
        [*as_nobody, "sh", str(script), "echo", "started"],
        env=_entry_env(data),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1 and "started" not in proc.stdout
    assert "RAILWAY_RUN_UID=0" in proc.stderr and str(data) in proc.stderr
    data.chmod(0o777)
    proc = subprocess.run(
        [*as_nobody, "sh", str(script), "echo", "started"],
        env=_entry_env(data),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "started", proc.stderr


@pytest.mark.parametrize(
    ("baked_files", "model_dir", "expected"),
    [
        (True, "/data/hf-hub", "baked"),  # BAKE_WEIGHTS=1: the image's weights, offline
        (False, "/data/hf-hub", "/data/hf-hub"),  # BAKE_WEIGHTS=0: the volume, online
        (True, "/elsewhere", "/elsewhere"),  # the operator's own choice wins
    ],
)
def test_entrypoint_chooses_the_model_dir(
    tmp_path: Path, baked_files: bool, model_dir: str, expected: str
) -> None:
    baked = tmp_path / "baked"
    baked.mkdir(mode=0o755)
    if baked_files:
        (baked / "models--roberta-base").mkdir()
    env = _entry_env(tmp_path / "data", user="nobody" if os.geteuid() == 0 else "")
    env.pop("HF_HUB_OFFLINE", None)
    env.update(SONOTAG_BAKED_MODEL_DIR=str(baked), SONOTAG_MODEL_DIR=model_dir)
    proc = subprocess.run(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'echo "$SONOTAG_MODEL_DIR ${HF_HUB_OFFLINE:-unset}"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    if expected == "baked":
        assert proc.stdout.split() == [str(baked), "1"]
    else:
        assert proc.stdout.split() == [expected, "unset"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cmd_serves_on_port_and_the_healthcheck_passes(tmp_path: Path) -> None:
    """The image's CMD and HEALTHCHECK, run as written (outside a container)."""
    _, stages = parse_dockerfile()
    runtime = stages["runtime"]
    cmd = exec_form(runtime.one("CMD"))
    check = exec_form(runtime.one("HEALTHCHECK").partition(" CMD ")[2])
    port = str(_free_port())
    env = dict(
        os.environ,
        PORT=port,
        SONOTAG_DATA_DIR=str(tmp_path / "data"),
        SONOTAG_MODEL_DIR=str(tmp_path / "hf-hub"),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "streamlit.log").read_text()
            proc = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
            if proc.returncode == 0:
                break
            assert time.monotonic() < deadline, (
                proc.stderr + (tmp_path / "streamlit.log").read_text()
            )
            time.sleep(0.5)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read()
        assert body == b"ok"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    # and it stops answering once the server is gone
    proc = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0


# --- the image's install path, for real --------------------------------------------------


@pytest.fixture
def image_install(tmp_path: Path):
    """Run scripts/install.sh as the builder stage does: a build context holding exactly what
    the builder copies (minus .dockerignore), the RUN's own variables, a fresh venv."""
    _, stages = parse_dockerfile()
    builder = stages["builder"]
    workdir = builder.one("WORKDIR")
    rules = dockerignore_rules()
    ctx = tmp_path / "src"  # stands for the builder's WORKDIR
    for sources, dest, flags in copies(builder):
        assert "from" not in flags
        target = ctx / Path(dest).relative_to(workdir) if dest.startswith("/") else ctx / dest
        for src in sources:
            s = ROOT / src
            d = target / s.name if dest.endswith("/") else target
            if s.is_dir():
                shutil.copytree(
                    s,
                    d,
                    ignore=lambda folder, names: [
                        n
                        for n in names
                        if ignored(str((Path(folder) / n).relative_to(ROOT)), rules)
                    ],
                )
            else:
                d.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(s, d)
    run_env, command = install_run()
    venv = tmp_path / "venv"  # stands for the image's /opt/venv
    run_env["SONOTAG_VENV"] = str(venv)
    # This machine reaches PyPI only, where `torch==2.13.0` is the CPU build on local disk;
    # the image asks PyTorch's CPU index for the same version.
    run_env["SONOTAG_TORCH_INDEX"] = ""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHON", "PYTHONPATH")}
    repo_bin = str(ROOT / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != repo_bin)
    env.update(run_env)
    yield ctx, venv, command, env
    shutil.rmtree(venv, ignore_errors=True)  # ~2 GB; pytest keeps the last three tmp dirs


@pytest.mark.slow
def test_install_script_builds_the_image_venv(image_install, tmp_path: Path) -> None:
    ctx, venv, command, env = image_install
    start = time.monotonic()
    proc = subprocess.run(command, cwd=ctx, env=env, capture_output=True, text=True, timeout=1500)
    took = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    print(f"install into a fresh venv: {took:.0f} s")
    # the build context stays clean (no build/ or *.egg-info from the regular install)
    assert sorted(p.name for p in ctx.iterdir()) == [
        "README.md",
        "pyproject.toml",
        "scripts",
        "sonotag_core",
    ]
    assert not list(ctx.rglob("*.egg-info")) and not (ctx / "build").exists()

    # a regular install: the package lives in the venv, not in the sources it was built from
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import sonotag_core, openflam, torch, yt_dlp; "
        "print(sonotag_core.__file__); print(torch.__version__)"
    )
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    module_file, torch_version = proc.stdout.split()
    assert Path(module_file).is_relative_to(venv), module_file
    assert torch_version.startswith("2.13.0")
    # SONOTAG_SLIM=1: the packages' own test suites and torch's C++ headers are gone, their
    # compiled bytecode is not
    site = next(venv.glob("lib/python3*/site-packages"))
    assert not [p for p in site.rglob("tests") if p.is_dir()]
    assert not (site / "torch" / "include").exists()
    assert list((site / "torch").glob("__pycache__/*.pyc"))

    settings_env = dict(env, SONOTAG_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [str(venv / "bin" / "sonotag"), "settings"],
        cwd=elsewhere,
        env=settings_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SONOTAG_MODEL_DIR" in proc.stdout

    # idempotent: a second run finds its stamp and installs nothing
    proc = subprocess.run(command, cwd=ctx, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "install:" not in proc.stderr, proc.stderr


# --- scripts/install.sh's choices --------------------------------------------------------

INSTALL = ROOT / "scripts" / "install.sh"


def _stub(folder: Path, name: str, body: str = "exit 0") -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_install_asks_apt_for_gxx_where_python_has_no_cxx_compiler(tmp_path: Path) -> None:
    """sed_scores_eval's extension is C++: a machine with gcc (cc) but no g++ gets g++."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "id", "sh"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(sys.executable)
    _stub(bin_dir, "ffmpeg")
    _stub(bin_dir, "cc")
    asked = tmp_path / "asked"
    # apt-get records what it is asked and fails, which stops the script before any venv
    _stub(bin_dir, "apt-get", f'echo "$*" >> {asked}; [ "$1" = update ] || exit 1')
    _stub(bin_dir, "sudo", '"$@"')
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "SONOTAG_VENV": str(tmp_path / "venv")}
    proc = subprocess.run(
        [shutil.which("bash"), str(INSTALL)], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and not (tmp_path / "venv").exists()
    install = [line.split() for line in asked.read_text().splitlines() if "install" in line]
    assert len(install) == 1 and install[0][-1:] == ["g++"], install  # cc is there: no gcc
    assert "install: apt-get install g++" in proc.stderr


def _torch_index(env_changes: dict[str, str], timeout: float = 30) -> tuple[str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONOTAG_TORCH")}
    env.update(NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")  # the test indexes are local
    env.update(env_changes)
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(INSTALL), "--torch-index"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr, time.monotonic() - start


@pytest.fixture
def index_server():
    """A pip index on 127.0.0.1 that serves /cpu/torch/ (and nothing else)."""
    import http.server
    import threading

    class Index(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            found = self.path == "/cpu/torch/"
            self.send_response(200 if found else 404)
            self.end_headers()
            self.wfile.write(b"<a href='torch-2.13.0+cpu.whl'>torch</a>" if found else b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


linux_only = pytest.mark.skipif(sys.platform != "linux", reason="the CPU index is Linux's choice")


@linux_only
def test_torch_comes_from_the_cpu_index_without_a_gpu_when_it_answers(index_server) -> None:
    index = f"{index_server}/cpu"
    chosen, why, _ = _torch_index({"SONOTAG_TORCH_GPU": "0", "SONOTAG_TORCH_CPU_INDEX": index})
    assert chosen == index and "no NVIDIA GPU" in why and "warning" not in why


@linux_only
def test_an_unreachable_cpu_index_falls_back_at_once() -> None:
    """A closed port: pip's default index, with a warning, without waiting."""
    closed = f"http://127.0.0.1:{_free_port()}/cpu"
    chosen, why, took = _torch_index({"SONOTAG_TORCH_GPU": "0", "SONOTAG_TORCH_CPU_INDEX": closed})
    assert chosen == ""
    assert f"the torch index {closed} did not answer" in why
    assert took < 5


@linux_only
def test_a_silent_or_wrong_index_falls_back_within_the_probe_timeout(index_server) -> None:
    # an index without torch (404)
    chosen, why, _ = _torch_index(
        {"SONOTAG_TORCH_GPU": "0", "SONOTAG_TORCH_CPU_INDEX": f"{index_server}/cu999"}
    )
    assert chosen == "" and "did not answer" in why
    # a server that accepts the connection and never replies: the 5-s probe gives up
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/cpu"
        chosen, why, took = _torch_index({"SONOTAG_TORCH_GPU": "0", "SONOTAG_TORCH_CPU_INDEX": url})
    assert chosen == "" and "did not answer" in why
    assert 4 < took < 20


def test_a_gpu_or_an_explicit_index_decides_without_the_cpu_index(index_server) -> None:
    unreachable = f"http://127.0.0.1:{_free_port()}/cpu"
    # an NVIDIA GPU: pip's default (CUDA) torch, the CPU index not even asked
    chosen, why, _ = _torch_index(
        {"SONOTAG_TORCH_GPU": "1", "SONOTAG_TORCH_CPU_INDEX": unreachable}
    )
    assert chosen == "" and "warning" not in why
    # SONOTAG_TORCH_INDEX names the index (probed too), or, empty, pip's default
    index = f"{index_server}/cpu"
    assert _torch_index({"SONOTAG_TORCH_INDEX": index})[0] == index
    chosen, why, _ = _torch_index({"SONOTAG_TORCH_INDEX": "", "SONOTAG_TORCH_GPU": "0"})
    assert chosen == "" and "warning" not in why

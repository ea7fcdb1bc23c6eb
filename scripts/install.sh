#!/usr/bin/env bash
# Installs everything SonoTag needs into .venv/ at the repo root; a no-op when already done.
#   scripts/install.sh          runtime (ffmpeg, CPU torch, openflam --no-deps, sonotag)
#   scripts/install.sh test     the same plus the test tools
#   scripts/install.sh --torch-index   prints the pip index torch would come from (empty:
#                               pip's default) and why, then exits: installs nothing
# openflam is installed with --no-deps: its pins (torch<2.8, numpy<2, torchaudio,
# torchvision) are stricter than its code needs; pyproject.toml declares what it imports.
#
# The Dockerfile runs this same script (tests/test_deploy.py runs it the same way), set by:
#   SONOTAG_VENV=DIR         the virtual environment (default .venv at the repo root)
#   SONOTAG_EDITABLE=0       install sonotag as a regular package, built from a temporary
#                            copy of the sources so the checkout gets no build/ or egg-info
#                            (default 1: editable, for development)
#   SONOTAG_SKIP_APT=1       install no system packages (the image installs ffmpeg itself)
#   SONOTAG_SLIM=1           then delete what the installed packages never run here: their
#                            own test suites and torch's C++ headers (~250 MB); the image does
#   SONOTAG_TORCH_SPEC=SPEC  the torch requirement (default torch==2.13.0)
#   SONOTAG_TORCH_INDEX=URL  pip index for torch only, e.g. https://download.pytorch.org/whl/cu128
#                            (a CUDA build); set but empty: pip's default index. Unset: PyTorch's
#                            CPU index on Linux without an NVIDIA GPU (pip's own Linux torch
#                            is the CUDA build, several GB with its nvidia-* wheels), else pip's
#   SONOTAG_TORCH_GPU=0|1    whether an NVIDIA GPU is present (default: nvidia-smi on PATH or
#                            /proc/driver/nvidia/version)
#   SONOTAG_TORCH_CPU_INDEX=URL  PyTorch's CPU index (https://download.pytorch.org/whl/cpu)
#   PYTHON=python3           the interpreter the environment is created from
# A torch index is asked for its torch page first (5 s at most); where it does not answer,
# torch comes from pip's default index, with a warning: pip itself would retry an unreachable
# index for torch and each of its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
TORCH_SPEC="${SONOTAG_TORCH_SPEC:-torch==2.13.0}"
TORCH_CPU_INDEX="${SONOTAG_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
OPENFLAM_SPEC="openflam==1.0.2"
VENV="${SONOTAG_VENV:-.venv}"
EDITABLE="${SONOTAG_EDITABLE:-1}"
SLIM="${SONOTAG_SLIM:-0}"
PY="${PYTHON:-python3}"

has_nvidia_gpu() {
  case "${SONOTAG_TORCH_GPU:-}" in
    1) return 0 ;;
    0) return 1 ;;
  esac
  command -v nvidia-smi >/dev/null 2>&1 || [ -e /proc/driver/nvidia/version ]
}

# Whether a pip index serves a torch page (PEP 503 simple API) within 5 s.
index_answers() {
  "$PY" -c '
import os, ssl, sys, urllib.request
url = sys.argv[1].rstrip("/") + "/torch/"
context = ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)
with urllib.request.urlopen(url, timeout=5, context=context) as reply:
    sys.exit(0 if 200 <= reply.status < 300 else 1)
' "$1" >/dev/null 2>&1
}

# The index torch is installed from on stdout ("" = pip's default index); why, on stderr.
torch_index() {
  local index why
  if [ -n "${SONOTAG_TORCH_INDEX+set}" ]; then
    index="$SONOTAG_TORCH_INDEX" why="SONOTAG_TORCH_INDEX"
  elif [ "$(uname -s)" != Linux ]; then
    index="" why="not Linux: pip's torch is the CPU build"
  elif has_nvidia_gpu; then
    index="" why="an NVIDIA GPU: pip's Linux torch is the CUDA build"
  else
    index="$TORCH_CPU_INDEX" why="no NVIDIA GPU: the CPU build"
  fi
  if [ -n "$index" ] && ! index_answers "$index"; then
    echo "install: warning: the torch index $index did not answer (5-s probe of its torch page); using pip's default index" >&2
    index="" why="$why, unreachable"
  fi
  if [ -n "$index" ]; then
    echo "install: torch from $index ($why)" >&2
  else
    echo "install: torch from pip's default index ($why)" >&2
  fi
  echo "$index"
}

if [ "$extras" = "--torch-index" ]; then
  torch_index
  exit 0
fi

if [ "${SONOTAG_SKIP_APT:-0}" != "1" ]; then
  apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  }
  missing=()
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  # sed_scores_eval (evaluation) is an sdist with a Cython extension in C++: pip compiles it
  # with Python's own compilers (sysconfig's CC and CXX: gcc and g++ on Debian and pyenv)
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  cxx="$("$PY" -c 'import sysconfig; print((sysconfig.get_config_var("CXX") or "g++").split()[0])' 2>/dev/null || echo g++)"
  command -v "$cxx" >/dev/null 2>&1 || missing+=(g++)
  # the browser test drives Debian's Chromium (Playwright cannot download browsers here)
  if [ "$extras" = "test" ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
  # the end-to-end evaluation test speaks words at known times
  if [ "$extras" = "test" ] && ! command -v espeak-ng >/dev/null 2>&1; then missing+=(espeak-ng); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}" >&2
    apt_install "${missing[@]}"
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# The stamp names what was asked for: this script, the project file, the torch request and,
# for a regular (non-editable) install, the package sources it copied.
fingerprint() {
  cat pyproject.toml scripts/install.sh
  echo "$TORCH_SPEC ${SONOTAG_TORCH_INDEX-auto} $EDITABLE $SLIM"
  if [ "$EDITABLE" = "0" ]; then find sonotag_core -name '*.py' | LC_ALL=C sort | xargs cat; fi
}
stamp="$VENV/.sonotag-installed-$(fingerprint | sha256sum | cut -c1-16)${extras:+-$extras}"
if [ ! -f "$stamp" ]; then
  echo "install: python packages into $VENV (first run takes a few minutes)" >&2
  pip=("$VENV/bin/python" -m pip install -q)
  "${pip[@]}" --upgrade pip
  torch_index="$(torch_index)"
  "${pip[@]}" ${torch_index:+--index-url "$torch_index"} "$TORCH_SPEC"
  if [ "$EDITABLE" = "0" ]; then
    src="$(mktemp -d)"
    trap 'rm -rf "$src"' EXIT
    tar -c --exclude=__pycache__ pyproject.toml README.md sonotag_core | tar -x -C "$src"
    "${pip[@]}" "$src${extras:+[$extras]}"
  else
    "${pip[@]}" -e ".${extras:+[$extras]}"
  fi
  "${pip[@]}" --no-deps "$OPENFLAM_SPEC"
  if [ "$SLIM" = "1" ]; then
    # The packages' own test suites (tests/ folders: pandas, numba, numpy, scipy, pyarrow,
    # ...), never imported by what they ship, and torch's C++ headers (for C++ extensions
    # and torch.compile's C++ code, which need a compiler the image does not have). The
    # compiled bytecode stays: without it every start compiles torch, transformers and
    # streamlit again (about 10 s more), and the image's user could not keep it.
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    before="$(du -sm "$VENV" | cut -f1)"
    find "$site" -type d -name tests -prune -exec rm -rf {} +
    rm -rf "$site/torch/include"
    echo "install: slim: $VENV ${before} MB -> $(du -sm "$VENV" | cut -f1) MB" >&2
  fi
  # -I: the check must find the installed package, not the sources in the working directory
  "$VENV/bin/python" -I -c "import openflam, torch, yt_dlp, sonotag_core" >/dev/null
  rm -f "$VENV"/.sonotag-installed-*
  touch "$stamp"
fi

#!/usr/bin/env bash
# Installs everything SonoTag needs into .venv/ at the repo root; a no-op when already done.
#   scripts/install.sh          runtime (ffmpeg, CPU torch, openflam --no-deps, sonotag)
#   scripts/install.sh test     the same plus the test tools
# openflam is installed with --no-deps: its pins (torch<2.8, numpy<2, torchaudio,
# torchvision) are stricter than its code needs; pyproject.toml declares what it imports.
#
# The Dockerfile runs this same script (tests/test_deploy.py runs it the same way), set by:
#   SONOTAG_VENV=DIR         the virtual environment (default .venv at the repo root)
#   SONOTAG_EDITABLE=0       install sonotag as a regular package, built from a temporary
#                            copy of the sources so the checkout gets no build/ or egg-info
#                            (default 1: editable, for development)
#   SONOTAG_SKIP_APT=1       install no system packages (the image installs ffmpeg itself)
#   SONOTAG_TORCH_SPEC=SPEC  the torch requirement (default torch==2.13.0)
#   SONOTAG_TORCH_INDEX=URL  pip index for torch only, e.g. https://download.pytorch.org/whl/cpu
#                            (the image's CPU build) or .../whl/cu128 (a CUDA build)
#   PYTHON=python3           the interpreter the environment is created from
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
TORCH_SPEC="${SONOTAG_TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX="${SONOTAG_TORCH_INDEX:-}"
OPENFLAM_SPEC="openflam==1.0.2"
VENV="${SONOTAG_VENV:-.venv}"
EDITABLE="${SONOTAG_EDITABLE:-1}"

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "${SONOTAG_SKIP_APT:-0}" != "1" ]; then
  missing=()
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  # sed_scores_eval (evaluation) is an sdist with a Cython extension: pip compiles it
  command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
  # the browser test drives Debian's Chromium (Playwright cannot download browsers here)
  if [ "$extras" = "test" ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
  # the end-to-end evaluation test speaks words at known times
  if [ "$extras" = "test" ] && ! command -v espeak-ng >/dev/null 2>&1; then missing+=(espeak-ng); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}" >&2
    apt_install "${missing[@]}"
  fi
fi

PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# The stamp names what was installed: this script, the project file, the torch choice and,
# for a regular (non-editable) install, the package sources it copied.
fingerprint() {
  cat pyproject.toml scripts/install.sh
  echo "$TORCH_SPEC $TORCH_INDEX $EDITABLE"
  if [ "$EDITABLE" = "0" ]; then find sonotag_core -name '*.py' | LC_ALL=C sort | xargs cat; fi
}
stamp="$VENV/.sonotag-installed-$(fingerprint | sha256sum | cut -c1-16)${extras:+-$extras}"
if [ ! -f "$stamp" ]; then
  echo "install: python packages into $VENV (first run takes a few minutes)" >&2
  pip=("$VENV/bin/python" -m pip install -q)
  "${pip[@]}" --upgrade pip
  "${pip[@]}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "$TORCH_SPEC"
  if [ "$EDITABLE" = "0" ]; then
    src="$(mktemp -d)"
    trap 'rm -rf "$src"' EXIT
    tar -c --exclude=__pycache__ pyproject.toml README.md sonotag_core | tar -x -C "$src"
    "${pip[@]}" "$src${extras:+[$extras]}"
  else
    "${pip[@]}" -e ".${extras:+[$extras]}"
  fi
  "${pip[@]}" --no-deps "$OPENFLAM_SPEC"
  # -I: the check must find the installed package, not the sources in the working directory
  "$VENV/bin/python" -I -c "import openflam, torch, yt_dlp, sonotag_core" >/dev/null
  rm -f "$VENV"/.sonotag-installed-*
  touch "$stamp"
fi

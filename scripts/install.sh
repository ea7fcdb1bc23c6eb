#!/usr/bin/env bash
# Installs everything SonoTag needs into .venv/ at the repo root; a no-op when already done.
#   scripts/install.sh          runtime (ffmpeg, CPU torch, openflam --no-deps, sonotag)
#   scripts/install.sh test     the same plus the test tools
# openflam is installed with --no-deps: its pins (torch<2.8, numpy<2, torchaudio,
# torchvision) are stricter than its code needs; pyproject.toml declares what it imports.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
TORCH_SPEC="${SONOTAG_TORCH_SPEC:-torch==2.13.0}"
OPENFLAM_SPEC="openflam==1.0.2"

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# the browser test drives Debian's Chromium (Playwright cannot download browsers here)
if [ "$extras" = "test" ] && [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=".venv/.sonotag-installed-$(cat pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)${extras:+-$extras}"
if [ ! -f "$stamp" ]; then
  echo "install: python packages into .venv (first run takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "$TORCH_SPEC"
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  .venv/bin/python -m pip install -q --no-deps "$OPENFLAM_SPEC"
  .venv/bin/python -c "import openflam, torch, yt_dlp, sonotag_core" >/dev/null
  rm -f .venv/.sonotag-installed-*
  touch "$stamp"
fi

#!/usr/bin/env bash
# The run command: installs what it needs, then analyses a generated sample clip with
# `sonotag analyze` and writes every export format to out/ (the dashboard comes next).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
mkdir -p out
if [ ! -f out/sample.wav ]; then
  # 30 s: a 660 Hz tone that switches on and off every 2 s, over soft noise
  ffmpeg -nostdin -v error -y -f lavfi \
    -i "aevalsrc='0.4*sin(2*PI*660*t)*lt(mod(t\,4)\,2)+0.03*(random(0)-0.5)':s=48000:d=30" out/sample.wav
fi
exec .venv/bin/sonotag analyze out/sample.wav --labels "beeping; a tone; -silence; speech" --format all -o out "$@"

#!/usr/bin/env bash
# The run command: installs what it needs (scripts/install.sh), then serves the dashboard
# on http://localhost:${PORT:-8501}. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m streamlit run serve.py \
  --server.port "${PORT:-8501}" --server.address "${SONOTAG_HOST:-localhost}" \
  --server.maxUploadSize "${SONOTAG_MAX_UPLOAD_MB:-500}" "$@"

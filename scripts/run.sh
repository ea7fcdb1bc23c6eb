#!/usr/bin/env bash
# The run command: installs what it needs (scripts/install.sh), then serves the dashboard
# on http://localhost:${PORT:-8501}. Extra arguments go to `streamlit run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# The upload limit comes from the settings table (SONOTAG_MAX_UPLOAD_MB or its default);
# a bad SONOTAG_* value stops here with one line saying which.
upload_mb="$(.venv/bin/python -m sonotag_core.settings max_upload_mb)"
exec .venv/bin/python -m streamlit run serve.py \
  --server.port "${PORT:-8501}" --server.address "${SONOTAG_HOST:-localhost}" \
  --server.maxUploadSize "$upload_mb" "$@"

#!/usr/bin/env bash
# The test command: installs what it needs (scripts/install.sh test), lints, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
.venv/bin/ruff check sonotag_core tests bench pages ui_state.py ui_workbench.py streamlit_app.py serve.py
exec .venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The test command: installs what it needs (scripts/install.sh test), lints, checks the
# formatting and the types, runs pytest.
#   bash scripts/test.sh           the whole suite (what .ci/run runs)
#   bash scripts/test.sh --fast    the fast tier: no test that builds the model or starts a
#                                  browser (tests/conftest.py marks those slow / browser)
# Further arguments go to pytest: bash scripts/test.sh --fast tests/test_share.py -x
set -euo pipefail
cd "$(dirname "$0")/.."
tier=()
if [ "${1:-}" = "--fast" ]; then
  shift
  tier=(-m "not slow and not browser")
fi
bash scripts/install.sh test
linted=(sonotag_core sonotag_app tests bench pages streamlit_app.py serve.py)
.venv/bin/ruff check "${linted[@]}"
.venv/bin/ruff format --check "${linted[@]}"  # every file as `ruff format` writes it
.venv/bin/python -m mypy  # sonotag_core and sonotag_app, as [tool.mypy] in pyproject.toml sets it
exec .venv/bin/python -m pytest -q ${tier[@]+"${tier[@]}"} "$@"

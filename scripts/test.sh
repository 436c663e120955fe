#!/usr/bin/env bash
# Quick start, command 2: set up, then run the lint and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests examples
.venv/bin/ruff format --check src tests examples
.venv/bin/lint-imports
exec .venv/bin/python -m pytest -q -rs "$@"

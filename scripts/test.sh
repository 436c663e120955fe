#!/usr/bin/env bash
# Quick start, command 2: set up, then run the lint and the whole test suite in parallel.
# Arguments go to pytest: `bash scripts/test.sh -m "not slow"` is the fast loop, and
# SPARSGD_DATA=DIR enables the real-data tests (MNIST / Fashion-MNIST IDX files under DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: ruff check and ruff format --check"
.venv/bin/ruff check src tests examples
.venv/bin/ruff format --check src tests examples
.venv/bin/lint-imports
# -n auto: one pytest-xdist worker per core; multi-process tests take free ports from the OS
# and write under their own tmp_path, so they run side by side. --dist loadfile: each test
# file goes to one worker whole, so a module fixture that starts one process group for all
# the module's tests runs once, not once per worker (plain --dist load splits modules). -rs
# lists why tests skipped.
# With a C compiler here the install must have built the compiled selection (a test checks).
if command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1; then
  export SPARSGD_REQUIRE_KERNELS=1
fi
echo "test: pytest on $(nproc) workers (-n auto); skipped tests and their reasons at the end"
exec .venv/bin/python -m pytest -q -rs -n auto --dist loadfile "$@"

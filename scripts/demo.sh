#!/usr/bin/env bash
# Quick start, command 1: set up, then run the main job on the embedded default
# (4 workers, gTop-k S-SGD with error feedback, scikit-learn's bundled 8x8 digits).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/sparsgd train "$@"

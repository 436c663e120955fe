#!/usr/bin/env bash
# Create .venv (once) and install sparsgd with its test tools into it.
# Idempotent: a second run with an unchanged pyproject.toml installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# torch is pinned: on the project's machines 2.13.0 is a local CPU wheel; an unpinned torch
# would pull several GB of CUDA packages. Override with SPARSGD_TORCH="torch==X.Y.Z".
TORCH_SPEC=${SPARSGD_TORCH:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.sparsgd-installed
want="$(cat pyproject.toml) $TORCH_SPEC"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import torch, sparsgd" || { echo "setup failed: torch or sparsgd does not import" >&2; exit 1; }
  printf '%s' "$want" > "$stamp"
fi

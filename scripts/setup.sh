#!/usr/bin/env bash
# Create .venv (once) and install sparsgd with its test tools into it, saying what each step does.
# Idempotent: a second run with an unchanged pyproject.toml installs nothing (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# torch is pinned: on the project's machines 2.13.0 is a local CPU wheel; an unpinned torch
# would pull several GB of CUDA packages. Override with SPARSGD_TORCH="torch==X.Y.Z".
TORCH_SPEC=${SPARSGD_TORCH:-torch==2.13.0}
say() { echo "setup: $*"; }
pip_install() {
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
    | grep -v '^WARNING: Location' || true
}
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=.venv/.sparsgd-installed
want="$(cat pyproject.toml src/sparsgd/compress/_select.c) $TORCH_SPEC"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "already set up (.venv matches pyproject.toml; delete $stamp to reinstall)"
  exit 0
fi
say "installing $TORCH_SPEC (CPU wheel; takes a minute or two on a fresh clone)"
pip_install "$TORCH_SPEC"
say "installing sparsgd (editable) and the test tools (.[test]: pytest, ruff, tensorboard, ...)"
pip_install -e ".[test]"
say "checking that torch and sparsgd import"
.venv/bin/python -c "import torch, sparsgd" || { echo "setup failed: torch or sparsgd does not import" >&2; exit 1; }
printf '%s' "$want" > "$stamp"
say "done: .venv is ready"

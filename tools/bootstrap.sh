#!/usr/bin/env bash
# Create .venv and install the project into it from the lock file (requirements.lock, with hashes),
# so that every checkout gets exactly the versions CI tested. Runs again whenever pyproject.toml or
# the lock changes. Used by ./medsettle and .ci/run; safe to run twice.
#
# To change a dependency: edit pyproject.toml, then
#   .venv/bin/pip-compile --extra test --extra dev --generate-hashes --allow-unsafe --strip-extras \
#       -o requirements.lock pyproject.toml
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PY" -m venv "$ROOT/.venv"
fi
marker="$ROOT/.venv/.installed"
if [ ! -f "$marker" ] || [ "$ROOT/pyproject.toml" -nt "$marker" ] || [ "$ROOT/requirements.lock" -nt "$marker" ] \
   || [ ! -x "$ROOT/.venv/bin/medsettle" ]; then
  pip=("$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check)
  "${pip[@]}" --require-hashes --no-deps -r "$ROOT/requirements.lock" </dev/null
  (cd "$ROOT" && "${pip[@]}" --no-deps --no-build-isolation -e . </dev/null)
  touch "$marker"
fi

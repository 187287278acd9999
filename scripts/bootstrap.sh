#!/usr/bin/env bash
# Create .venv (if missing) and install the project with its dev tools and the ray and postgres extras.
# Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: Python >= 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # ray: the vectorize engine its tests run; postgres: the PostgreSQL event log its tests run
  .venv/bin/python -m pip install --quiet -e ".[dev,ray,postgres]"
  rm -f .venv/.installed-* && touch "$stamp"
fi
echo "bootstrap: .venv ready ($(.venv/bin/python --version))"

#!/usr/bin/env bash
# The unit tier alone, for a fast loop: lint, type-check, the import contract, tests/unit.
# Needs no Weaviate and loads no model weights (the integration tier, scripts/test.sh, does both).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest tests/unit "$@"

#!/usr/bin/env bash
# The demo on the shipped fixtures: install what is missing, start Weaviate, vectorize, show results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-weaviate.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/recsys demo --catalog fixtures "$@"

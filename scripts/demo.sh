#!/usr/bin/env bash
# The demo on the shipped fixtures: install what is missing, start Weaviate, train the image encoder,
# run the nightly refresh once (vectorize, fit behaviour, learn the fusion, precompute and publish the product
# pages), then serve the API and the widget's demo product page.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-weaviate.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export RECSYS_API__CATALOG_DIR="${RECSYS_API__CATALOG_DIR:-$PWD/fixtures}"
# the demo page plays the shop's backend: it issues its visitor a shopper token (never a server key)
export RECSYS_AUTH__DEMO_TOKENS="${RECSYS_AUTH__DEMO_TOKENS:-true}"
# the fixtures end on 2024-03-30: the refresh replays that day, so decay and "recent" mean something
.venv/bin/recsys demo --catalog fixtures --now 2024-03-31T00:00:00Z "$@"
PORT=${PORT:-8000}
echo
echo "Serving the API on http://127.0.0.1:$PORT once both workers have loaded their models — open http://127.0.0.1:$PORT/demo for the widget (Ctrl-C stops it)"
(command -v xdg-open >/dev/null && sleep 3 && xdg-open "http://127.0.0.1:$PORT/demo" >/dev/null 2>&1 || true) &
exec .venv/bin/gunicorn --config gunicorn.conf.py --bind "127.0.0.1:$PORT" --workers 2 "api.wsgi:app"

"""The WSGI entry point for gunicorn: ``gunicorn "api.wsgi:app"`` (settings from env / $RECSYS_CONFIG)."""

from __future__ import annotations

import os

from api.app import create_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # model weights come from packages or paths, never the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = create_app()

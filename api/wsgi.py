"""The WSGI entry point for gunicorn: ``gunicorn "api.wsgi:app"`` (settings from env / $RECSYS_CONFIG)."""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

from api.app import create_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # model weights come from packages or paths, never the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# a request's matrices are small and the workers are the parallelism: BLAS threads in every worker only busy-wait
# for cores the others hold (100,000 products, 2 cores: a personalised page took 2.4x the CPU with 2 BLAS threads)
threadpool_limits(1, "blas")
app = create_app()

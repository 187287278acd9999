# The recommender API (Flask app served by gunicorn). Weaviate runs as its own service: see docker-compose.yml.
FROM python:3.11-slim

# torch and torchvision come from PyPI as the matched pair pinned in pyproject.toml (they run on the CPU).
# To use another wheel index for them, pass --build-arg PIP_EXTRA_INDEX_URL=<index>.
ARG PIP_EXTRA_INDEX_URL=
# optional extras: postgres (events.url = postgresql://…); the scaled compose file adds ray
ARG RECSYS_EXTRAS=postgres

# Model weights come from installed packages or mounted paths, never from the network.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    RECSYS_DATA_DIR=/app/data \
    RECSYS_CACHE_DIR=/app/cache

WORKDIR /app

# Package metadata and sources first, so editing fixtures does not reinstall dependencies.
COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY api ./api
COPY gunicorn.conf.py ./
COPY jobs ./jobs
COPY gunicorn.conf.py ./
RUN pip install ${PIP_EXTRA_INDEX_URL:+--extra-index-url "$PIP_EXTRA_INDEX_URL"} ".[${RECSYS_EXTRAS}]" \
    && useradd --create-home --uid 10001 recsys \
    && mkdir -p /app/data /app/cache \
    && chown -R recsys:recsys /app/data /app/cache

COPY fixtures ./fixtures

USER recsys
EXPOSE 8000
VOLUME ["/app/data"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", \
     "api.wsgi:app"]

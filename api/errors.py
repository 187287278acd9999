"""One JSON error shape for every failure: ``{"error": {"code": ..., "message": ..., "field": ...}}``.

Never HTML, never a stack trace: HTTP errors (404, 405, 413, 415, …) keep their status, invalid input names its
field, an unreachable Weaviate is a 503, a query Weaviate refuses or anything unexpected is a logged 500 with a
generic message.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from recommender.ask.service import AskInputError
from recommender.errors import StoreError, StoreUnavailable
from recommender.events.log import EventLogUnavailable
from recommender.ranking.service import ProductNotFound
from recommender.search.searcher import SearchInputError

log = logging.getLogger(__name__)

_INPUT_STATUS = {"invalid": 400, "unprocessable": 422, "too_large": 413, "not_found": 404}
# A repr with a memory address (PIL puts "<_io.BytesIO object at 0x7f…>" in some messages) tells a client nothing
# and leaks process layout; the address is dropped from every message.
_ADDRESS = re.compile(r"\s+at\s+0x[0-9a-fA-F]+")


class ApiError(Exception):
    """An error with a status, a machine-readable code, a message and the request field it concerns."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def error_response(status: int, code: str, message: str, field: str | None = None) -> tuple[Response, int]:
    """The JSON body and status of an error; memory addresses are removed from the message."""
    return jsonify({"error": {"code": code, "message": clean_message(message), "field": field}}), status


def clean_message(message: str) -> str:
    """``message`` without memory addresses (``<_io.BytesIO object at 0x7f…>`` → ``<_io.BytesIO object>``)."""
    return _ADDRESS.sub("", message)


def _code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that turn every exception into the one JSON error shape."""

    @app.errorhandler(ApiError)
    def _api(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.errorhandler(SearchInputError)
    @app.errorhandler(AskInputError)
    def _input(exc: SearchInputError | AskInputError) -> tuple[Response, int]:
        status = _INPUT_STATUS.get(exc.kind, 400)
        code = "too_large" if status == 413 else "not_found" if status == 404 else "invalid_request"
        return error_response(status, code, str(exc), exc.field)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"request body is over the {limit}-byte limit" if limit else message
        response, _ = error_response(status, _code(exc), message)
        if status == 405 and exc.response is None:
            allowed = exc.get_headers()
            response.headers.extend([h for h in allowed if h[0].lower() == "allow"])
        return response, status

    @app.errorhandler(ProductNotFound)
    def _unknown_product(exc: ProductNotFound) -> tuple[Response, int]:
        return error_response(404, "not_found", str(exc), "product_id")

    @app.errorhandler(StoreUnavailable)
    def _store(exc: StoreUnavailable) -> tuple[Response, int]:
        log.warning("vector store unavailable: %s", exc)
        return error_response(503, "store_unavailable", "the vector store is unavailable; retry later")

    @app.errorhandler(EventLogUnavailable)
    def _event_log(exc: EventLogUnavailable) -> tuple[Response, int]:
        log.warning("event log unavailable: %s", exc)
        return error_response(503, "event_log_unavailable", "the event log is unavailable; retry later")

    @app.errorhandler(StoreError)
    def _store_failed(exc: StoreError) -> tuple[Response, int]:
        log.error("vector store refused a query: %s", exc)  # e.g. a query vector of the wrong dimension
        return error_response(500, "store_error", "the vector store refused the query")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")

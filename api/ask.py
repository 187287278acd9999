"""``POST /v1/ask``: a shopper's question (words, a photo and/or the product on screen) → a grounded answer.

Accepts JSON ``{"question", "product_id", "image_base64", "k", "conversation", "answer"}`` or multipart/form-data
(an ``image`` file plus form fields ``question``, ``product_id``, ``k``, ``conversation`` (the JSON a previous
answer returned), ``answer``). Bad input → 4xx JSON naming the field; the answer's shape is
``recommender.ask.serialize.result_json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.datastructures import MultiDict

from api.errors import ApiError
from api.state import state
from api.urls import product_image_url
from api.validation import image_base64, optional_id, parse_int
from recommender.ask.model import AskRequest, Conversation
from recommender.ask.serialize import conversation_from_json, result_json
from recommender.ask.service import AskInputError
from recommender.catalog.images import ImageProblem, ImageTooLarge, decode_image, image_limits
from recommender.config import SearchSettings

bp = Blueprint("ask", __name__, url_prefix="/v1")

_JSON_KEYS = {"question", "product_id", "image_base64", "k", "conversation", "answer"}
ANSWER_MODES = ("template", "configured")
MAX_CONVERSATION_BYTES = 16 * 1024


@bp.post("/ask")
def ask() -> Response:
    """Answer one question."""
    st = state()
    req = _parse(st.settings.search, st.settings.ask.k)
    result = st.ask().ask(req)
    return jsonify(result_json(result, product_image_url))


def _parse(limits: SearchSettings, default_k: int) -> AskRequest:
    mimetype = request.mimetype
    if mimetype == "application/json":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body is not a JSON object", "body")
        return request_from_json(body, limits, default_k)
    if mimetype == "multipart/form-data":
        return request_from_form(request.form, request.files.get("image"), limits, default_k)
    raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data", "body")


def request_from_json(body: Mapping[str, Any], limits: SearchSettings, default_k: int) -> AskRequest:
    """An AskRequest from a JSON body (a photo arrives base64-encoded)."""
    unknown = sorted(set(body) - _JSON_KEYS)
    if unknown:
        raise AskInputError(unknown[0], f"unknown field {unknown[0]!r}")
    question = body.get("question", "")
    if not isinstance(question, str):
        raise AskInputError("question", "question must be a string")
    raw_image = body.get("image_base64")
    image = _photo(image_base64(raw_image), limits) if raw_image is not None else None
    k = body.get("k", default_k)
    if isinstance(k, bool) or not isinstance(k, int):
        raise AskInputError("k", "k must be an integer")
    conversation = _conversation(body["conversation"]) if body.get("conversation") is not None else None
    return AskRequest(question, image, optional_id(body.get("product_id"), "product_id"), conversation, k,
                      _answer_mode(body.get("answer")))


def request_from_form(form: MultiDict[str, str], upload: Any, limits: SearchSettings, default_k: int) -> AskRequest:
    """An AskRequest from multipart form fields and an optional ``image`` file."""
    data = upload.read(limits.max_image_bytes + 1) if upload is not None and (
        upload.filename or upload.content_length) else None
    raw_conversation = form.get("conversation") or ""
    conversation = None
    if raw_conversation.strip():
        if len(raw_conversation) > MAX_CONVERSATION_BYTES:
            raise AskInputError("conversation", "conversation is too large", "too_large")
        try:
            conversation = _conversation(json.loads(raw_conversation))
        except json.JSONDecodeError as exc:
            raise AskInputError("conversation", f"conversation is not valid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise AskInputError("conversation", "conversation is nested too deeply") from exc
    return AskRequest(form.get("question") or "", _photo(data, limits) if data else None,
                      optional_id(form.get("product_id"), "product_id"), conversation,
                      parse_int(form.get("k"), "k", default_k), _answer_mode(form.get("answer") or None))


def _photo(data: bytes, limits: SearchSettings) -> Any:
    if len(data) > limits.max_image_bytes:
        raise AskInputError("image", f"image is over the {limits.max_image_bytes}-byte limit", "too_large")
    try:
        return decode_image(data, image_limits(limits))
    except ImageTooLarge as exc:
        raise AskInputError("image", str(exc), "too_large") from exc
    except ImageProblem as exc:
        raise AskInputError("image", f"not a usable image: {exc}", "unprocessable") from exc


def _answer_mode(value: Any) -> str | None:
    if value is None:
        return None
    if value not in ANSWER_MODES:
        raise AskInputError("answer", f"answer must be one of {', '.join(ANSWER_MODES)}")
    return "template" if value == "template" else None


def _conversation(raw: Any) -> Conversation:
    try:
        return conversation_from_json(raw)
    except ValueError as exc:
        raise AskInputError("conversation", str(exc)) from exc

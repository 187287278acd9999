"""``POST /v1/ask``: a shopper's question (words, a photo and/or the product on screen) → a grounded answer.

Accepts JSON (``api.models.AskBody``: ``{"question", "product_id", "image_base64", "k", "conversation", "answer"}``)
or multipart/form-data (``AskForm``: an ``image`` file plus form fields ``question``, ``product_id``, ``k``,
``conversation`` (the JSON a previous answer returned), ``answer``). Bad input → 4xx JSON naming the field; the
answer's shape is ``recommender.ask.serialize.result_json``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify

from api.models import AskBody, AskForm
from api.responses import AskResult, Error
from api.schema import Operation, Reply, operation
from api.state import state
from api.urls import ProductImageUrls
from api.validation import image_base64
from recommender.ask.model import AskRequest, Conversation
from recommender.ask.serialize import conversation_from_json, result_json
from recommender.ask.service import AskInputError
from recommender.catalog.images import ImageProblem, ImageTooLarge, decode_image, image_limits
from recommender.config import SearchSettings, Settings

bp = Blueprint("ask", __name__, url_prefix="/v1")


def _max_k(settings: Settings) -> dict[str, int]:
    return {"max_k": settings.ask.max_k}


@bp.post("/ask")
@operation(Operation("Ask the shop: a question in words, a photo and/or the product on screen → a grounded answer",
                     json=AskBody, form=AskForm, limits=_max_k, responses={
                         200: Reply("the answer, its products and its plan", (AskResult,)),
                         404: Reply("unknown product_id", (Error,)),
                         413: Reply("question, conversation, image or body too large", (Error,)),
                         422: Reply("not a usable image", (Error,))}))
def ask(body: AskBody | AskForm) -> Response:
    """Answer one question."""
    st = state()
    req = ask_request(body, st.settings.search, st.settings.ask.k)  # bad input answers before the store is opened
    result = st.ask().ask(req)
    return jsonify(result_json(result, ProductImageUrls()))  # one url_for per answer


def ask_request(body: AskBody | AskForm, limits: SearchSettings, default_k: int) -> AskRequest:
    """An AskRequest from a validated JSON body (photo base64, conversation object) or form (photo file, JSON text)."""
    if isinstance(body, AskBody):
        image = _photo(image_base64(body.image_base64), limits) if body.image_base64 is not None else None
        conversation = _conversation(body.conversation) if body.conversation is not None else None
    else:
        data = body.image.read(limits.max_image_bytes + 1) if body.image is not None else None
        image = _photo(data, limits) if data else None
        conversation = _conversation_text(body.conversation) if body.conversation else None
    answer = "template" if body.answer == "template" else None  # "configured" (or none): the configured backend
    return AskRequest(body.question, image, body.product_id, conversation, body.k or default_k, answer)


def _conversation_text(raw: str) -> Conversation:
    try:
        return _conversation(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise AskInputError("conversation", f"conversation is not valid JSON: {exc.msg}") from exc
    except RecursionError as exc:
        raise AskInputError("conversation", "conversation is nested too deeply") from exc


def _photo(data: bytes, limits: SearchSettings) -> Any:
    if len(data) > limits.max_image_bytes:
        raise AskInputError("image", f"image is over the {limits.max_image_bytes}-byte limit", "too_large")
    try:
        return decode_image(data, image_limits(limits))
    except ImageTooLarge as exc:
        raise AskInputError("image", str(exc), "too_large") from exc
    except ImageProblem as exc:
        raise AskInputError("image", f"not a usable image: {exc}", "unprocessable") from exc


def _conversation(raw: Any) -> Conversation:
    try:
        return conversation_from_json(raw)
    except ValueError as exc:
        raise AskInputError("conversation", str(exc)) from exc

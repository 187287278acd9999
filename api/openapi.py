"""``GET /openapi.json``: a hand-written OpenAPI 3.1 description of every endpoint."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


_ERR = "#/components/schemas/Error"
_ERRORS = {"400": _json(_ERR, "a malformed parameter (named in error.field)"),
           "500": _json(_ERR, "the vector store refused the query, or an unexpected failure (logged)"),
           "503": _json(_ERR, "the vector store is unavailable; retry later"),
           "429": _json(_ERR, "over a rate limit (limits.*): retry after the Retry-After header's seconds")}
_FILTERS = [
    _q("k", {"type": "integer", "minimum": 1, "maximum": 50, "default": 10}, "number of items"),
    _q("session_id", {"type": "string"}, "the shopper's session (its products count as the most recent history)"),
    _q("category", {"type": "string"}, "category path prefix, levels separated by ' > '"),
    _q("price_min", {"type": "number"}, "inclusive lower price bound"),
    _q("price_max", {"type": "number"}, "inclusive upper price bound"),
    _q("in_stock", {"type": "boolean"}, "only in-stock (true) or out-of-stock (false) products"),
    _q("diversity", {"type": "number", "minimum": 0, "maximum": 1}, "MMR λ: 0 = relevance only … 1 = novelty"),
    _q("explain", {"type": "string", "enum": ["none", "template", "llm"], "default": "template"},
       "explanation mode (llm falls back to the template while no LLM is configured)"),
]

_VALUES = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 20}]}
_CONDITIONS = {"color": _VALUES, "brand": _VALUES, "level": {**_VALUES, "description": "any category level"},
               "text": {**_VALUES, "description": "whole words of the title or description"},
               "attributes": {"type": "object", "additionalProperties": _VALUES,
                              "description": "catalog column → value(s), e.g. {\"usage\": \"Casual\"}"}}
_CARD = {"type": "object", "properties": {
    "product_id": {"type": "string"}, "title": {"type": "string"}, "image_url": {"type": ["string", "null"]},
    "price": {"type": ["number", "null"]}, "in_stock": {"type": "boolean"}, "color": {"type": ["string", "null"]},
    "brand": {"type": ["string", "null"]}, "category": {"type": ["string", "null"]},
    "satisfies": {"type": "array", "items": {"type": "string"}, "description": "labels of the constraints it meets"},
    "alternative": {"type": "boolean", "description": "a closest match shown because nothing met every constraint"},
    "score": {"type": "number"}}}
_CONSTRAINT = {"type": "object", "properties": {
    "field": {"type": "string", "description": "category, color, brand, price, in_stock, text or attr:<column>"},
    "op": {"type": "string", "enum": ["in", "not_in", "range"]},
    "values": {"type": "array", "items": {"type": "string"}},
    "low": {"type": ["number", "null"]}, "high": {"type": ["number", "null"]},
    "words": {"type": "string", "description": "the question's words it was read from"}, "label": {"type": "string"}}}
_ASK_SCHEMAS = {
    "AskRequest": {"type": "object", "description": "a question and/or image_base64", "properties": {
        "question": {"type": "string", "maxLength": 500}, "product_id": {"type": "string"},
        "image_base64": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
        "conversation": {"type": "object", "description": "the conversation object of the previous answer"},
        "answer": {"type": "string", "enum": ["template", "configured"]}}},
    "AskResult": {"type": "object", "properties": {
        "products": {"type": "array", "items": _CARD}, "alternatives": {"type": "array", "items": _CARD},
        "viewed": {"oneOf": [_CARD, {"type": "null"}]},
        "answer": {"type": "object", "properties": {
            "text": {"type": "string"}, "source": {"type": "string", "enum": ["template", "llm", "cache"]},
            "fallback_reason": {"type": "string"},
            "sentences": {"type": "array", "items": {"type": "object", "properties": {
                "text": {"type": "string"}, "product_ids": {"type": "array", "items": {"type": "string"}}}}}}},
        "plan": {"type": "object", "properties": {
            "intent": {"type": "string", "enum": ["find", "availability", "similar", "complement", "details"]},
            "constraints": {"type": "array", "items": _CONSTRAINT}, "query_text": {"type": "string"},
            "refers_to_viewed": {"type": "boolean"}, "asks": {"type": "array", "items": {"type": "string"}},
            "in_stock_only": {"type": "boolean"}, "source": {"type": "string"}}},
        "unmet": {"type": "array", "items": {"type": "object", "properties": {
            "words": {"type": "string"}, "reason": {"type": "string"}}}},
        "total_matches": {"type": ["integer", "null"]}, "conversation": {"type": "object"},
        "served_from": {"type": "array", "items": {"type": "string"}},
        "degraded": {"type": "array", "items": {"type": "string"}},
        "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}}}},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Multi-vector product recommender", "version": "1"},
    "paths": {
        "/v1/products/{product_id}/recommendations": {"get": {
            "summary": "More like this / you may also like, for a product page",
            "parameters": [_path("product_id", "the anchor product"),
                           _q("user_id", {"type": "string"}, "the shopper (personalises; optional)"), *_FILTERS],
            "responses": {"200": _json("#/components/schemas/Recommendations", "ranked items"),
                          "404": _json(_ERR, "unknown product"), **_ERRORS}}},
        "/v1/users/{user_id}/recommendations": {"get": {
            "summary": "Recommendations for a shopper (an unknown shopper gets popular products)",
            "parameters": [_path("user_id", "the shopper"), *_FILTERS],
            "responses": {"200": _json("#/components/schemas/Recommendations", "ranked items"), **_ERRORS}}},
        "/v1/products/{product_id}": {"get": {
            "summary": "A product's public properties",
            "parameters": [_path("product_id", "the product")],
            "responses": {"200": _json("#/components/schemas/Product", "the product"),
                          "404": _json(_ERR, "unknown product"), **_ERRORS}}},
        "/v1/products/{product_id}/image": {"get": {
            "summary": "The product's image file from the configured catalog folder",
            "parameters": [_path("product_id", "the product")],
            "responses": {"200": {"description": "the image", "content": {"image/*": {}}},
                          "302": {"description": "redirect to the product's own http(s) image URL"},
                          "404": _json(_ERR, "unknown product or no image served"), **_ERRORS}}},
        "/v1/events": {"post": {
            "summary": "Record shopper events (idempotent). A click is stored as a view of the clicked product.",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/EventBatch"}}}},
            "responses": {"200": _json("#/components/schemas/EventResult", "all events accepted"),
                          "207": _json("#/components/schemas/EventResult", "some rejected; valid ones stored"),
                          "400": _json("#/components/schemas/EventResult", "no valid event, or a malformed body"),
                          "401": _json(_ERR, "no server key or valid shopper token (or browser writes off)"),
                          "403": _json(_ERR, "a shopper token asked for another user/session or a server-only event"),
                          "413": _json(_ERR, "too many events or body too large"),
                          "429": _json(_ERR, "rate limit exceeded (see Retry-After)"),
                          "415": _json(_ERR, "not application/json"), "500": _ERRORS["500"],
                          "503": _ERRORS["503"]}}},
        "/v1/tokens": {"post": {
            "summary": "Issue a short-lived shopper token (server key only) for the widget's event writes",
            "security": [{"bearer": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["user_id"], "additionalProperties": False, "properties": {
                    "user_id": {"type": "string"}, "session_id": {"type": "string"},
                    "ttl_s": {"type": "integer", "minimum": 1}}}}}},
            "responses": {"200": {"description": "the token", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"token": {"type": "string"}, "user_id": {"type": "string"},
                                                 "session_id": {"type": ["string", "null"]},
                                                 "trust": {"type": "string"}, "expires_at": {"type": "string"}}}}}},
                          "400": _ERRORS["400"], "401": _json(_ERR, "not the server key"),
                          "429": _json(_ERR, "rate limit exceeded (see Retry-After)"), "500": _ERRORS["500"]}}},
        "/v1/search": {"post": {
            "summary": "Multimodal search: text and/or image query → products (JSON or multipart)",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "text": {"type": "string"}, "image": {"type": "string", "format": "binary"},
                    "vectors": {"type": "string", "description": "comma-separated: text, image"},
                    "k": {"type": "integer", "minimum": 1, "maximum": 100}, "category": {"type": "string"},
                    "price_min": {"type": "number"}, "price_max": {"type": "number"},
                    "in_stock": {"type": "boolean"}}}}}},
            "responses": {"200": _json("#/components/schemas/SearchResult", "ranked hits"),
                          "413": _json(_ERR, "image, pixels or body too large"),
                          "415": _json(_ERR, "not JSON or multipart"), "422": _json(_ERR, "not a usable image"),
                          **_ERRORS}}},
        "/v1/ask": {"post": {
            "summary": "Ask the shop: a question in words, a photo and/or the product on screen → a grounded answer",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/AskRequest"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "question": {"type": "string", "maxLength": 500}, "image": {"type": "string", "format": "binary"},
                    "product_id": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 20},
                    "conversation": {"type": "string", "description": "the JSON conversation of the last answer"},
                    "answer": {"type": "string", "enum": ["template", "configured"]}}}}}},
            "responses": {"200": _json("#/components/schemas/AskResult", "the answer, its products and its plan"),
                          "400": _ERRORS["400"], "404": _json(_ERR, "unknown product_id"),
                          "413": _json(_ERR, "question, image or body too large"),
                          "415": _json(_ERR, "not JSON or multipart"), "422": _json(_ERR, "not a usable image"),
                          "429": _ERRORS["429"], "500": _ERRORS["500"], "503": _ERRORS["503"]}}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "up"}}}},
        "/readyz": {"get": {"summary": "Readiness (this worker warm, Weaviate reachable)",
                            "responses": {"200": {"description": "ready"}, "503": _ERRORS["503"]}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (per process)",
                             "responses": {"200": {"description": "text exposition format",
                                                   "content": {"text/plain": {}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI"},
                                                                            "429": _ERRORS["429"]}}},
        "/widget/{name}": {"get": {"summary": "Widget assets (recsys-widget.js)",
                                   "parameters": [_path("name", "file name")],
                                   "responses": {"200": {"description": "the file"}, "404": {"description": "none"}}}},
        "/demo": {"get": {"summary": "Redirect to the first product's demo page",
                          "responses": {"302": {"description": "redirect"}, "429": _ERRORS["429"]}}},
        "/demo/products/{product_id}": {"get": {
            "summary": "A demo product page embedding the widget", "parameters": [_path("product_id", "the product")],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}},
                          "404": _json(_ERR, "unknown product"), "429": _ERRORS["429"]}}},
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                  "description": "the server key, or a shopper token (events)"}},
                   "schemas": {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                             "field": {"type": ["string", "null"]}}}}},
        "Item": {"type": "object", "properties": {
            "product_id": {"type": "string"}, "title": {"type": "string"},
            "image_url": {"type": ["string", "null"]}, "price": {"type": ["number", "null"]},
            "score": {"type": "number"},
            "signals": {"type": "object", "additionalProperties": {"type": "number"},
                        "description": "per-signal value and <signal>_contribution to the score"},
            "sources": {"type": "array", "items": {"type": "string"}},
            "explanation": {"type": ["object", "null"], "properties": {"text": {"type": "string"},
                                                                       "source": {"type": "string"}}}}},
        "Recommendations": {"type": "object", "properties": {
            "product_id": {"type": ["string", "null"]}, "model_version": {"type": ["string", "null"]},
            "release": {"type": ["string", "null"], "description": "the published refresh release served"},
            "fusion": {"type": "string", "enum": ["configured", "learned"]},
            "served_from": {"type": "string", "enum": ["live", "precomputed", "fallback"]},
            "degraded": {"type": "boolean", "description": "true when served from the precomputed fallback "
                                                           "because the vector store is unreachable"},
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}},
        **_ASK_SCHEMAS,
        "SearchRequest": {"type": "object", "description": "at least one of text and image_base64", "properties": {
            "text": {"type": "string", "maxLength": 1000}, "image_base64": {"type": "string"},
            "vectors": {"type": "array", "items": {"type": "string", "enum": ["text", "image"]},
                        "description": "restrict to these named vectors (default: both)"},
            "filters": {"type": "object", "properties": {
                "category": {"type": "string"}, "price_min": {"type": "number"}, "price_max": {"type": "number"},
                "in_stock": {"type": "boolean"}, **_CONDITIONS,
                "exclude": {"type": "object", "properties": _CONDITIONS,
                            "description": "products matching any of these are left out (must-not)"}}},
            "k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
            "weights": {"type": "object", "additionalProperties": {"type": "number"},
                        "description": "per (query, target) weight, e.g. {\"text->image\": 0.5}"}}},
        "SearchResult": {"type": "object", "properties": {
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "rank": {"type": "integer"}, "product_id": {"type": "string"}, "title": {"type": "string"},
                "image": {"type": ["string", "null"]}, "price": {"type": ["number", "null"]},
                "category": {"type": "string"}, "score": {"type": "number"},
                "scores": {"type": "object", "additionalProperties": {"type": "number"},
                           "description": "per signal (e.g. \"text->image\"): the cosine; for text->image minus "
                                          "the image's hubness penalty"}}}},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "candidates": {"type": "integer"}}},
        "Product": {"type": "object", "properties": {
            "product_id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "category": {"type": "string"}, "color": {"type": "string"}, "brand": {"type": "string"},
            "price": {"type": ["number", "null"]}, "in_stock": {"type": "boolean"},
            "variant_group": {"type": "string"}, "attributes": {"type": "object"},
            "image_url": {"type": ["string", "null"]}}},
        "Event": {"type": "object", "required": ["product_id", "event"], "properties": {
            "user_id": {"type": "string", "description": "required with the server key; under a shopper token "
                        "the token's user (another is a 403)"}, "product_id": {"type": "string"},
            "event": {"type": "string", "enum": ["view", "cart", "purchase", "click"]},
            "timestamp": {"type": "string", "format": "date-time", "description": "default: server time"},
            "session_id": {"type": "string"},
            "event_id": {"type": "string", "maxLength": 256, "description": "the client's id of the event: a "
                         "retry with the same (user_id, event_id) is stored once, even without a timestamp"}}},
        "EventBatch": {"type": "object", "required": ["events"], "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}},
        "EventResult": {"type": "object", "properties": {
            "received": {"type": "integer"}, "accepted": {"type": "integer"}, "inserted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "rejected": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "field": {"type": "string"}, "reason": {"type": "string"}}}},
            "error": {"$ref": "#/components/schemas/Error/properties/error"}}},
    }},
}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document."""
    return jsonify(SPEC)

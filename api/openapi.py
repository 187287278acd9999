"""``GET /openapi.json``: the OpenAPI 3.1 document, generated from the same pydantic models that validate requests.

Every route of the app is described by its ``api.schema.Operation`` (``PLAIN`` below for the routes without input:
probes, metrics, widget assets); a route without one fails the build (and so the tests). Statuses every operation
shares are added here once: 400 for any input, 413/415 for a body, 429 (rate limits) on ``/v1``, 401/403 for writes
that take a key or token, 500/503 where the vector store is read.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic.json_schema import models_json_schema

from api import models, responses
from api.fields import FLAT_CONDITIONS, ProductFilters
from api.schema import OPERATIONS, Operation, Reply
from api.state import state
from recommender.config import Settings

bp = Blueprint("openapi", __name__)

_REF = "#/components/schemas/{model}"
_ERR = (responses.Error,)
_COMMON = {
    400: Reply("a malformed parameter or body (named in error.field)", _ERR),
    401: Reply("missing or wrong credentials (server key or shopper token)", _ERR),
    403: Reply("the credentials may not do this (e.g. a shopper token writing a purchase)", _ERR),
    413: Reply("body, upload or batch too large", _ERR),
    415: Reply("an unsupported Content-Type", _ERR),
    429: Reply("too many requests from this client; retry after the Retry-After header", _ERR),
    500: Reply("the vector store refused the query, or an unexpected failure (logged)", _ERR),
    503: Reply("the vector store is unavailable; retry later", _ERR),
}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "Authorization: Bearer <credential>: the server key (auth.server_key, the shop's "
                                  "backend only) or a signed shopper token (POST /v1/tokens; view/click events "
                                  "for its own user)"},
}
PLAIN: dict[str, Operation] = {
    "health.healthz": Operation("Liveness", store=False, responses={200: Reply("up", (responses.Health,))}),
    "health.readyz": Operation("Readiness (this worker warm, Weaviate reachable)", store=False, responses={
        200: Reply("ready", (responses.Ready,)),
        503: Reply("warming up or the vector store unreachable", (responses.Ready, responses.Error))}),
    "metrics.expose": Operation("Prometheus metrics", store=False,
                                responses={200: Reply("text exposition format", media="text/plain")}),
    "openapi.openapi": Operation("This document", store=False, responses={200: Reply("OpenAPI 3.1", ())}),
    "widget.asset": Operation("Widget assets (recsys-widget.js)", store=False, responses={
        200: Reply("the file", media="text/javascript"), 404: Reply("no such asset", _ERR)}),
    "widget.demo_home": Operation("Redirect to the first product's demo page",
                                  responses={302: Reply("redirect", media=None), 404: Reply("no product", _ERR)}),
    "widget.demo_product": Operation("A demo product page embedding the widget", path=models.ProductPath,
                                     responses={200: Reply("HTML", media="text/html"),
                                                404: Reply("unknown product", _ERR)}),
}
_PATH_DESCRIPTIONS = {"name": "file name"}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document (built once per app)."""
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = build_document(current_app, state().settings)
    return jsonify(document)


def operation_of(app: Flask, endpoint: str) -> Operation:
    """The declared operation of a route; LookupError when a route is undocumented."""
    found = OPERATIONS.get(app.view_functions[endpoint]) or PLAIN.get(endpoint)
    if found is None:
        raise LookupError(f"route {endpoint!r} declares no api.schema.Operation")
    return found


def build_document(app: Flask, settings: Settings) -> dict[str, Any]:
    """The whole document: every route of ``app``, components from the request and response models."""
    ops = [(rule, operation_of(app, rule.endpoint)) for rule in app.url_map.iter_rules() if rule.endpoint != "static"]
    request_models = {m for _, op in ops for m in (op.path, op.query, op.json, op.form) if m is not None}
    _, top = models_json_schema(
        [*((m, "validation") for m in sorted(request_models, key=lambda m: m.__name__)),
         (ProductFilters, "validation"), (models.EventIn, "validation"),
         *((m, "serialization") for m in responses.RESPONSE_MODELS)], ref_template=_REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for rule, op in sorted(ops, key=lambda item: item[0].rule):
        path = rule.rule.replace("<path:", "<").replace("<", "{").replace(">", "}")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(op, path, schemas, settings)
    return {"openapi": "3.1.0",
            "info": {"title": "Multi-vector product recommender", "version": "1",
                     "description": "Generated from the pydantic models that validate each request (api/models.py, "
                                    "api/fields.py) and document each response (api/responses.py)."},
            "paths": paths, "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES}}


def _operation(op: Operation, path: str, schemas: dict[str, Any], settings: Settings) -> dict[str, Any]:
    limits = op.limits(settings) if op.limits else {}
    out: dict[str, Any] = {"summary": op.summary, "responses": _responses(op, path)}
    parameters = _parameters(op, schemas, limits)
    if parameters:
        out["parameters"] = parameters
    content: dict[str, Any] = {}
    if op.json is not None:
        _limit(schemas[op.json.__name__]["properties"], limits)
        content["application/json"] = {"schema": {"$ref": _REF.format(model=op.json.__name__)}}
    if op.form is not None:
        props = {name: _present(p) for name, p in schemas[op.form.__name__]["properties"].items()}
        props.update(_flat_filter_schemas(op.filters, schemas))
        _limit(props, limits)
        content["multipart/form-data"] = {"schema": {"type": "object", "properties": props}}
    if content:
        out["requestBody"] = {"required": True, "content": content}
    if op.secured:
        out["security"] = [{"bearerAuth": []}]
    return out


def _parameters(op: Operation, schemas: dict[str, Any], limits: dict[str, int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for where, model in (("path", op.path), ("query", op.query)):
        if model is None:
            continue
        definition = schemas[model.__name__]
        for name, prop in definition["properties"].items():
            out.append(_param(name, where, prop, where == "path" or name in definition.get("required", ())))
    if op.query is not None and op.filters:
        out += [_param(name, "query", prop, False) for name, prop in _flat_filter_schemas(op.filters, schemas).items()]
    for p in out:
        _limit({p["name"]: p["schema"]}, limits)
    return out


def _param(name: str, where: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    schema = _present(prop)
    description = schema.pop("description", _PATH_DESCRIPTIONS.get(name, name))
    return {"name": name, "in": where, "required": required, "schema": schema, "description": description}


def _flat_filter_schemas(names: tuple[str, ...], schemas: dict[str, Any]) -> dict[str, Any]:
    """The schema of each flat filter field, taken from ProductFilters (conditions as repeatable string fields)."""
    props = schemas[ProductFilters.__name__]["properties"]
    out: dict[str, Any] = {}
    for name in names:
        key = name.removeprefix("exclude_")
        if key in FLAT_CONDITIONS:
            words = "none of" if name.startswith("exclude_") else "any of"
            out[name] = {"type": "array", "items": {"type": "string", "maxLength": 200}, "maxItems": 20,
                         "description": f"{key} is {words} these (repeatable)"}
        else:
            out[name] = _present(props[key])
    return out


def _present(prop: dict[str, Any]) -> dict[str, Any]:
    """A property as a parameter or form field sends it: present or absent, never null."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "default")} if prop.get("default") is None else {
        k: v for k, v in prop.items() if k != "title"}
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    return schema


def _limit(props: dict[str, Any], limits: dict[str, int]) -> None:
    """``max_<name>`` of the configured limits as the ``maximum`` of property ``<name>``."""
    for key, value in limits.items():
        prop = props.get(key.removeprefix("max_"))
        if prop is not None:
            target = next((o for o in prop.get("anyOf", ()) if o.get("type") == "integer"), prop)
            target["maximum"] = value


def _responses(op: Operation, path: str) -> dict[str, Any]:
    statuses: dict[int, Reply] = {}
    has_input = any(m is not None for m in (op.path, op.query, op.json, op.form))
    shared = ([400] if has_input else []) + ([413, 415] if op.json or op.form else []) + (
        [401, 403] if op.secured else []) + ([429] if path.startswith("/v1/") else []) + (
        [500, 503] if op.store else [])
    statuses.update({status: _COMMON[status] for status in shared})
    statuses.update(op.responses)
    return {str(status): _reply(statuses[status]) for status in sorted(statuses)}


def _reply(reply: Reply) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.media is not None:
        refs = [{"$ref": _REF.format(model=m.__name__)} for m in reply.models]
        schema = refs[0] if len(refs) == 1 else {"anyOf": refs} if refs else {}
        out["content"] = {reply.media: {"schema": schema} if schema else {}}
    return out

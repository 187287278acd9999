"""Each endpoint declares one ``Operation``: the pydantic models of its path, query and body (JSON and/or multipart),
its flat filter fields and the statuses it answers. ``@operation`` validates every request against them before the
view runs (a bad value is a 4xx JSON error naming the field); ``api.openapi`` builds ``/openapi.json`` from the same
declarations, so the document and the validation cannot drift apart.

Query strings and forms are read one way: a blank value is an absent one, a field the model types as an array is
read with ``getlist``, and a name the endpoint does not know is refused (``extra="forbid"``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.datastructures import FileStorage, MultiDict

from api.errors import ApiError
from api.fields import FLAT_CONDITIONS, ProductFilters
from api.state import state
from recommender.config import Settings

View = TypeVar("View", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)
_OWN_MESSAGES = {"integer", "number", "boolean", "id", "range", "values", "category", "too_large", "invalid"}


@dataclass(frozen=True)
class Reply:
    """One documented response: what it means, its body model(s) (any of them) and media type."""

    description: str
    models: tuple[type[BaseModel], ...] = ()
    media: str | None = "application/json"


@dataclass(frozen=True)
class Operation:
    """What one endpoint accepts and answers; ``limits`` gives the validation context (e.g. ``{"max_k": 50}``)
    from the settings, and the document shows each ``max_<name>`` as the ``maximum`` of ``<name>``."""

    summary: str
    path: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    filters: tuple[str, ...] = ()  # flat filter fields of the query or form, parsed by the one ProductFilters model
    json: type[BaseModel] | None = None
    form: type[BaseModel] | None = None
    responses: Mapping[int, Reply] = field(default_factory=dict)
    limits: Callable[[Settings], dict[str, int]] | None = None
    secured: bool = False  # writes that take the server key or a shopper token (401/403)
    before: Callable[[], None] | None = None  # runs before any input is read, e.g. the credentials check
    store: bool = True  # reads the vector store (500 when it refuses a query, 503 when it is unreachable)

    def context(self) -> dict[str, int]:
        """The validation context of this request (configured limits)."""
        return self.limits(state().settings) if self.limits else {}


OPERATIONS: dict[Callable[..., Any], Operation] = {}


def operation(spec: Operation) -> Callable[[View], View]:
    """Validate each request against ``spec`` and call the view with the parsed inputs: the path parameters (cleaned)
    as keyword arguments, plus ``query``, ``body`` and ``filters`` when the operation declares them."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def run(**path_args: Any) -> Any:
            return view(**parse_request(spec, path_args))

        OPERATIONS[run] = spec
        return run  # type: ignore[return-value]

    return wrap


def parse_request(spec: Operation, path_args: Mapping[str, Any]) -> dict[str, Any]:
    """The validated inputs of the current request; raises ApiError (4xx, naming the field) on bad input."""
    if spec.before is not None:
        spec.before()
    context = spec.context()
    out: dict[str, Any] = dict(path_args)
    if spec.path is not None:
        out.update(validated(spec.path, path_args, context).model_dump())
    source: MultiDict[str, Any] | None = None
    if spec.query is not None:
        source = request.args
        out["query"] = validated(spec.query, flat(request.args, spec.query, spec.filters), context, kind="parameter")
    if spec.json is not None or spec.form is not None:
        body, source = _body(spec, context)
        out["body"] = body
    if spec.filters:  # flat in a query string or form; a JSON body nests them in its own model
        out["filters"] = None if source is None else validated(
            ProductFilters, flat_filters(source, spec.filters), context, kind="parameter", name=_flat_name)
    return out


def _body(spec: Operation, context: dict[str, int]) -> tuple[BaseModel, MultiDict[str, Any] | None]:
    mimetype = request.mimetype
    if spec.json is not None and mimetype == "application/json":
        data = request.get_json(silent=True)  # unparsable or nested too deeply: None
        if data is None:
            raise ApiError(400, "invalid_json", "the body is not valid JSON", "body")
        return validated(spec.json, data, context), None
    if spec.form is not None and mimetype == "multipart/form-data":
        files = {k: f for k, f in request.files.items() if f.filename or f.content_length}  # no file chosen: absent
        data = {**flat(request.form, spec.form, spec.filters), **files}
        return validated(spec.form, data, context, kind="parameter"), request.form
    accepted = " or ".join(t for t, m in (("application/json", spec.json), ("multipart/form-data", spec.form)) if m)
    raise ApiError(415, "unsupported_media_type", f"send {accepted}", "body")


def flat(source: MultiDict[str, Any], model: type[BaseModel], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A query string or form as ``model``'s input: blank values dropped, array fields as lists, ``skip`` left out
    (the flat filter fields, which ProductFilters parses)."""
    arrays = _array_fields(model)
    out: dict[str, Any] = {}
    for name in source:
        if name in skip:
            continue
        values = [v for v in source.getlist(name) if isinstance(v, FileStorage) or str(v).strip()]
        if values:
            out[name] = values if name in arrays else values[0]
    return out


def flat_filters(source: MultiDict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The flat filter fields among ``names`` in ProductFilters' shape (``exclude_color`` → ``exclude.color``)."""
    out: dict[str, Any] = {}
    for name in names:
        values = [v for v in source.getlist(name) if str(v).strip()]
        if not values:
            continue
        key = name.removeprefix("exclude_")
        value = values if key in FLAT_CONDITIONS else values[0]
        if name.startswith("exclude_"):
            out.setdefault("exclude", {})[key] = value
        else:
            out[key] = value
    return out


def validated(model: type[M], data: Any, context: Mapping[str, Any], *, kind: str = "field",
              name: Callable[[tuple[Any, ...]], str] | None = None) -> M:
    """``model`` validated from ``data``; the first problem becomes an ApiError naming its field."""
    try:
        return model.model_validate(data, context=dict(context))
    except ValidationError as exc:
        raise input_error(exc, kind, name) from None


def input_error(exc: ValidationError, kind: str = "field", name: Callable[[tuple[Any, ...]], str] | None = None,
                prefix: str = "") -> ApiError:
    """The API error of a pydantic error: 413 for a size limit, else 400; the message names the field."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    where = prefix + (name(loc) if name else dotted(loc)) if loc else (prefix.rstrip(".") or "body")
    kind_, message = error["type"], error["msg"]
    if not loc:
        return ApiError(400, "invalid_json", "the body is not a JSON object", where)
    if kind_ == "extra_forbidden":
        return ApiError(400, "invalid_request", f"unknown {kind} {where!r}", where)
    if kind_ == "missing":
        return ApiError(400, "invalid_request", f"{where} is required", where)
    text = f"{where} {message}" if kind_ in _OWN_MESSAGES else f"{where}: {message}"
    return ApiError(413 if kind_ == "too_large" else 400, "too_large" if kind_ == "too_large" else "invalid_request",
                    text, where)


def dotted(loc: tuple[Any, ...]) -> str:
    """``("events", 0, "user_id")`` → ``events[0].user_id``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _flat_name(loc: tuple[Any, ...]) -> str:
    """A ProductFilters error location as the flat field the client sent (``exclude.color`` → ``exclude_color``)."""
    if loc[0] == "exclude" and len(loc) > 1:
        return f"exclude_{loc[1]}"
    return str(loc[0])


@functools.cache
def _array_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields ``model`` types as arrays (read with ``getlist``); computed once per model."""
    return frozenset(name for name, prop in model.model_json_schema()["properties"].items()
                     if prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", ())))


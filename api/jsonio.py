"""The app's JSON provider: bodies nested too deeply are a client error, and responses are always valid JSON.

Responses are encoded by orjson (a page of recommendations carries ~350 floats: the stdlib encoder spent ~0.13 ms
on one, orjson ~0.02 ms) into the very bytes Flask's own encoder gives (compact, ``ensure_ascii``, keys in order):
non-ASCII text and DEL are escaped as ``json`` does, and the few numbers orjson writes in another notation
(``0.00001`` for ``1e-05``) are rewritten as Python writes them. Whatever orjson cannot match that way — a NaN or
an infinity (orjson writes null), a type Flask's encoder converts (dates, dataclasses, Decimal, subclasses of
str/int/float), a non-str key, an int beyond 64 bits, an escaped backslash near such a number — goes to the
stdlib encoder, as before.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import Any, cast

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.sansio.response import Response as BaseResponse

_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
# a number Python writes in exponent form (|x| < 1e-4) and orjson may not
_SMALL = re.compile(rb"-?(?:0\.0000[0-9]+|[0-9](?:\.[0-9]+)?e-[0-9]+)")
_NUMBER_CHARS = frozenset(b"0123456789.-+eE")
_BEFORE, _AFTER = frozenset(b":,["), frozenset(b",]}")
_ERRORS = "recsys-json-ascii"


def _escape(error: UnicodeError) -> tuple[str, int]:
    """``json``'s ``ensure_ascii`` escape of the characters ASCII cannot hold (surrogate pairs above U+FFFF)."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = []
    for ch in error.object[error.start:error.end]:
        n = ord(ch)
        if n > 0xFFFF:
            n -= 0x10000
            out.append(f"\\u{0xD800 | (n >> 10):04x}\\u{0xDC00 | (n & 0x3FF):04x}")
        else:
            out.append(f"\\u{n:04x}")
    return "".join(out), error.end


codecs.register_error(_ERRORS, _escape)


class _Unmatched(TypeError):
    """A value orjson would not encode as the stdlib encoder does."""


def _refuse(value: object) -> object:
    raise _Unmatched(type(value).__name__)


def compact_json(obj: object) -> bytes | None:
    """``json.dumps(obj, separators=(",", ":"))``'s bytes (ensure_ascii, keys unsorted), or None when they would
    differ from orjson's or the value is not strict JSON (then the caller uses the stdlib encoder)."""
    try:
        out = orjson.dumps(obj, default=_refuse, option=_PASSTHROUGH)
    except TypeError:  # _Unmatched, a non-str key, an int beyond 64 bits, a lone surrogate
        return None
    if b"null" in out and not _finite(obj):
        return None
    if not out.isascii():
        out = out.decode("utf-8").encode("ascii", _ERRORS)
    if b"\x7f" in out:  # only ever inside a string: orjson leaves DEL as it is
        out = out.replace(b"\x7f", b"\\u007f")
    if b"0.0000" in out or b"e-" in out:
        return _python_floats(out)
    return out


def _python_floats(out: bytes) -> bytes | None:
    """``out`` with each small number written as ``repr(float)`` does, or None if one might be inside a string."""
    spans = sorted({span for mark in (b"0.0000", b"e-") for span in _number_spans(out, mark)})
    if not spans:
        return out
    if b"\\\\" in out:  # an escaped backslash: counting quotes would not tell strings apart; leave it to json
        return None
    parts, at = [], 0
    for start, end in spans:
        if (out.count(b'"', 0, start) - out.count(b'\\"', 0, start)) % 2:  # inside a string: not a number
            continue
        parts += [out[at:start], repr(float(out[start:end])).encode()]
        at = end
    parts.append(out[at:])
    return b"".join(parts)


def _number_spans(out: bytes, mark: bytes) -> Iterator[tuple[int, int]]:
    """Where a whole JSON number holding ``mark`` and below 1e-4 stands in ``out`` (found by ``bytes.find``: a
    regular expression tried at each position cost more than orjson's whole encoding)."""
    at = out.find(mark)
    while at >= 0:
        start, end = at, at + len(mark)
        while start > 0 and out[start - 1] in _NUMBER_CHARS:
            start -= 1
        while end < len(out) and out[end] in _NUMBER_CHARS:
            end += 1
        if ((start == 0 or out[start - 1] in _BEFORE) and (end == len(out) or out[end] in _AFTER)
                and _SMALL.fullmatch(out, start, end)):
            yield start, end
        at = out.find(mark, end)


def _finite(obj: object) -> bool:
    """False when a float in ``obj`` is NaN or infinite (orjson writes those as null; json refuses them)."""
    stack = [obj]
    while stack:
        value: Any = stack.pop()
        kind = type(value)
        if kind is dict:
            value = value.values()
        elif kind is not list and kind is not tuple:
            if kind is float and value - value != 0.0:  # inf - inf and nan - nan are nan
                return False
            continue
        for item in value:
            kind = type(item)
            if kind is float:
                if item - item != 0.0:
                    return False
            elif kind is dict or kind is list or kind is tuple:
                stack.append(item)
    return True


class StrictJSONProvider(DefaultJSONProvider):
    """Like Flask's default, but a RecursionError while parsing is a ValueError (→ 400) and NaN/Infinity are
    refused on output (they are not JSON; a response carrying one is a bug to surface, not to send)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON; nesting deeper than the interpreter's recursion limit is invalid input."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize to strict JSON (no NaN or Infinity)."""
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> BaseResponse:
        """``jsonify``: the bytes Flask's default gives, encoded by orjson when it can give them (see above)."""
        if self.sort_keys or not self.ensure_ascii or self.compact is False or (
                self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        body = compact_json(self._prepare_response_obj(args, kwargs))
        if body is None:
            return super().response(*args, **kwargs)
        response_class = cast("type[Response]", self._app.response_class)  # flask.Response unless changed
        return response_class(body + b"\n", mimetype=self.mimetype)

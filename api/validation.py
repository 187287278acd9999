"""Scalar inputs every endpoint shares, validated one way (ids, integers, base64 images); bad: a 400 naming the field.

Ids: surrounding whitespace stripped (``"  P00010  "`` is ``P00010``), control characters and over-long ids
refused (the event log applies the same rule). Integers: plain decimal digits only; Python's ``int()`` would also
take ``5_0`` or ``٥``.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from api.errors import ApiError
from recommender.events.log import id_problem

_INT = re.compile(r"[+-]?[0-9]{1,9}")  # ASCII only, and short enough that no limit check can overflow


def clean_id(value: Any, field: str) -> str:
    """A required id, stripped; 400 naming ``field`` when it is not a usable id."""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"{field} must be a string", field)
    text = value.strip()
    problem = id_problem(text)
    if problem:
        raise ApiError(400, "invalid_request", f"{field} {problem}", field)
    return text


def optional_id(value: Any, field: str) -> str | None:
    """An optional id: None or blank is None, anything else must be a usable id."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return clean_id(value, field)


def parse_int(raw: str | None, field: str, default: int) -> int:
    """A query/form integer: blank is ``default``, else plain decimal digits (no ``_``, no non-ASCII digits)."""
    text = (raw or "").strip()
    if not text:
        return default
    if not _INT.fullmatch(text):
        raise ApiError(400, "invalid_request", f"{field} must be a decimal integer, got {text[:40]!r}", field)
    return int(text)


def image_base64(value: Any, field: str = "image") -> bytes:
    """The bytes of a base64 (or ``data:`` URL) image field; 400 naming ``field`` when it is not base64."""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", "image_base64 must be a base64 string", field)
    text = value.split(",", 1)[1] if value.startswith("data:") else value  # accept data: URLs too
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", f"image_base64 is not valid base64: {exc}", field) from exc

"""Validators outside a request model, by the same rules as ``api.fields`` (ids) and the base64 image fields.

Ids: surrounding whitespace stripped (``"  P00010  "`` is ``P00010``), control characters and over-long ids
refused (the event log applies the same rule).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import TypeAdapter, ValidationError

from api.errors import ApiError
from api.fields import Id

_ID: TypeAdapter[str] = TypeAdapter(Id)


def clean_id(value: Any, field: str) -> str:
    """A required id, stripped; 400 naming ``field`` when it is not a usable id."""
    try:
        return _ID.validate_python(value)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", f"{field} {exc.errors()[0]['msg']}", field) from None


def optional_id(value: Any, field: str) -> str | None:
    """An optional id: None or blank is None, anything else must be a usable id."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return clean_id(value, field)


def image_base64(value: Any, field: str = "image") -> bytes:
    """The bytes of a base64 (or ``data:`` URL) image field; 400 naming ``field`` when it is not base64."""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", "image_base64 must be a base64 string", field)
    text = value.split(",", 1)[1] if value.startswith("data:") else value  # accept data: URLs too
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_request", f"image_base64 is not valid base64: {exc}", field) from exc

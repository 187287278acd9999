"""The app's JSON provider: bodies nested too deeply are a client error, and responses are always valid JSON."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


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

"""The app's JSON provider: bodies nested too deeply are a client error."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class StrictJSONProvider(DefaultJSONProvider):
    """Like Flask's default, but a RecursionError while parsing is a ValueError (→ 400)."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON; nesting deeper than the interpreter's recursion limit is invalid input."""
        try:
            return super().loads(s, **kwargs)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc

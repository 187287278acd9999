"""The request field types every endpoint shares and the one product filter model of recommendations and search.

Each type accepts what a JSON body sends and what a query string or form sends (text), by one rule: ids are
stripped and refused when empty, over-long or carrying control characters (the event log's rule); integers are
plain ASCII decimal digits (no ``5_0``, no ``٥``, no ``5.0``); numbers are finite decimals (no ``nan``, ``inf``
or ``1_0``); booleans are true/false, 1/0, yes/no, on/off. A bad value is a pydantic error that ``api.schema``
turns into a 4xx naming the field.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema
from werkzeug.datastructures import FileStorage

from recommender.domain import CATEGORY_SEPARATOR, FieldCondition, ProductFilter
from recommender.events.log import id_problem
from recommender.search.searcher import MAX_PRICE, SearchFilters

_INT = re.compile(r"[+-]?[0-9]{1,9}")  # ASCII only, and short enough that no limit check can overflow
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,16}(?:\.[0-9]{0,16})?|\.[0-9]{1,16})(?:[eE][+-]?[0-9]{1,3})?")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
MAX_CONDITION_VALUES = 20
MAX_VALUE_CHARS = 200


def _bad(kind: str, message: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, {"got": str(value)[:40]})


def _int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    raise _bad("integer", "must be a decimal integer, got '{got}'", value)


def number(value: Any) -> float:
    if isinstance(value, float):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = float(value) if value.bit_length() <= 1023 else math.inf  # a 400-digit JSON integer fits no float
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise _bad("number", "must be a decimal number, got '{got}'", value)
    if not math.isfinite(number):
        raise _bad("number", "must be a finite number, got '{got}'", value)
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad("boolean", "must be true or false, got '{got}'", value)


def _id(value: Any) -> str:
    if not isinstance(value, str):
        raise _bad("id", "must be a string", value)
    text = value.strip()
    problem = id_problem(text)
    if problem:
        raise PydanticCustomError("id", problem)
    return text


def _k_limit(value: int, info: ValidationInfo) -> int:
    """``k`` within 1 and the endpoint's configured maximum (``max_k`` in the validation context)."""
    limit = (info.context or {}).get("max_k")
    if value < 1 or (limit is not None and value > limit):
        raise PydanticCustomError("range", "must be between 1 and {limit}, got {got}", {"limit": limit, "got": value})
    return value


Int = Annotated[int, BeforeValidator(_int)]
Number = Annotated[float, BeforeValidator(number)]
Bool = Annotated[bool, BeforeValidator(_bool)]
# Constraints come before the validators: then they apply to the parsed value and show in the JSON schema.
Id = Annotated[str, Field(min_length=1, max_length=256), BeforeValidator(_id)]
K = Annotated[int, Field(ge=1), BeforeValidator(_int), AfterValidator(_k_limit)]
Price = Annotated[float, Field(ge=0, le=MAX_PRICE), BeforeValidator(number)]


class _FilePart:
    """Pydantic support for a multipart file part (werkzeug's FileStorage), documented as binary."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Accept a FileStorage as it is."""
        return core_schema.is_instance_schema(FileStorage)

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """OpenAPI's file upload."""
        return {"type": "string", "format": "binary"}


Upload = Annotated[FileStorage, _FilePart()]


def _values(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if (not isinstance(items, list | tuple) or not 0 < len(items) <= MAX_CONDITION_VALUES
            or not all(isinstance(v, str) and v.strip() and len(v) <= MAX_VALUE_CHARS for v in items)):
        raise _bad("values", f"must be a non-empty string or a list of 1 to {MAX_CONDITION_VALUES} non-empty "
                             f"strings of at most {MAX_VALUE_CHARS} characters", "")
    return tuple(v.strip() for v in items)


_VALUES_SCHEMA = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                                  "maxItems": MAX_CONDITION_VALUES}]}
Values = Annotated[tuple[str, ...], BeforeValidator(_values), WithJsonSchema(_VALUES_SCHEMA)]


class Conditions(BaseModel):
    """Attribute conditions: a product matches when each given field has any of its values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    color: Values | None = None
    brand: Values | None = None
    level: Values | None = Field(default=None, description="any level of the category path")
    text: Values | None = Field(default=None, description="whole words of the title or description")
    attributes: dict[Annotated[str, Field(min_length=1, max_length=100)], Values] | None = Field(
        default=None, max_length=MAX_CONDITION_VALUES,
        description='catalog column → value(s), e.g. {"usage": "Casual"}')

    def field_conditions(self, negate: bool) -> list[FieldCondition]:
        """These conditions as domain conditions (``level`` matches any category level)."""
        out = [FieldCondition("category" if key == "level" else key, values, negate)
               for key, values in (("color", self.color), ("brand", self.brand), ("level", self.level),
                                   ("text", self.text)) if values]
        out += [FieldCondition(f"attr:{column.strip()}", values, negate)
                for column, values in (self.attributes or {}).items()]
        return out


class ProductFilters(Conditions):
    """The one filter of recommendations and search: category prefix, price bounds, stock, attribute conditions
    and the same conditions under ``exclude`` (must-not)."""

    category: str | None = Field(default=None, max_length=1000,
                                 description="category path prefix, levels separated by ' > '")
    price_max: Price | None = Field(default=None, description="inclusive upper price bound")
    price_min: Price | None = Field(default=None, description="inclusive lower price bound")
    in_stock: Bool | None = Field(default=None, description="true: only in-stock products; false: only sold-out ones")
    exclude: Conditions | None = Field(default=None, description="products matching any of these are left out")

    @field_validator("category")
    @classmethod
    def _levels(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not all(level.strip() for level in value.split(CATEGORY_SEPARATOR.strip())):
            raise PydanticCustomError("category", "'{value}' has an empty level", {"value": value[:60]})
        return value.strip()

    @field_validator("price_min")
    @classmethod
    def _ordered(cls, value: float | None, info: ValidationInfo) -> float | None:
        high = info.data.get("price_max")
        if value is not None and high is not None and value > high:
            raise PydanticCustomError("range", "{low} is above price_max {high}", {"low": value, "high": high})
        return value

    @property
    def conditions(self) -> tuple[FieldCondition, ...]:
        """Every attribute condition, the excluded ones negated."""
        excluded = self.exclude.field_conditions(True) if self.exclude else []
        return (*self.field_conditions(False), *excluded)

    @property
    def levels(self) -> tuple[str, ...]:
        """The category prefix split into levels."""
        levels = self.category.split(CATEGORY_SEPARATOR.strip()) if self.category else []
        return tuple(level.strip() for level in levels)

    def product_filter(self) -> ProductFilter | None:
        """The store filter of a recommendation request (None when it keeps everything)."""
        f = ProductFilter(self.levels, self.price_min, self.price_max, self.in_stock, self.conditions)
        return None if f.is_empty else f

    def search_filters(self) -> SearchFilters:
        """The filters of a search request."""
        return SearchFilters(self.category, self.price_min, self.price_max, self.in_stock, self.conditions)


FLAT_CONDITIONS = ("color", "brand", "level")  # repeatable as query/form fields, and as ``exclude_<name>``
FLAT_FILTERS = ("category", "price_min", "price_max", "in_stock", *FLAT_CONDITIONS,
                *(f"exclude_{name}" for name in FLAT_CONDITIONS))

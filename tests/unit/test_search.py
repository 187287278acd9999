"""Search request validation, fusion math on hand-computed numbers, and filter translation (no server)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from recommender.config import SearchSettings, load_settings
from recommender.domain import ProductFilter
from recommender.errors import ConfigError
from recommender.search.searcher import FusionWeights, SearchFilters, SearchInputError, SearchRequest, fuse
from recommender.store.filters import weaviate_filter


def field_of(exc: pytest.ExceptionInfo[SearchInputError]) -> str:
    return exc.value.field


@pytest.mark.parametrize(("kwargs", "field"), [
    ({}, "text"),
    ({"text": "   "}, "text"),
    ({"text": 3}, "text"),
    ({"image": b""}, "image"),
    ({"image": "not bytes"}, "image"),
    ({"text": "x", "k": 0}, "k"),
    ({"text": "x", "k": 101}, "k"),
    ({"text": "x", "k": "10"}, "k"),
    ({"text": "x", "k": 2.5}, "k"),
    ({"text": "x", "k": True}, "k"),
    ({"text": "x", "vectors": ("text", "colour")}, "vectors"),
    ({"text": "x", "vectors": ("behavior",)}, "vectors"),
])
def test_invalid_requests_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SearchInputError) as exc:
        SearchRequest(**kwargs)
    assert field_of(exc) == field


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"price_min": -1.0}, "filters.price_min"),
    ({"price_max": float("nan")}, "filters.price_max"),
    ({"price_max": "cheap"}, "filters.price_max"),
    ({"price_max": 10**400}, "filters.price_max"),  # no float holds it: was an OverflowError (500)
    ({"price_min": float("inf")}, "filters.price_min"),
    ({"price_min": 50.0, "price_max": 10.0}, "filters.price_min"),
    ({"category": "Women >  > Jeans"}, "filters.category"),
    ({"in_stock": "yes"}, "filters.in_stock"),
])
def test_invalid_filters_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SearchInputError) as exc:
        SearchFilters(**kwargs)
    assert field_of(exc) == field


def test_text_is_trimmed_and_vectors_deduplicated() -> None:
    req = SearchRequest(text="  yellow jeans ", vectors=("image", "text", "image"), k=100)
    assert (req.text, req.vectors, req.modalities) == ("yellow jeans", ("image", "text"), ("text",))


def test_signals_default_to_both_targets_per_modality_and_skip_zero_weights() -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    both = SearchRequest(text="x", image=png.getvalue())
    w = FusionWeights(text_to_text=1.0, text_to_image=0.0, image_to_image=1.0, image_to_text=0.25)
    assert both.signals(w) == (("text", "text"), ("image", "text"), ("image", "image"))
    assert SearchRequest(text="x", vectors=("image",)).signals(FusionWeights()) == (("text", "image"),)
    with pytest.raises(SearchInputError) as exc:
        SearchRequest(text="x", vectors=("image",)).signals(w)
    assert field_of(exc) == "vectors"


def test_weights_come_from_settings_and_overrides_name_signals() -> None:
    settings = load_settings(env={"RECSYS_SEARCH__TEXT_TO_IMAGE": "0.2", "RECSYS_SEARCH__CANDIDATES": "80"})
    assert settings.search == SearchSettings(text_to_image=0.2, candidates=80)
    w = FusionWeights.from_settings(settings.search)
    assert (w.weight("text", "text"), w.weight("text", "image")) == (1.0, 0.2)
    assert w.with_overrides({"image->text": 0}).weight("image", "text") == 0.0
    for bad in ({"text->behavior": 1.0}, {"image->image": "heavy"}, {"image->image": float("inf")},
                {"text->text": 1e308}, {"text->text": 10**400}, {"text->image": -1e300}):
        with pytest.raises(SearchInputError) as exc:
            w.with_overrides(bad)
        assert field_of(exc) == "weights"
    with pytest.raises(ConfigError, match=r"search\.max_k"):
        load_settings(env={"RECSYS_SEARCH__MAX_K": "many"})


def test_fusion_is_a_weighted_sum_and_a_missing_signal_adds_nothing() -> None:
    scores = {
        "text->text": {"a": 0.8, "b": 0.6, "c": 0.1},
        "text->image": {"a": 0.2, "b": 0.9},  # c has no image vector
    }
    ranked = fuse(scores, {"text->text": 1.0, "text->image": 0.5})
    # a = 0.8 + 0.5·0.2 = 0.90; b = 0.6 + 0.5·0.9 = 1.05; c = 0.1
    assert [pid for pid, _ in ranked] == ["b", "a", "c"]
    assert [round(s, 6) for _, s in ranked] == [1.05, 0.9, 0.1]


def test_fusion_ties_break_by_product_id_and_negative_cosines_count() -> None:
    ranked = fuse({"s": {"z": 0.5, "y": 0.5, "x": -0.2}, "t": {"x": 0.7}}, {"s": 2.0, "t": 1.0})
    assert ranked == [("y", 1.0), ("z", 1.0), ("x", pytest.approx(0.3))]


def describe(f: Any) -> Any:
    """A filter tree as nested tuples: (operator, target, value) leaves, (operator, [children]) nodes."""
    if hasattr(f, "filters"):
        return (str(f.operator.value), [describe(c) for c in f.filters])
    return (str(f.operator.value), f.target, f.value)


def test_filter_translation() -> None:
    assert weaviate_filter(None) is None
    assert weaviate_filter(ProductFilter()) is None
    assert describe(weaviate_filter(ProductFilter(in_stock=True))) == ("Equal", "in_stock", True)
    tree = describe(weaviate_filter(SearchFilters(category="Women > Bottoms", price_min=10, price_max=50.5,
                                                  in_stock=True).to_store()))
    assert tree == ("And", [("Equal", "category_l1", "Women"), ("Equal", "category_l2", "Bottoms"),
                            ("GreaterThanEqual", "price", 10.0), ("LessThanEqual", "price", 50.5),
                            ("Equal", "in_stock", True)])
    deep = describe(weaviate_filter(ProductFilter(category=("A", "B", "C", "D"))))
    assert deep == ("Or", [("Equal", "category", "A > B > C > D"), ("Like", "category", "A > B > C > D > *")])
    assert SearchFilters().to_store() == ProductFilter()
    assert SearchFilters(in_stock=False).to_store() == ProductFilter(in_stock=False)

"""The "why this?" of each recommended item: evidence from the ranking, sentence from ``recommender.explain.evidence``.

A request's ``explain`` mode picks the writer: ``none`` (no explanation), ``template`` (the deterministic
sentence), ``llm`` (cache → LLM under its strict timeout → template, as ``[explain]`` configures; with the
default ``backend = "template"`` it is the template too). The evidence is the item's own signals, the two
products' facts, the anchor/item session counts and the shopper's recent products, so a sentence can state
nothing else (the guard checks LLM text against it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from recommender.domain import ItemView, RankedItem
from recommender.explain.cache import ExplanationService
from recommender.explain.evidence import list_evidence

MODES = ("none", "template", "llm")


def explain_items(mode: str, service: ExplanationService, ranked: Sequence[RankedItem],
                  views: Mapping[str, ItemView], anchor: ItemView | None, history: Sequence[ItemView],
                  co_counts: Callable[[str, str], Mapping[str, float]]) -> list[dict[str, Any] | None]:
    """``{"text", "source"}`` per ranked item (None each for mode ``none`` or an item without a view)."""
    if mode == "none":
        return [None] * len(ranked)
    out: list[dict[str, Any] | None] = []
    for evidence in list_evidence(anchor, ranked, views, co_counts, history):
        if evidence is None:
            out.append(None)
            continue
        result = service.explain(evidence) if mode == "llm" else service.template.explain(evidence)
        out.append({"text": result.text, "source": result.source})
    return out

"""The API's explanation seam: evidence from the ranking, the writer chosen by the request's ``explain`` mode."""

from __future__ import annotations

from api.explanation import explain_items
from recommender.domain import ItemView, RankedItem
from recommender.explain.cache import ExplanationService
from recommender.explain.evidence import Evidence, Explanation, TemplateExplainer, build_evidence

ANCHOR = ItemView("A", category=("Unisex", "Shoes", "Sneakers"), color="beige", title="Beige runners", price=80.0)
ITEM = ItemView("B", category=("Unisex", "Shoes", "Sneakers"), color="beige", title="Beige trainers", price=85.0)
RANKED = [RankedItem("B", 1.0, {"cooccurrence": 0.4, "cooccurrence_contribution": 0.9}, ("cooccurrence",)),
          RankedItem("GONE", 0.5, {})]


class FixedWriter:
    """An explainer that always writes one sentence (stands in for an LLM behind the protocol)."""

    identity = "fixed:v1"

    def __init__(self) -> None:
        self.seen: list[Evidence] = []

    def explain(self, evidence: Evidence) -> Explanation:
        self.seen.append(evidence)
        return Explanation("Shoppers pair these two.", "llm")


def co_counts(anchor: str, item: str) -> dict[str, float]:
    return {"view": 7.0, "purchase": 2.0} if (anchor, item) == ("A", "B") else {}


def test_template_mode_states_the_evidence_and_skips_unknown_items() -> None:
    views = {"A": ANCHOR, "B": ITEM}
    out = explain_items("template", ExplanationService(), RANKED, views, ANCHOR, [], co_counts)
    expected = TemplateExplainer().sentence(build_evidence(ANCHOR, ITEM, RANKED[0], co_counts("A", "B")))
    assert out == [{"text": expected, "source": "template"}, None]
    assert expected and expected.endswith(".")


def test_none_mode_and_llm_mode_use_the_configured_writer() -> None:
    views = {"A": ANCHOR, "B": ITEM}
    assert explain_items("none", ExplanationService(), RANKED, views, ANCHOR, [], co_counts) == [None, None]
    writer = FixedWriter()
    service = ExplanationService(llm=writer)
    out = explain_items("llm", service, RANKED[:1], views, ANCHOR, [ANCHOR], co_counts)
    assert out == [{"text": "Shoppers pair these two.", "source": "llm"}]
    assert writer.seen[0].co_purchases == 2 and writer.seen[0].co_views == 7
    assert explain_items("template", service, RANKED[:1], views, ANCHOR, [], co_counts)[0]["source"] == "template"
    assert len(writer.seen) == 1  # template mode never calls the LLM

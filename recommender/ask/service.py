"""The whole ask: validate the request, read the viewed product, plan, retrieve, compose — each stage timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from recommender.ask.compose import Composer
from recommender.ask.model import AskRequest, AskResult, Conversation, Plan, Retrieved
from recommender.ask.planner import Planner
from recommender.ask.retrieval import Retriever
from recommender.config import AskSettings
from recommender.domain import Product
from recommender.errors import RecommenderError


class AskInputError(RecommenderError):
    """An ask request is invalid; ``field`` names the input, ``kind`` is ``invalid``, ``unprocessable``,
    ``too_large`` or ``not_found`` (an unknown product id)."""

    def __init__(self, field: str, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


Records = Callable[[list[str]], dict[str, Product]]
DEFAULT_PHOTO_QUESTION = "like this"


class AskService:
    """Answers shoppers' questions; thread-safe when its parts are (they hold no per-request state)."""

    def __init__(self, planner: Planner, retriever: Retriever, composer: Composer, records: Records,
                 settings: AskSettings, template: Composer | None = None) -> None:
        self.planner = planner
        self.retriever = retriever
        self.composer = composer
        self.template = template or composer  # what a request asking for ``answer: template`` gets
        self._records = records
        self.settings = settings

    def ask(self, request: AskRequest) -> AskResult:
        """The answer to one question; raises AskInputError for bad input, StoreUnavailable when the store is."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        request = self._checked(request)
        viewed = self._viewed(request.product_id)
        t = time.perf_counter()
        plan = self._plan(request, viewed)
        timings["plan_ms"] = _ms(t)
        t = time.perf_counter()
        plan, retrieved = self.retriever.retrieve(plan, request, viewed)
        if viewed is not None and retrieved.viewed is None:
            retrieved = replace(retrieved, viewed=viewed)
        timings["retrieve_ms"] = _ms(t)
        t = time.perf_counter()
        composer = self.template if request.answer_backend == "template" else self.composer
        answer = composer.compose(request.question, plan, retrieved)
        timings["compose_ms"] = _ms(t)
        timings["total_ms"] = _ms(start)
        return AskResult(plan, retrieved, answer, _conversation(plan, retrieved, request.product_id), timings)

    def close(self) -> None:
        """Release what the composer holds (an LLM composer's worker thread)."""
        close = getattr(self.composer, "close", None)
        if callable(close):
            close()

    def _checked(self, request: AskRequest) -> AskRequest:
        question = " ".join(request.question.split()) if isinstance(request.question, str) else ""
        if not question and request.image is not None:
            question = DEFAULT_PHOTO_QUESTION
        if not question:
            raise AskInputError("question", "question must be a non-empty string (or send a photo)")
        if len(question) > self.settings.max_question_chars:
            raise AskInputError("question", f"question is {len(question)} characters, over the "
                                            f"{self.settings.max_question_chars}-character limit", "too_large")
        if not 1 <= request.k <= self.settings.max_k:
            raise AskInputError("k", f"k must be between 1 and {self.settings.max_k}, got {request.k}")
        return replace(request, question=question)

    def _viewed(self, product_id: str | None) -> Product | None:
        if not product_id:
            return None
        found = self._records([product_id]).get(product_id)
        if found is None:
            raise AskInputError("product_id", f"unknown product {product_id!r}", "not_found")
        return found

    def _plan(self, request: AskRequest, viewed: Product | None) -> Plan:
        try:
            return self.planner.plan(request.question, viewed=viewed, has_image=request.image is not None,
                                     conversation=request.conversation)
        except ValueError as exc:  # the planner's PlanError: the question itself is unusable
            raise AskInputError("question", str(exc)) from exc


def _conversation(plan: Plan, retrieved: Retrieved, product_id: str | None) -> Conversation:
    shown = tuple(c.product.product_id for c in (*retrieved.matches, *retrieved.alternatives))
    stated = tuple(c for c in plan.constraints if not c.words.startswith("("))  # not those read from a photo
    return Conversation(plan.intent, stated, plan.query_text, product_id, shown)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 2)

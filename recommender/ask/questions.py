"""Evaluation questions for the ask feature, generated from a catalog's own attributes with gold answers.

Kinds: ``attribute``, ``combined``, ``negation``, ``availability_yes``, ``availability_no``,
``unanswerable``, ``price`` (only when the catalog has prices), ``photo``, ``title``, and ``injection``
(from ``write_injected_catalog``). Generation reads the products once (100k products stream through) and
is deterministic for a seed. Questions are stored as bounded JSONL (``write_questions``/``read_questions``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from recommender.ask.injection import INJECTED_URL, INJECTION_MARKERS, canary_for, inject_catalog
from recommender.ask.question_index import CatalogIndex
from recommender.ask.question_kinds import builders, to_questions
from recommender.ask.question_model import (
    KINDS,
    Question,
    QuestionLoad,
    constraint_from_json,
    constraint_to_json,
    read_questions,
    write_questions,
)
from recommender.domain import Product

__all__ = [
    "INJECTED_URL", "INJECTION_MARKERS", "KINDS", "Question", "QuestionLoad", "canary_for", "constraint_from_json",
    "constraint_to_json", "generate_questions", "read_questions", "write_injected_catalog", "write_questions",
]


def generate_questions(products: Iterable[Product], *, seed: int = 0, per_kind: int = 40) -> list[Question]:
    """Up to ``per_kind`` questions of each kind the catalog supports, with gold, from one pass over
    ``products`` (any iterable, e.g. a ``CatalogReader``); the same products and seed give the same list."""
    if per_kind < 1:
        raise ValueError("per_kind must be at least 1")
    index = CatalogIndex.build(products, seed=seed, reservoir_size=max(50, per_kind * 4))
    rng = random.Random(seed)
    out: list[Question] = []
    for kind, build in builders(index):
        out.extend(to_questions(kind, build(index, rng, per_kind)))
    return out


def write_injected_catalog(src: Path, dst: Path, n: int, seed: int = 0) -> list[Question]:
    """Copy the catalog at ``src`` to ``dst`` with ``n`` product descriptions carrying a prompt injection and a
    canary; return the ``injection`` questions that target those products."""
    return inject_catalog(src, dst, n, seed)

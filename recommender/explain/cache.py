"""Explanation cache (SQLite, WAL), the hot-path service (cache → LLM with timeout → template), nightly batch.

A cached sentence is keyed by (anchor id, item id, evidence hash, model identity): when the evidence or the
model changes, the old sentence is simply never looked up again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from recommender.config import ExplainSettings
from recommender.explain.evidence import Evidence, Explainer, Explanation, TemplateExplainer
from recommender.explain.llm import TRANSIENT, LLMExplainer, build_explainer
from recommender.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS explanations (
    anchor_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    evidence_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (anchor_id, item_id, evidence_hash, model)
)
"""


def _key(evidence: Evidence, model: str) -> tuple[str, str, str, str]:
    anchor = evidence.anchor.product_id if evidence.anchor is not None else ""
    return anchor, evidence.item.product_id, evidence.evidence_hash, model


class ExplanationCache:
    """Sentences already written, in one SQLite file (WAL, so readers never wait for the nightly writer)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = connect(path, wal=True, autocommit=True, any_thread=True)
        self._db.execute(_SCHEMA)

    def get(self, evidence: Evidence, model: str) -> Explanation | None:
        """The cached sentence for this evidence and model (source ``cache``), or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT text, reason FROM explanations WHERE anchor_id=? AND item_id=? AND evidence_hash=? AND model=?",
                _key(evidence, model)).fetchone()
        return Explanation(row[0], "cache", row[1]) if row else None

    def put(self, evidence: Evidence, model: str, explanation: Explanation) -> None:
        """Store (or replace) the sentence written for this evidence by this model."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO explanations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (*_key(evidence, model), explanation.text, explanation.source, explanation.reason,
                              time.time()))

    def count(self) -> int:
        """Number of cached sentences."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM explanations").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def cacheable(explanation: Explanation) -> bool:
    """An LLM sentence, or a guard rejection (greedy decoding would repeat it); not a timeout or outage."""
    return explanation.source == "llm" or (explanation.source == "template" and bool(explanation.reason)
                                           and explanation.reason not in TRANSIENT)


class ExplanationService:
    """The hot path: cache → LLM (bounded by its own strict timeout; optional) → template. Never raises for LLMs.

    ``llm_online=False`` serves only cached LLM sentences and the template (the nightly batch fills the cache).
    """

    def __init__(self, template: TemplateExplainer | None = None, llm: Explainer | None = None,
                 cache: ExplanationCache | None = None, llm_online: bool = True) -> None:
        self.template = template or TemplateExplainer()
        self.llm = llm
        self.cache = cache
        self.llm_online = llm_online

    def explain(self, evidence: Evidence) -> Explanation:
        """The best sentence available now for this evidence."""
        if self.llm is None:
            return self.template.explain(evidence)
        if self.cache is not None and (hit := self.cache.get(evidence, self.llm.identity)) is not None:
            return hit
        if not self.llm_online:
            return self.template.explain(evidence)
        result = self.llm.explain(evidence)
        if self.cache is not None and cacheable(result):
            self.cache.put(evidence, self.llm.identity, result)
        return result

    def close(self) -> None:
        """Release the LLM worker and the cache."""
        if isinstance(self.llm, LLMExplainer):
            self.llm.close()
        if self.cache is not None:
            self.cache.close()


@dataclass
class BatchSummary:
    """What a batch run did: counts per outcome, fallback reasons, and time."""

    total: int = 0
    cached: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def line(self) -> str:
        """One summary line of counts and timings."""
        per = self.seconds / max(self.total - self.cached, 1)
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items())) or "none"
        return (f"explanations: {self.total} pairs, {self.cached} already cached, llm={self.outcomes['llm']}, "
                f"template={self.outcomes['template']} (fallback reasons: {reasons}); "
                f"{self.seconds:.2f}s, {per * 1000:.1f} ms per generated pair")


def generate_batch(pairs: Iterable[Evidence], explainer: Explainer, cache: ExplanationCache,
                   progress: bool = True) -> BatchSummary:
    """Write and cache the sentence of every (anchor, item) evidence not cached yet for this explainer."""
    summary = BatchSummary()
    start = time.perf_counter()
    for evidence in tqdm(pairs, desc="explain", unit="pair", disable=not progress):
        summary.total += 1
        if cache.get(evidence, explainer.identity) is not None:
            summary.cached += 1
            continue
        result = explainer.explain(evidence)
        summary.outcomes[result.source] += 1
        if result.reason:
            summary.reasons[result.reason] += 1
        if cacheable(result):
            cache.put(evidence, explainer.identity, result)
    summary.seconds = time.perf_counter() - start
    if progress:
        tqdm.write(summary.line())
    return summary


def default_cache_path(data_dir: Path) -> Path:
    """Where the explanation cache lives unless configured: ``<data_dir>/explanations.sqlite``."""
    return data_dir / "explanations.sqlite"


def open_explanation_service(settings: ExplainSettings, data_dir: Path) -> ExplanationService:
    """The service the settings name (the template alone for backend ``template``; no cache file then)."""
    explainer = build_explainer(settings.backend, settings.model, settings.url, settings.api_key, settings.timeout_s,
                                settings.max_chars, settings.max_new_tokens)
    if isinstance(explainer, TemplateExplainer):
        return ExplanationService(explainer)
    cache = ExplanationCache(settings.cache_path or default_cache_path(data_dir))
    return ExplanationService(TemplateExplainer(), explainer, cache, settings.llm_online)

"""The pieces of the nightly refresh that are not orchestration: the lock, what changed, the quality gate, and the
precomputed lists. ``jobs/refresh.py`` runs them in order.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from recommender.behaviour.fit import fit_behaviour
from recommender.catalog.fingerprints import Fingerprints
from recommender.config import CollaborativeSettings, RefreshSettings
from recommender.domain import RankedItem, RankQuery
from recommender.errors import RecommenderError
from recommender.evaluation.metrics import ndcg_at_k
from recommender.evaluation.runner import aggregate, run_methods
from recommender.events.log import Event
from recommender.events.protocol import AnchorTask, build_tasks, split_point, time_split
from recommender.ranking.fusion import FusionModel, RankingModel, Rules
from recommender.ranking.learn import MethodSet, inner_rows, learn_models, method_set, shopper_tasks
from recommender.ranking.ltr import LtrParams, TreeRanker, train_ranker
from recommender.ranking.models import ReleaseModels
from recommender.ranking.pool import neighbour_pool, pooled_sources
from recommender.ranking.precomputed import ListWriter
from recommender.ranking.ranker import FusionRanker
from recommender.ranking.sources import NearVector
from recommender.store.item_cache import ItemLookup


class RefreshLocked(RecommenderError):
    """Another refresh holds the lock."""


@contextmanager
def refresh_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block; raise RefreshLocked at once if another process holds it.

    An OS file lock: a refresh that is killed releases it with its process, so there is never a stale lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RefreshLocked(f"another refresh is running (pid {holder}, lock {path}); "
                                "try again when it ends") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def fingerprint_digest(fp: Fingerprints) -> str:
    """One short digest of a stored product's fingerprints (it changes when its text, image or fields do)."""
    return hashlib.sha256(f"{fp.text}\x1f{fp.image}\x1f{fp.properties}".encode()).hexdigest()[:16]


def changed_products(before: Mapping[str, str], now: Mapping[str, str]) -> tuple[set[str], set[str]]:
    """(new or changed, removed) product ids between two fingerprint digests maps."""
    changed = {pid for pid, digest in now.items() if before.get(pid) != digest}
    return changed, set(before) - set(now)


def events_digest(events: Sequence[Event]) -> str:
    """A digest of the event log's content (import is idempotent, so equal logs give equal digests)."""
    h = hashlib.sha256()
    for e in sorted(events, key=lambda e: e.key):
        h.update(e.key.encode())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- gate
@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate may be published, and why (the sentence goes into the release's summary)."""

    publish: bool
    reason: str
    candidate: float | None = None
    current: float | None = None


def gate_decision(candidate: float | None, current: float | None, metric: str, tolerance: float, tasks: int,
                  min_tasks: int) -> GateDecision:
    """Publish when the candidate's ``metric`` is at least ``(1 - tolerance)`` × the served model's."""
    if tasks < min_tasks:
        return GateDecision(True, f"published without a comparison: {tasks} holdout tasks (< {min_tasks})",
                            candidate, current)
    if candidate is None:
        return GateDecision(False, f"not published: the evaluation reported no {metric} for the candidate",
                            candidate, current)
    if current is None:
        return GateDecision(True, f"published: no model served yet; candidate {metric} {candidate:.4f}", candidate)
    floor = current * (1 - tolerance)
    if candidate >= floor:
        return GateDecision(True, f"published: candidate {metric} {candidate:.4f} >= {floor:.4f} (served "
                                  f"{current:.4f} - {tolerance * 100:g}%) on {tasks} holdout tasks", candidate, current)
    return GateDecision(False, f"not published: candidate {metric} {candidate:.4f} < {floor:.4f} (served "
                               f"{current:.4f} - {tolerance * 100:g}%) on {tasks} holdout tasks", candidate, current)


def trees_win(trees: float, logistic: float) -> bool:
    """Whether a path ranks with its trees: they score at least the logistic fusion's figure on the same tasks (no
    tolerance: the refresh's tolerance is for the served model, and within one candidate the better model ranks)."""
    return trees >= logistic


@dataclass(frozen=True)
class GateEvaluation:
    """The gate's evidence: the candidate's models, the figures of the models compared, and the decision."""

    candidate: ReleaseModels
    decision: GateDecision
    payload: dict[str, Any]


def evaluate_gate(events: Sequence[Event], items: ItemLookup, near: NearVector, served: ReleaseModels,
                  settings: RefreshSettings, collaborative: CollaborativeSettings, rules: Rules, per_source: int,
                  choice: str = "ltr", pinned: FusionModel | None = None, progress: bool = True) -> GateEvaluation:
    """Fit on all but the newest events, learn the candidate's models there (unless ``pinned``), and rank the
    newest events' tasks with the candidate and the served model on the same behaviour fit (same candidates,
    same features). Per path, the better of the learned trees and the logistic fusion learned from the same inner
    rows ranks (ties: the trees): product pages on the holdout's anchor tasks, "for you" on its shoppers."""
    tasks, train, split_at = _gate_tasks(events, settings)
    k = _metric_k(settings.metric)
    candidate, note = (ReleaseModels(pinned) if pinned is not None else None), ""
    if candidate is None:
        try:
            inner = inner_rows(train, items, near, collaborative, rules, per_source, settings.inner_tasks,
                               progress=progress)
            learned = learn_models(inner, ltr=LtrParams() if choice == "ltr" else None)
            candidate = ReleaseModels(learned.logistic, learned.tree)
        except ValueError as exc:  # too few events for the inner time folds (a new shop): keep what is served
            candidate, note = served, f"fusion not learned ({exc}): the served model is kept"
    if not tasks:
        return GateEvaluation(candidate, gate_decision(None, None, settings.metric, settings.tolerance, 0,
                                                       settings.min_gate_tasks), {"note": note})
    assert split_at is not None  # there are tasks, so there was a cut
    behaviour = fit_behaviour(train, collaborative, now=split_at)  # the cut is the clock: no peeking past it
    ms = method_set(behaviour, items, near, rules, per_source)
    methods = {"candidate": ms.fused("candidate", candidate.ranking(choice)),
               "served": ms.fused("served", served.ranking(choice))}
    if candidate.ranking(choice) is not candidate.logistic:
        methods["candidate_logistic"] = ms.fused("candidate_logistic", candidate.logistic)
    ev = run_methods(methods, tasks, k, progress)
    figures = aggregate(ev, k, len(behaviour.popularity), behaviour.popularity, behaviour.users,
                        lambda ids: np.zeros((0, 1)))
    value = {m: figures[m]["all"].get(settings.metric) for m in figures}
    trees, logistic = value.get("candidate"), value.get("candidate_logistic")
    if trees is not None and logistic is not None and not trees_win(trees, logistic):
        note = (f"the learning-to-rank trees ({settings.metric} {trees:.4f}) lost to the logistic fusion "
                f"({logistic:.4f}) on the same tasks: the candidate ranks with the logistic fusion")
        candidate, value["candidate"] = ReleaseModels(candidate.logistic), logistic
    decision = gate_decision(value.get("candidate"), value.get("served"), settings.metric, settings.tolerance,
                             len(tasks), settings.min_gate_tasks)
    payload = {"k": k, "tasks": len(tasks), "catalog_size": len(behaviour.popularity), "methods": figures,
               "split_at": split_at.isoformat() if split_at else None, "headline": decision.reason,
               "gate": asdict(decision), "candidate_model": candidate.ranking(choice).to_json(), "note": note}
    if choice == "ltr" and pinned is None and candidate.tree is not None:
        shopper, payload["shopper"] = _shopper_trees(events, train, items, near, ms, candidate.logistic,
                                                     served.for_shopper(choice), settings, collaborative, rules,
                                                     progress)
        candidate = replace(candidate, shopper=shopper)
    return GateEvaluation(candidate, decision, payload)


def _shopper_trees(events: Sequence[Event], train: Sequence[Event], items: ItemLookup, near: NearVector,
                   ms: MethodSet, logistic: FusionModel, served: RankingModel, settings: RefreshSettings,
                   collaborative: CollaborativeSettings, rules: Rules, progress: bool
                   ) -> tuple[TreeRanker | None, dict[str, Any]]:
    """The "for you" path's trees, learned on shopper tasks of the inner folds and kept only when they rank the
    holdout's shoppers at least as well as the logistic fusion (same candidates, features and split); the served
    "for you" model ranks the same shoppers, for the record."""
    holdout = shopper_tasks(train, time_split(events, split_point(events, settings.holdout_fraction))[1])
    rng = np.random.default_rng(0)
    if len(holdout) > settings.max_gate_tasks:
        holdout = [holdout[i] for i in sorted(rng.choice(len(holdout), settings.max_gate_tasks, replace=False))]
    try:
        inner = inner_rows(train, items, near, collaborative, rules, ms.per_source, settings.inner_tasks,
                           progress=progress, tasks_of=shopper_tasks)
        fit, valid = inner.split_by_shopper(0.2)
        tree = train_ranker(fit, valid, LtrParams())
    except (ValueError, RecommenderError) as exc:
        return None, {"tasks": len(holdout), "note": f"not learned ({exc}): the logistic fusion ranks"}
    k = _metric_k(settings.metric)
    figures = {name: float(np.mean([ndcg_at_k([r.product_id for r in ranker.rank(t.query(k))], t.relevant, k)
                                    for t in holdout])) if holdout else None
               for name, ranker in (("trees", ms.fused("shopper_trees", tree)),
                                    ("logistic", ms.fused("shopper_logistic", logistic)),
                                    ("served", ms.fused("shopper_served", served)))}
    kept = len(holdout) < settings.min_gate_tasks or trees_win(figures["trees"] or 0.0, figures["logistic"] or 0.0)
    return (tree if kept else None), {"tasks": len(holdout), f"ndcg@{k}": figures, "kept": kept,
                                      "training": tree.meta.get("training")}


def _gate_tasks(events: Sequence[Event], settings: RefreshSettings
                ) -> tuple[list[AnchorTask], list[Event], datetime | None]:
    if len(events) < 2:
        return [], list(events), None
    cut = split_point(events, settings.holdout_fraction)
    train, test = time_split(events, cut)
    tasks = build_tasks(train, test)
    if len(tasks) > settings.max_gate_tasks:
        rng = np.random.default_rng(0)
        tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), settings.max_gate_tasks, replace=False))]
    return tasks, train, cut


def _metric_k(metric: str) -> int:
    """The list length a gate metric needs (metrics as the evaluation reports them: ``name@K``, or ``mrr``)."""
    name, at, k = metric.partition("@")
    if metric == "mrr":
        return 10
    if name not in ("ndcg", "hit_rate", "recall") or not at or not k.isdigit() or int(k) < 1:
        raise RecommenderError(f"setting refresh.metric: {metric!r} is not one of ndcg@K, hit_rate@K, recall@K, mrr")
    return int(k)


# ----------------------------------------------------------------------------------- precomputed lists
@dataclass
class ListsSummary:
    """What the precompute did."""

    ranked: int = 0
    carried: int = 0
    empty: int = 0
    seconds: float = 0.0


def precompute_lists(ranker: FusionRanker, anchors: Sequence[str], writer: ListWriter, k: int,
                     progress: bool = True, keep: int = 0, near: NearVector | None = None
                     ) -> tuple[ListsSummary, dict[str, list[RankedItem]]]:
    """Rank each anchor's product page (anonymous, unfiltered) and store the list; also returns the first ``keep``
    items of every list (what the explanation batch writes sentences for, exactly as the API will serve them).

    With ``near`` (the store's query), each anchor's neighbour pool is fetched once, stored beside its list, and
    the list is ranked from it: the pool a shopper's page is later re-ranked from (``ranking.pool``)."""
    import time

    summary = ListsSummary()
    kept: dict[str, list[RankedItem]] = {}
    start = time.perf_counter()
    for anchor in tqdm(anchors, desc="precompute lists", unit="product", disable=not progress):
        if near is not None:
            pool = neighbour_pool(ranker.items, near, anchor, ranker.per_source + 1)
            writer.put_pool(anchor, pool)
            ranked = ranker.with_sources(pooled_sources(ranker.sources, pool)).rank(RankQuery(anchor, k=k))
        else:
            ranked = ranker.rank(RankQuery(anchor, k=k))
        writer.put(anchor, ranked)
        if keep:
            kept[anchor] = ranked[:keep]
        summary.ranked += 1
        summary.empty += not ranked
    summary.seconds = time.perf_counter() - start
    return summary, kept


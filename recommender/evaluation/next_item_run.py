"""`recsys evaluate --protocol next-item` as a library call: every "for you" method on the leave-last-out split
of a catalog's events, written as metrics.json + report.html in the shape of the related-products protocol."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from recommender.behaviour.fit import fit_behaviour
from recommender.catalog.reader import load_catalog
from recommender.config import CollaborativeSettings
from recommender.errors import RecommenderError
from recommender.evaluation.next_item import NextItemSplit, Stage, evaluate_methods, leave_last_out
from recommender.evaluation.next_item_methods import als_scorer, for_you_scorers, plain_als_settings
from recommender.evaluation.next_item_report import write_next_item_report
from recommender.evaluation.report import write_metrics
from recommender.events.log import EventReader, find_events_file
from recommender.sequence.store import SequenceModel

PUBLISHED = {  # full-ranking HR@10 / NDCG@10 of the S3-Rec paper (CIKM 2020), per dataset folder name
    "amazon-toys": {"s3rec": (0.0700, 0.0376), "sasrec": (0.0675, 0.0374), "popularity": (0.0113, 0.0061)},
    "amazon-sports": {"s3rec": (0.0385, 0.0204), "sasrec": (0.0350, 0.0192), "popularity": (0.0094, 0.0053)},
}


@dataclass(frozen=True)
class NextItemOptions:
    """What one next-item evaluation measures, and where it writes."""

    catalog: Path
    out: Path
    events: Path | None = None  # default: the catalog's events file
    stage: str = "test"  # "valid": the item before the last (what tuning looks at)
    max_tasks: int = 0
    progress: bool = True


def load_split(catalog: Path, events: Path | None = None) -> tuple[NextItemSplit, int]:
    """The catalog's events as a leave-last-out split, and how many rows were rejected."""
    path = events or find_events_file(catalog)
    if path is None:
        raise RecommenderError(f"{catalog} has no events file; pass --train-events")
    known = {p.product_id for p in load_catalog(catalog).products}
    reader = EventReader(path, known)
    split = leave_last_out(list(reader))
    if not split.tasks("test")[0]:
        raise RecommenderError("no shopper has three or more events: nothing to evaluate")
    return split, len(reader.errors)


def run_next_item(options: NextItemOptions, settings: CollaborativeSettings,
                  sequence: SequenceModel | None = None) -> dict[str, Any]:
    """Fit behaviour on everything but the held-out items, rank all items per shopper, write the report."""
    if options.stage not in ("valid", "test"):
        raise RecommenderError(f"stage must be valid or test, not {options.stage!r}")
    stage: Stage = "valid" if options.stage == "valid" else "test"
    started = time.perf_counter()
    split, rejected = load_split(options.catalog, options.events)
    seconds: dict[str, float] = {}
    with threadpool_limits(1, "blas"):
        t0 = time.perf_counter()
        clock = split.clock(stage)
        behaviour = fit_behaviour(split.fit_events(stage), settings, now=clock)
        plain = fit_behaviour(split.fit_events(stage), plain_als_settings(settings.threads), now=clock)
        seconds["fit"] = time.perf_counter() - t0
        scorers = {**for_you_scorers(behaviour, split.items, split.users, sequence),
                   "implicit_als": als_scorer(plain, split.items, split.users)}
        t0 = time.perf_counter()
        figures = evaluate_methods(split, stage, scorers, options.progress, options.max_tasks)
        seconds["rank"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    payload = _payload(options, split, figures, seconds, rejected, settings, sequence)
    write_metrics(options.out, payload)
    write_next_item_report(options.out, payload)
    return payload


def _payload(options: NextItemOptions, split: NextItemSplit, figures: Mapping[str, Mapping[str, float]],
             seconds: dict[str, float], rejected: int, settings: CollaborativeSettings,
             sequence: SequenceModel | None) -> dict[str, Any]:
    best = max(figures, key=lambda m: figures[m]["ndcg@10"])
    published = PUBLISHED.get(options.catalog.resolve().name, {})
    headline = (f"next-item ({options.stage}): best {best} HR@10 {figures[best]['hr@10']:.4f} "
                f"NDCG@10 {figures[best]['ndcg@10']:.4f}")
    if "s3rec" in published:
        headline += f" (S3-Rec published {published['s3rec'][0]:.4f} / {published['s3rec'][1]:.4f})"
    return {"protocol": "next-item", "stage": options.stage, "k": 10, "headline": headline,
            "methods": {name: {"all": dict(f)} for name, f in figures.items()},
            "tasks": int(next(iter(figures.values()))["tasks"]), "users": len(split.users),
            "catalog_size": len(split.items), "events": sum(len(e) for e in split.events),
            "rejected_events": rejected, "catalog": str(options.catalog), "seconds": seconds,
            "published": {k: {"hr@10": v[0], "ndcg@10": v[1]} for k, v in published.items()},
            "collaborative": {k: getattr(settings, k) for k in ("factors", "regularization", "alpha",
                                                                 "half_life_days", "session_gap_hours")},
            "sequence_model": dict(sequence.meta) if sequence is not None else None}

"""`recsys tune` and `recsys train-sequence` as library calls on a catalog's leave-last-out split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from recommender.config import CollaborativeSettings
from recommender.evaluation.next_item_run import load_split
from recommender.evaluation.sequence_fit import fit_sequence_model
from recommender.sequence.model import SasrecConfig
from recommender.sequence.store import SequenceStore
from recommender.tuning.search import GRID, tune
from recommender.tuning.store import save_tuned


@dataclass(frozen=True)
class TuneOptions:
    """What `recsys tune` searches on."""

    catalog: Path
    events: Path | None = None
    max_tasks: int = 5000  # validation shoppers each trial is judged on (seeded sample; 0 = all)
    save: bool = True
    progress: bool = True


@dataclass(frozen=True)
class SequenceTrainOptions:
    """What `recsys train-sequence` trains on, and how."""

    catalog: Path
    events: Path | None = None
    config: SasrecConfig = field(default_factory=SasrecConfig)
    progress: bool = True


def run_tune(options: TuneOptions, start: CollaborativeSettings, data_dir: Path) -> dict[str, Any]:
    """Search ``GRID`` from ``start``; record the choice as the data dir's tuned defaults (unless ``save`` is off)."""
    split, rejected = load_split(options.catalog, options.events)
    # the search starts from the dataclass defaults' threads etc. but from the caller's other values
    result = tune(split, replace(start), GRID, options.max_tasks, options.progress)
    source = {"catalog": str(options.catalog), "events": sum(len(e) for e in split.events),
              "rejected_events": rejected, "stage": "valid"}
    version = save_tuned(data_dir, result, source) if options.save else None
    return {"version": version, **result.as_dict(), **source}


def run_train_sequence(options: SequenceTrainOptions, data_dir: Path) -> dict[str, Any]:
    """Train SASRec (all but each shopper's last two items; stopped on the one before the last), save, publish."""
    split, rejected = load_split(options.catalog, options.events)
    model, result = fit_sequence_model(split, options.config, options.progress,
                                       meta={"catalog": str(options.catalog)})
    version = SequenceStore.in_data_dir(data_dir).save(model)
    return {"version": version, "best_epoch": result.best_epoch, "valid_ndcg@10": result.best_score,
            "epochs": result.epochs, "seconds": result.seconds, "items": len(split.items),
            "users": len(split.users), "rejected_events": rejected}

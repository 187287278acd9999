"""The next-item protocol (SASRec/S3-Rec): leave-last-out per shopper, full ranking over all items.

Each shopper's events in time order: the last item is the test target, the one before it the validation target,
the rest training. A method scores every item after the shopper's history; the shopper's history is excluded and
HR@k / NDCG@k come from the target's rank. Methods rank in batches of shoppers (one matrix per batch), so tens
of thousands of shoppers evaluate in minutes. Fitting for the test stage uses everything but the test items;
for the validation stage (``recsys tune``, early stopping) everything but the last two items per shopper.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

import numpy as np
from tqdm import tqdm

from recommender.evaluation.metrics import hit_rate_from_ranks, ndcg_from_ranks, target_ranks
from recommender.events.interactions import IdMap
from recommender.events.log import Event

Stage = Literal["valid", "test"]
KS = (5, 10, 20)
# (shopper rows of a batch, their histories as item indices, oldest first) -> (batch, n_items) scores
Scorer = Callable[[Sequence[int], Sequence[Sequence[int]]], np.ndarray]


@dataclass(frozen=True)
class NextItemSplit:
    """Per-shopper event sequences (time order) over one item index; shoppers with fewer than 3 items are
    trained on but never evaluated (they have no validation and test item of their own)."""

    items: IdMap
    users: tuple[str, ...]
    events: tuple[tuple[Event, ...], ...]

    @cached_property
    def sequences(self) -> list[list[int]]:
        """Every shopper's item indices, oldest first."""
        index = {pid: i for i, pid in enumerate(self.items.ids)}
        return [[index[e.product_id] for e in evs] for evs in self.events]

    def holdout(self, stage: Stage) -> int:
        """How many trailing items per shopper the stage hides from fitting (test 1, valid 2)."""
        return 1 if stage == "test" else 2

    def fit_events(self, stage: Stage) -> list[Event]:
        """What methods are fitted on for ``stage``: every shopper's events but the held-out tail."""
        cut = self.holdout(stage)
        return [e for evs in self.events for e in (evs[:-cut] if len(evs) >= 3 else evs)]

    def clock(self, stage: Stage) -> datetime:
        """The fitting clock of ``stage``: just after its newest fitted event. Leave-last-out has no global time
        cut, so decay and "recent" are measured from the end of what is fitted (never from a held-out event)."""
        return max(e.timestamp for e in self.fit_events(stage)) + timedelta(microseconds=1)

    def fit_sequences(self, stage: Stage) -> list[list[int]]:
        """Item-index sequences without the held-out tail (what a sequence model trains on)."""
        cut = self.holdout(stage)
        return [s[:-cut] if len(s) >= 3 else s for s in self.sequences]

    def tasks(self, stage: Stage) -> tuple[list[int], list[list[int]], np.ndarray]:
        """(evaluated shopper rows, their input histories, their target item indices) for ``stage``."""
        cut = self.holdout(stage)
        rows, inputs, targets = [], [], []
        for row, seq in enumerate(self.sequences):
            if len(seq) >= 3:
                rows.append(row)
                inputs.append(seq[:-cut])
                targets.append(seq[-cut])
        return rows, inputs, np.asarray(targets, dtype=np.int64)


def leave_last_out(events: Iterable[Event]) -> NextItemSplit:
    """Group events per shopper in time order (ties keep input order); items indexed in first-seen order."""
    per_user: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        per_user[e.user_id].append(e)
    items = IdMap()
    users = tuple(per_user)
    ordered = tuple(tuple(sorted(per_user[u], key=lambda e: e.timestamp)) for u in users)
    for evs in ordered:
        for e in evs:
            items.add(e.product_id)
    return NextItemSplit(items, users, ordered)


def history_mask(inputs: Sequence[Sequence[int]], n_items: int) -> np.ndarray:
    """(len(inputs), n_items) boolean mask of each shopper's history items."""
    mask = np.zeros((len(inputs), n_items), dtype=bool)
    for i, seq in enumerate(inputs):
        mask[i, list(seq)] = True
    return mask


def rank_targets(scorer: Scorer, rows: Sequence[int], inputs: Sequence[Sequence[int]], targets: np.ndarray,
                 n_items: int, batch: int = 1024, desc: str = "", progress: bool = False) -> np.ndarray:
    """The target's 0-based rank for every shopper, history excluded, scored ``batch`` shoppers at a time."""
    out = np.empty(len(targets), dtype=np.int64)
    for start in tqdm(range(0, len(targets), batch), desc=desc, disable=not progress):
        chunk = inputs[start:start + batch]
        scores = scorer(rows[start:start + batch], chunk)
        out[start:start + batch] = target_ranks(scores, targets[start:start + batch], history_mask(chunk, n_items))
    return out


def figures(ranks: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """HR@k and NDCG@k for each k, plus MRR and the number of shoppers."""
    out: dict[str, float] = {"tasks": len(ranks)}
    for k in ks:
        out[f"hr@{k}"] = hit_rate_from_ranks(ranks, k)
        out[f"ndcg@{k}"] = ndcg_from_ranks(ranks, k)
    out["mrr"] = float((1.0 / (np.asarray(ranks) + 1.0)).mean()) if len(ranks) else 0.0
    return out


def evaluate_methods(split: NextItemSplit, stage: Stage, scorers: Mapping[str, Scorer], progress: bool = False,
                     max_tasks: int = 0, seed: int = 0) -> dict[str, dict[str, float]]:
    """Each method's figures on ``stage`` (methods already fitted on ``split.fit_events(stage)``); ``max_tasks``
    > 0 measures a seeded sample of that many shoppers."""
    rows, inputs, targets = split.tasks(stage)
    if 0 < max_tasks < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), max_tasks, replace=False))
        rows, inputs, targets = [rows[i] for i in keep], [inputs[i] for i in keep], targets[keep]
    return {name: figures(rank_targets(scorer, rows, inputs, targets, len(split.items), desc=f"{stage} {name}",
                                       progress=progress))
            for name, scorer in scorers.items()}

"""Training the sequence model on a next-item split, early-stopped on the validation items' NDCG@10."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recommender.evaluation.metrics import ndcg_from_ranks, target_ranks
from recommender.evaluation.next_item import NextItemSplit, history_mask
from recommender.sequence.model import Sasrec, SasrecConfig
from recommender.sequence.store import SequenceModel
from recommender.sequence.train import TrainResult, pad_batch, train_sasrec

VALID_K = 10


def _validator(split: NextItemSplit, batch: int = 1024) -> Any:
    """NDCG@10 of every shopper's validation item given the items before it (history excluded)."""
    _, inputs, unsorted = split.tasks("valid")
    by_length = np.argsort([len(s) for s in inputs], kind="stable")  # batches of similar length: little padding
    inputs, targets = [inputs[i] for i in by_length], unsorted[by_length]
    model_inputs = [[j + 1 for j in seq] for seq in inputs]

    def validate(net: Sasrec) -> float:
        ranks = []
        for start in range(0, len(targets), batch):
            chunk = model_inputs[start:start + batch]
            scores = net.last_scores(pad_batch(chunk, net.config.max_len)).numpy()
            ranks.append(target_ranks(scores, targets[start:start + batch],
                                      history_mask(inputs[start:start + batch], len(split.items))))
        return ndcg_from_ranks(np.concatenate(ranks), VALID_K) if ranks else 0.0

    return validate


def fit_sequence_model(split: NextItemSplit, config: SasrecConfig, progress: bool = True,
                       meta: Mapping[str, Any] | None = None) -> tuple[SequenceModel, TrainResult]:
    """SASRec trained on every shopper's items but the last two, stopped on the validation items; its item ids
    are ``split.items`` (so model id = split index + 1)."""
    seqs = [[j + 1 for j in seq] for seq in split.fit_sequences("valid")]
    result = train_sasrec(seqs, len(split.items), config, _validator(split), progress=progress)
    record = {"best_epoch": result.best_epoch, "valid_ndcg@10": result.best_score, "epochs": result.epochs,
              "train_seconds": round(result.seconds, 1), "users": len(split.users), **(meta or {})}
    return SequenceModel(result.model, split.items, record), result

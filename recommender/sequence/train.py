"""Training SASRec with the full softmax over all items, early-stopped on a validation figure the caller computes.

The caller passes ``validate(model) -> float`` (higher is better, e.g. NDCG@10 of each shopper's validation item),
so this package knows nothing of evaluation protocols; the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from recommender.sequence.model import Sasrec, SasrecConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """The best model and how it was reached."""

    model: Sasrec
    best_epoch: int
    best_score: float
    epochs: int
    seconds: float
    history: tuple[tuple[int, float, float], ...]  # (epoch, mean loss, validation score)


def pad_left(seqs: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """The last ``length`` ids of each sequence, left-padded with 0, as a (len(seqs), length) long tensor."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for i, s in enumerate(seqs):
        tail = list(s)[-length:]
        if tail:
            out[i, length - len(tail):] = tail
    return torch.from_numpy(out)


def pad_batch(seqs: Sequence[Sequence[int]], max_len: int) -> torch.Tensor:
    """``pad_left`` to the longest sequence of the batch (at most ``max_len``): no work on all-padding columns."""
    return pad_left(seqs, max(1, min(max_len, max((len(s) for s in seqs), default=1))))


def _batches(seqs: Sequence[Sequence[int]], config: SasrecConfig, rng: np.random.Generator
             ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of similar-length sequences (sorted by length with random tie-breaks), in random order."""
    lengths = np.array([min(len(s), config.max_len + 1) for s in seqs])
    order = np.lexsort((rng.random(len(seqs)), lengths))
    out = []
    for start in range(0, len(order), config.batch_size):
        chunk = [list(seqs[i])[-(config.max_len + 1):] for i in order[start:start + config.batch_size]]
        length = max(len(s) for s in chunk) - 1
        out.append((pad_left([s[:-1] for s in chunk], length), pad_left([s[1:] for s in chunk], length)))
    return [out[i] for i in rng.permutation(len(out))]


def _loss(model: Sasrec, states: torch.Tensor, targets: torch.Tensor, negatives: int) -> torch.Tensor:
    """Cross-entropy of each target against all items, or against ``negatives`` shared uniform samples."""
    if negatives <= 0 or negatives >= model.n_items:
        return nn.functional.cross_entropy(model.logits(states), targets - 1)
    sampled = torch.randint(1, model.n_items + 1, (negatives,))
    weights = model.item_emb.weight
    positive = (states * weights[targets]).sum(-1, keepdim=True)
    negative = (states @ weights[sampled].T).masked_fill(sampled[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([positive, negative], dim=1)
    return nn.functional.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))


def _epoch(model: Sasrec, optimiser: torch.optim.Optimizer, batches: list[tuple[torch.Tensor, torch.Tensor]],
           negatives: int) -> float:
    model.train()
    total, count = 0.0, 0
    for inputs, targets in batches:
        states = model.hidden(inputs)
        keep = targets != 0
        loss = _loss(model, states[keep], targets[keep], negatives)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += float(loss.detach()) * int(keep.sum())
        count += int(keep.sum())
    return total / max(count, 1)


def train_sasrec(seqs: Sequence[Sequence[int]], n_items: int, config: SasrecConfig,
                 validate: Callable[[Sasrec], float] | None = None, progress: bool = True) -> TrainResult:
    """Fit on ``seqs`` (item ids 1..n_items, oldest first; sequences shorter than 2 teach nothing).

    Without ``validate`` it runs ``max_epochs``; with it, stops after ``patience`` epochs without a better score.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, config.threads))
    usable = [s for s in seqs if len(s) >= 2]
    model = Sasrec(n_items, config)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    best_state, best_score, best_epoch, history = None, -np.inf, 0, []
    t0 = time.perf_counter()
    bar = tqdm(range(1, config.max_epochs + 1), desc="sasrec", disable=not progress)
    try:
        for epoch in bar:
            loss = _epoch(model, optimiser, _batches(usable, config, rng), config.negatives)
            score = float("nan")
            if validate is not None and (epoch % config.eval_every == 0 or epoch == config.max_epochs):
                model.eval()
                with torch.no_grad():
                    score = validate(model)
                if score > best_score:
                    best_score, best_epoch, best_state = score, epoch, copy.deepcopy(model.state_dict())
                elif epoch - best_epoch >= config.patience:
                    history.append((epoch, loss, score))
                    break
            history.append((epoch, loss, score))
            bar.set_postfix(loss=f"{loss:.3f}", valid=f"{score:.4f}", best=f"{best_score:.4f}@{best_epoch}")
    finally:
        torch.set_num_threads(threads)
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch, best_score = len(history), float("nan")
    model.eval()
    return TrainResult(model, best_epoch, float(best_score), len(history), time.perf_counter() - t0, tuple(history))

"""SASRec: causal self-attention over item ids, scoring every item by a dot product with its embedding.

Items are ints 1..n (0 pads on the left). The item embedding is shared between input and output (weight tying),
so one matrix product scores the whole catalogue. Training uses cross-entropy over the target and many negatives
(a sampled softmax, or the full one over all items), which later reproductions found far stronger than the
original one-negative BCE; the sampled form keeps an epoch to seconds on a shared CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class SasrecConfig:
    """Architecture and training settings (recorded with every saved model)."""

    max_len: int = 50
    dim: int = 64
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.3
    lr: float = 5e-3  # with 0.3 dropout and batch 256: converged in 30 epochs on Amazon Toys (README)
    weight_decay: float = 0.0
    batch_size: int = 256
    negatives: int = 256  # sampled softmax: shared uniform negatives per batch (0 = full softmax over all items)
    max_epochs: int = 60
    patience: int = 6  # epochs without a better validation NDCG@10 before stopping
    eval_every: int = 2
    seed: int = 42
    threads: int = 1  # torch threads while training (more contend badly on a shared CPU)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SasrecConfig:
        """Inverse of ``as_dict``, ignoring unknown keys."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class Sasrec(nn.Module):
    """Embedding + positional embedding → ``blocks`` pre-norm transformer layers with a causal mask."""

    def __init__(self, n_items: int, config: SasrecConfig) -> None:
        super().__init__()
        self.n_items = n_items
        self.config = config
        self.item_emb = nn.Embedding(n_items + 1, config.dim, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len, config.dim)
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(config.dim, config.heads, dim_feedforward=config.dim * 4,
                                           dropout=config.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def _mask(self, seqs: torch.Tensor) -> torch.Tensor:
        """Causal + padding mask per sequence and head; a position always sees itself (no empty rows)."""
        b, length = seqs.shape
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=seqs.device), diagonal=1)
        pad = (seqs == 0)[:, None, :].expand(b, length, length)
        blocked = causal[None] | pad
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=seqs.device)[None]
        mask = torch.zeros(b, length, length, device=seqs.device).masked_fill(blocked, float("-inf"))
        return mask.repeat_interleave(self.config.heads, dim=0)

    def hidden(self, seqs: torch.Tensor) -> torch.Tensor:
        """(batch, len) left-padded item ids → (batch, len, dim) states; state t predicts the item after t."""
        length = seqs.shape[1]
        positions = torch.arange(length, device=seqs.device)[None, :]
        x = self.item_emb(seqs) * (self.config.dim ** 0.5) + self.pos_emb(positions)
        x = self.drop(x) * (seqs != 0)[..., None]
        x = self.encoder(x, mask=self._mask(seqs))
        return self.norm(x)

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every real item (column j = item j+1) for each state."""
        return states @ self.item_emb.weight[1:].T

    def last_scores(self, seqs: torch.Tensor) -> torch.Tensor:
        """(batch, n_items) scores of the next item after each sequence."""
        return self.logits(self.hidden(seqs)[:, -1])

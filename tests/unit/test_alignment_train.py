"""The training loop's stopping rule on tiny seeded pairs: patience stops untimed runs, never timed ones."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from recommender.alignment.data import PairSet
from recommender.alignment.train import TrainConfig, train

CONFIG = TrainConfig(model="recsys-rn-micro", image_size=32, epochs=3, batch_size=8, val_fraction=0.25, patience=0,
                     threads=1)


def tiny_pairs(n: int = 24) -> PairSet:
    gen = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    texts = F.normalize(torch.randn(n, 16, generator=gen), dim=1)
    return PairSet(tuple(map(str, range(n))), ("t",) * n, images, texts, texts.clone(), "h")


def test_patience_stops_an_untimed_run_but_a_timed_run_uses_its_whole_schedule() -> None:
    untimed = train(tiny_pairs(), CONFIG, progress=False)
    assert untimed.stopped == "early stop" and len(untimed.history) == 1
    timed = train(tiny_pairs(), replace(CONFIG, max_minutes=10.0), progress=False)
    assert timed.stopped == "epochs" and len(timed.history) == 3

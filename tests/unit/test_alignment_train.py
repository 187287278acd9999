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


def test_the_weight_average_moves_by_one_minus_decay_and_copies_counters() -> None:
    from recommender.alignment.model import build_model
    from recommender.alignment.train import _Loop

    pairs = tiny_pairs()
    model, spec = build_model("recsys-rn-micro", 32, 16)
    loop = _Loop(model, spec, pairs.subset(range(16)), pairs.subset(range(16, 24)), replace(CONFIG, ema_decay=0.9))
    assert loop.ema is not None
    before = {k: v.clone() for k, v in loop.ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model.state_dict()["visual.bn1.num_batches_tracked"].fill_(7)
    loop.update_ema(step=1000)  # the ramp (1001/1010) is above 0.9: the decay is 0.9
    after = loop.ema.state_dict()
    name = "proj.weight"
    assert torch.allclose(after[name], before[name] + 0.1, atol=1e-6)
    assert int(after["visual.bn1.num_batches_tracked"]) == 7


def test_a_run_with_a_weight_average_returns_the_average_not_the_live_weights() -> None:
    result = train(tiny_pairs(), replace(CONFIG, ema_decay=0.5, patience=99), progress=False)
    plain = train(tiny_pairs(), replace(CONFIG, ema_decay=0.0, patience=99), progress=False)
    # same seed and data: the live weights of both runs are identical, so a difference is the average
    assert not torch.allclose(result.model.proj.weight, plain.model.proj.weight)


def test_attribute_heads_skip_unknown_values_and_single_valued_attributes() -> None:
    from recommender.alignment.train import AttributeHeads

    base = tiny_pairs(6)
    attrs = (("Men > Shirts", "Red"), ("Women > Tops", "Red"), ("", "Red"), ("Men > Shirts", "Red"),
             ("Women > Tops", ""), ("Men > Shirts", "Red"))
    heads = AttributeHeads(8, replace(base, attributes=attrs))
    assert list(heads.heads) == ["category"]  # colour has one known value: nothing to learn
    assert heads.labels["category"].tolist() == [0, 1, -100, 0, 1, 0]
    feats = torch.zeros(3, 8)
    # rows 2 (unknown) and 0, 1: the loss only scores the known two, each at log(2) with zero features
    assert abs(heads.loss(feats, torch.tensor([2, 0, 1])).item() - 0.6931) < 1e-3
    assert heads.loss(feats, torch.tensor([2])).item() == 0.0


def test_pairs_without_attributes_train_without_heads() -> None:
    result = train(tiny_pairs(), replace(CONFIG, attribute_weight=0.3), progress=False)
    assert len(result.history) >= 1


def test_a_run_calibrates_the_hubness_correction_on_validation_unless_switched_off() -> None:
    result = train(tiny_pairs(), replace(CONFIG, patience=99), progress=False)
    assert result.hubness is not None and len(result.hubness.mrr_by_weight) == 5
    assert len(result.hubness.correction.reference) == result.train_size == 18  # the training split's titles
    assert "hubness weight" in result.line()
    assert train(tiny_pairs(), replace(CONFIG, patience=99, hubness_k=0), progress=False).hubness is None

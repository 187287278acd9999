"""The alignment loss's soft targets and the model's mirror-averaged vectors, on tiny seeded tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recommender.alignment.model import build_model, contrastive_loss, soft_targets


def unit(rows: torch.Tensor) -> torch.Tensor:
    return F.normalize(rows, dim=1)


def test_soft_targets_share_mass_between_identical_texts_and_favour_the_own_row() -> None:
    bank = unit(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.3, 0.0], [0.0, 0.0, 1.0]]))
    targets = soft_targets(bank[[0, 2]], bank, temperature=0.05)
    assert torch.allclose(targets.sum(1), torch.ones(2))
    assert torch.isclose(targets[0, 0], targets[0, 1])  # a duplicate title gets as much credit as the own one
    assert targets[0, 2] > targets[0, 3] and targets[0, 3] < 1e-6  # a near-duplicate some, an unrelated one none
    assert targets[1].argmax() == 2


def test_a_tiny_target_temperature_gives_the_hard_loss_when_texts_are_distinct() -> None:
    gen = torch.Generator().manual_seed(0)
    bank, images = unit(torch.randn(8, 16, generator=gen)), unit(torch.randn(4, 16, generator=gen))
    rows, scale = torch.tensor([1, 3, 4, 6]), torch.tensor(2.0)
    hard = contrastive_loss(images, bank, rows, scale)
    assert torch.isclose(contrastive_loss(images, bank, rows, scale, target_temperature=1e-4), hard, atol=1e-5)
    assert not torch.isclose(contrastive_loss(images, bank, rows, scale, target_temperature=0.5), hard, atol=1e-3)


def test_flip_average_makes_eval_vectors_mirror_invariant_but_training_vectors_not() -> None:
    model, _ = build_model("recsys-rn-micro", 32, 16, seed=1, flip_average=True)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        model.eval()
        assert torch.allclose(model(images), model(images.flip(3)), atol=1e-5)
        model.train()
        assert not torch.allclose(model(images), model(images.flip(3)), atol=1e-3)

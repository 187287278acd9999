"""The contrastive training loop: seeded, with a held-out validation split, warmup + cosine learning rate,
early stopping on validation MRR, a progress bar and a summary of images/s and seconds."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from recommender.alignment.augment import augment
from recommender.alignment.data import ATTRIBUTES, PairSet, split_rows
from recommender.alignment.hubness import Calibration, calibrate, reference_sample
from recommender.alignment.model import build_model, contrastive_loss
from recommender.encoders.tower import AlignedImageModel, TowerSpec, normalize
from recommender.evaluation.metrics import own_item_figures


@dataclass(frozen=True)
class TrainConfig:
    """Knobs of one training run (the defaults are the ones measured on the fixtures and Myntra)."""

    model: str = "recsys-rn-tiny"
    pretrained: str | None = None
    image_size: int = 64
    epochs: int = 40
    batch_size: int = 128  # capped at a quarter of the training set (at least 16) for small catalogs
    # 1e-3 won 5-minute Myntra runs (R@10 0.49 vs 0.45) but overfits over 30 minutes (0.51 vs 0.54 in 20 min at
    # 2e-3) and is worse on the fixtures (0.62 vs 0.66): 2e-3 and "both" stay the defaults.
    lr: float = 2e-3
    weight_decay: float = 0.2  # 0.05 overfit 30-minute Myntra runs earlier (validation peaked at epoch 36 of 85)
    warmup_fraction: float = 0.05
    val_fraction: float = 0.1
    patience: int = 8  # epochs without a better validation MRR before stopping (not with a time limit)
    max_minutes: float = 0.0  # 0 = no time limit; else the LR schedule is squeezed to end on time
    text_target: str = "both"  # "full" product text, "title", or "both" (each step picks one at random)
    target_temperature: float = 0.0  # > 0: soft targets from text–text similarity (near-duplicate titles)
    flip_average: bool = True  # the model's eval-mode vector averages the image and its mirror image
    # Augmentation strength: smallest crop area share and largest rotation. Light wins: on Myntra (10 min)
    # crops of ≥ 85% and ±3° scored held-out R@10 0.558 vs 0.507 for ≥ 60% / ±8° and 0.480 for ≥ 35% / ±15°.
    min_crop_scale: float = 0.85
    max_rotate_deg: float = 3.0
    # > 0: validate and keep an exponential moving average of the weights (0 = the raw weights). Measured on
    # Myntra over 30 minutes at the other defaults: held-out R@10 0.589 vs 0.504 for the raw weights.
    ema_decay: float = 0.998
    # > 0: heads on the tower's features also classify each image's catalog category and colour (training
    # only, not saved), weighted this much against the contrastive loss. Measured on Myntra (10 min, with the
    # moving average): held-out R@10 0.545 vs 0.528 without.
    attribute_weight: float = 0.3
    # > 0: calibrate a hubness correction for text→image search on the validation split (see hubness.py) with
    # this many nearest reference titles; 0 = none. Measured on a 30-minute Myntra run: held-out R@10 0.595 →
    # 0.609, MRR 0.304 → 0.315 (validation chose the weight 0.25).
    hubness_k: int = 10
    seed: int = 0
    # One thread: the small tower trains 2.5x faster than with torch's 2 threads on the 2-core box (measured).
    threads: int = 1


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss and validation figures (text→image, titles vs val images)."""

    epoch: int
    loss: float
    val_loss: float
    val_recall_at_10: float
    val_mrr: float


@dataclass
class TrainResult:
    """The best model (by validation MRR), its spec, and how the run went."""

    model: AlignedImageModel
    spec: TowerSpec
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    images_seen: int = 0
    train_size: int = 0
    val_size: int = 0
    stopped: str = "epochs"
    hubness: Calibration | None = None

    @property
    def images_per_second(self) -> float:
        """Training throughput (augment + forward + backward)."""
        return self.images_seen / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """Validation figures and timings for the manifest."""
        best = self.history[self.best_epoch - 1] if self.history else None
        return {"validation": asdict(best) if best else None,
                "training": {"epochs_run": len(self.history), "best_epoch": self.best_epoch, "stopped": self.stopped,
                             "seconds": round(self.seconds, 1), "images_seen": self.images_seen,
                             "images_per_second": round(self.images_per_second, 1)},
                "history": [asdict(h) for h in self.history],
                "hubness_validation_mrr": self.hubness.mrr_by_weight if self.hubness else None}

    def line(self) -> str:
        """One-line human summary."""
        best = self.history[self.best_epoch - 1] if self.history else None
        figures = f"val R@10 {best.val_recall_at_10:.3f} MRR {best.val_mrr:.3f} (epoch {self.best_epoch})" if best \
            else "no validation"
        if self.hubness is not None:
            weight = self.hubness.correction.weight
            figures += f", hubness weight {weight:g} (val MRR {self.hubness.mrr_by_weight[f'{weight:g}']:.3f})"
        return (f"trained on {self.train_size} pairs (val {self.val_size}): {figures}; {len(self.history)} epochs "
                f"({self.stopped}), {self.images_seen} images in {self.seconds:.0f} s = {self.images_per_second:.0f} "
                f"images/s")


def train(pairs: PairSet, config: TrainConfig, progress: bool = True) -> TrainResult:
    """Train a tower on ``pairs`` (a seeded validation split is held out) and return the best one."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    train_rows, val_rows = split_rows(len(pairs), config.val_fraction, config.seed)
    if len(train_rows) < 2:
        raise ValueError(f"need at least 2 training pairs, got {len(train_rows)}")
    train_set, val_set = pairs.subset(train_rows), pairs.subset(val_rows)
    model, spec = build_model(config.model, config.image_size, int(pairs.texts.shape[1]), config.pretrained,
                              config.seed, config.flip_average)
    loop = _Loop(model, spec, train_set, val_set, config)
    return loop.run(progress)


class _Loop:
    """State of one run; kept small so ``train`` reads top to bottom."""

    def __init__(self, model: AlignedImageModel, spec: TowerSpec, train_set: PairSet, val_set: PairSet,
                 config: TrainConfig) -> None:
        # channels_last: the convolutions train ~20% faster on CPU (measured on the 2-core box).
        model = model.to(memory_format=torch.channels_last)
        self.model, self.spec, self.train_set, self.val_set, self.config = model, spec, train_set, val_set, config
        self.gen = torch.Generator().manual_seed(config.seed)
        self.heads = AttributeHeads(model.proj.in_features, train_set) if config.attribute_weight > 0 else None
        params = list(model.named_parameters()) + (list(self.heads.named_parameters()) if self.heads else [])
        decay = [p for n, p in params if p.ndim >= 2 and "logit_scale" not in n]
        rest = [p for n, p in params if p.ndim < 2 or "logit_scale" in n]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                      {"params": rest, "weight_decay": 0.0}], lr=config.lr)
        # Small catalogs: cap the batch so that an epoch still has several optimiser steps.
        self.batch = min(config.batch_size, max(min(16, len(train_set)), len(train_set) // 4))
        self.steps_per_epoch = max(1, len(train_set) // self.batch)
        self.total_steps = self.steps_per_epoch * max(1, config.epochs)
        self.result = TrainResult(model, spec, train_size=len(train_set), val_size=len(val_set))
        self.ema = copy.deepcopy(model) if config.ema_decay > 0 else None

    @property
    def kept(self) -> AlignedImageModel:
        """The model that is validated and returned: the moving average when there is one."""
        return self.ema if self.ema is not None else self.model

    def update_ema(self, step: int) -> None:
        """Move the averaged weights (and BatchNorm statistics) towards the live ones.

        The decay ramps up from 0.1 so that short runs (a few hundred steps) are not dominated by the init.
        """
        if self.ema is None:
            return
        decay = min(self.config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            live = self.model.state_dict()
            for name, value in self.ema.state_dict().items():
                if value.dtype.is_floating_point:
                    value.lerp_(live[name], 1 - decay)
                else:
                    value.copy_(live[name])

    def lr_at(self, step: int, elapsed: float) -> float:
        """Linear warmup then cosine decay; progress is by steps, or by time when a time limit is closer."""
        progress = step / self.total_steps
        if self.config.max_minutes > 0:
            progress = max(progress, elapsed / (self.config.max_minutes * 60))
        warm = self.config.warmup_fraction
        if progress < warm:
            return self.config.lr * (progress / warm)
        return self.config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warm) / (1 - warm))))

    def run(self, progress: bool) -> TrainResult:
        best_mrr, best_state, waited = -1.0, None, 0
        start = time.perf_counter()
        bar = tqdm(total=self.total_steps, desc="train image encoder", unit="step", disable=not progress)
        for epoch in range(1, max(1, self.config.epochs) + 1):
            loss = self.epoch(epoch, bar, start)
            stats = self.validate(epoch, loss)
            self.result.history.append(stats)
            bar.set_postfix(loss=f"{loss:.3f}", val_R10=f"{stats.val_recall_at_10:.3f}", val_mrr=f"{stats.val_mrr:.3f}")
            if stats.val_mrr > best_mrr or not self.val_set.product_ids:
                best_mrr, best_state, waited = stats.val_mrr, copy.deepcopy(self.kept.state_dict()), 0
                self.result.best_epoch = epoch
            else:
                waited += 1
            # With a time limit the schedule ends on time: stopping early on a noisy validation set only loses
            # the low-learning-rate end, where the model gains most (a Myntra run stopped at 5 of 30 minutes).
            if waited >= self.config.patience and self.config.max_minutes <= 0:
                self.result.stopped = "early stop"
                break
            if self.config.max_minutes > 0 and time.perf_counter() - start >= self.config.max_minutes * 60:
                self.result.stopped = "time limit"
                break
        bar.close()
        self.result.seconds = time.perf_counter() - start
        self.result.model = self.kept
        if best_state is not None:
            self.result.model.load_state_dict(best_state)
        self.result.model.eval()
        self.result.hubness = self.calibrate_hubness()
        return self.result

    def calibrate_hubness(self) -> Calibration | None:
        """The hubness correction of the kept model, weighted on the validation split (None without one)."""
        if self.config.hubness_k <= 0 or not self.val_set.product_ids:
            return None
        reference = reference_sample(self.train_set.titles.numpy(), self.config.seed)
        images = encode_pairs(self.result.model, self.spec, self.val_set).numpy()
        return calibrate(images, self.val_set.titles.numpy(), reference, k=self.config.hubness_k)

    def epoch(self, epoch: int, bar: tqdm, start: float) -> float:
        self.model.train()
        order = torch.randperm(len(self.train_set), generator=self.gen)
        losses = []
        for i in range(self.steps_per_epoch):
            step = (epoch - 1) * self.steps_per_epoch + i
            for group in self.opt.param_groups:
                group["lr"] = self.lr_at(step, time.perf_counter() - start)
            rows = order[i * self.batch:(i + 1) * self.batch]
            x = augment(self.train_set.images[rows], self.gen, min_scale=self.config.min_crop_scale,
                        max_rotate_deg=self.config.max_rotate_deg)
            x = (x - torch.tensor(self.spec.mean).view(1, 3, 1, 1)) / torch.tensor(self.spec.std).view(1, 3, 1, 1)
            x = x.contiguous(memory_format=torch.channels_last)
            bank = self.text_bank()
            feats = self.model.visual(x)
            vecs = F.normalize(self.model.proj(feats), dim=-1)
            loss = contrastive_loss(vecs, bank, rows, self.model.logit_scale, self.config.target_temperature)
            if self.heads is not None:
                loss = loss + self.config.attribute_weight * self.heads.loss(feats, rows)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.update_ema(step)
            losses.append(loss.item())
            self.result.images_seen += len(rows)
            bar.update(1)
        return float(np.mean(losses))

    def text_bank(self) -> torch.Tensor:
        target = self.config.text_target
        if target == "both":
            target = "title" if torch.rand(1, generator=self.gen).item() < 0.5 else "full"
        return self.train_set.titles if target == "title" else self.train_set.texts

    def validate(self, epoch: int, loss: float) -> EpochStats:
        if not self.val_set.product_ids:
            return EpochStats(epoch, loss, float("nan"), float("nan"), float("nan"))
        vecs = encode_pairs(self.kept, self.spec, self.val_set)
        with torch.inference_mode():
            idx = torch.arange(len(vecs))
            val_loss = float(contrastive_loss(vecs, self.val_set.titles, idx, self.kept.logit_scale))
        figures = own_item_figures(self.val_set.titles.numpy(), vecs.numpy())
        return EpochStats(epoch, loss, val_loss, figures.recall[10], figures.mrr)


class AttributeHeads(nn.Module):
    """Linear classifiers of the visible catalog attributes (category, colour) on the tower's features.

    A cleaner signal than the text vectors, which mix in what a photo cannot show (brand, names), so the
    tower learns colour and kind with fewer images. Vocabularies come from the training pairs; an attribute
    with fewer than two known values gets no head, and an unknown value ("") is not scored.
    """

    def __init__(self, dim: int, pairs: PairSet) -> None:
        super().__init__()
        self.labels: dict[str, torch.Tensor] = {}
        heads = {}
        for i, name in enumerate(ATTRIBUTES):
            values = [a[i] for a in pairs.attributes]
            vocab = {v: j for j, v in enumerate(sorted({v for v in values if v}))}
            if len(vocab) >= 2:
                self.labels[name] = torch.tensor([vocab.get(v, -100) for v in values])
                heads[name] = nn.Linear(dim, len(vocab))
        self.heads = nn.ModuleDict(heads)

    def loss(self, feats: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Sum over attributes of the cross-entropy of the rows' known values (0 when there is nothing)."""
        total = feats.new_zeros(())
        for name, head in self.heads.items():
            target = self.labels[name][rows]
            if bool((target >= 0).any()):
                total = total + F.cross_entropy(head(feats), target, ignore_index=-100)
        return total


def encode_pairs(model: AlignedImageModel, spec: TowerSpec, pairs: PairSet, batch_size: int = 256) -> torch.Tensor:
    """Unit text-space vectors of the pairs' cached images (no augmentation), in order."""
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(pairs), batch_size):
            out.append(model(normalize(pairs.images[i:i + batch_size], spec.mean, spec.std)))
    return torch.cat(out) if out else torch.zeros((0, spec.text_dim))

"""The ranking models a release serves with, and which of them ranks.

A release always holds the logistic-regression fusion (``fusion.json``); when learning to rank succeeded and
won its gate, also the LightGBM trees (``ltr.txt`` + ``ltr.json``). ``ranking.model`` chooses: ``ltr`` ranks with
the trees when they are there and load, else with the logistic fusion (the fallback); ``logistic`` always uses
the logistic fusion. A fusion model that cannot be read (saved by an older version with other features) falls
back to the configured weights, so a worker always starts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from recommender.errors import ConfigError, RecommenderError
from recommender.ranking.fusion import DEFAULT_WEIGHTS, FusionModel, RankingModel, configured_model
from recommender.ranking.ltr import NAME, TreeRanker

log = logging.getLogger(__name__)
CHOICES = ("ltr", "logistic")
FUSION_FILE = "fusion.json"
SHOPPER_NAME = "ltr_user"  # the "for you" path's trees


def check_choice(choice: str) -> str:
    """``ranking.model``, checked."""
    if choice not in CHOICES:
        raise ConfigError(f"setting ranking.model: {choice!r} is not one of {', '.join(CHOICES)}")
    return choice


@dataclass(frozen=True)
class ReleaseModels:
    """The logistic fusion (always) and the learning-to-rank trees of the product page (``tree``) and the "for
    you" path (``shopper``); None: not learned, or not kept by the gate."""

    logistic: FusionModel
    tree: TreeRanker | None = None
    shopper: TreeRanker | None = None

    def ranking(self, choice: str) -> RankingModel:
        """The product-page model under ``ranking.model = choice`` (the trees when chosen and present)."""
        return self.tree if check_choice(choice) == "ltr" and self.tree is not None else self.logistic

    def for_shopper(self, choice: str) -> RankingModel:
        """The "for you" model under ``ranking.model = choice`` (its own trees when chosen and present)."""
        return self.shopper if check_choice(choice) == "ltr" and self.shopper is not None else self.logistic

    def save(self, folder: Path) -> None:
        """Write ``fusion.json`` and the trees there are (``ltr.txt`` + ``ltr.json``, ``ltr_user.*``)."""
        self.logistic.save(folder / FUSION_FILE)
        if self.tree is not None:
            self.tree.save(folder)
        if self.shopper is not None:
            self.shopper.save(folder, SHOPPER_NAME)

    @classmethod
    def load(cls, folder: Path, choice: str = "ltr", weights: Mapping[str, float] = DEFAULT_WEIGHTS
             ) -> ReleaseModels:
        """A release folder's models; the trees only when ``choice`` is ``ltr`` (a failing load is logged and
        falls back to the logistic fusion; an unreadable fusion model to the configured ``weights``)."""
        try:
            logistic = FusionModel.load(folder / FUSION_FILE)
        except RecommenderError as exc:
            log.warning("%s; ranking with the configured fusion weights", exc)
            logistic = configured_model(weights)
        trees = [_trees(folder, name) if check_choice(choice) == "ltr" else None for name in (NAME, SHOPPER_NAME)]
        return cls(logistic, *trees)


def _trees(folder: Path, name: str) -> TreeRanker | None:
    """Saved trees, or None when absent or unreadable (logged: that path ranks with the logistic fusion)."""
    if not (folder / f"{name}.json").is_file():
        return None
    try:
        return TreeRanker.load(folder, name)
    except RecommenderError as exc:
        log.warning("%s; ranking with the logistic fusion", exc)
        return None

"""A trained sequence model with its item ids, and its versions on disk (safetensors + JSON, never pickle).

``<root>/<version>/{model.safetensors, config.json}``: the weights as flat tensors; the config holds the
architecture, the item ids (position = model id − 1), the data hash and the training figures. ``current`` names
the version in use (``recommender.artifacts``), so readers switch without restart and can roll back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from recommender.errors import RecommenderError
from recommender.events.interactions import IdMap
from recommender.sequence.model import Sasrec, SasrecConfig
from recommender.sequence.train import pad_batch
from recommender.sequence.versions import CONFIG, sequence_root, sequence_versions

FORMAT = "recsys-sasrec/1"
WEIGHTS = "model.safetensors"


class SequenceModelNotFound(RecommenderError):
    """No (such) sequence model version has been saved."""


@dataclass(frozen=True)
class SequenceModel:
    """SASRec with the id map translating product ids to its item ids (1-based; 0 pads)."""

    net: Sasrec
    items: IdMap
    meta: Mapping[str, Any] = field(default_factory=dict)

    def encode(self, history: Sequence[str]) -> list[int]:
        """Model ids of the known products of a history (oldest first); unknown ones are skipped."""
        return [j + 1 for j in (self.items.index(p) for p in history) if j is not None]

    def score_batch(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """(len(histories), n_items) next-item scores for model-id histories, column j = item j."""
        if not histories:
            return np.zeros((0, len(self.items)), dtype=np.float32)
        with torch.no_grad():
            seqs = pad_batch(histories, self.net.config.max_len)
            return self.net.last_scores(seqs).numpy()

    def recommend(self, history: Sequence[str], n: int, exclude: frozenset[str] = frozenset()
                  ) -> list[tuple[str, float]]:
        """The ``n`` products most likely next after ``history`` (oldest first); [] without a known item."""
        ids = self.encode(history)
        if not ids:
            return []
        scores = self.score_batch([ids])[0].astype(np.float64)
        for pid in exclude:
            j = self.items.index(pid)
            if j is not None:
                scores[j] = -np.inf
        order = np.argsort(-scores, kind="stable")[:n]
        return [(self.items.id(int(j)), float(scores[j])) for j in order if np.isfinite(scores[j])]


class SequenceStore:
    """Versioned SASRec models under ``root`` with an atomic ``current`` pointer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = sequence_versions(root)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> SequenceStore:
        """The default place, ``<data_dir>/models/sequence``."""
        return cls(sequence_root(data_dir))

    def current_version(self) -> str | None:
        """The version in use, or None."""
        return self.dir.current()

    def save(self, model: SequenceModel, publish: bool = True) -> str:
        """Write a new version aside, rename it into place and (when ``publish``) point ``current`` at it."""
        version = self.dir.new_version("s" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
        with self.dir.staging(version) as tmp:
            save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, str(tmp / WEIGHTS))
            record = {"format": FORMAT, "version": version, "architecture": model.net.config.as_dict(),
                      "items": list(model.items.ids), "meta": dict(model.meta)}
            (tmp / CONFIG).write_text(json.dumps(record), encoding="utf-8")
            self.dir.commit(tmp, version)
        if publish:
            self.dir.publish(version)
        return version

    def load(self, version: str | None = None) -> SequenceModel:
        """A saved version (default: the current one)."""
        version = version or self.current_version()
        folder = self.root / version if version else None
        if folder is None or not (folder / CONFIG).is_file():
            raise SequenceModelNotFound(f"no sequence model {version or 'published'} in {self.root}")
        record = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
        if record.get("format") != FORMAT:
            raise SequenceModelNotFound(f"{folder / CONFIG} is not a {FORMAT} model")
        items = IdMap(record["items"])
        net = Sasrec(len(items), SasrecConfig.from_dict(record["architecture"]))
        net.load_state_dict(load_file(str(folder / WEIGHTS)))
        net.eval()
        return SequenceModel(net, items, {**record.get("meta", {}), "version": version})

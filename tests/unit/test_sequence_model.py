"""SASRec learns a deterministic order, saves without pickle and loads to the same scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recommender.events.interactions import IdMap
from recommender.sequence.model import SasrecConfig
from recommender.sequence.store import SequenceModel, SequenceModelNotFound, SequenceStore
from recommender.sequence.train import pad_left, train_sasrec

N_ITEMS = 12


def cycle(start: int, length: int) -> list[int]:
    """Items 1..12 in a fixed cycle: after item i always comes i+1 (12 → 1)."""
    return [(start + t) % N_ITEMS + 1 for t in range(length)]


@pytest.fixture(scope="module")
def trained() -> SequenceModel:
    seqs = [cycle(s, 6) for s in range(N_ITEMS) for _ in range(4)]
    config = SasrecConfig(max_len=8, dim=16, blocks=1, heads=1, dropout=0.0, lr=1e-2, batch_size=16,
                          max_epochs=40, negatives=0, seed=1, threads=1)
    result = train_sasrec(seqs, N_ITEMS, config, progress=False)
    return SequenceModel(result.model, IdMap(f"p{i}" for i in range(1, N_ITEMS + 1)))


def test_pad_left_keeps_the_most_recent_items() -> None:
    assert pad_left([[1, 2, 3], [4]], 2).tolist() == [[2, 3], [0, 4]]


def test_learns_the_next_item_of_a_deterministic_sequence(trained: SequenceModel) -> None:
    histories = [cycle(s, 3) for s in range(N_ITEMS)]
    best = trained.score_batch(histories).argmax(axis=1) + 1
    expected = [h[-1] % N_ITEMS + 1 for h in histories]
    assert best.tolist() == expected
    assert trained.recommend(["p3", "p4"], 1) [0][0] == "p5"
    assert trained.recommend(["p3", "p4"], 1, exclude=frozenset({"p5"}))[0][0] != "p5"
    assert trained.recommend(["unknown"], 3) == []


def test_saved_model_is_safetensors_and_json_and_scores_the_same(trained: SequenceModel, tmp_path) -> None:
    store = SequenceStore(tmp_path)
    with pytest.raises(SequenceModelNotFound):
        store.load()
    version = store.save(trained)
    folder = tmp_path / version
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text())["items"][0] == "p1"
    loaded = store.load()
    histories = [cycle(s, 4) for s in range(5)]
    np.testing.assert_allclose(loaded.score_batch(histories), trained.score_batch(histories), rtol=1e-5)


def test_early_stopping_keeps_the_best_epoch() -> None:
    seqs = [cycle(s, 5) for s in range(N_ITEMS)]
    scores = iter([0.1, 0.5, 0.2, 0.2, 0.2, 0.2])
    config = SasrecConfig(max_len=6, dim=8, blocks=1, dropout=0.0, batch_size=8, max_epochs=20, patience=3,
                          eval_every=1, threads=1)
    result = train_sasrec(seqs, N_ITEMS, config, validate=lambda model: next(scores), progress=False)
    assert result.best_epoch == 2 and result.best_score == pytest.approx(0.5)
    assert result.epochs == 5  # stopped 3 epochs after the best


def test_sequence_source_and_feature_use_the_history_most_recent_first(trained: SequenceModel) -> None:
    from recommender.domain import RankQuery
    from recommender.ranking.features import sequence_scores
    from recommender.ranking.sources import SequenceNext

    query = RankQuery(None, user_id="u", history=("p4", "p3"), k=5)  # p3 then p4: next is p5
    candidates = SequenceNext(trained).candidates(query, 3)
    assert candidates[0].product_id == "p5" and candidates[0].source == "sasrec" and candidates[0].rank == 1
    scores = sequence_scores(trained, query.history, ["p5", "p9", "nope"])
    assert scores[0] > scores[1] and scores[2] == 0.0
    assert sequence_scores(None, query.history, ["p5"]) == [0.0]
    assert SequenceNext(trained).candidates(RankQuery(None, user_id="u", k=5), 3) == []

"""Benchmark: the scoring step of one ranking request, learning-to-rank trees vs the logistic fusion.

Prints figures (it is not a test). For candidate pools of 100, 200 and 300 rows, times what ``FusionRanker.rank``
asks of its model per request — ``predict`` on the whole pool (one numpy batch) and ``contributions`` (tree SHAP
for the trees) on the items shown (``--shown``, 10) — for both models in the same run, interleaved, and reports
the medians and their ratio. The trees are a saved model (``--model DIR`` holding ``ltr.txt`` + ``ltr.json``, e.g.
the folder ``recsys evaluate --out`` wrote) or, by default, trained here on random rows with the default parameters
and a fixed number of rounds (no early stopping: the largest model the defaults allow).

    .venv/bin/python bench/ltr_latency.py [--model DIR] [--repeats 300]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from recommender.ranking.features import FEATURES
from recommender.ranking.fusion import learn_model
from recommender.ranking.ltr import LtrParams, RankingRows, TreeRanker, train_ranker


def synthetic_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random feature rows and labels that depend on a few features (so the trees grow real splits)."""
    rng = np.random.default_rng(seed)
    rows = rng.random((n, len(FEATURES)))
    logit = 3 * rows[:, 0] + 2 * rows[:, 3] * rows[:, 9] - 3
    return rows, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)


def main() -> None:
    """Time both models and print one line per pool size."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, help="a folder with ltr.txt + ltr.json (default: train one here)")
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--shown", type=int, default=10, help="items explained per request (the refresh's lists: 30)")
    args = p.parse_args()
    rows, labels = synthetic_rows(60_000, 0)
    linear = learn_model(rows, labels)
    if args.model:
        tree = TreeRanker.load(args.model)
    else:
        started = time.perf_counter()
        params = replace(LtrParams(), early_stopping=0)
        tree = train_ranker(RankingRows(rows, labels, np.full(200, 300)), None, params)
        print(f"trained {params.rounds} rounds on 60,000 rows in {time.perf_counter() - started:.1f}s")
    print(f"trees: {tree.booster.num_trees()} ({tree.meta.get('training', {}).get('rounds', '?')} rounds)")
    for n in (100, 200, 300):
        pool, _ = synthetic_rows(n, n)
        times: dict[str, list[float]] = {"logistic": [], "ltr": []}
        for _ in range(args.repeats):
            for name, model in (("logistic", linear), ("ltr", tree)):
                t0 = time.perf_counter()
                scores = model.predict(pool)
                model.contributions(pool[np.argsort(-scores)[:args.shown]])
                times[name].append(time.perf_counter() - t0)
        lr, lt = (float(np.median(times[m])) * 1000 for m in ("logistic", "ltr"))
        print(f"{n} candidates: logistic {lr:.3f} ms, ltr {lt:.3f} ms per request (median of {args.repeats}); "
              f"ltr/logistic {lt / lr:.1f}×, difference {lt - lr:.2f} ms")


if __name__ == "__main__":
    main()

"""Exact tree SHAP contributions of a LightGBM model, from tables built once per model instead of per row.

LightGBM's ``pred_contrib`` runs path-dependent tree SHAP for every row: ~60 µs per row for 40 small trees, the
largest single cost of a personalised product page. Those values have a structure to exploit: in one tree, the
Shapley game of a row splits into one game per leaf, ``g(S) = v · Π_{f∈S} a_f · Π_{f∈P\\S} r_f`` over the leaf's
path features ``P``, where ``a_f`` is 1 when the row satisfies every split on ``f`` along the path (0 otherwise)
and ``r_f`` is the share of training rows the path keeps at those splits. A leaf's Shapley values therefore depend
on the row only through which of its (few) path features agree, a bit mask, so they are tabulated per leaf and
mask when the model loads, and a row's contributions become a handful of vectorised comparisons, one gather and a
sum. The values are the same as ``pred_contrib``'s up to float rounding (the tests compare them on random trees).

Models this does not cover (categorical or missing-value splits, linear trees, several trees per iteration, paths
with too many distinct features for the tables) get ``None`` from ``LeafShap.build``: the caller uses LightGBM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_PATH_FEATURES = 12  # a leaf's table has 2**d rows of d values
MAX_TABLE = 4_000_000  # values over all leaves (32 MB): a larger model falls back to LightGBM


@dataclass(frozen=True)
class _Leaf:
    value: float
    features: tuple[int, ...]  # distinct path features, in path order
    lower: tuple[float, ...]  # the row agrees on features[j] when lower[j] < x <= upper[j]
    upper: tuple[float, ...]
    keep: tuple[float, ...]  # r_f: the share of the training rows the path keeps at the splits on features[j]


@dataclass(frozen=True)
class LeafShap:
    """Tree SHAP tables of one model; ``contributions(rows)`` is ``pred_contrib``'s (n, d + 1), bias last."""

    n_features: int
    bias: float
    # one condition per (leaf, distinct path feature), grouped by leaf: the row agrees when lower < x <= upper
    cond_feature: np.ndarray
    lower: np.ndarray  # (conditions, 1), to compare with the transposed rows
    upper: np.ndarray
    weight: np.ndarray  # (conditions, 1): 2**j, the condition's bit in its leaf's mask
    leaf_start: np.ndarray  # each leaf's first condition
    # the same conditions in feature order: the leaf each reads its mask from, where its value at mask 0 sits in
    # ``table``, how far one mask step moves (the leaf's d), and where each used feature's run starts
    leaf_by_feature: np.ndarray
    base_by_feature: np.ndarray
    stride_by_feature: np.ndarray
    feature_start: np.ndarray
    features_used: np.ndarray
    table: np.ndarray

    @classmethod
    def build(cls, model: dict[str, Any]) -> LeafShap | None:
        """Tables for a ``Booster.dump_model()``; None when the model has a split or size this does not cover."""
        if model.get("num_tree_per_iteration", 1) != 1 or model.get("average_output"):
            return None
        leaves: list[_Leaf] = []
        bias = 0.0
        for tree in model["tree_info"]:
            found = _leaves(tree["tree_structure"])
            if found is None:
                return None
            root = sum(count for _, count in found)
            for leaf, count in found:
                bias += leaf.value * count / root if root else leaf.value
                if leaf.features:
                    leaves.append(leaf)
        if any(len(leaf.features) > MAX_PATH_FEATURES for leaf in leaves) or \
                sum(2 ** len(leaf.features) * len(leaf.features) for leaf in leaves) > MAX_TABLE:
            return None
        return cls._from_leaves(leaves, bias, int(model["max_feature_idx"]) + 1)

    @classmethod
    def _from_leaves(cls, leaves: list[_Leaf], bias: float, n_features: int) -> LeafShap:
        tables = [_leaf_table(leaf) for leaf in leaves]
        sizes = [len(leaf.features) for leaf in leaves]
        offsets = np.concatenate([[0], np.cumsum([t.size for t in tables])])[:-1]
        feature = np.array([f for leaf in leaves for f in leaf.features], dtype=np.intp)
        base = np.array([o + j for o, d in zip(offsets, sizes, strict=True) for j in range(d)], dtype=np.intp)
        stride = np.repeat(np.array(sizes, dtype=np.intp), sizes)
        order = np.argsort(feature, kind="stable")
        used, start = np.unique(feature[order], return_index=True)
        return cls(
            n_features=n_features, bias=bias, cond_feature=feature,
            lower=np.array([x for leaf in leaves for x in leaf.lower])[:, None],
            upper=np.array([x for leaf in leaves for x in leaf.upper])[:, None],
            weight=np.array([2 ** j for d in sizes for j in range(d)], dtype=np.int32)[:, None],
            leaf_start=np.concatenate([[0], np.cumsum(sizes)])[:-1].astype(np.intp),
            leaf_by_feature=np.repeat(np.arange(len(sizes), dtype=np.intp), sizes)[order],
            base_by_feature=base[order][:, None], stride_by_feature=stride[order][:, None],
            feature_start=start.astype(np.intp), features_used=used,
            table=np.concatenate([t.ravel() for t in tables]) if tables else np.zeros(0))

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Per row, each feature's tree SHAP value and the bias last (n, n_features + 1), like ``pred_contrib``.

        Works on the transposed rows (one row of values per condition), so every step runs over contiguous
        memory and each row's sums are its own (no BLAS product: the same row gives the same bits in any batch)."""
        x = np.asarray(rows, dtype=np.float64)
        out = np.zeros((len(x), self.n_features + 1))
        out[:, -1] = self.bias
        if len(x) == 0 or self.table.size == 0:
            return out
        columns = np.nan_to_num(x.T, nan=0.0)  # LightGBM reads NaN as 0 at a split without a missing-value rule
        values = columns[self.cond_feature]
        agree = (values > self.lower) & (values <= self.upper)
        mask = np.add.reduceat(agree * self.weight, self.leaf_start, axis=0)  # (leaves, n)
        phi = self.table[self.base_by_feature + mask[self.leaf_by_feature] * self.stride_by_feature]
        out[:, self.features_used] = np.add.reduceat(phi, self.feature_start, axis=0).T
        return out


def _leaves(root: dict[str, Any]) -> list[tuple[_Leaf, float]] | None:
    """Every leaf of a dumped tree with its training-row count; None at a split kind this does not cover."""
    out: list[tuple[_Leaf, float]] = []
    stack: list[tuple[dict[str, Any], list[tuple[int, bool, float, float]]]] = [(root, [])]
    while stack:
        node, path = stack.pop()
        if "leaf_value" in node:
            out.append((_leaf(float(node["leaf_value"]), path), float(node.get("leaf_count", 0))))
            continue
        if node.get("decision_type") != "<=" or node.get("missing_type") not in ("None", None):
            return None
        feature, threshold = int(node["split_feature"]), float(node["threshold"])
        total = float(node["internal_count"])
        for child, left in ((node["left_child"], True), (node["right_child"], False)):
            count = float(child.get("internal_count", child.get("leaf_count", 0)))
            stack.append((child, [*path, (feature, left, threshold, count / total if total else 0.0)]))
    return out


def _leaf(value: float, path: list[tuple[int, bool, float, float]]) -> _Leaf:
    """A leaf's distinct path features with their agreement interval and kept share."""
    bounds: dict[int, list[float]] = {}
    for feature, left, threshold, share in path:
        lower, upper, keep = bounds.setdefault(feature, [-math.inf, math.inf, 1.0])
        bounds[feature] = [lower, min(upper, threshold), keep * share] if left else \
            [max(lower, threshold), upper, keep * share]
    feats = tuple(bounds)
    return _Leaf(value, feats, tuple(bounds[f][0] for f in feats), tuple(bounds[f][1] for f in feats),
                 tuple(bounds[f][2] for f in feats))


def _leaf_table(leaf: _Leaf) -> np.ndarray:
    """Shapley values (2**d, d) of the leaf's game for every agreement mask (bit j: features[j] agrees):
    φ_i = v (a_i − r_i) Σ_k w_k c_k, with c_k the z**k coefficient of Π_{f≠i} (r_f + a_f z) and
    w_k = k! (d − 1 − k)! / d!."""
    d = len(leaf.features)
    agree = ((np.arange(2 ** d)[:, None] >> np.arange(d)) & 1).astype(np.float64)
    keep = np.asarray(leaf.keep)
    weights = np.array([math.factorial(k) * math.factorial(d - 1 - k) / math.factorial(d) for k in range(d)])
    table = np.empty((2 ** d, d))
    for i in range(d):
        coef = np.zeros((2 ** d, d))
        coef[:, 0] = 1.0
        for f in range(d):
            if f != i:
                coef[:, 1:] = keep[f] * coef[:, 1:] + agree[:, f:f + 1] * coef[:, :-1]
                coef[:, 0] *= keep[f]
        table[:, i] = leaf.value * (agree[:, i] - keep[i]) * (coef @ weights)
    return table

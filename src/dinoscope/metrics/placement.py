"""How well a learned map places points it never saw: fit on 90 % of the run, place the other 10 %.

Every figure is about each placed point's k nearest *fitted* points:

* kNN recall — share of its k nearest in the embedding space that are also its k nearest on the map;
* trustworthiness — Venna & Kaski's penalty for map neighbours that are far down its embedding-space ranking;
* kNN accuracy — its label predicted by the majority of its k map neighbours (labelled runs);
* agreement — share of its k map neighbours that are also its k nearest on the non-parametric (teacher) map
  fitted on all points, i.e. whether placing agrees with refitting.

The student learns the teacher's coordinates of the fitted 90 % only (taken from the all-points teacher, so no
second t-SNE is needed); the held-out points' embeddings and coordinates are never shown to it.

k-NN placement (`query.nearby`, what `dinoscope place` does by default) is scored the same way on every map:
held-out points go among the other points' coordinates on the map, and the agreement is with where the map itself
put them. Its universe is the faithfulness figures' seeded sample (every point up to `sample`), so above that the
fitted points are sparser than the run's (a figure for the method, not for one `place` on the whole run).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..errors import DinoscopeError
from ..neighbors import KNNGraph
from .faithfulness import Distance, nearest, pairwise_distances

_BLOCK_ELEMENTS = 1 << 23  # distance entries per block of placed points


def split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fitted rows, held-out rows), both sorted; at least one row held out."""
    order = np.random.default_rng(seed).permutation(n)
    held = max(1, int(round(fraction * n)))
    return np.sort(order[held:]), np.sort(order[:held])


def subgraph(graph: KNNGraph, rows: np.ndarray) -> KNNGraph:
    """The exact kNN graph of `rows` from the shared graph: each row keeps its neighbours among `rows`,
    cut to the smallest count any row keeps (those are its nearest among `rows`, in order)."""
    position = np.full(len(graph), -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    mapped = position[graph.indices[rows]]
    keep = mapped >= 0
    k = int(keep.sum(axis=1).min())
    if k < 1:
        raise DinoscopeError("the shared graph is too small to hold out points; increase --k")
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return KNNGraph(np.take_along_axis(mapped, order, axis=1),
                    np.take_along_axis(graph.distances[rows], order, axis=1), graph.metric, graph.exact)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the share of a's entries that are in b."""
    return (a[:, :, None] == b[:, None, :]).any(axis=2).mean(axis=1)


def placement_figures(X_ref: np.ndarray, Y_ref: np.ndarray, X_new: np.ndarray, Y_new: np.ndarray,
                      T_ref: np.ndarray, T_new: np.ndarray, labels_ref: Sequence | None,
                      labels_new: Sequence | None, *, k: int = 10, metric: str = "cosine",
                      map_distance: Distance = "euclidean") -> dict:
    """kNN recall, trustworthiness, kNN accuracy and teacher agreement of placed points (see the module notes)."""
    n_ref, m = len(X_ref), len(X_new)
    if not 1 <= k < n_ref / 2:
        raise DinoscopeError(f"k={k} does not fit {n_ref} fitted points; use 1 <= k < n/2")
    recall, agree, penalty, votes = [], [], 0.0, []
    block = max(1, _BLOCK_ELEMENTS // n_ref)
    for s in range(0, m, block):
        rows = slice(s, s + block)
        D_high = pairwise_distances(X_new[rows], metric, X_ref)
        on_map = nearest(pairwise_distances(Y_new[rows], map_distance, Y_ref), k, exclude_self=False)
        recall.append(_overlap(nearest(D_high, k, exclude_self=False), on_map))
        agree.append(_overlap(nearest(pairwise_distances(T_new[rows], map_distance, T_ref), k, exclude_self=False),
                              on_map))
        target = np.take_along_axis(D_high, on_map, axis=1)
        ranks = 1 + (D_high[:, None, :] < target[:, :, None]).sum(axis=2)
        penalty += float(np.clip(ranks - k, 0, None).sum())
        votes.append(on_map)
    out = {
        "knn_recall": float(np.concatenate(recall).mean()),
        "trustworthiness": 1.0 - 2.0 / (m * k * (2 * n_ref - 3 * k - 1)) * penalty,
        "agreement": float(np.concatenate(agree).mean()),
        "knn_accuracy": None,
    }
    if labels_ref is not None and labels_new is not None:
        ref = [None if lab is None else str(lab) for lab in labels_ref]
        hits = [Counter(ref[j] for j in row if ref[j] is not None).most_common(1)[0][0] == str(lab)
                for row, lab in zip(np.concatenate(votes), labels_new, strict=True)
                if lab is not None and any(ref[j] is not None for j in row)]
        out["knn_accuracy"] = float(np.mean(hits)) if hits else None
    return out


def heldout_figures(estimator, X: np.ndarray, labels: Sequence | None, graph: KNNGraph, teacher: np.ndarray, *,
                    k: int = 10, fraction: float = 0.1, seed: int = 0, metric: str = "cosine",
                    map_distance: Distance = "euclidean") -> dict:
    """Fit an unfitted learned map on (1 - fraction) of X, place the rest, and score the placing."""
    fit, held = split(len(X), fraction, seed)
    t0 = time.perf_counter()
    estimator.fit(X[fit], knn=subgraph(graph, fit), teacher=teacher[fit])
    seconds = time.perf_counter() - t0
    pick = lambda rows: None if labels is None else [labels[i] for i in rows]  # noqa: E731
    figures = placement_figures(X[fit], estimator.embedding_, X[held], estimator.transform(X[held]),
                                teacher[fit], teacher[held], pick(fit), pick(held), k=k, metric=metric,
                                map_distance=map_distance)
    return {**figures, "n_fit": len(fit), "n_placed": len(held), "fit_seconds": round(seconds, 3)}


def knn_heldout_figures(X: np.ndarray, labels: Sequence | None, Y: np.ndarray, *, k: int = 10,
                        fraction: float = 0.1, sample: int = 5000, seed: int = 0, metric: str = "cosine",
                        map_distance: Distance = "euclidean") -> dict | None:
    """k-NN placement of held-out points on a fitted map Y of X: of a seeded sample of at most `sample` points,
    `fraction` is placed among the rest (see the module notes) and scored as `placement_figures` scores; None when
    too few points stay fitted for k neighbours (fewer than 2k + 1)."""
    from ..query.nearby import place_nearby

    rows = np.arange(len(X))
    if len(X) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(len(X), sample, replace=False))
    fit, held = (rows[part] for part in split(len(rows), fraction, seed))
    if len(fit) <= 2 * k:
        return None
    t0 = time.perf_counter()
    placed = place_nearby(X[fit], {"map": Y[fit]}, X[held],
                          disks={"map"} if map_distance == "poincare" else frozenset())["map"]
    seconds = time.perf_counter() - t0
    pick = lambda part: None if labels is None else [labels[i] for i in part]  # noqa: E731
    figures = placement_figures(X[fit], Y[fit], X[held], placed, Y[fit], Y[held], pick(fit), pick(held), k=k,
                                metric=metric, map_distance=map_distance)
    return {**figures, "n_fit": len(fit), "n_placed": len(held), "seconds": round(seconds, 3)}

"""Faithfulness of a map: how well the 2-D neighbourhoods keep those of the embedding space.

All figures are exact on a seeded subsample, computed from full distance matrices so that any
map distance works (Euclidean for the flat maps, Poincaré distance for the hyperbolic one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..checks import as_points
from ..errors import DinoscopeError

Distance = str | Callable[[np.ndarray, np.ndarray], np.ndarray]
_BLOCK_ELEMENTS = 1 << 24  # comparisons per block when ranking neighbours
_ROW_BLOCK = 256  # rows per block when finding the nearest columns


def pairwise_distances(A: np.ndarray, distance: Distance = "euclidean", B: np.ndarray | None = None) -> np.ndarray:
    """The float64 distances from A's rows to B's rows (A's own when B is None): 'cosine', 'euclidean',
    'poincare' (the disk's hyperbolic distance) or a callable (A, B) -> matrix."""
    B = A if B is None else B
    if distance == "poincare":
        from ..geometry import ball

        distance = ball.pairwise_distances
    if callable(distance):
        D = np.asarray(distance(A, B), dtype=np.float64)
        if D.shape != (A.shape[0], B.shape[0]):
            raise DinoscopeError(f"the map distance returned shape {D.shape}, expected {(A.shape[0], B.shape[0])}")
        return D
    if distance not in ("cosine", "euclidean"):
        raise DinoscopeError(f"unknown distance {distance!r}; choose cosine, euclidean, poincare or pass a callable")
    from sklearn.metrics import pairwise_distances as sk_pairwise

    return sk_pairwise(np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64), metric=distance)


def nearest(D: np.ndarray, k: int, exclude_self: bool = True) -> np.ndarray:
    """Indices of each row's k nearest columns, nearest first; in a square matrix of a set against itself the
    diagonal (self) is excluded unless `exclude_self` is False (rows and columns are then different points).

    Rows are ranked in blocks on every core (numpy's argpartition releases the GIL), without copying D whole."""
    n = D.shape[0]
    out = np.empty((n, k), dtype=np.int64)

    def block(start: int) -> None:
        rows = slice(start, min(start + _ROW_BLOCK, n))
        Db = D[rows]
        if exclude_self:
            Db = Db.copy()
            r = np.arange(rows.start, rows.stop)
            Db[r - rows.start, r] = np.inf
        part = np.argpartition(Db, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(Db, part, axis=1), axis=1, kind="stable")
        out[rows] = np.take_along_axis(part, order, axis=1)

    starts = range(0, n, _ROW_BLOCK)
    if n > _ROW_BLOCK and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1)) as pool:
            list(pool.map(block, starts))
    else:
        for start in starts:
            block(start)
    return out


def ranks(D: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rank (1 = nearest, self excluded) of point idx[i, j] among all neighbours of point i under D."""
    n = D.shape[0]
    out = np.empty(idx.shape, dtype=np.int64)
    block = max(1, _BLOCK_ELEMENTS // (n * idx.shape[1]))
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        Db = D[rows].copy()
        Db[np.arange(len(rows)), rows] = np.inf
        target = np.take_along_axis(Db, idx[rows], axis=1)
        out[rows] = 1 + (Db[:, None, :] < target[:, :, None]).sum(axis=2)
    return out


def _check_k(n: int, k: int) -> None:
    if not 1 <= k < n / 2:
        raise DinoscopeError(f"k={k} does not fit {n} points; use 1 <= k < n/2")


def trustworthiness(D_high: np.ndarray, D_low: np.ndarray, k: int = 10) -> float:
    """Venna & Kaski trustworthiness: penalises map neighbours that are far apart in the embedding space."""
    return _trust(D_high, nearest(D_low, k), k)


def _trust(D_high: np.ndarray, nn_low: np.ndarray, k: int) -> float:
    """Trustworthiness from the map's k nearest neighbours `nn_low` of every point."""
    n = D_high.shape[0]
    _check_k(n, k)
    penalty = np.clip(ranks(D_high, nn_low) - k, 0, None).sum()
    return float(1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty)


def continuity(D_high: np.ndarray, D_low: np.ndarray, k: int = 10) -> float:
    """Continuity: trustworthiness with the roles swapped (embedding neighbours torn apart on the map)."""
    return trustworthiness(D_low, D_high, k)


def knn_recall(D_high: np.ndarray, D_low: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest in the embedding space that are also its k nearest on the map."""
    a, b = nearest(D_high, k), nearest(D_low, k)
    return float((a[:, :, None] == b[:, None, :]).any(axis=2).mean())


def knn_accuracy(D: np.ndarray, labels: Sequence, k: int = 10, folds: int = 5, seed: int = 0,
                 order: np.ndarray | None = None) -> float:
    """k-NN label accuracy under the distance matrix D, cross-validated over shuffled folds.

    Equals scikit-learn's KNeighborsClassifier (uniform votes, ties to the smallest class) fitted on the other folds
    (KFold(folds, shuffle=True, random_state=seed)), but ranks each row once: `order` (each row's nearest columns,
    self excluded, nearest first, as `nearest` gives) is reused when given, and only rows with fewer than k other-fold
    points among those candidates are ranked again.
    """
    from sklearn.model_selection import KFold

    y = np.asarray(labels)
    n = D.shape[0]
    if len(y) != n:
        raise DinoscopeError(f"{len(y)} labels for {n} points")
    fold = np.empty(n, dtype=np.int64)
    for f, (_, test) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(y)):
        fold[test] = f
    classes, codes = np.unique(y, return_inverse=True)
    if order is None:
        order = nearest(D, min(n - 1, 2 * k + 10))
    other = fold[order] != fold[:, None]
    k_row = np.minimum(k, n - np.bincount(fold, minlength=folds)[fold])  # training points of each row's fold
    short = np.flatnonzero(other.sum(axis=1) < k_row)  # rows whose candidates hold too few other-fold points
    take = np.argsort(~other, axis=1, kind="stable")[:, :k]  # the first k other-fold candidates, in order
    neigh = np.take_along_axis(order, take, axis=1)
    votes = np.zeros((n, len(classes)), dtype=np.int64)
    rows = np.repeat(np.arange(n), k)
    valid = np.take_along_axis(other, take, axis=1).ravel()
    np.add.at(votes, (rows[valid], codes[neigh.ravel()[valid]]), 1)
    for i in short:  # rare: rank the row among its other-fold points only
        cand = np.flatnonzero(fold != fold[i])
        best = cand[np.argsort(D[i, cand], kind="stable")[:k_row[i]]]
        votes[i] = np.bincount(codes[best], minlength=len(classes))
    return float((votes.argmax(axis=1) == codes).mean())


def _labelled(labels: Sequence) -> np.ndarray:
    """Mask of rows that carry a label (None and NaN mean unlabelled)."""
    return np.array([not (lab is None or (isinstance(lab, float) and np.isnan(lab))) for lab in labels])


@dataclass(frozen=True)
class EmbeddingSide:
    """What every map's figures compare against, computed once per run: the seeded sample, its distances and
    neighbour order in the embedding space, and (with labels) its labelled rows and their kNN accuracy there."""

    n: int
    idx: np.ndarray  # the sampled rows
    D: np.ndarray  # their pairwise distances in the embedding space
    order: np.ndarray  # each row's nearest columns of D, self excluded
    mask: np.ndarray | None  # labelled rows of the sample (None: no labels, or too few for kNN accuracy)
    names: np.ndarray | None  # their labels
    accuracy: float | None  # kNN accuracy in the embedding space: the ceiling of the maps'


def _candidates(n: int, k: int) -> int:
    """Neighbours kept per row: each point's nearest, enough for kNN accuracy's folds."""
    return min(n - 1, 2 * k + 10)


def _accuracy(D: np.ndarray, order: np.ndarray, mask: np.ndarray, names: np.ndarray, k: int, seed: int) -> float:
    """kNN accuracy over the labelled rows `mask` (the neighbour order reused when every row is labelled)."""
    if mask.all():
        return knn_accuracy(D, names, k, seed=seed, order=order)
    return knn_accuracy(D[np.ix_(mask, mask)], names, k, seed=seed)


def embedding_side(X: object, labels: Sequence | None = None, *, k: int = 10, sample: int = 5000, seed: int = 0,
                   metric: str = "cosine") -> EmbeddingSide:
    """The `EmbeddingSide` of embeddings X (and their labels) that `map_metrics` compares each map with."""
    X = as_points(X, "X")
    n = X.shape[0]
    if labels is not None and len(labels) != n:
        raise DinoscopeError(f"{len(labels)} labels for {n} points")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    D = pairwise_distances(X[idx], metric)
    order = nearest(D, _candidates(len(idx), k))
    mask = names = accuracy = None
    if labels is not None:
        y = np.asarray(labels, dtype=object)[idx]
        labelled = _labelled(y)
        if labelled.sum() >= 5 * (k + 1) and len(set(y[labelled])) > 1:
            mask, names = labelled, y[labelled].astype(str)
            accuracy = _accuracy(D, order, mask, names, k, seed)
    return EmbeddingSide(n, idx, D, order, mask, names, accuracy)


def map_metrics(X: object, Y: object, labels: Sequence | None = None, *, k: int = 10, sample: int = 5000,
                seed: int = 0, metric: str = "cosine", map_distance: Distance = "euclidean",
                side: EmbeddingSide | None = None) -> dict:
    """Trustworthiness, continuity, kNN recall (and kNN accuracy on map and embedding with labels). `side` is
    `embedding_side(X, labels, ...)` with the same settings, made once for several maps of X (made here if not)."""
    side = embedding_side(X, labels, k=k, sample=sample, seed=seed, metric=metric) if side is None else side
    Y = as_points(Y, "Y")
    if Y.shape[0] != side.n:
        raise DinoscopeError(f"the map has {Y.shape[0]} points but the embeddings {side.n}")
    D_low = pairwise_distances(Y[side.idx], map_distance)
    low_order = nearest(D_low, _candidates(len(side.idx), k))
    nn_high, nn_low = side.order[:, :k], low_order[:, :k]
    out: dict = {
        "trustworthiness": _trust(side.D, nn_low, k),
        "continuity": _trust(D_low, nn_high, k),
        "knn_recall": float((nn_high[:, :, None] == nn_low[:, None, :]).any(axis=2).mean()),
    }
    if labels is not None:
        accuracy = (None if side.mask is None
                    else _accuracy(D_low, low_order, side.mask, side.names, k, seed))
        out["knn_accuracy"], out["knn_accuracy_embedding"] = accuracy, side.accuracy
    out["n_used"] = len(side.idx)
    return out

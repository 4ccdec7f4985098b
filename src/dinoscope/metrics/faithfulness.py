"""Faithfulness of a map: how well the 2-D neighbourhoods keep those of the embedding space.

All figures are exact on a seeded subsample, computed from full distance matrices so that any
map distance works (Euclidean for the flat maps, Poincaré distance for the hyperbolic one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..checks import as_points
from ..errors import DinoscopeError

Distance = str | Callable[[np.ndarray, np.ndarray], np.ndarray]
_BLOCK_ELEMENTS = 1 << 24  # comparisons per block when ranking neighbours


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
    diagonal (self) is excluded unless `exclude_self` is False (rows and columns are then different points)."""
    if exclude_self:
        D = D.copy()
        np.fill_diagonal(D, np.inf)
    part = np.argpartition(D, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(D, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


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
    n = D_high.shape[0]
    _check_k(n, k)
    penalty = np.clip(ranks(D_high, nearest(D_low, k)) - k, 0, None).sum()
    return float(1.0 - 2.0 / (n * k * (2 * n - 3 * k - 1)) * penalty)


def continuity(D_high: np.ndarray, D_low: np.ndarray, k: int = 10) -> float:
    """Continuity: trustworthiness with the roles swapped (embedding neighbours torn apart on the map)."""
    return trustworthiness(D_low, D_high, k)


def knn_recall(D_high: np.ndarray, D_low: np.ndarray, k: int = 10) -> float:
    """Mean share of each point's k nearest in the embedding space that are also its k nearest on the map."""
    a, b = nearest(D_high, k), nearest(D_low, k)
    return float((a[:, :, None] == b[:, None, :]).any(axis=2).mean())


def knn_accuracy(D: np.ndarray, labels: Sequence, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """k-NN label accuracy under the distance matrix D, cross-validated over shuffled folds."""
    from sklearn.model_selection import KFold
    from sklearn.neighbors import KNeighborsClassifier

    y = np.asarray(labels)
    if len(y) != D.shape[0]:
        raise DinoscopeError(f"{len(y)} labels for {D.shape[0]} points")
    correct = 0
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(y):
        clf = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="precomputed")
        clf.fit(D[np.ix_(train, train)], y[train])
        correct += int((clf.predict(D[np.ix_(test, train)]) == y[test]).sum())
    return correct / len(y)


def _labelled(labels: Sequence) -> np.ndarray:
    """Mask of rows that carry a label (None and NaN mean unlabelled)."""
    return np.array([not (lab is None or (isinstance(lab, float) and np.isnan(lab))) for lab in labels])


def map_metrics(X: object, Y: object, labels: Sequence | None = None, *, k: int = 10, sample: int = 5000,
                seed: int = 0, metric: str = "cosine", map_distance: Distance = "euclidean") -> dict:
    """Trustworthiness, continuity, kNN recall (and kNN accuracy on map and embedding with labels)."""
    X, Y = as_points(X, "X"), as_points(Y, "Y")
    n = X.shape[0]
    if Y.shape[0] != n:
        raise DinoscopeError(f"the map has {Y.shape[0]} points but the embeddings {n}")
    if labels is not None and len(labels) != n:
        raise DinoscopeError(f"{len(labels)} labels for {n} points")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    D_high = pairwise_distances(X[idx], metric)
    D_low = pairwise_distances(Y[idx], map_distance)
    out: dict = {
        "trustworthiness": trustworthiness(D_high, D_low, k),
        "continuity": continuity(D_high, D_low, k),
        "knn_recall": knn_recall(D_high, D_low, k),
    }
    if labels is not None:
        y = np.asarray(labels, dtype=object)[idx]
        mask = _labelled(y)
        enough = mask.sum() >= 5 * (k + 1) and len(set(y[mask])) > 1
        sub = np.ix_(mask, mask)
        out["knn_accuracy"] = knn_accuracy(D_low[sub], y[mask].astype(str), k, seed=seed) if enough else None
        out["knn_accuracy_embedding"] = (
            knn_accuracy(D_high[sub], y[mask].astype(str), k, seed=seed) if enough else None
        )
    out["n_used"] = len(idx)
    return out

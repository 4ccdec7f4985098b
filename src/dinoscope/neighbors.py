"""The shared kNN graph: computed once on the embeddings, reused by maps, metrics and analyses.

Exact search (blocked matrix products, memory-bounded) up to `exact_max` points, approximate
search (pynndescent) above. Distances are cosine distances (1 - cosine similarity) or Euclidean
distances, ascending, with the query point itself left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .checks import as_points
from .errors import DinoscopeError
from .rundir.directory import atomic_path

Metric = Literal["cosine", "euclidean"]
METRICS = ("cosine", "euclidean")
_BLOCK_ELEMENTS = 1 << 24  # distance entries per block: bounds memory at ~200 MB whatever n is


@dataclass
class KNNGraph:
    """The k nearest neighbours of every point, self excluded, nearest first."""

    indices: np.ndarray  # (n, k) int64
    distances: np.ndarray  # (n, k) float32, ascending per row
    metric: Metric
    exact: bool

    @property
    def k(self) -> int:
        """Neighbours per point."""
        return self.indices.shape[1]

    def __len__(self) -> int:
        return self.indices.shape[0]

    def head(self, k: int) -> KNNGraph:
        """The graph of the first `k` neighbours (maps use fewer than the shared graph holds)."""
        if not 1 <= k <= self.k:
            raise DinoscopeError(f"need 1..{self.k} neighbours from the shared graph, asked for {k}")
        return KNNGraph(self.indices[:, :k], self.distances[:, :k], self.metric, self.exact)


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise DinoscopeError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


def _prepare(X: np.ndarray, metric: Metric) -> np.ndarray:
    """float32 rows, L2-normalised for cosine so that distance = 1 - dot product."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X / np.maximum(norms, np.finfo(np.float32).tiny)  # zero rows stay zero: distance 1 to all
    return X


def _block_distances(Q: np.ndarray, R: np.ndarray, r_sq: np.ndarray | None, metric: Metric) -> np.ndarray:
    """Distances from the prepared rows Q to the prepared rows R."""
    S = Q @ R.T
    if metric == "cosine":
        return np.maximum(1.0 - S, 0.0, out=S)
    q_sq = np.einsum("ij,ij->i", Q, Q)
    D = np.maximum(q_sq[:, None] + r_sq[None, :] - 2.0 * S, 0.0)
    return np.sqrt(D, out=D)


def exact_neighbors(reference: np.ndarray, queries: np.ndarray, k: int, metric: Metric = "cosine",
           exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest `reference` rows of every query row, blockwise; `exclude_self` when queries is reference."""
    _check_metric(metric)
    R, Q = _prepare(reference, metric), _prepare(queries, metric)
    n_ref = R.shape[0]
    if not 1 <= k <= n_ref - int(exclude_self):
        raise DinoscopeError(f"cannot find {k} neighbours among {n_ref} reference points")
    r_sq = np.einsum("ij,ij->i", R, R) if metric == "euclidean" else None
    block = max(1, _BLOCK_ELEMENTS // n_ref)
    indices = np.empty((Q.shape[0], k), dtype=np.int64)
    distances = np.empty((Q.shape[0], k), dtype=np.float32)
    for start in range(0, Q.shape[0], block):
        D = _block_distances(Q[start:start + block], R, r_sq, metric)
        rows = np.arange(D.shape[0])
        if exclude_self:
            D[rows, start + rows] = np.inf  # by position, so exact duplicates of a point are still found
        part = np.argpartition(D, k - 1, axis=1)[:, :k] if k < n_ref else np.argsort(D, axis=1)[:, :k]
        part_d = np.take_along_axis(D, part, axis=1)
        order = np.argsort(part_d, axis=1, kind="stable")
        indices[start:start + block] = np.take_along_axis(part, order, axis=1)
        distances[start:start + block] = np.take_along_axis(part_d, order, axis=1)
    return indices, distances


def _drop_self(indices: np.ndarray, distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index from a (n, k+1) result; rows where self is missing lose their last column."""
    n = indices.shape[0]
    is_self = indices == np.arange(n)[:, None]
    is_self &= np.cumsum(is_self, axis=1) == 1
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    return indices[keep].reshape(n, k), distances[keep].reshape(n, k)


def _approximate(X: np.ndarray, k: int, metric: Metric, seed: int, n_jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """pynndescent's graph with k+1 neighbours, then self removed."""
    from pynndescent import NNDescent

    index = NNDescent(_prepare(X, metric), metric=metric, n_neighbors=k + 1, random_state=seed,
                      n_jobs=n_jobs, low_memory=True, compressed=True)
    indices, distances = index.neighbor_graph
    if (indices < 0).any():
        raise DinoscopeError("approximate search left points without neighbours; use method='exact'")
    return _drop_self(indices.astype(np.int64), distances.astype(np.float32), k)


def knn_graph(X: object, k: int = 90, metric: Metric = "cosine", method: str = "auto",
              exact_max: int = 20000, seed: int = 0, n_jobs: int = -1) -> KNNGraph:
    """The kNN graph of X (self excluded): exact for n <= exact_max under 'auto', pynndescent above."""
    X = as_points(X)
    _check_metric(metric)
    if method not in ("auto", "exact", "approx"):
        raise DinoscopeError(f"unknown kNN method {method!r}; choose auto, exact or approx")
    if k < 1:
        raise DinoscopeError(f"k must be at least 1, got {k}")
    n = X.shape[0]
    k = min(k, n - 1)
    exact = method == "exact" or (method == "auto" and n <= exact_max)
    if exact:
        indices, distances = exact_neighbors(X, X, k, metric, exclude_self=True)
    else:
        indices, distances = _approximate(X, k, metric, seed, n_jobs)
    return KNNGraph(indices, distances, metric, exact)


def umap_knn(graph: KNNGraph, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """umap-learn's convention for a graph: n_neighbors columns, the point itself first at distance 0."""
    if graph.k < n_neighbors - 1:
        raise DinoscopeError(f"UMAP with n_neighbors={n_neighbors} needs a shared graph of at least "
                             f"{n_neighbors - 1} neighbours, it has {graph.k}")
    head = graph.head(n_neighbors - 1)
    n = len(graph)
    indices = np.hstack([np.arange(n, dtype=np.int64)[:, None], head.indices]).astype(np.int32)
    distances = np.hstack([np.zeros((n, 1), np.float32), head.distances]).astype(np.float32)
    return indices, distances


def save_graph(graph: KNNGraph, path: str | os.PathLike) -> None:
    """Write the graph to an .npz file atomically (indices, distances, metric, exact)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, indices=graph.indices, distances=graph.distances,
                 metric=np.array(graph.metric), exact=np.array(graph.exact))


def load_graph(path: str | os.PathLike) -> KNNGraph:
    """Read a graph written by `save_graph`."""
    try:
        with np.load(path) as data:
            return KNNGraph(data["indices"].astype(np.int64), data["distances"].astype(np.float32),
                            str(data["metric"]), bool(data["exact"]))
    except (OSError, KeyError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DinoscopeError(f"cannot read kNN graph {path} ({reason}); rerun the neighbors stage") from None

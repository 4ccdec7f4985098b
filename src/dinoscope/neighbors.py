"""The shared kNN graph: computed once on the embeddings, reused by maps, metrics and analyses.

Both searches are faiss's: exact (its blocked BLAS brute force) up to `exact_max` points, an HNSW graph index
above, whose recall against exact search is measured on a sample when it is built. Distances are cosine
distances (1 - cosine similarity) or Euclidean distances, ascending, with the query point itself left out.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .checks import as_points
from .errors import DinoscopeError
from .rundir.directory import atomic_path

Metric = Literal["cosine", "euclidean"]
METRICS = ("cosine", "euclidean")
HNSW_M = 32  # links per node: recall 0.9995 at 90-NN on Fashion-MNIST 70k (M=16: 0.994), benchmarks/graph.py
HNSW_EF_CONSTRUCTION = 40
# `locality_order`'s cells: ~1,000 points each (1.5 MB of 384-D vectors, about a core's L2 cache), at most 1,024 so
# that assigning the points costs a fixed number of products each (4 s at 1M x 384-D). 256 cells at 1M: search 49 s
# against 41 (scratch, AMD VM).
LOCALITY_SIZE = 1000
LOCALITY_CELLS = 1024
RECALL_SAMPLE = 1000  # points whose approximate neighbours are checked against exact search


@dataclass
class KNNGraph:
    """The k nearest neighbours of every point, self excluded, nearest first."""

    indices: np.ndarray  # (n, k) int64
    distances: np.ndarray  # (n, k) float32, ascending per row
    metric: Metric
    exact: bool
    recall: float = 1.0  # share of the exact k neighbours found, measured on a sample when approximate

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
        return KNNGraph(self.indices[:, :k], self.distances[:, :k], self.metric, self.exact, self.recall)


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


def _faiss_metric(metric: Metric) -> int:
    import faiss

    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def _as_distances(scores: np.ndarray, metric: Metric) -> np.ndarray:
    """faiss's scores (inner products, or squared L2) as our distances, float32 and never negative."""
    if metric == "cosine":
        return np.maximum(1.0 - scores, 0.0).astype(np.float32)
    return np.sqrt(np.maximum(scores, 0.0)).astype(np.float32)


def exact_neighbors(reference: np.ndarray, queries: np.ndarray, k: int, metric: Metric = "cosine",
                    exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest `reference` rows of every query row (faiss's blocked brute force); `exclude_self` when
    queries is reference, by position, so exact duplicates of a point are still found."""
    import faiss

    _check_metric(metric)
    R, Q = _prepare(reference, metric), _prepare(queries, metric)
    n_ref = R.shape[0]
    if not 1 <= k <= n_ref - int(exclude_self):
        raise DinoscopeError(f"cannot find {k} neighbours among {n_ref} reference points")
    scores, indices = faiss.knn(Q, R, k + int(exclude_self), metric=_faiss_metric(metric))
    distances = _as_distances(scores, metric)
    if exclude_self:
        return drop_self(indices.astype(np.int64), distances, k)
    return indices.astype(np.int64), distances


def drop_self(indices: np.ndarray, distances: np.ndarray, k: int,
               own: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (`own`, by default the row number) from a (n, k+1) result; rows where it is
    missing lose their last column."""
    n = indices.shape[0]
    is_self = indices == (np.arange(n) if own is None else own)[:, None]
    is_self &= np.cumsum(is_self, axis=1) == 1
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    return indices[keep].reshape(n, k), distances[keep].reshape(n, k)


def hnsw_index(vectors: np.ndarray, metric: Metric = "cosine", ef_search: int = 128, *, prepared: bool = False):
    """A faiss HNSW index over `vectors` (prepared as `_prepare` does, unless they already are), ready to search
    with `ef_search`."""
    import faiss

    P = vectors if prepared else _prepare(vectors, metric)
    index = faiss.IndexHNSWFlat(P.shape[1], HNSW_M, _faiss_metric(metric))
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(P)
    index.hnsw.efSearch = ef_search
    return index


def hnsw_search(index, queries: np.ndarray, k: int, metric: Metric, *,
                prepared: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest indexed vectors of each query row by the HNSW index; (indices, distances)."""
    index.hnsw.efSearch = max(index.hnsw.efSearch, k)
    scores, indices = index.search(queries if prepared else _prepare(queries, metric), k)
    if (indices < 0).any():
        raise DinoscopeError("approximate search left points without neighbours; use method='exact'")
    return indices.astype(np.int64), _as_distances(scores, metric)


def graph_recall(X: np.ndarray, indices: np.ndarray, metric: Metric, sample: int = RECALL_SAMPLE,
                 seed: int = 0) -> float:
    """Mean share of each sampled point's exact neighbours that `indices` holds (1 = the exact graph)."""
    rows = np.random.default_rng(seed).choice(len(X), min(sample, len(X)), replace=False)
    k = indices.shape[1]
    found, distances = exact_neighbors(X, X[rows], k + 1, metric)
    truth, _ = drop_self(found, distances, k, own=rows)
    hits = [len(np.intersect1d(t, indices[r])) for t, r in zip(truth, rows, strict=True)]
    return float(np.mean(hits)) / k


def locality_order(P: np.ndarray, metric: Metric, seed: int = 0) -> np.ndarray:
    """The rows of prepared vectors `P` grouped by coarse k-means cell (spherical for cosine; a cell for every
    LOCALITY_SIZE points, at most LOCALITY_CELLS): an order that keeps each region's vectors together in memory."""
    import faiss

    n_cells = min(LOCALITY_CELLS, len(P) // LOCALITY_SIZE)
    if n_cells < 2:
        return np.arange(len(P))
    kmeans = faiss.Kmeans(P.shape[1], n_cells, niter=10, spherical=metric == "cosine", seed=seed,
                          max_points_per_centroid=64)  # trained on a sample of 64 points a cell
    kmeans.train(P)
    _, cell = kmeans.index.search(P, 1)
    return np.argsort(cell[:, 0], kind="stable")


def _approximate(X: np.ndarray, k: int, metric: Metric, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss HNSW's graph with k+1 neighbours, then self removed. The points are indexed and searched in
    `locality_order`: each thread's next query then walks the part of the graph its last one did, in memory that
    holds that region's vectors together, and the search takes 0.45x its time in the points' own order (250k and
    1M x 384-D: 8.2 s against 17.6, 41 s against 96; recall unchanged), for a coarse k-means (0.5 s, 7 s)."""
    P = _prepare(X, metric)
    order = locality_order(P, metric, seed)
    P = P[order]
    index = hnsw_index(P, metric, prepared=True)
    indices, distances = hnsw_search(index, P, k + 1, metric, prepared=True)
    del index, P
    indices, distances = drop_self(indices, distances, k)
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    return order[indices[back]], distances[back]


def _threads(n_jobs: int) -> int:
    """faiss's OpenMP threads for `n_jobs` (-1: every core)."""
    return (os.cpu_count() or 1) if n_jobs < 1 else n_jobs


def knn_graph(X: object, k: int = 90, metric: Metric = "cosine", method: str = "auto",
              exact_max: int = 20000, seed: int = 0, n_jobs: int = -1) -> KNNGraph:
    """The kNN graph of X (self excluded): exact for n <= exact_max under 'auto', faiss HNSW above (its recall
    measured on a seeded sample of points)."""
    import faiss

    X = as_points(X)
    _check_metric(metric)
    if method not in ("auto", "exact", "approx"):
        raise DinoscopeError(f"unknown kNN method {method!r}; choose auto, exact or approx")
    if k < 1:
        raise DinoscopeError(f"k must be at least 1, got {k}")
    n = X.shape[0]
    k = min(k, n - 1)
    exact = method == "exact" or (method == "auto" and n <= exact_max)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(_threads(n_jobs))
    try:
        if exact:
            return KNNGraph(*exact_neighbors(X, X, k, metric, exclude_self=True), metric, True)
        indices, distances = _approximate(X, k, metric, seed)
        return KNNGraph(indices, distances, metric, False, graph_recall(X, indices, metric, seed=seed))
    finally:
        faiss.omp_set_num_threads(threads)


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
    """Write the graph to an .npz file atomically (indices, distances, metric, exact, recall)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, indices=graph.indices, distances=graph.distances,
                 metric=np.array(graph.metric), exact=np.array(graph.exact), recall=np.array(graph.recall))


def load_graph(path: str | os.PathLike) -> KNNGraph:
    """Read a graph written by `save_graph`."""
    try:
        with np.load(path) as data:
            recall = float(data["recall"]) if "recall" in data.files else 1.0 if bool(data["exact"]) else np.nan
            return KNNGraph(data["indices"].astype(np.int64), data["distances"].astype(np.float32),
                            str(data["metric"]), bool(data["exact"]), recall)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DinoscopeError(f"cannot read kNN graph {path} ({reason}); rerun the neighbors stage") from None

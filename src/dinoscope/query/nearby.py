"""k-NN placement: a new point goes where its nearest fitted points lie on each map.

Its k nearest fitted embeddings (cosine) are weighted by UMAP's membership strengths (the nearest one 1, the
others decaying at a per-point scale, the one umap-learn's `smooth_knn_dist` finds) raised to the power SHARPNESS
(the same kernel at a quarter of the scale), and the new point is put at their weighted mean: the plain mean on a
flat map, the Einstein midpoint (the normalised weighted centroid on the hyperboloid) on a Poincaré disk. It works
for every map of a run, fitted or learned, because it needs only the run's embeddings and coordinates; it is
how umap-learn's and openTSNE's `transform` start before they optimise.

The nearest fitted points are found by `Cells`, an inverted index of the fitted embeddings: spherical k-means
cells (faiss; 2√n of them at scale), each listing the √n fitted points nearest its centroid, so that a point is on
two lists on average; a new point is scored exactly (cosine) against its own cell's list only, one matrix product
per cell. Building it costs a k-means of the fitted set (benchmarks/place.py reports it); any search can feed
`place_among` instead (a run's similarity index).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..errors import DinoscopeError
from ..geometry import TINY, ball

K = 10
# Held-out 10-NN accuracy against umap-learn's and openTSNE's transform (benchmarks/place.py, digits and
# Fashion-MNIST 20k): UMAP's own weights (power 1) put points 0.4-1.5 points below the peers, between clusters;
# power 4 lands them where the peers do (UMAP +0.0/+0.1, t-SNE +7/+0.3 points). Chosen on those two sets.
SHARPNESS = 4
# Fewest fitted points a new point is scored against. Accuracy needs recall of the 10 nearest, and digits (1,200
# fitted) needs more of it than Fashion-MNIST 20k: with 35 candidates (recall 0.71) digits' UMAP lands 1.8 points
# under umap-learn, with 100 (0.94) level with it; Fashion-MNIST is within 0.5 points even at recall 0.62.
CANDIDATES = 100
# How many cells' lists hold a fitted point, on average (cells x list length / n). On Fashion-MNIST 20k (benchmarks/
# place.py) √n cells of √n points (coverage 1) find 0.68 of the 10 nearest and put t-SNE's new points 1.0 point
# under exact search (0.7838 / 0.7939); twice the cells (coverage 2) find 0.79, 0.7946, at the same points/s.
# Digits' lists of CANDIDATES already cover it 2.9 times. At 250k (sampled fitting) the build takes 18 s, not 6
# (scratch, 384-D clustered vectors; BENCHMARKS.md).
COVERAGE = 2
NEWTON_STEPS = 5  # from below the root, monotone: within 5e-5 of umap-learn's scales, 2e-5 on Fashion-MNIST
SCORES_MAX = 2**22  # entries of the score table searched at once (16 MB): larger query sets go in blocks
PART_MIN = 2048  # fewest queries worth a thread of their own (a thread costs ~0.1 ms; a query ~2 us)
MIN_SCALE = 1e-3  # umap-learn's MIN_K_DIST_SCALE: the floor of a scale, relative to the row's mean distance


def _unit(X: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero), so that a dot product is a cosine."""
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def _scales(beyond: np.ndarray) -> np.ndarray:
    """(m,) UMAP's per-point scale σ from (m, k) distances past the nearest (in any order): the σ where the k - 1
    others sum to Σ exp(-b/σ) = log2(k), by Newton's method on 1/σ started below the root by Jensen's inequality
    (what umap-learn's `smooth_knn_dist` solves by bisection, in a sixth of its time)."""
    k = beyond.shape[1]
    target = math.log2(k) + 1.0  # the nearest one adds exp(0) = 1 to the sum over the row
    floor = MIN_SCALE * (1.0 + beyond.mean(axis=1))  # umap-learn's floor on the distances it is given (1 + b)
    inverse = math.log((k - 1) / (target - 1.0)) * (k - 1) / np.maximum(beyond.sum(axis=1), TINY)
    for _ in range(NEWTON_STEPS):
        e = np.exp(beyond * -inverse[:, None])
        step = (e.sum(axis=1) - target) / np.maximum(np.einsum("mk,mk->m", beyond, e), TINY)
        inverse = np.minimum(inverse + step, 1.0 / floor)
    return np.maximum(1.0 / np.maximum(inverse, TINY), floor)  # k = 2: no finite scale, every weight 1


def membership(distances: np.ndarray) -> np.ndarray:
    """(m, k) float32 weights of each new point's k neighbours from their distances (any order): UMAP's,
    sharpened."""
    d = np.asarray(distances, dtype=np.float32)
    if d.shape[1] == 1:
        return np.ones_like(d)
    # distances past the nearest one: UMAP's rho is the nearest *non-zero* distance, so an exact copy (distance 0)
    # would jump it to the next neighbour; measured from the nearest, every row's nearest is its rho, copy or not
    beyond = d - d.min(axis=1, keepdims=True)
    return np.exp(-SHARPNESS * beyond / _scales(beyond)[:, None])


def weighted_mean(coords: np.ndarray, weights: np.ndarray, disk: bool) -> np.ndarray:
    """(m, 2) weighted means of (m, k, 2) neighbour coordinates: Euclidean, or the Einstein midpoint on the disk."""
    w = weights / weights.sum(axis=1, keepdims=True)
    if not disk:
        return np.einsum("mk,mkc->mc", w, coords).astype(np.float32)
    x = ball.to_hyperboloid(coords.astype(np.float64))  # (m, k, 3), time first
    s = np.einsum("mk,mkc->mc", w.astype(np.float64), x)
    s /= np.sqrt(np.maximum(s[:, :1] ** 2 - (s[:, 1:] ** 2).sum(axis=1, keepdims=True), TINY))
    return ball.hyperboloid_to_disk(s).astype(np.float32)


@dataclass(frozen=True)
class Cells:
    """An inverted index of unit fitted embeddings: k-means cells, each listing the fitted points nearest its
    centroid (its own members and those just across its border)."""

    centroids: np.ndarray  # (c, d) float32, unit rows
    members: np.ndarray  # (c, L) int64: the L fitted points nearest each centroid
    vectors: np.ndarray  # (c, d, L) float32: their unit embeddings, transposed for one matrix product per cell


def cells(reference: np.ndarray, seed: int = 0) -> Cells:
    """The `Cells` index of fitted embeddings: spherical k-means cells listing max(CANDIDATES, √n) points each,
    at least √n of them and enough for COVERAGE lists per point (one cell of every point when that is all of
    them: exact search)."""
    import faiss

    R = _unit(reference)
    n, dim = R.shape
    size = min(n, max(CANDIDATES, math.ceil(math.sqrt(n))))
    n_cells = max(1, round(math.sqrt(n)), round(COVERAGE * n / size))
    if size == n:
        n_cells = 1
    if n_cells == 1:
        members = np.arange(n, dtype=np.int64)[None]
        centroids = np.zeros((1, dim), np.float32)
    else:
        kmeans = faiss.Kmeans(dim, n_cells, niter=10, spherical=True, seed=seed, min_points_per_centroid=1)
        kmeans.train(R)
        centroids = kmeans.centroids
        _, members = faiss.knn(centroids, R, size, metric=faiss.METRIC_INNER_PRODUCT)
        members = members.astype(np.int64)
    return Cells(centroids, members, np.ascontiguousarray(R[members].transpose(0, 2, 1)))


@cache
def _blas():
    """threadpoolctl's handle on the BLAS numpy runs on, found once (scikit-learn's dependency)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _largest(scores: np.ndarray, k: int) -> np.ndarray:
    """(m, k) flat positions in `scores` of each row's k largest, in column order: the k-th largest by a partition
    of the values and a mask, three times as fast as an argpartition; rows where a tie at the k-th makes the mask
    hold more (copies among the fitted points) take theirs from an argpartition of those rows alone."""
    keep = scores >= np.partition(scores, -k, axis=1)[:, -k, None]
    if np.count_nonzero(keep) != keep.shape[0] * k:  # every row has at least k, so equality means exactly k each
        tied = np.flatnonzero(np.count_nonzero(keep, axis=1) > k)
        keep[tied] = False
        keep[tied[:, None], np.argpartition(scores[tied], -k, axis=1)[:, -k:]] = True
    return np.flatnonzero(keep).reshape(-1, k)


def search_cells(index: Cells, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest fitted points of each query among its cell's list, and their cosine distances, each row in
    no particular order (`membership` needs none; sorting would cost a tenth of the search).

    Queries are sorted by cell so that each cell costs one matrix product into one score table, on one BLAS
    thread (the products are small: on a busy machine a second thread makes each wait for it, 2-8x slower in
    benchmarks/place.py); the table is searched for the k largest at once, SCORES_MAX entries at a time."""
    size = index.members.shape[1]
    if not 1 <= k <= size:
        raise DinoscopeError(f"cannot find {k} neighbours among {size} candidates")
    block = max(1, SCORES_MAX // size)
    if len(queries) > block:
        parts = [search_cells(index, queries[i:i + block], k) for i in range(0, len(queries), block)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    Q = _unit(queries)
    with _blas().limit(limits=1, user_api="blas"):
        cell = np.argmax(Q @ index.centroids.T, axis=1)
        order = np.argsort(cell, kind="stable")
        cell, Q = cell[order], Q[order]
        bounds = np.append(np.flatnonzero(np.diff(cell, prepend=-1)), len(Q))
        scores = np.empty((len(Q), size), np.float32)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            np.matmul(Q[a:b], index.vectors[cell[a]], out=scores[a:b])
    top = _largest(scores, k)
    indices, distances = np.empty((len(Q), k), np.int64), np.empty((len(Q), k), np.float32)
    indices[order] = index.members[cell[:, None], top % size]
    distances[order] = np.maximum(1.0 - scores.ravel()[top], 0.0)
    return indices, distances


def check_maps(maps: dict[str, np.ndarray], n: int) -> None:
    """Refuse maps that do not hold one point per fitted embedding."""
    for name, xy in maps.items():
        if len(xy) != n:
            raise DinoscopeError(f"the {name} map has {len(xy)} points but there are {n} fitted embeddings")


def place_among(indices: np.ndarray, distances: np.ndarray, maps: dict[str, np.ndarray], *,
                disks: set[str] | frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Each map's (m, 2) coordinates of new points from their (m, k) nearest fitted points and cosine distances,
    in any order (from any search: `search_cells`, exact, or a run's similarity index)."""
    weights = membership(distances)
    return {name: weighted_mean(xy[indices], weights, name in disks) for name, xy in maps.items()}


def place_nearby(reference: np.ndarray, maps: dict[str, np.ndarray], vectors: np.ndarray, *,
                 disks: set[str] | frozenset[str] = frozenset(), k: int = K,
                 index: Cells | None = None) -> dict[str, np.ndarray]:
    """Each map's (m, 2) coordinates of new `vectors`, from the fitted `reference` embeddings and their `maps`
    coordinates (name → (n, 2)), their neighbours found by `index` (built here when not given: `cells`); maps
    named in `disks` are Poincaré disks."""
    check_maps(maps, len(reference))
    index = cells(reference) if index is None else index
    k = min(k, len(reference))

    def place(part: np.ndarray) -> dict[str, np.ndarray]:
        return place_among(*search_cells(index, part, k), maps, disks=disks)

    workers = min(os.cpu_count() or 1, len(vectors) // PART_MIN)
    if workers <= 1:
        return place(vectors)
    # one part per core, each searched and placed on its own thread (numpy leaves the GIL for the work); the BLAS
    # limit is set once here, before the threads, because threadpoolctl's limits are process-wide
    with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers, "dinoscope-place") as pool:
        placed = list(pool.map(place, np.array_split(vectors, workers)))
    return {name: np.concatenate([p[name] for p in placed]) for name in maps}

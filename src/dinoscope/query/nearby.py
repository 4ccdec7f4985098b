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
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..errors import DinoscopeError
from ..geometry import TINY, ball
from ..jit import compiled
from ..rundir.directory import atomic_path

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
    """(m,) UMAP's per-point scale σ from (k, m) distances past the nearest (a column per point, in any order): the
    σ where the k - 1 others sum to Σ exp(-b/σ) = log2(k), by Newton's method on 1/σ started below the root by
    Jensen's inequality (what umap-learn's `smooth_knn_dist` solves by bisection, in a sixth of its time). A column
    per point makes each sum over the k neighbours k vector adds instead of m loops of k: twice as fast."""
    k = beyond.shape[0]
    target = math.log2(k) + 1.0  # the nearest one adds exp(0) = 1 to the sum over the row
    total = beyond.sum(axis=0)
    floor = MIN_SCALE * (1.0 + total / k)  # umap-learn's floor on the distances it is given (1 + b)
    inverse = math.log((k - 1) / (target - 1.0)) * (k - 1) / np.maximum(total, TINY)
    e, be = np.empty_like(beyond), np.empty_like(beyond)
    for _ in range(NEWTON_STEPS):
        np.exp(np.multiply(beyond, -inverse, out=e), out=e)
        step = (e.sum(axis=0) - target) / np.maximum(np.multiply(beyond, e, out=be).sum(axis=0), TINY)
        inverse = np.minimum(inverse + step, 1.0 / floor)
    return np.maximum(1.0 / np.maximum(inverse, TINY), floor)  # k = 2: no finite scale, every weight 1


def membership(distances: np.ndarray) -> np.ndarray:
    """(m, k) float32 weights of each new point's k neighbours from their distances (any order): UMAP's,
    sharpened (computed a column per point, see `_scales`, and handed back as a transposed view)."""
    d = np.ascontiguousarray(np.asarray(distances, dtype=np.float32).T)
    if len(d) == 1:
        return np.ones_like(d).T
    # distances past the nearest one: UMAP's rho is the nearest *non-zero* distance, so an exact copy (distance 0)
    # would jump it to the next neighbour; measured from the nearest, every row's nearest is its rho, copy or not
    beyond = d - d.min(axis=0)
    w = np.multiply(beyond, -SHARPNESS / _scales(beyond), out=beyond)
    return np.exp(w, out=w).T


def weighted_mean(xy: np.ndarray, indices: np.ndarray, weights: np.ndarray, disk: bool) -> np.ndarray:
    """(m, 2) weighted means of the map points `xy[indices]` ((m, k) indices and weights): Euclidean, or the
    Einstein midpoint on the disk. The flat mean runs a column per point (k vector operations, as in `_scales`)."""
    if not disk:
        w = np.ascontiguousarray(weights.T, dtype=np.float32)
        rows = np.ascontiguousarray(indices.T)
        total = w.sum(axis=0)
        return np.stack([np.einsum("km,km->m", w, xy[:, c][rows]) / total for c in range(xy.shape[1])],
                        axis=1).astype(np.float32)
    w = weights / weights.sum(axis=1, keepdims=True)
    x = ball.to_hyperboloid(xy[indices].astype(np.float64))  # (m, k, 3), time first
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
    return _listing(R, centroids, members)


def _listing(R: np.ndarray, centroids: np.ndarray, members: np.ndarray) -> Cells:
    """The `Cells` of unit embeddings `R` whose cells have these centroids and list these members."""
    members = members.astype(np.int64)
    return Cells(centroids, members, np.ascontiguousarray(R[members].transpose(0, 2, 1)))


def save_cells(index: Cells, path: str | os.PathLike, key: str) -> None:
    """Write the index's centroids and lists to an .npz file atomically, with the `key` of the embeddings it was
    built from (the vectors are not written: `load_cells` takes them from the embeddings)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, centroids=index.centroids, members=index.members.astype(np.int32), key=np.array(key))


def load_cells(path: str | os.PathLike, reference: np.ndarray, key: str) -> Cells | None:
    """The index `save_cells` wrote for these `reference` embeddings, or None when there is none, it was built
    from other embeddings (another `key`), or it cannot be read (the caller builds a new one)."""
    try:
        with np.load(path) as data:
            centroids, members, found = data["centroids"], data["members"], str(data["key"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    if found != key or centroids.shape[1:] != reference.shape[1:] or members.size and members.max() >= len(reference):
        return None
    return _listing(_unit(reference), centroids, members)


@cache
def _blas():
    """threadpoolctl's handle on the BLAS libraries numpy and the kernels run on, found once (scikit-learn's
    dependency). The kernels' `np.dot` calls scipy's BLAS, which is loaded here so that the handle holds it too."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread for a while; free where it is on one already (setting and restoring costs ~25 us, a
    twentieth of placing digits' 597 points, and the threads of `place_nearby` have it set already)."""
    blas = _blas()
    if all(lib.num_threads == 1 for lib in blas.lib_controllers):
        yield
        return
    with blas.limit(limits=1):
        yield


def _keys(raw: np.ndarray, bits: int) -> np.ndarray:
    """(m, w) int32 keys that order as the float32 scores whose bits are `raw` do (a negative float orders
    backwards as an integer: its other bits are flipped), the lowest `bits` of each replaced by its column."""
    keys = np.empty(raw.shape, np.int32)
    column = np.int32((1 << bits) - 1)
    for i in range(raw.shape[0]):
        for j in range(raw.shape[1]):
            r = raw[i, j]
            keys[i, j] = ((((r >> 31) & np.int32(0x7FFFFFFF)) ^ r) & ~column) | np.int32(j)
    return keys


def _top_of(keys: np.ndarray, k: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The columns held by each row's last k keys (partitioned: the k largest, the (k + 1)-th just before them),
    and whether the least of them equals the (k + 1)-th in every bit the keys kept of the score."""
    m, width = keys.shape
    column = np.int32((1 << bits) - 1)
    top, tied = np.empty((m, k), np.intp), np.empty(m, np.bool_)
    for i in range(m):
        kth = keys[i, width - k]
        for j in range(k):
            key = keys[i, width - k + j]
            top[i, j] = key & column
            kth = min(kth, key)
        tied[i] = kth >> bits == keys[i, width - k - 1] >> bits
    return top, tied


def _largest(scores: np.ndarray, k: int) -> np.ndarray:
    """(m, k) column positions of each row's k largest float32 scores, in no order. Each score becomes an int32 key
    that orders as the float does, its lowest bits replaced by its column (`_keys`), so that one partition of the
    keys (numpy's SIMD sort) gives the k largest with their columns: half the time of a partition of the values and
    a mask. The result is exact: a row where the k-th largest and the next one agree in every bit kept (ties, and
    scores within ~2^-15 of each other relatively: copies among the fitted points; 48 of Fashion-MNIST's 10,000) is
    taken from an argpartition of its scores instead."""
    m, width = scores.shape
    if k == width:
        return np.broadcast_to(np.arange(width), (m, width)).copy()
    bits = (width - 1).bit_length()
    keys = compiled(_keys)(np.ascontiguousarray(scores, dtype=np.float32).view(np.int32), bits)
    keys.partition(width - k - 1, axis=1)  # the k + 1 largest last, the (k + 1)-th first of them
    top, tied = compiled(_top_of)(keys, k, bits)
    tied = np.flatnonzero(tied)
    if len(tied):
        top[tied] = np.argpartition(scores[tied], -k, axis=1)[:, -k:]
    return top


def _cell_scores(Q: np.ndarray, vectors: np.ndarray, ids: np.ndarray, ends: np.ndarray, scores: np.ndarray) -> None:
    """Scores of queries grouped by cell against their cell's list: one matrix product a cell (ids[r] the r-th
    group's cell, ends[r] its end), written to `scores`."""
    start = 0
    for r in range(len(ids)):
        np.dot(Q[start:ends[r]], vectors[ids[r]], scores[start:ends[r]])
        start = ends[r]


def _gather(top: np.ndarray, scores: np.ndarray, order: np.ndarray, cell: np.ndarray, members: np.ndarray,
            lengths: np.ndarray, indices: np.ndarray, distances: np.ndarray) -> None:
    """Each grouped query's fitted points (its cell's `members` at the `top` columns) and cosine distances, written
    to its own row (`order`) of `indices` and `distances`."""
    for r in range(len(order)):
        i, c = order[r], cell[r]
        for j in range(top.shape[1]):
            indices[i, j] = members[c, top[r, j]]
            distances[i, j] = max(1.0 - scores[r, top[r, j]] / lengths[i], 0.0)


def search_cells(index: Cells, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest fitted points of each query among its cell's list, and their cosine distances, each row in
    no particular order (`membership` needs none; sorting would cost a tenth of the search).

    Queries are sorted by cell so that each cell costs one matrix product into one score table, on one BLAS
    thread (the products are small: on a busy machine a second thread makes each wait for it, 2-8x slower in
    benchmarks/place.py); the table is searched for the k largest at once, SCORES_MAX entries at a time. The loop
    over cells is compiled (`_cell_scores`), so that the threads of `place_nearby` each run theirs without the GIL:
    numpy's short calls, one a cell, had handed it back and forth (two threads were 1.1-1.3x one)."""
    size = index.members.shape[1]
    if not 1 <= k <= size:
        raise DinoscopeError(f"cannot find {k} neighbours among {size} candidates")
    block = max(1, SCORES_MAX // size)
    if len(queries) > block:
        parts = [search_cells(index, queries[i:i + block], k) for i in range(0, len(queries), block)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    # a query's length scales all its scores alike, so the ranking is the cosine's: only the distances divide by it
    Q = np.asarray(queries, dtype=np.float32)
    lengths = np.maximum(np.sqrt(np.einsum("md,md->m", Q, Q)), TINY)
    with _one_blas_thread():
        cell = np.argmax(Q @ index.centroids.T, axis=1)
        # 16-bit keys: numpy sorts them stably by radix, eight times as fast as 64-bit ones
        order = np.argsort(cell.astype(np.int16 if len(index.centroids) <= 2**15 else np.int64), kind="stable")
        cell, Q = cell[order], Q.take(order, axis=0)
        counts = np.bincount(cell, minlength=len(index.centroids))
        ids = np.flatnonzero(counts)
        scores = np.empty((len(Q), size), np.float32)
        compiled(_cell_scores)(Q, index.vectors, ids, np.cumsum(counts[ids]), scores)
    top = _largest(scores, k)
    indices, distances = np.empty((len(Q), k), np.int64), np.empty((len(Q), k), np.float32)
    compiled(_gather)(top, scores, order, cell, index.members, lengths, indices, distances)
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
    return {name: weighted_mean(xy, indices, weights, name in disks) for name, xy in maps.items()}


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
    with _one_blas_thread(), ThreadPoolExecutor(workers, "dinoscope-place") as pool:
        placed = list(pool.map(place, np.array_split(vectors, workers)))
    return {name: np.concatenate([p[name] for p in placed]) for name in maps}

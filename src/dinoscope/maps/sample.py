"""Maps of very many points: fit on a seeded sample, place the rest among their nearest sampled points.

Above `maps.fit_max` points the neighbour maps (t-SNE, UMAP, the Poincaré disk: `MapSpec.sampled`) are fitted on a
seeded sample of that many points (spread along the shared graph: `fit_sample`), on the sample's own kNN graph,
and every other point goes where k-NN placement puts a new image (`query.nearby.place_among`): the weighted mean of
its nearest *sampled* points on the fitted map. Those neighbours need no search: the shared graph already lists
each point's k nearest, and about k · fit_max / n of them are sampled (22 of 90 at 250k of 1M); a point with fewer
than `nearby.K` sampled neighbours among them is searched for by the cells index of the sample. Fitting a sample
and placing the rest is how openTSNE's guide and Kobak & Berens (2019, "The art of using t-SNE for single-cell
transcriptomics") embed millions of points; placed points land within a point of 10-NN accuracy of refitting
(benchmarks/place.py).

The clusters of `analysis` scale the same way (`analysis.cluster_max`): fitted on the sample's own graph, read from
the shared one (`sample_graph`), every other point taking the cluster of most weight among its nearest sampled
points (`spread_labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..jit import compiled
from ..neighbors import KNNGraph, drop_self
from ..query.nearby import Cells, K, cells, membership, place_among, search_cells

SAMPLER = "nearest-neighbour tour"  # how `fit_sample` draws (part of the maps' and analyses' cache keys)
FIT_MAX = 250_000  # most points a neighbour map, or the clusters, are fitted on by default (settings: maps.fit_max,
#   analysis.cluster_max): at 1M, t-SNE on 250k kept its 70k accuracy; a quarter of 62,500 costs it 2.5 points
# A neighbour closer than this share of a point's k-th neighbour (cosine distance) is its near-copy: at k = 90, 0.8 %
# of copy-free Fashion-MNIST points have one and 99 % of points made of 14 noisy copies of an image (scale.py's)
NEAR_COPY = 0.1
ROWS = 65_536  # rows of the graph read at once while finding sampled neighbours (a 90-NN block: ~50 MB)


def sampling(n: int, fit_max: int) -> bool:
    """Whether n points are fitted on a sample of `fit_max` (n above it, fit_max not 0)."""
    return 0 < fit_max < n


def fit_sample(graph: KNNGraph, fit_max: int, seed: int) -> np.ndarray | None:
    """Sorted indices of the `fit_max` points a neighbour map is fitted on, or None when it fits all of the graph's
    points (see `sampling`): a systematic sample along a seeded tour of the points that walks through each group of
    near-copies in turn (`tour`) and otherwise goes in random order.

    Each point is drawn with the same chance, fit_max / n, so on data without near-copies this is a simple random
    sample; but a group of g near-copies keeps g·fit_max / n of them, not a binomial count. That matters to UMAP:
    groups that keep many copies become islands of its fuzzy graph (250k points made of 14 copies of 17,500 images,
    a quarter sampled: up to 11 copies of an image at random, 3 or 4 along the tour; UMAP's 10-NN accuracy 0.748
    against 0.792; BENCHMARKS.md)."""
    n = len(graph)
    if not sampling(n, fit_max):
        return None
    rng = np.random.default_rng(seed)
    step = n / fit_max
    order = compiled(tour)(graph.indices, graph.distances, rng.permutation(n), NEAR_COPY)
    return np.sort(order[(rng.random() * step + step * np.arange(fit_max)).astype(np.int64)])


def tour(indices: np.ndarray, distances: np.ndarray, starts: np.ndarray, near: float) -> np.ndarray:
    """Every point once: each followed by its nearest unvisited neighbour in the (n, k) graph (`indices` nearest
    first, -1 for none, and their `distances`) when that one is a near-copy, closer than `near` times the point's
    k-th neighbour; else by the next unvisited point of `starts` (a permutation)."""
    n, k = indices.shape
    visited = np.zeros(n, np.bool_)
    order = np.empty(n, np.int64)
    pending, point = 0, -1
    for position in range(n):
        if point < 0:
            while visited[starts[pending]]:
                pending += 1
            point = starts[pending]
        visited[point] = True
        order[position] = point
        bound, nearest = near * distances[point, k - 1], -1
        for j in range(k):
            other = indices[point, j]
            if distances[point, j] >= bound:
                break
            if other >= 0 and not visited[other]:
                nearest = other
                break
        point = nearest
    return order


def sampled_neighbors(graph: KNNGraph, sample: np.ndarray, rows: np.ndarray,
                      k: int = K) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each of `rows`' first k sampled neighbours in the shared graph, as positions in `sample`, and their
    distances; rows with fewer than k of them get position -1 there, and come back as the third array."""
    where = np.full(len(graph), -1, np.int64)
    where[sample] = np.arange(len(sample))
    indices, distances = np.full((len(rows), k), -1, np.int64), np.zeros((len(rows), k), np.float32)
    for start in range(0, len(rows), ROWS):
        block = rows[start:start + ROWS]
        found = where[graph.indices[block]]
        keep = (found >= 0) & (np.cumsum(found >= 0, axis=1, dtype=np.int32) <= k)
        full = np.count_nonzero(keep, axis=1) == k
        indices[start:start + len(block)][full] = found[full][keep[full]].reshape(-1, k)
        distances[start:start + len(block)][full] = graph.distances[block][full][keep[full]].reshape(-1, k)
    return indices, distances, np.flatnonzero(indices[:, 0] < 0)


@dataclass(frozen=True)
class Placing:
    """Where the unsampled points go, found once for every sampled map: their rows and their nearest sampled
    points (positions in the sample) with the distances."""

    sample: np.ndarray
    rest: np.ndarray
    indices: np.ndarray
    distances: np.ndarray


def sample_index(sampled: np.ndarray) -> Callable[[], Cells]:
    """The cells index of the sampled vectors (the caller's copy of them: a 250k x 384 sample is 384 MB), built on
    its first call only (a k-means: ~35 s at 250k x 384 on 2 cores), for the rows whose sampled neighbours the
    shared graph does not hold."""
    return cache(lambda: cells(sampled))


def placing(vectors: np.ndarray, graph: KNNGraph, sample: np.ndarray,
            index: Callable[[], Cells] | None = None) -> Placing:
    """The `Placing` of every point outside `sample`: its sampled neighbours from the shared graph, or from the
    cells index of the sample (`index`, a `sample_index`) for the rows with fewer than K of them."""
    rest = np.setdiff1d(np.arange(len(vectors)), sample, assume_unique=True)
    indices, distances, short = sampled_neighbors(graph, sample, rest)
    if len(short):
        index = index or sample_index(vectors[sample])
        indices[short], distances[short] = search_cells(index(), vectors[rest[short]], K)
    return Placing(sample, rest, indices, distances)


def sample_graph(vectors: np.ndarray, graph: KNNGraph, sample: np.ndarray, k: int,
                 index: Callable[[], Cells] | None = None) -> KNNGraph:
    """The k-NN graph of the sampled points among themselves, nearest first: each one's first k sampled neighbours
    in the shared graph, or, for rows with fewer, its k nearest others in the cells index of the sample (`index`, a
    `sample_index`). No new graph: at 250k of 1M, k = 14 of a 90-NN graph, about 3 % of rows are short."""
    indices, distances, short = sampled_neighbors(graph, sample, sample, k)
    if len(short):
        index = index or sample_index(vectors[sample])
        found, dist = search_cells(index(), vectors[sample[short]], k + 1)
        order = np.argsort(dist, axis=1, kind="stable")
        found, dist = drop_self(np.take_along_axis(found, order, axis=1), np.take_along_axis(dist, order, axis=1),
                                 k, own=short)
        indices[short], distances[short] = found, dist
    return KNNGraph(indices, distances, graph.metric, exact=graph.exact and not len(short))


def place_unsampled(plan: Placing, coords: np.ndarray, disk: bool) -> np.ndarray:
    """(n, 2) coordinates of every point from `coords`, the map of the sampled points: those kept, every other
    point at the weighted mean of its nearest sampled points (see the module notes)."""
    placed = place_among(plan.indices, plan.distances, {"map": coords}, disks={"map"} if disk else frozenset())
    out = np.empty((len(plan.sample) + len(plan.rest), coords.shape[1]), coords.dtype)
    out[plan.sample], out[plan.rest] = coords, placed["map"]
    return out


def spread_labels(plan: Placing, labels: np.ndarray) -> np.ndarray:
    """(n,) labels of every point from `labels` of the sampled points: those kept, every other point the label with
    the most weight among its nearest sampled points (the weights k-NN placement gives them)."""
    weights = membership(plan.distances)
    out = np.empty(len(plan.sample) + len(plan.rest), labels.dtype)
    out[plan.sample] = labels
    for start in range(0, len(plan.rest), ROWS):
        near = labels[plan.indices[start:start + ROWS]]  # (m, K)
        votes = np.einsum("mij,mj->mi", near[:, :, None] == near[:, None, :], weights[start:start + ROWS])
        out[plan.rest[start:start + ROWS]] = near[np.arange(len(near)), votes.argmax(axis=1)]
    return out

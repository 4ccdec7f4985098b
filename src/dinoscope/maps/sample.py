"""Maps of very many points: fit on a seeded sample, place the rest among their nearest sampled points.

Above `maps.fit_max` points the neighbour maps (t-SNE, UMAP, the Poincaré disk: `MapSpec.sampled`) are fitted on a
seeded random sample of that many points, on the sample's own kNN graph, and every other point goes where k-NN
placement puts a new image (`query.nearby.place_among`): the weighted mean of its nearest *sampled* points on the
fitted map. Those neighbours need no search: the shared graph already lists each point's k nearest, and about
k · fit_max / n of them are sampled (22 of 90 at 250k of 1M); a point with fewer than `nearby.K` sampled neighbours
among them is searched for by the cells index of the sample. Fitting a sample and placing the rest is how
openTSNE's guide and Kobak & Berens (2019, "The art of using t-SNE for single-cell transcriptomics") embed millions
of points; placed points land within a point of 10-NN accuracy of refitting (benchmarks/place.py).

The clusters of `analysis` scale the same way (`analysis.cluster_max`): fitted on the sample's own graph, read from
the shared one (`sample_graph`), every other point taking the cluster of most weight among its nearest sampled
points (`spread_labels`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..neighbors import KNNGraph, drop_self
from ..query.nearby import Cells, K, cells, membership, place_among, search_cells

ROWS = 65_536  # rows of the graph read at once while finding sampled neighbours (a 90-NN block: ~50 MB)


def fit_sample(n: int, fit_max: int, seed: int) -> np.ndarray | None:
    """Sorted indices of the `fit_max` points a neighbour map is fitted on, or None when it fits all n (n <= fit_max,
    or fit_max 0)."""
    if fit_max <= 0 or n <= fit_max:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, fit_max, replace=False))


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

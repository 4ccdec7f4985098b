"""Maps of very many points: fit on a seeded sample, place the rest among their nearest sampled points.

Above `maps.fit_max` points the neighbour maps (t-SNE, UMAP, the Poincaré disk: `MapSpec.sampled`) are fitted on a
seeded random sample of that many points, on the sample's own kNN graph, and every other point goes where k-NN
placement puts a new image (`query.nearby.place_among`): the weighted mean of its nearest *sampled* points on the
fitted map. Those neighbours need no search: the shared graph already lists each point's k nearest, and about
k · fit_max / n of them are sampled (22 of 90 at 250k of 1M); a point with fewer than `nearby.K` sampled neighbours
among them is searched for by the cells index of the sample. Fitting a sample and placing the rest is how
openTSNE's guide and Kobak & Berens (2019, "The art of using t-SNE for single-cell transcriptomics") embed millions
of points; placed points land within a point of 10-NN accuracy of refitting (benchmarks/place.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..neighbors import KNNGraph
from ..query.nearby import K, cells, place_among, search_cells

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


def placing(vectors: np.ndarray, graph: KNNGraph, sample: np.ndarray) -> Placing:
    """The `Placing` of every point outside `sample`: its sampled neighbours from the shared graph, or from the
    cells index of the sample for the rows with fewer than K of them."""
    rest = np.setdiff1d(np.arange(len(vectors)), sample, assume_unique=True)
    indices, distances, short = sampled_neighbors(graph, sample, rest)
    if len(short):
        indices[short], distances[short] = search_cells(cells(vectors[sample]), vectors[rest[short]], K)
    return Placing(sample, rest, indices, distances)


def place_unsampled(plan: Placing, coords: np.ndarray, disk: bool) -> np.ndarray:
    """(n, 2) coordinates of every point from `coords`, the map of the sampled points: those kept, every other
    point at the weighted mean of its nearest sampled points (see the module notes)."""
    placed = place_among(plan.indices, plan.distances, {"map": coords}, disks={"map"} if disk else frozenset())
    out = np.empty((len(plan.sample) + len(plan.rest), coords.shape[1]), coords.dtype)
    out[plan.sample], out[plan.rest] = coords, placed["map"]
    return out

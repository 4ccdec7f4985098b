"""k-NN placement: a new point goes where its nearest fitted points lie on each map.

Its k nearest fitted embeddings (cosine) are weighted by UMAP's membership strengths (the nearest one 1, the
others decaying at a per-point scale, umap-learn's `smooth_knn_dist`) raised to the power SHARPNESS (the same
kernel at a quarter of the scale), and the new point is put at their weighted mean: the plain mean on a flat
map, the Einstein midpoint (the normalised weighted centroid on the hyperboloid) on a Poincaré disk. It works
for every map of a run, fitted or learned, because it needs only the run's embeddings and coordinates; it is
how umap-learn's and openTSNE's `transform` start before they optimise.
"""

from __future__ import annotations

import numpy as np

from ..errors import DinoscopeError
from ..geometry import TINY, ball
from ..neighbors import exact_neighbors

K = 10
# Held-out 10-NN accuracy against umap-learn's and openTSNE's transform (benchmarks/place.py, digits and
# Fashion-MNIST 20k): UMAP's own weights (power 1) put points 0.4-1.5 points below the peers, between clusters;
# power 4 lands them where the peers do (UMAP +0.0/+0.1, t-SNE +7/+0.3 points). Chosen on those two sets.
SHARPNESS = 4


def membership(distances: np.ndarray) -> np.ndarray:
    """(m, k) weights of each new point's k neighbours from their ascending distances: UMAP's, sharpened."""
    from umap.umap_ import smooth_knn_dist

    d = np.ascontiguousarray(distances, dtype=np.float32)
    # distances past the nearest one: UMAP's rho is the nearest *non-zero* distance, so an exact copy (distance 0)
    # would jump it to the next neighbour; shifted by 1, every row's nearest is its rho, copy or not
    beyond = d - d[:, :1]
    sigmas, _ = smooth_knn_dist(beyond + 1.0, float(d.shape[1]), local_connectivity=1.0)
    return np.exp(-SHARPNESS * beyond / np.maximum(sigmas[:, None], TINY))


def weighted_mean(coords: np.ndarray, weights: np.ndarray, disk: bool) -> np.ndarray:
    """(m, 2) weighted means of (m, k, 2) neighbour coordinates: Euclidean, or the Einstein midpoint on the disk."""
    w = weights / weights.sum(axis=1, keepdims=True)
    if not disk:
        return (w[..., None] * coords).sum(axis=1).astype(np.float32)
    x = ball.to_hyperboloid(coords.astype(np.float64))  # (m, k, 3), time first
    s = (w[..., None] * x).sum(axis=1)
    s /= np.sqrt(np.maximum(s[:, :1] ** 2 - (s[:, 1:] ** 2).sum(axis=1, keepdims=True), TINY))
    return ball.hyperboloid_to_disk(s).astype(np.float32)


def check_maps(maps: dict[str, np.ndarray], n: int) -> None:
    """Refuse maps that do not hold one point per fitted embedding."""
    for name, xy in maps.items():
        if len(xy) != n:
            raise DinoscopeError(f"the {name} map has {len(xy)} points but there are {n} fitted embeddings")


def place_among(indices: np.ndarray, distances: np.ndarray, maps: dict[str, np.ndarray], *,
                disks: set[str] | frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """Each map's (m, 2) coordinates of new points from their (m, k) nearest fitted points and cosine distances,
    ascending (from any search: exact, or a run's similarity index)."""
    weights = membership(distances)
    return {name: weighted_mean(xy[indices], weights, name in disks) for name, xy in maps.items()}


def place_nearby(reference: np.ndarray, maps: dict[str, np.ndarray], vectors: np.ndarray, *,
                 disks: set[str] | frozenset[str] = frozenset(), k: int = K) -> dict[str, np.ndarray]:
    """Each map's (m, 2) coordinates of new `vectors`, from the fitted `reference` embeddings and their `maps`
    coordinates (name → (n, 2)), found by exact search; maps named in `disks` are Poincaré disks."""
    check_maps(maps, len(reference))
    indices, distances = exact_neighbors(reference, vectors, min(k, len(reference)), metric="cosine")
    return place_among(indices, distances, maps, disks=disks)

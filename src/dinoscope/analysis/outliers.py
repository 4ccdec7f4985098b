"""Outlier scores from the shared kNN graph (higher = more outlying): k-th neighbour distance and LOF.

LOF defaults to k=50: at k=20 a few dozen similar outliers (noise images) form their own dense pocket and
look normal (benchmarks/analysis.py: AUROC 0.59 at k=20, 0.999 at k=50 on pixels).
"""

from __future__ import annotations

import numpy as np

from ..neighbors import KNNGraph

_EPS = 1e-10  # keeps densities finite where a point has exact duplicates (zero distances)


def kth_neighbor_distance(graph: KNNGraph, k: int = 5) -> np.ndarray:
    """Distance to each point's k-th nearest neighbour: large where a point sits far from everything else."""
    return graph.head(k).distances[:, -1].astype(np.float32)


def local_outlier_factor(graph: KNNGraph, k: int = 50) -> np.ndarray:
    """Local outlier factor (Breunig et al. 2000) from the graph: ~1 in a cluster, >1 where sparser than around."""
    head = graph.head(k)
    k_distance = head.distances[:, -1]
    reach = np.maximum(head.distances, k_distance[head.indices])
    density = 1.0 / (reach.mean(axis=1) + _EPS)
    return (density[head.indices].mean(axis=1) / density).astype(np.float32)

"""t-SNE input affinities from the shared kNN graph (openTSNE's perplexity calibration, no second search).

Both t-SNE maps (the flat one and the Poincaré disk's) take their P from here: the first 3·perplexity
neighbours of the shared graph, i.e. the full-dimensional embedding space under the graph's metric.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from openTSNE import affinity
from openTSNE.nearest_neighbors import PrecomputedNeighbors

from ..errors import DinoscopeError
from ..neighbors import KNNGraph, exact_neighbors


class GraphIndex(PrecomputedNeighbors):
    """openTSNE kNN index built from the shared graph that can also be queried (exactly) for new points."""

    def __init__(self, graph: KNNGraph, reference: np.ndarray):
        super().__init__(np.ascontiguousarray(graph.indices, dtype=np.int64),
                         np.ascontiguousarray(graph.distances, dtype=np.float64))
        self.metric = graph.metric
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)

    def query(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest reference points of each query row, under the graph's metric."""
        indices, distances = exact_neighbors(self.reference, query, k, self.metric)
        return indices, distances.astype(np.float64)

    def __getstate__(self) -> dict:
        """Pickled without the graph, which only the fit reads (`build`); `query` needs the reference alone."""
        return {**self.__dict__, "indices": None, "distances": None}


class GraphAffinities(affinity.PerplexityBasedNN):
    """openTSNE's perplexity affinities on a `GraphIndex`, pickled without P: placing new points (`to_new`) needs
    only the index, and P is the largest part of a fitted map (1M points: ~1.5 GB of the t-SNE model's 4.6)."""

    def __getstate__(self) -> dict:
        return {**self.__dict__, "P": None}


def graph_affinities(graph: KNNGraph, reference: np.ndarray, perplexity: float,
                     n_jobs: int = 1) -> GraphAffinities:
    """openTSNE perplexity affinities from the first 3·perplexity neighbours of the shared graph."""
    if graph.k < 3:
        raise DinoscopeError(f"the shared graph has {graph.k} neighbours; t-SNE needs at least 3")
    graph = graph.head(min(graph.k, int(3 * perplexity)))
    return GraphAffinities(perplexity=min(perplexity, graph.k / 3), n_jobs=n_jobs,
                           knn_index=GraphIndex(graph, reference))


def symmetric_p(graph: KNNGraph, X: np.ndarray, perplexity: float) -> sp.csr_matrix:
    """Symmetric P (sums to 1, float64, sorted indices) from the shared graph, for the hyperbolic t-SNE."""
    P = graph_affinities(graph, X, perplexity).P.tocsr().astype(np.float64)
    P.sort_indices()
    return P

"""t-SNE map by openTSNE: FFT gradients, PCA initialisation, new points placed by `transform`.

Two sources of affinities:

* without a graph, the seeds' recipe: PCA to `pca_dims` dimensions, then openTSNE's own
  (Euclidean) kNN search on those components;
* with the shared graph (`fit(X, knn=graph)`), the affinities come from its first
  3·perplexity neighbours, i.e. from the full-dimensional embedding space under the graph's
  metric (cosine by default) — the same neighbourhoods the metrics and the other maps see, and
  no second kNN search. The PCA components then only give the initialisation, and `transform`
  finds the neighbours of new points by exact search in that same full-dimensional space.
"""

from __future__ import annotations

import numpy as np
from openTSNE import TSNE, affinity, initialization
from openTSNE.nearest_neighbors import PrecomputedNeighbors
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from ..checks import as_points, check_new_points
from ..errors import DinoscopeError
from ..neighbors import KNNGraph, search


class GraphIndex(PrecomputedNeighbors):
    """openTSNE kNN index built from the shared graph that can also be queried (exactly) for new points."""

    def __init__(self, graph: KNNGraph, reference: np.ndarray):
        super().__init__(np.ascontiguousarray(graph.indices, dtype=np.int64),
                         np.ascontiguousarray(graph.distances, dtype=np.float64))
        self.metric = graph.metric
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)

    def query(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest reference points of each query row, under the graph's metric."""
        indices, distances = search(self.reference, query, k, self.metric)
        return indices, distances.astype(np.float64)


def graph_affinities(graph: KNNGraph, reference: np.ndarray, perplexity: float,
                     n_jobs: int = 1) -> affinity.PerplexityBasedNN:
    """openTSNE perplexity affinities from the first 3·perplexity neighbours of the shared graph."""
    if graph.k < 3:
        raise DinoscopeError(f"the shared graph has {graph.k} neighbours; t-SNE needs at least 3")
    graph = graph.head(min(graph.k, int(3 * perplexity)))
    return affinity.PerplexityBasedNN(perplexity=min(perplexity, graph.k / 3), n_jobs=n_jobs,
                                      knn_index=GraphIndex(graph, reference))


class TSNEMap(BaseEstimator):
    """openTSNE t-SNE with the seeds' settings; reuses the shared kNN graph when given one."""

    def __init__(self, perplexity: float = 30, pca_dims: int = 50, n_iter: int = 750,
                 early_exaggeration_iter: int = 250, n_jobs: int = 0, random_state: int | None = 0):
        self.perplexity = perplexity
        self.pca_dims = pca_dims
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _threads(self) -> int:
        return -1 if self.n_jobs == 0 else self.n_jobs

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        return X if self.pca_ is None else self.pca_.transform(X).astype(np.float32)

    def fit(self, X: object, knn: KNNGraph | None = None) -> TSNEMap:
        """Embed X; with `knn` (the shared graph of X) the affinities come from it, see the module notes."""
        X = as_points(X)
        n, d = X.shape
        if knn is not None and len(knn) != n:
            raise DinoscopeError(f"the kNN graph has {len(knn)} points but X has {n}")
        self.n_features_in_ = d
        self.pca_ = (PCA(min(self.pca_dims, n), random_state=self.random_state).fit(X)
                     if d > self.pca_dims else None)
        Z = self._reduce(X)
        if knn is None:
            aff = affinity.PerplexityBasedNN(Z, perplexity=min(self.perplexity, (n - 1) / 3),
                                             n_jobs=self._threads(), random_state=self.random_state)
        else:
            aff = graph_affinities(knn, X, self.perplexity, self._threads())
        self.graph_based_ = knn is not None
        init = initialization.pca(Z, random_state=self.random_state)
        tsne = TSNE(n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter,
                    negative_gradient_method="fft", n_jobs=self._threads(), random_state=self.random_state)
        self.tsne_embedding_ = tsne.fit(affinities=aff, initialization=init)
        self.embedding_ = np.asarray(self.tsne_embedding_, dtype=np.float32)
        return self

    def fit_transform(self, X: object, knn: KNNGraph | None = None) -> np.ndarray:
        """Fit and return the coordinates of X."""
        return self.fit(X, knn).embedding_

    def transform(self, X: object) -> np.ndarray:
        """Place new points into the fitted map (openTSNE's optimisation against the fixed reference)."""
        check_is_fitted(self, "tsne_embedding_")
        X = check_new_points(X, self.n_features_in_)
        Z = X if self.graph_based_ else self._reduce(X)
        return np.asarray(self.tsne_embedding_.transform(Z), dtype=np.float32)

"""t-SNE map by openTSNE: FFT gradients, PCA initialisation, new points placed by `transform`.

Two sources of affinities:

* without a graph, the seeds' recipe: PCA to `pca_dims` dimensions, then openTSNE's own
  (Euclidean) kNN search on those components;
* with the shared graph (`fit(X, knn=graph)`), the affinities come from its first
  3·perplexity neighbours (`affinities.graph_affinities`), i.e. from the full-dimensional embedding
  space under the graph's metric (cosine by default) — the same neighbourhoods the metrics and the
  other maps see, and no second kNN search. The PCA components then only give the initialisation,
  and `transform` finds the neighbours of new points by exact search in that same space.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..checks import check_new_points
from .base import MapEstimator


class TSNEMap(MapEstimator):
    """openTSNE t-SNE with the seeds' settings; reuses the shared kNN graph when given one.

    Parameters
    ----------
    perplexity : float
        t-SNE perplexity: the effective number of neighbours each point attends to.
    pca_dims : int
        PCA dimensions behind the initialisation (and the affinities without a shared graph).
    n_iter : int
        Iterations after the early exaggeration.
    early_exaggeration_iter : int
        Iterations of early exaggeration.
    n_jobs : int
        Threads; 0 uses every core.
    random_state : int or None
        Seed of the initialisation and the optimiser.
    """

    _parameter_constraints = {
        "perplexity": [Interval(Real, 0, None, closed="neither")],
        "pca_dims": [Interval(Integral, 2, None, closed="left")],
        "n_iter": [Interval(Integral, 50, None, closed="left")],
        "early_exaggeration_iter": [Interval(Integral, 0, None, closed="left")],
        "n_jobs": [Integral],
        "random_state": ["random_state"],
    }

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

    def fit(self, X: object, y: Sequence | None = None, *, knn=None) -> TSNEMap:
        """Embed X; with `knn` (the shared graph of X) the affinities come from it, see the module notes."""
        from openTSNE import TSNE, affinity, initialization
        from sklearn.decomposition import PCA

        from .affinities import graph_affinities

        X = self._check_fit(X, y, knn)
        n, d = X.shape
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

    def transform(self, X: object) -> np.ndarray:
        """Place new points into the fitted map (openTSNE's optimisation against the fixed reference)."""
        check_is_fitted(self, "tsne_embedding_")
        X = check_new_points(X, self.n_features_in_)
        Z = X if self.graph_based_ else self._reduce(X)
        return np.asarray(self.tsne_embedding_.transform(Z), dtype=np.float32)

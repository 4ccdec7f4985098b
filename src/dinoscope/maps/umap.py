"""UMAP map by umap-learn; reuses the shared kNN graph through `precomputed_knn`.

umap-learn needs a search index to place new points, and a precomputed graph comes without one.
The map gets `ExactSearchIndex` instead: exact, blocked search over the fitted points under the
graph's metric (the shared graph's own method), so placing new points works without building a
pynndescent index nobody may need. Without a shared graph the map builds one the same way
(`neighbors.knn_graph`). `spectral.umap_on_graph` builds the model, shared with the disk's UMAP method:
its layout starts from umap-learn's spectral start, computed in seconds instead of minutes.

Determinism: a seeded map (the default) runs umap-learn's layout on one thread and gives the same
coordinates every time; `random_state=None` lets it use all cores and is not reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..checks import check_new_points
from ..errors import DinoscopeError
from ..neighbors import METRICS, exact_neighbors, knn_graph
from .base import MapEstimator
from .spectral import umap_on_graph


class ExactSearchIndex:
    """The part of pynndescent's index that umap-learn's `transform` uses, answered by exact search."""

    _angular_trees = False

    def __init__(self, reference: np.ndarray, metric: str):
        self.reference = reference
        self.metric = metric

    def query(self, X: np.ndarray, k: int, epsilon: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest fitted points of each row of X (`epsilon` is unused: the search is exact)."""
        indices, distances = exact_neighbors(self.reference, X, k, self.metric)
        return indices.astype(np.int32), distances


class UMAPMap(MapEstimator):
    """umap-learn UMAP with spectral initialisation; seeded (reproducible) by default.

    Parameters
    ----------
    n_neighbors : int
        UMAP n_neighbors: the size of the neighbourhood each point's fuzzy set covers.
    min_dist : float
        How tightly UMAP packs points together.
    n_epochs : int or None
        Optimisation epochs; None lets umap-learn choose (200 for large data, 500 for small).
    metric : str
        Embedding-space metric of a graph built here (the shared graph brings its own).
    random_state : int or None
        Seed; None runs on every core and is not reproducible.
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 2, None, closed="left")],
        "min_dist": [Interval(Real, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "metric": [StrOptions(set(METRICS))],
        "random_state": ["random_state"],
    }

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = None,
                 metric: str = "cosine", random_state: int | None = 0):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.metric = metric
        self.random_state = random_state

    def fit(self, X: object, y: Sequence | None = None, *, knn=None) -> UMAPMap:
        """Embed X from `knn`, the shared graph of X (built here if not given)."""
        X = self._check_fit(X, y, knn)
        n = X.shape[0]
        if self.n_neighbors >= n:
            raise DinoscopeError(f"UMAP needs 2 <= n_neighbors < n points, got {self.n_neighbors} for {n}")
        if knn is None:
            knn = knn_graph(X, k=self.n_neighbors - 1, metric=self.metric, seed=self.random_state or 0)
        elif knn.metric != self.metric:
            raise DinoscopeError(f"the shared graph uses {knn.metric} distances but UMAP is set to "
                                 f"{self.metric}; make them agree")
        model = umap_on_graph(X, knn, self.n_neighbors, self.n_epochs, self.random_state, min_dist=self.min_dist)
        self.n_features_in_ = X.shape[1]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            self.umap_ = model.fit(X)
        self.umap_._knn_search_index = ExactSearchIndex(X, knn.metric)
        self.embedding_ = np.asarray(self.umap_.embedding_, dtype=np.float32)
        return self

    def transform(self, X: object) -> np.ndarray:
        """Place new points into the fitted map (umap-learn's transform)."""
        check_is_fitted(self, "umap_")
        X = check_new_points(X, self.n_features_in_)
        return np.asarray(self.umap_.transform(X), dtype=np.float32)

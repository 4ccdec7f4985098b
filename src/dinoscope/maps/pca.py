"""PCA map: the linear baseline, and the 50-D reduction in front of t-SNE."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..checks import check_new_points
from ..errors import DinoscopeError
from .base import MapEstimator


class PCAMap(MapEstimator):
    """Principal components of the embeddings; places new points exactly (a linear projection).

    Parameters
    ----------
    n_components : int
        Components kept (2 for a map).
    random_state : int or None
        Seed of the randomised solver.
    """

    _parameter_constraints = {"n_components": [Interval(Integral, 1, None, closed="left")],
                              "random_state": ["random_state"]}

    def __init__(self, n_components: int = 2, random_state: int | None = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: object, y: Sequence | None = None, *, knn=None) -> PCAMap:
        """Fit the projection; `y` and `knn` are accepted for the maps' common interface and not needed."""
        from sklearn.decomposition import PCA

        X = self._check_fit(X, y, knn)
        if self.n_components > min(X.shape):
            raise DinoscopeError(f"PCA to {self.n_components} dimensions needs at least that many points "
                                 f"and dimensions, got {X.shape}")
        self.n_features_in_ = X.shape[1]
        self.pca_ = PCA(self.n_components, random_state=self.random_state).fit(X)
        self.embedding_ = self.transform(X)
        return self

    def transform(self, X: object) -> np.ndarray:
        """Project new points onto the fitted components."""
        check_is_fitted(self, "pca_")
        return self.pca_.transform(check_new_points(X, self.n_features_in_)).astype(np.float32)

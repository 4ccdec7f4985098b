"""PCA map: the linear baseline, and the 50-D reduction in front of t-SNE."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from ..checks import as_points, check_new_points
from ..errors import DinoscopeError
from ..neighbors import KNNGraph


class PCAMap(BaseEstimator):
    """Principal components of the embeddings; places new points exactly (a linear projection)."""

    def __init__(self, n_components: int = 2, random_state: int | None = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: object, knn: KNNGraph | None = None) -> PCAMap:
        """Fit the projection; `knn` is accepted for a uniform interface and not needed."""
        X = as_points(X)
        if not 1 <= self.n_components <= min(X.shape):
            raise DinoscopeError(f"PCA to {self.n_components} dimensions needs at least that many points "
                                 f"and dimensions, got {X.shape}")
        self.n_features_in_ = X.shape[1]
        self.pca_ = PCA(self.n_components, random_state=self.random_state).fit(X)
        self.embedding_ = self.transform(X)
        return self

    def fit_transform(self, X: object, knn: KNNGraph | None = None) -> np.ndarray:
        """Fit and return the coordinates of X."""
        return self.fit(X, knn).embedding_

    def transform(self, X: object) -> np.ndarray:
        """Project new points onto the fitted components."""
        check_is_fitted(self, "pca_")
        return self.pca_.transform(check_new_points(X, self.n_features_in_)).astype(np.float32)

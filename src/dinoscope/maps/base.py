"""What every map estimator shares: scikit-learn's shape, one way to check what `fit` is given.

The contract (tested for every map of the registry in tests/test_map_contract.py):

* settings in `__init__`, each with a constraint in the class's `_parameter_constraints` (scikit-learn's
  `Interval` / `StrOptions` / types), checked when `fit` starts; `dinoscope.config` derives the run's
  settings (types, defaults, help) from those same constraints, `__init__` and the class docstring;
* `fit(X, y=None, *, knn=None, ...)` returns self and sets `embedding_`, the (n, 2) map of X; `y` are labels
  (maps that can use them, e.g. centring the disk on a class), `knn` the shared kNN graph of X (a map that
  would build its own uses it instead); learned maps also take `teacher=`, the coordinates they learn;
* `fit_transform` returns `embedding_`; `transform(X)` places new points where the map can;
* `random_state` seeds every random choice: the same seed gives the same map; `verbose` shows progress bars.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from ..checks import as_points, check_rows
from ..errors import DinoscopeError


class MapEstimator(BaseEstimator):
    """Base of every map: the shared `fit_transform` and the checks of `fit`'s arguments."""

    _parameter_constraints: dict = {}

    def fit(self, X: object, y: Sequence | None = None, *, knn=None):  # pragma: no cover - every map overrides
        raise NotImplementedError

    def fit_transform(self, X: object, y: Sequence | None = None, **fit_params) -> np.ndarray:
        """Fit and return the (n, 2) coordinates of X (the fitted layout itself, not X placed anew)."""
        return self.fit(X, y, **fit_params).embedding_

    def _check_fit(self, X: object, y: Sequence | None = None, knn=None) -> np.ndarray:
        """The settings checked against their constraints, X as points, y and the graph one row per point."""
        self._validate_params()
        X = as_points(X)
        check_rows(len(X), labels=y)
        if knn is not None and len(knn) != len(X):
            raise DinoscopeError(f"the kNN graph has {len(knn)} points but X has {len(X)}")
        return X

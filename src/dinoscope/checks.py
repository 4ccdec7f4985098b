"""Input checks every stage shares: point arrays for maps, graphs and metrics, with one-line errors."""

from __future__ import annotations

import numpy as np

from .errors import DinoscopeError


def as_points(X: object, name: str = "X", min_rows: int = 3) -> np.ndarray:
    """Validate a 2-D finite float array with at least `min_rows` rows; float32 unless it is float64."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DinoscopeError(f"{name} must be a 2-D array (points x dimensions), got shape {X.shape}")
    if X.shape[0] < min_rows:
        raise DinoscopeError(f"{name} needs at least {min_rows} points, got {X.shape[0]}")
    if not np.issubdtype(X.dtype, np.number):
        raise DinoscopeError(f"{name} must be numeric, got dtype {X.dtype}")
    if X.dtype != np.float64:
        X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise DinoscopeError(f"{name} contains NaN or infinite values; drop or repair those rows first")
    return X


def check_new_points(X: object, n_features: int) -> np.ndarray:
    """Validate points to place on a fitted map: any number of rows, the fitted dimensionality."""
    X = as_points(X, min_rows=1)
    if X.shape[1] != n_features:
        raise DinoscopeError(f"the map was fitted on {n_features}-D points, got {X.shape[1]}-D")
    return X


def check_rows(n: int, **columns: object) -> None:
    """Every named per-point input (a graph, labels, a teacher's coordinates) has one row per point."""
    for name, col in columns.items():
        if col is not None and len(col) != n:
            raise DinoscopeError(f"{name} has {len(col)} rows but there are {n} points")

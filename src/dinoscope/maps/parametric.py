"""Learned maps: small PyTorch networks from embeddings to map coordinates, which place new points in one pass.

Each learns a non-parametric map of the same points (its teacher, fitted first by the maps stage and handed over as
`fit(X, teacher=coords)`): the teacher's map is cut into k-means cells and the network learns to choose a point's
cell and its offset within it (`networks.MapNet`), with a held-out split and early stopping.

* ``ParametricTSNE`` (map ``param_tsne``) — the learned t-SNE map.
* ``ParametricUMAP`` (``param_umap``) — the learned UMAP map. (Until 2026-12 it was trained with UMAP's own
  cross-entropy on the graph's fuzzy edges, pulled towards the UMAP map; its held-out points landed 5-6 points of
  10-NN accuracy under umap-learn's `transform`, the cells network's within one: BENCHMARKS.md.)
* ``ParametricPoincare`` (``param_poincare``) — the learned Poincaré disk: cells and offsets are tangent vectors
  at the origin (the teacher's points sent back by the logarithmic map), and the output is sent into the disk by
  the exponential map and kept at most 1 - eps (eps = `geometry.EPS` = 1e-5) from the centre, so no output can
  leave the disk.

Every learned map's network is saved by `save(path)` as TorchScript (float32 embeddings (N, D) → float32
coordinates (N, 2)), the `models/<name>.pt` that placing, export and serving read.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..checks import check_new_points
from ..errors import DinoscopeError
from ..neighbors import METRICS, KNNGraph
from .base import MapEstimator


class _Student(MapEstimator):
    """A network choosing a fitted map's cell and its offset there (`networks.MapNet`), with a held-out
    split and early stopping.

    Parameters
    ----------
    max_epochs : int
        Most training epochs.
    patience : int
        Epochs without a better held-out loss before training stops.
    validation : float
        Share of the points held out for early stopping.
    cells : int
        Most cells of the teacher's map the network chooses among (about 2√n for n points, at most this).
    hidden : int or None
        Units per hidden layer; None: the map's own (`units`: 128, fewer for t-SNE with many cells).
    layers : int
        Hidden layers.
    batch_size : int
        Training minibatch size.
    learning_rate : float
        Adam's learning rate.
    metric : str
        Embedding-space metric (cosine: inputs are L2-normalised first).
    device : str
        Where to train: auto (the GPU when there is one), cpu or cuda[:N].
    verbose : bool
        Show progress bars.
    random_state : int or None
        Seed of the cells, the initialisation and the training.
    """

    _parameter_constraints = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation": [Interval(Real, 0, 0.5, closed="neither")],
        "cells": [Interval(Integral, 2, None, closed="left")],
        "hidden": [Interval(Integral, 2, None, closed="left"), None],
        "layers": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 8, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "metric": [StrOptions(set(METRICS))],
        "device": [str],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }
    disk = False

    def __init__(self, max_epochs: int = 200, patience: int = 12, validation: float = 0.1, cells: int = 256,
                 hidden: int | None = None, layers: int = 1, batch_size: int = 512, learning_rate: float = 1e-3,
                 metric: str = "cosine", device: str = "auto", verbose: bool = False, random_state: int | None = 0):
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation = validation
        self.cells = cells
        self.hidden = hidden
        self.layers = layers
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.metric = metric
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X: object, y: Sequence | None = None, *, knn: KNNGraph | None = None,
            teacher: np.ndarray | None = None) -> _Student:
        """Learn X → teacher coordinates; `y` and `knn` are accepted for the maps' common interface, not needed."""
        from .networks import generator, learn_cells, map_cells, new_net, student_targets

        X = self._check_fit(X, y, knn)
        name = type(self).__name__
        if teacher is None:
            raise DinoscopeError(f"{name} learns a fitted map's coordinates: call fit(X, teacher=coordinates)")
        target = student_targets(check_teacher(name, teacher, len(X)), self.disk)
        centres, cell, radius = map_cells(target, self.cells, self._seed())
        net = new_net(X, centres, hidden=self.hidden or self.units(len(centres)), layers=self.layers,
                      metric=self.metric, out_scale=radius, disk=self.disk, seed=self._seed(), device=self.device)
        info = learn_cells(net, X, target, cell, epochs=self.max_epochs, patience=self.patience,
                           batch_size=self.batch_size, learning_rate=self.learning_rate, validation=self.validation,
                           generator=generator(self._seed()), progress=self.verbose, title=name)
        self._finish(net, X, {**info, "cells": len(centres)})
        return self

    def units(self, cells: int) -> int:
        """Units per hidden layer when `hidden` is None."""
        return 128

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _finish(self, net, X: np.ndarray, info: dict) -> None:
        """Keep the trained network on the CPU and the fitted points' coordinates."""
        from .networks import finished

        self.net_ = finished(net)
        self.n_features_in_ = X.shape[1]
        self.training_ = info
        self.embedding_ = self.transform(X)

    def transform(self, X: object) -> np.ndarray:
        """Place new points: forward passes of the network (float32 (N, 2))."""
        from .networks import place

        check_is_fitted(self, "net_")
        return place(self.net_, check_new_points(X, self.n_features_in_))

    def to_torchscript(self):
        """The trained network as a TorchScript module (CPU, eval mode) for `torch.jit.save`."""
        from .networks import to_torchscript

        check_is_fitted(self, "net_")
        return to_torchscript(self.net_, self.n_features_in_)

    def save(self, path: str | Path) -> None:
        """Write the TorchScript module to `path` (the learned-map file format, models/<name>.pt)."""
        from .networks import save_torchscript

        check_is_fitted(self, "net_")
        save_torchscript(self.net_, self.n_features_in_, path)


def check_teacher(name: str, teacher: object, n: int) -> np.ndarray:
    """The teacher's coordinates as float64 (n, 2), or a clear error."""
    teacher = np.asarray(teacher, dtype=np.float64)
    if teacher.shape != (n, 2) or not np.isfinite(teacher).all():
        raise DinoscopeError(f"{name}: teacher coordinates must be finite, shape {(n, 2)}; got {teacher.shape}")
    return teacher


class ParametricTSNE(_Student):
    __doc__ = _Student.__doc__.replace("A network choosing a fitted map's cell", "The learned t-SNE map: a network "
                                       "choosing the t-SNE map's cell")

    def units(self, cells: int) -> int:
        """128 units, fewer where there are many cells: placing costs hidden x cells products a point, kept to at most
        2^14 (64 units at the 256 cells of 20,000 points and more), because openTSNE's transform, the peer, places at
        twice umap-learn's speed. Held-out 10-NN accuracy (benchmarks/place.py's splits) at 64 / 128 units: Fashion-
        MNIST 20k over seeds 0/1/2 0.7959 / 0.7944, 0.7943 / 0.7950, 0.7964 / 0.7989, in half the time; digits (69
        cells, so 128 units) lost 0.5-1.0 points at 64."""
        return max(64, min(128, 2**14 // cells))


class ParametricUMAP(_Student):
    __doc__ = _Student.__doc__.replace("A network choosing a fitted map's cell", "The learned UMAP map: a network "
                                       "choosing the UMAP map's cell")


class ParametricPoincare(_Student):
    __doc__ = _Student.__doc__.replace(
        "A network choosing a fitted map's cell and its offset there",
        "The learned Poincaré map: a network choosing a cell of the disk's tangent vectors at the origin and its "
        "offset there, sent into the disk by the exponential map")

    disk = True

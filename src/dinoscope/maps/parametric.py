"""Learned maps: small PyTorch networks from embeddings to map coordinates, which place new points in one pass.

* ``ParametricUMAP`` (map ``param_umap``) — an MLP trained with UMAP's cross-entropy over the shared kNN
  graph's fuzzy edges (umap-learn's weights and a, b curve), negatives drawn by pairing each edge's head
  with other edges' tails, plus a small term pulling it towards the non-parametric UMAP layout so that
  the two maps agree (and are oriented alike).
* ``ParametricTSNE`` (``param_tsne``) — the seeds' t-SNE approximator: an MLP regressing the t-SNE map's
  coordinates, with a held-out split and early stopping.
* ``ParametricPoincare`` (``param_poincare``) — the same for the Poincaré disk: the MLP's 2-D output is a
  tangent vector at the origin, sent into the disk by the exponential map and kept at most 1 - eps
  (eps = `geometry.EPS` = 1e-5) from the centre, so no output can leave the disk; the loss is the squared
  Poincaré distance to the teacher's point.

The students' teachers (the non-parametric maps) are fitted first by the maps stage and handed over as
`fit(X, teacher=coords)`. Every learned map's network is a `networks.MapNet` (PyTorch, imported when a learned
map is first fitted); `save(path)` writes it as TorchScript (float32 embeddings (N, D) → float32 coordinates
(N, 2)), the `models/<name>.pt` that placing, export and serving read.
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
from ..neighbors import METRICS, KNNGraph, knn_graph
from .base import MapEstimator

_NETWORK_DOC = """    hidden : int
        Units per hidden layer.
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
        Seed of the initialisation and the training.
"""
_NETWORK_CONSTRAINTS = {
    "hidden": [Interval(Integral, 2, None, closed="left")],
    "layers": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 8, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "metric": [StrOptions(set(METRICS))],
    "device": [str],
    "verbose": ["boolean"],
    "random_state": ["random_state"],
}


class _LearnedMap(MapEstimator):
    """What every learned map shares: the trained network, placing new points and the TorchScript file."""

    disk = False

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _new_net(self, X: np.ndarray, out_scale: float):
        from .networks import new_net

        return new_net(X, hidden=self.hidden, layers=self.layers, metric=self.metric, out_scale=out_scale,
                       disk=self.disk, seed=self._seed(), device=self.device)

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


class _Student(_LearnedMap):
    __doc__ = """An MLP regressing a fitted map's coordinates (its teacher), with a held-out split and early stopping.

    Parameters
    ----------
    max_epochs : int
        Most training epochs.
    patience : int
        Epochs without a better held-out loss before training stops.
    validation : float
        Share of the points held out for early stopping.
""" + _NETWORK_DOC + "    "

    _parameter_constraints = {
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation": [Interval(Real, 0, 0.5, closed="neither")],
        **_NETWORK_CONSTRAINTS,
    }

    def __init__(self, max_epochs: int = 200, patience: int = 12, validation: float = 0.1, hidden: int = 256,
                 layers: int = 2, batch_size: int = 512, learning_rate: float = 1e-3, metric: str = "cosine",
                 device: str = "auto", verbose: bool = False, random_state: int | None = 0):
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation = validation
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
        from .networks import generator, regress, student_targets

        X = self._check_fit(X, y, knn)
        name = type(self).__name__
        if teacher is None:
            raise DinoscopeError(f"{name} learns a fitted map's coordinates: call fit(X, teacher=coordinates)")
        target, out_scale, loss = student_targets(check_teacher(name, teacher, len(X)), self.disk)
        net = self._new_net(X, out_scale)
        info = regress(net, X, target, loss, epochs=self.max_epochs, patience=self.patience,
                       batch_size=self.batch_size, learning_rate=self.learning_rate, validation=self.validation,
                       generator=generator(self._seed()), progress=self.verbose, title=name)
        self._finish(net, X, info)
        return self


def check_teacher(name: str, teacher: object, n: int) -> np.ndarray:
    """The teacher's coordinates as float64 (n, 2), or a clear error."""
    teacher = np.asarray(teacher, dtype=np.float64)
    if teacher.shape != (n, 2) or not np.isfinite(teacher).all():
        raise DinoscopeError(f"{name}: teacher coordinates must be finite, shape {(n, 2)}; got {teacher.shape}")
    return teacher


class ParametricTSNE(_Student):
    __doc__ = _Student.__doc__.replace("An MLP regressing a fitted map's coordinates (its teacher)",
                                       "The t-SNE approximator: an MLP regressing the t-SNE map (squared error)")


class ParametricPoincare(_Student):
    __doc__ = _Student.__doc__.replace(
        "An MLP regressing a fitted map's coordinates (its teacher)",
        "The learned Poincaré map: exponential map of a 2-D tangent output; loss = squared Poincaré distance")

    disk = True


class ParametricUMAP(_LearnedMap):
    __doc__ = """Parametric UMAP: an MLP encoder trained with UMAP's cross-entropy on the shared graph's fuzzy edges.

    With a teacher (the UMAP map of the same points) the network first regresses it (at most `warm_epochs`,
    early-stopped), then UMAP's loss refines it while `teacher_weight` times the squared distance to the
    teacher (in units of its spread) keeps the two maps in agreement. Each UMAP epoch samples as many edges
    as there are points (at least 8192), in proportion to the edges' weights, and pushes every edge's head
    away from `negative_samples` other edges' tails.

    Parameters
    ----------
    n_neighbors : int
        UMAP n_neighbors of the fuzzy graph.
    min_dist : float
        UMAP min_dist (the a, b of the output similarity).
    n_epochs : int
        Epochs of UMAP's loss.
    warm_epochs : int
        Most epochs regressing the teacher first.
    negative_samples : int
        Negatives per edge.
    teacher_weight : float
        Weight of the pull towards the teacher's map.
""" + _NETWORK_DOC + "    "

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 2, None, closed="left")],
        "min_dist": [Interval(Real, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 0, None, closed="left")],
        "warm_epochs": [Interval(Integral, 1, None, closed="left")],
        "negative_samples": [Interval(Integral, 1, None, closed="left")],
        "teacher_weight": [Interval(Real, 0, None, closed="left")],
        **_NETWORK_CONSTRAINTS,
    }

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int = 50, warm_epochs: int = 100,
                 negative_samples: int = 5, teacher_weight: float = 0.1, hidden: int = 256, layers: int = 2,
                 batch_size: int = 512, learning_rate: float = 1e-3, metric: str = "cosine", device: str = "auto",
                 verbose: bool = False, random_state: int | None = 0):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.warm_epochs = warm_epochs
        self.negative_samples = negative_samples
        self.teacher_weight = teacher_weight
        self.hidden = hidden
        self.layers = layers
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.metric = metric
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def fit(self, X: object, y: Sequence | None = None, *, knn: KNNGraph | None = None,
            teacher: np.ndarray | None = None) -> ParametricUMAP:
        """Train on X's graph (`knn`, the shared graph of X, or one built here); `teacher`: UMAP coordinates."""
        from .networks import train_umap

        X = self._check_fit(X, y, knn)
        n = len(X)
        if self.n_neighbors >= n:
            raise DinoscopeError(f"ParametricUMAP needs 2 <= n_neighbors < n points, got {self.n_neighbors} for {n}")
        if knn is None:
            knn = knn_graph(X, k=self.n_neighbors - 1, metric=self.metric, seed=self._seed())
        target = None if teacher is None else check_teacher("ParametricUMAP", teacher, n)
        net = self._new_net(X, float(target.std()) if target is not None else 1.0)
        info = train_umap(net, X, knn, target, n_neighbors=self.n_neighbors, min_dist=self.min_dist,
                          n_epochs=self.n_epochs, warm_epochs=self.warm_epochs,
                          negative_samples=self.negative_samples, teacher_weight=self.teacher_weight,
                          batch_size=self.batch_size, learning_rate=self.learning_rate, seed=self._seed(),
                          progress=self.verbose)
        self._finish(net, X, info)
        return self

"""Hyperbolic maps in the Poincaré disk whose hyperbolic distances are the ones to read.

Two methods, both fed by the shared kNN graph:

* ``tsne`` — t-SNE in the hyperbolic plane (`hyperbolic_tsne`), on openTSNE's perplexity affinities
  from the graph's first 3·perplexity neighbours (as `maps.tsne` uses);
* ``umap`` — umap-learn with ``output_metric="hyperboloid"``, mapped to the disk.

Either map is then centred by an isometry only (a Möbius translation): the densest point of the
embedding space, the hyperbolic mean, or the medoid of a chosen class goes to the centre.
Distances are never squashed, so `ball.pairwise_distances` of `embedding_` is the map's
distance. Coordinates are float64: near the boundary float32 loses the digits distances need.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..errors import DinoscopeError
from ..geometry import EPS
from ..neighbors import METRICS, KNNGraph, knn_graph
from .base import MapEstimator
from .spectral import umap_on_graph

_DENSITY_K = 15  # neighbours whose mean distance measures density for center="density"
_MEDOID_SAMPLE = 2000  # largest class sample searched for a medoid


def hyperbolic_umap(X: np.ndarray, knn: KNNGraph, n_neighbors: int = 15, min_dist: float = 0.1,
                    n_epochs: int | None = None, random_state: int | None = 0) -> np.ndarray:
    """umap-learn on the hyperboloid from the shared graph, returned as Poincaré disk coordinates."""
    from ..geometry import ball

    model = umap_on_graph(X, knn, n_neighbors, n_epochs, random_state, min_dist=min_dist,
                          output_metric="hyperboloid")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(knn_search_index|n_jobs|gradient function).*")
        space = np.asarray(model.fit(X).embedding_, dtype=np.float64)  # the hyperboloid's spatial coordinates
    time = np.sqrt(1.0 + np.einsum("ij,ij->i", space, space))[:, None]
    return ball.hyperboloid_to_disk(np.hstack([time, space]))


def medoid(Y: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> int:
    """Row (of `rows`) with the smallest sum of Poincaré distances to the others; sampled for big classes."""
    from ..geometry import ball

    if len(rows) > _MEDOID_SAMPLE:
        rows = np.sort(rng.choice(rows, _MEDOID_SAMPLE, replace=False))
    return int(rows[np.argmin(ball.pairwise_distances(Y[rows], Y[rows]).sum(axis=1))])


def densest(knn: KNNGraph) -> int:
    """The point with the smallest mean distance to its nearest neighbours in the embedding space."""
    return int(np.argmin(knn.distances[:, :_DENSITY_K].mean(axis=1)))


class PoincareMap(MapEstimator):
    """Hyperbolic map into the Poincaré disk (t-SNE or UMAP on Poincaré distances), centred by an isometry.

    Parameters
    ----------
    method : {"tsne", "umap"}
        tsne: faithful hyperbolic t-SNE; umap: umap-learn's hyperboloid output (fast).
    perplexity : float
        t-SNE perplexity.
    n_iter : int
        t-SNE iterations after the early exaggeration.
    early_exaggeration_iter : int
        t-SNE iterations of early exaggeration.
    early_exaggeration : float
        t-SNE's early exaggeration factor.
    learning_rate : float or "auto"
        t-SNE step size; auto: n / early_exaggeration while exaggerated, a tenth of it afterwards.
    negative_samples : int
        Random repulsion partners per point and iteration above exact_max points.
    early_negative_samples : int
        The same during the early exaggeration, where the exaggerated attraction dominates: 4 instead of 32 kept
        the 70k Fashion-MNIST map's trustworthiness, 10-NN accuracy and hierarchy score and saved a third of its time.
    exact_max : int
        Up to this many points the t-SNE repulsion is exact.
    tol : float
        Stop t-SNE's plain phase once its KL divergence (estimated every 10 iterations) fell by less than this
        many nats per iteration; 0 runs all n_iter.
    scale : float
        t-SNE kernel's unit of hyperbolic distance; 1 pushes most points to the rim.
    n_neighbors : int
        UMAP n_neighbors (method umap).
    min_dist : float
        UMAP min_dist (method umap).
    n_epochs : int or None
        UMAP epochs (method umap); None lets umap-learn choose.
    center : {"density", "mean"} or None
        What the isometry moves to the centre: the densest point, the hyperbolic mean, or nothing.
    center_class : str or None
        Put this class's medoid at the centre instead (needs labels).
    eps : float
        Points stay at most 1 - eps from the centre.
    metric : str
        Embedding-space metric of a graph built here (the shared graph brings its own).
    verbose : bool
        Show a progress bar.
    random_state : int or None
        Seed of every random choice.
    """

    _parameter_constraints = {
        "method": [StrOptions({"tsne", "umap"})],
        "perplexity": [Interval(Real, 0, None, closed="neither")],
        "n_iter": [Interval(Integral, 50, None, closed="left")],
        "early_exaggeration_iter": [Interval(Integral, 0, None, closed="left")],
        "early_exaggeration": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "negative_samples": [Interval(Integral, 1, None, closed="left")],
        "early_negative_samples": [Interval(Integral, 1, None, closed="left")],
        "exact_max": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "n_neighbors": [Interval(Integral, 2, None, closed="left")],
        "min_dist": [Interval(Real, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "center": [StrOptions({"density", "mean"}), None],
        "center_class": [str, Integral, None],
        "eps": [Interval(Real, 0, 1, closed="neither")],
        "metric": [StrOptions(set(METRICS))],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, method: str = "tsne", perplexity: float = 15, n_iter: int = 250,
                 early_exaggeration_iter: int = 250, early_exaggeration: float = 12,
                 learning_rate: float | str = "auto", negative_samples: int = 32, early_negative_samples: int = 4,
                 exact_max: int = 1000,
                 tol: float = 0.0, scale: float = 0.3, n_neighbors: int = 15, min_dist: float = 0.1,
                 n_epochs: int | None = None,
                 center: str | None = "mean", center_class: str | int | None = None, eps: float = EPS,
                 metric: str = "cosine", verbose: bool = False, random_state: int | None = 0):
        self.method = method
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.negative_samples = negative_samples
        self.early_negative_samples = early_negative_samples
        self.exact_max = exact_max
        self.tol = tol
        self.scale = scale
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.center = center
        self.center_class = center_class
        self.eps = eps
        self.metric = metric
        self.verbose = verbose
        self.random_state = random_state

    def _graph(self, X: np.ndarray, knn: KNNGraph | None) -> KNNGraph:
        """The shared graph, or one built here with enough neighbours for the chosen method."""
        if knn is not None:
            return knn
        k = max(int(3 * self.perplexity), self.n_neighbors - 1, _DENSITY_K)
        return knn_graph(X, k=min(k, len(X) - 1), metric=self.metric, seed=self.random_state or 0)

    def _layout(self, X: np.ndarray, knn: KNNGraph) -> np.ndarray:
        """Uncentred disk coordinates from the chosen method."""
        if self.method == "umap":
            return hyperbolic_umap(X, knn, self.n_neighbors, self.min_dist, self.n_epochs, self.random_state)
        from .affinities import symmetric_p
        from .hyperbolic_tsne import all_pairs, hyperbolic_tsne, initial_layout

        n = len(X)
        seed = int(np.random.default_rng(self.random_state).integers(2**62))
        result = hyperbolic_tsne(symmetric_p(knn, X, self.perplexity), initial_layout(X, self.random_state),
                                 n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter,
                                 early_exaggeration=self.early_exaggeration, learning_rate=self.learning_rate,
                                 pairs=all_pairs(n) if n <= self.exact_max else None,
                                 negative_samples=min(self.negative_samples, n - 1),
                                 early_negative_samples=min(self.early_negative_samples, n - 1), seed=seed,
                                 eps=self.eps, scale=self.scale, tol=self.tol, verbose=self.verbose)
        self.n_iter_, self.kl_divergence_ = result.n_iter, (result.kl[-1] if result.kl else None)
        return result.embedding

    def _center_point(self, Y: np.ndarray, knn: KNNGraph, labels: Sequence | None) -> np.ndarray | None:
        """The disk point the isometry moves to the centre (None: leave the layout as it is)."""
        from ..geometry import ball

        if self.center_class is not None:
            rows = np.flatnonzero(np.array([str(lab) for lab in labels]) == str(self.center_class))
            if len(rows) == 0:
                raise DinoscopeError(f"center_class {self.center_class!r} is not among the labels")
            self.center_index_ = medoid(Y, rows, np.random.default_rng(self.random_state))
        elif self.center == "density":
            self.center_index_ = densest(knn)
        else:
            self.center_index_ = None
            return ball.mean(Y) if self.center == "mean" else None
        return Y[self.center_index_]

    def fit(self, X: object, y: Sequence | None = None, *, knn: KNNGraph | None = None) -> PoincareMap:
        """Embed X in the disk; `knn` is the shared graph of X, the labels `y` are needed for `center_class`."""
        from ..geometry import ball

        X = self._check_fit(X, y, knn)
        if self.center_class is not None and y is None:
            raise DinoscopeError("center_class needs labels: call fit(X, y=labels)")
        if self.method == "umap" and self.n_neighbors >= len(X):
            raise DinoscopeError(f"UMAP needs 2 <= n_neighbors < n points, got {self.n_neighbors} for {len(X)}")
        knn = self._graph(X, knn)
        Y = self._layout(X, knn)
        self.center_ = self._center_point(Y, knn, y)
        if self.center_ is not None:
            Y = ball.move_to_origin(Y, self.center_)
        self.n_features_in_ = X.shape[1]
        self.embedding_ = ball.project(Y, self.eps)
        return self

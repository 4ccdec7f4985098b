"""Hyperbolic maps in the Poincaré disk whose hyperbolic distances are the ones to read.

Two methods, both fed by the shared kNN graph:

* ``tsne`` — t-SNE in the hyperbolic plane. Input affinities P are openTSNE's perplexity
  affinities from the graph's first 3·perplexity neighbours (as `maps.tsne` does); output
  similarities are q_ij ∝ w_ij = (1 + d_ij²)⁻¹ on Poincaré distances d_ij. With a_i = 1 - |y_i|²
  and t_ij² = |y_i - y_j|² / (a_i a_j), so that d_ij = 2·asinh(t_ij), the KL divergence has

      ∂C/∂y_i = 2 Σ_j (α p_ij - q_ij) w_ij ∂(d_ij²)/∂y_i,
      ∂(d_ij²)/∂y_i = 4 d_ij / (t_ij sqrt(1 + t_ij²)) · [(y_i - y_j) + (|y_i - y_j|² / a_i) y_i] / (a_i a_j)

  (α is the early exaggeration). Note the factor d_ij: the kernel is a function of d², and
  using ∂d instead of ∂(d²) — as some published code did — gives a different, wrong force.
  Steps follow the Riemannian gradient (a_i² / 4 times the Euclidean one) along the exponential
  map, with openTSNE's momentum and gains, and every point is kept at most 1 - eps from the
  centre. The attraction is exact (sparse P); the repulsion is exact for n <= `exact_max` and
  otherwise estimated from `negative_samples` random partners per point and iteration, an
  unbiased estimate of the same sums (its normaliser Z from the same samples).
* ``umap`` — umap-learn with ``output_metric="hyperboloid"``, mapped to the disk.

Either map is then centred by an isometry only (a Möbius translation): the densest point of the
embedding space, the hyperbolic mean, or the medoid of a chosen class goes to the centre.
Distances are never squashed, so `geometry.pairwise_distances` of `embedding_` is the map's
distance. Coordinates are float64: near the boundary float32 loses the digits distances need.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numba
import numpy as np
import scipy.sparse as sp
import torch
from openTSNE import initialization
from sklearn.base import BaseEstimator

from .. import geometry
from ..errors import DinoscopeError
from ..neighbors import KNNGraph, as_points, knn_graph
from .tsne import graph_affinities
from .umap import umap_knn

METHODS = ("tsne", "umap")
CENTERS = ("density", "mean", None)
_DENSITY_K = 15  # neighbours whose mean distance measures density for center="density"
_MEDOID_SAMPLE = 2000  # largest class sample searched for a medoid
# "auto" learning rate: openTSNE's n / exaggeration while exaggerated, a hundredth of that afterwards. The
# plain phase's expansion overshoots with longer steps, and in the disk overshooting points do not
# come back from the boundary (openTSNE's n would put most of them at 1 - eps).
_PLAIN_LR = 0.01


# --------------------------------------------------------------------------- t-SNE pieces

def tsne_affinities(knn: KNNGraph, X: np.ndarray, perplexity: float) -> sp.csr_matrix:
    """Symmetric P (sums to 1) from the first 3·perplexity neighbours of the shared graph, by openTSNE."""
    P = graph_affinities(knn, X, perplexity).P.tocsr().astype(np.float64)
    P.sort_indices()
    return P


def initial_layout(X: np.ndarray, random_state: int | None) -> np.ndarray:
    """First two principal components, scaled to standard deviation 1e-4: a tiny, flat patch at the centre."""
    return np.asarray(initialization.pca(X, random_state=random_state), dtype=np.float64)


@numba.njit(inline="always", cache=True)
def _pair(u0: float, u1: float, v0: float, v1: float, inv_s2: float) -> tuple[float, float, float]:
    """Kernel w = 1 / (1 + d²/s²) and ∂(d²/s²)/∂u for the Poincaré distance d between u and v (2-D)."""
    e0, e1 = u0 - v0, u1 - v1
    s = e0 * e0 + e1 * e1
    au = max(1.0 - u0 * u0 - u1 * u1, geometry.TINY)
    av = max(1.0 - v0 * v0 - v1 * v1, geometry.TINY)
    t = np.sqrt(s / (au * av))
    d = 2.0 * np.arcsinh(t)
    ratio = 2.0 if t < 1e-8 else d / (t * np.sqrt(1.0 + t * t))  # d / (t sqrt(1+t²)) → 2 as t → 0
    c = 4.0 * ratio * inv_s2 / (au * av)
    k = s / au
    return 1.0 / (1.0 + d * d * inv_s2), c * (e0 + k * u0), c * (e1 + k * u1)


def _attraction(Y, indptr, indices, p, inv_s2, out):  # pragma: no cover - numba
    """out_i = 2 Σ_j p_ij w_ij ∂(d_ij²)/∂y_i over the sparse rows of P."""
    for i in numba.prange(Y.shape[0]):
        g0 = g1 = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            w, h0, h1 = _pair(Y[i, 0], Y[i, 1], Y[j, 0], Y[j, 1], inv_s2)
            g0 += p[e] * w * h0
            g1 += p[e] * w * h1
        out[i, 0] = 2.0 * g0
        out[i, 1] = 2.0 * g1


def _repulsion(Y, partners, inv_s2, out, wsum):  # pragma: no cover - numba
    """out_i = Σ_s w_is² ∂(d_is²)/∂y_i and wsum_i = Σ_s w_is over each point's partners s."""
    for i in numba.prange(Y.shape[0]):
        g0 = g1 = z = 0.0
        for s in range(partners.shape[1]):
            j = partners[i, s]
            w, h0, h1 = _pair(Y[i, 0], Y[i, 1], Y[j, 0], Y[j, 1], inv_s2)
            z += w
            g0 += w * w * h0
            g1 += w * w * h1
        out[i, 0] = g0
        out[i, 1] = g1
        wsum[i] = z


# Threads pay off only for large layouts: below this, waking them costs more than the work (and on a
# busy 2-core machine, much more), so small maps run serially. Results are identical either way.
_PARALLEL_MIN = 20000
_KERNELS = {parallel: (numba.njit(parallel=parallel, cache=not parallel)(_attraction),
                       numba.njit(parallel=parallel, cache=not parallel)(_repulsion)) for parallel in (False, True)}


def all_partners(n: int) -> np.ndarray:
    """(n, n-1) every other point, for the exact repulsion."""
    j = np.arange(n - 1, dtype=np.int64)[None, :]
    return j + (j >= np.arange(n)[:, None])


def sampled_partners(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """(n, m) partners drawn uniformly among the other points, for the sampled repulsion."""
    return (np.arange(n)[:, None] + rng.integers(1, n, size=(n, m))) % n


def tsne_gradient(Y: np.ndarray, P: sp.csr_matrix, partners: np.ndarray, exaggeration: float = 1.0,
                  scale: float = 1.0) -> np.ndarray:
    """Euclidean gradient of KL(P‖Q) with Poincaré t-SNE kernel; exact when `partners` is `all_partners(n)`."""
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    attract, repel, wsum = np.empty_like(Y), np.empty_like(Y), np.empty(len(Y))
    attraction, repulsion = _KERNELS[len(Y) >= _PARALLEL_MIN]
    inv_s2 = 1.0 / (scale * scale)
    attraction(Y, P.indptr, P.indices, P.data, inv_s2, attract)
    repulsion(Y, partners, inv_s2, repel, wsum)
    return exaggeration * attract - (2.0 / wsum.sum()) * repel  # partner sampling rate cancels in the ratio


class RiemannianDescent:
    """openTSNE's gradient descent (momentum, per-coordinate gains) along the Poincaré ball's geodesics."""

    def __init__(self, eps: float = geometry.EPS, min_gain: float = 0.01):
        self.eps = eps
        self.min_gain = min_gain
        self.update: np.ndarray | None = None
        self.gains: np.ndarray | None = None

    def step(self, Y: np.ndarray, grad: np.ndarray, learning_rate: float, momentum: float) -> np.ndarray:
        """One step: Riemannian gradient (1 - |y|²)²/4 · grad, momentum, exponential map, projection."""
        if self.update is None:
            self.update, self.gains = np.zeros_like(Y), np.ones_like(Y)
        grad = grad * ((1.0 - np.einsum("ij,ij->i", Y, Y)) ** 2 / 4.0)[:, None]
        same = np.sign(grad) == np.sign(self.update)
        self.gains = np.maximum(np.where(same, self.gains * 0.8, self.gains + 0.2), self.min_gain)
        self.update = momentum * self.update - learning_rate * self.gains * grad
        self.update = np.nan_to_num(self.update, posinf=1e300, neginf=-1e300)  # steps beyond float range saturate
        return geometry.project(geometry.expmap(Y, self.update), self.eps)


def hyperbolic_tsne(P: sp.csr_matrix, Y: np.ndarray, *, n_iter: int = 750, early_exaggeration_iter: int = 250,
                    early_exaggeration: float = 12.0, learning_rate: float | str = "auto",
                    partners: Callable[[], np.ndarray], eps: float = geometry.EPS, scale: float = 1.0) -> np.ndarray:
    """Optimise a disk layout from Y against P: exaggerated phase (momentum 0.5), then the plain one (0.8).

    `learning_rate` "auto" is n / early_exaggeration in the first phase and a hundredth of it in the second,
    times scale² (the kernel's distances are d / scale, so its gradients grow as 1 / scale²).
    """
    n = len(Y)
    descent = RiemannianDescent(eps)
    Y = geometry.project(np.asarray(Y, dtype=np.float64), eps)
    auto = max(n / early_exaggeration, 50.0) * scale * scale
    phases = ((early_exaggeration_iter, early_exaggeration, 0.5, auto), (n_iter, 1.0, 0.8, auto * _PLAIN_LR))
    with _torch_threads(1):
        for iters, exaggeration, momentum, lr in phases:
            lr = lr if learning_rate == "auto" else float(learning_rate)
            for _ in range(iters):
                Y = descent.step(Y, tsne_gradient(Y, P, partners(), exaggeration, scale), lr, momentum)
    return Y


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run torch on n threads for a while: the optimiser's small elementwise steps only lose by threading."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- UMAP

def hyperbolic_umap(X: np.ndarray, knn: KNNGraph, n_neighbors: int = 15, min_dist: float = 0.1,
                    n_epochs: int | None = None, random_state: int | None = 0) -> np.ndarray:
    """umap-learn on the hyperboloid from the shared graph, returned as Poincaré disk coordinates."""
    import umap

    model = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, n_epochs=n_epochs, metric=knn.metric,
                      output_metric="hyperboloid", random_state=random_state,
                      n_jobs=1 if random_state is not None else -1)
    model.precomputed_knn = (*umap_knn(knn, n_neighbors), None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(knn_search_index|n_jobs|gradient function).*")
        space = np.asarray(model.fit(X).embedding_, dtype=np.float64)  # the hyperboloid's spatial coordinates
    time = np.sqrt(1.0 + np.einsum("ij,ij->i", space, space))[:, None]
    return geometry.hyperboloid_to_disk(np.hstack([time, space]))


# --------------------------------------------------------------------------- centring

def medoid(Y: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> int:
    """Row (of `rows`) with the smallest sum of Poincaré distances to the others; sampled for big classes."""
    if len(rows) > _MEDOID_SAMPLE:
        rows = np.sort(rng.choice(rows, _MEDOID_SAMPLE, replace=False))
    return int(rows[np.argmin(geometry.pairwise_distances(Y[rows], Y[rows]).sum(axis=1))])


def densest(knn: KNNGraph) -> int:
    """The point with the smallest mean distance to its nearest neighbours in the embedding space."""
    return int(np.argmin(knn.distances[:, :_DENSITY_K].mean(axis=1)))


class PoincareMap(BaseEstimator):
    """Hyperbolic map into the Poincaré disk (t-SNE or UMAP on Poincaré distances), centred by an isometry.

    t-SNE settings: perplexity, n_iter, early_exaggeration_iter, early_exaggeration, learning_rate
    (see `hyperbolic_tsne`), negative_samples, exact_max. UMAP settings: n_neighbors,
    min_dist, n_epochs. `center`: "density" (densest point), "mean" (hyperbolic mean) or None;
    `center_class` (a label, needs `labels` in `fit`) overrides it with that class's medoid.
    `metric` is the embedding-space metric of the graph built when `fit` gets none. `scale` (t-SNE) is the
    kernel's unit of hyperbolic distance, w = 1 / (1 + d²/scale²): at 1 most points settle near the rim; the
    default 0.3 keeps the layout readable (median radius ≈ 0.6 on digits) with the same trustworthiness.
    """

    def __init__(self, method: str = "tsne", perplexity: float = 30, n_iter: int = 750,
                 early_exaggeration_iter: int = 250, early_exaggeration: float = 12,
                 learning_rate: float | str = "auto", negative_samples: int = 32, exact_max: int = 1000,
                 n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = None,
                 center: str | None = "mean", center_class: str | int | None = None, metric: str = "cosine",
                 scale: float = 0.3, eps: float = geometry.EPS, random_state: int | None = 0):
        self.method = method
        self.perplexity = perplexity
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.early_exaggeration = early_exaggeration
        self.learning_rate = learning_rate
        self.negative_samples = negative_samples
        self.exact_max = exact_max
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.center = center
        self.center_class = center_class
        self.metric = metric
        self.scale = scale
        self.eps = eps
        self.random_state = random_state

    def _check(self, n: int, labels: Sequence | None) -> None:
        if self.method not in METHODS:
            raise DinoscopeError(f"unknown Poincaré method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.center not in CENTERS:
            raise DinoscopeError(f"unknown center {self.center!r}; choose density, mean or None")
        if self.center_class is not None and labels is None:
            raise DinoscopeError("center_class needs labels: call fit(X, labels=...)")
        if labels is not None and len(labels) != n:
            raise DinoscopeError(f"{len(labels)} labels for {n} points")
        if not 0 < self.eps < 1:
            raise DinoscopeError(f"eps must lie in (0, 1), got {self.eps}")
        if self.method == "tsne" and not (self.perplexity > 0 and self.negative_samples >= 1):
            raise DinoscopeError("perplexity must be positive and negative_samples at least 1")
        if self.method == "umap" and not 2 <= self.n_neighbors < n:
            raise DinoscopeError(f"UMAP needs 2 <= n_neighbors < n points, got {self.n_neighbors} for {n}")

    def _graph(self, X: np.ndarray, knn: KNNGraph | None) -> KNNGraph:
        """The shared graph (checked) or one built here with enough neighbours for the chosen method."""
        n = len(X)
        if knn is None:
            k = max(int(3 * self.perplexity), self.n_neighbors - 1, _DENSITY_K)
            return knn_graph(X, k=min(k, n - 1), metric=self.metric, seed=self.random_state or 0)
        if len(knn) != n:
            raise DinoscopeError(f"the kNN graph has {len(knn)} points but X has {n}")
        return knn

    def _layout(self, X: np.ndarray, knn: KNNGraph) -> np.ndarray:
        """Uncentred disk coordinates from the chosen method."""
        if self.method == "umap":
            return hyperbolic_umap(X, knn, self.n_neighbors, self.min_dist, self.n_epochs, self.random_state)
        n = len(X)
        rng = np.random.default_rng(self.random_state)
        exact = all_partners(n) if n <= self.exact_max else None
        m = min(self.negative_samples, n - 1)
        partners = (lambda: exact) if exact is not None else (lambda: sampled_partners(n, m, rng))
        return hyperbolic_tsne(tsne_affinities(knn, X, self.perplexity), initial_layout(X, self.random_state),
                               n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter,
                               early_exaggeration=self.early_exaggeration, learning_rate=self.learning_rate,
                               partners=partners, eps=self.eps, scale=self.scale)

    def _center_point(self, Y: np.ndarray, knn: KNNGraph, labels: Sequence | None) -> np.ndarray | None:
        """The disk point the isometry moves to the centre (None: leave the layout as it is)."""
        if self.center_class is not None:
            rows = np.flatnonzero(np.array([str(lab) for lab in labels]) == str(self.center_class))
            if len(rows) == 0:
                raise DinoscopeError(f"center_class {self.center_class!r} is not among the labels")
            self.center_index_ = medoid(Y, rows, np.random.default_rng(self.random_state))
        elif self.center == "density":
            self.center_index_ = densest(knn)
        else:
            self.center_index_ = None
            return geometry.mean(Y) if self.center == "mean" else None
        return Y[self.center_index_]

    def fit(self, X: object, knn: KNNGraph | None = None, labels: Sequence | None = None) -> PoincareMap:
        """Embed X in the disk; `knn` is the shared graph of X, `labels` are needed for `center_class`."""
        X = as_points(X)
        self._check(len(X), labels)
        knn = self._graph(X, knn)
        Y = self._layout(X, knn)
        self.center_ = self._center_point(Y, knn, labels)
        if self.center_ is not None:
            Y = geometry.move_to_origin(Y, self.center_)
        self.n_features_in_ = X.shape[1]
        self.embedding_ = geometry.project(Y, self.eps)
        return self

    def fit_transform(self, X: object, knn: KNNGraph | None = None, labels: Sequence | None = None) -> np.ndarray:
        """Fit and return the (n, 2) disk coordinates of X, all with |y| <= 1 - eps."""
        return self.fit(X, knn, labels).embedding_

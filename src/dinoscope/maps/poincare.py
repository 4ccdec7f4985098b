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
  map, with openTSNE's momentum and gains, each point's step capped at one kernel unit of
  hyperbolic length, and every point is kept at most 1 - eps from the centre. Each pair's force
  is computed once and applied to both ends. The attraction is exact (sparse P); the repulsion
  is exact for n <= `exact_max` and otherwise estimated from `negative_samples` random partners
  per point and iteration, an unbiased estimate of the same sums (Z from the same pairs).
* ``umap`` — umap-learn with ``output_metric="hyperboloid"``, mapped to the disk.

Either map is then centred by an isometry only (a Möbius translation): the densest point of the
embedding space, the hyperbolic mean, or the medoid of a chosen class goes to the centre.
Distances are never squashed, so `ball.pairwise_distances` of `embedding_` is the map's
distance. Coordinates are float64: near the boundary float32 loses the digits distances need.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numba
import numpy as np
import scipy.sparse as sp
from openTSNE import initialization
from sklearn.base import BaseEstimator

from ..checks import as_points
from ..errors import DinoscopeError
from ..geometry import ball
from ..neighbors import KNNGraph, knn_graph
from .tsne import graph_affinities
from .umap import umap_knn

METHODS = ("tsne", "umap")
CENTERS = ("density", "mean", None)
_DENSITY_K = 15  # neighbours whose mean distance measures density for center="density"
_MEDOID_SAMPLE = 2000  # largest class sample searched for a medoid
# "auto" learning rate: openTSNE's n / exaggeration while exaggerated, a tenth of that afterwards (openTSNE's n
# would fling most points to 1 - eps). No point moves farther than _MAX_STEP kernel units in one iteration.
_PLAIN_LR = 0.1
_MAX_STEP = 1.0


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
def _pair(e0: float, e1: float, ia: float, ib: float, inv_s2: float) -> tuple[float, float, float]:
    """For e = y_i - y_j, ia = 1 / (1 - |y_i|²) and ib alike: kernel w = 1 / (1 + d²/s²), factor c and |e|².

    ∂(d²/s²)/∂y_i = c · (e + |e|² ia y_i) and ∂(d²/s²)/∂y_j = c · (|e|² ib y_j - e).
    """
    s = e0 * e0 + e1 * e1
    x = s * ia * ib  # t²
    q = np.sqrt(1.0 + x)
    t = np.sqrt(x)
    d = 2.0 * np.log1p(t + x / (1.0 + q))  # 2·asinh(t), exact for small t as well
    ratio = 2.0 if t < 1e-8 else d / (t * q)  # d / (t sqrt(1+t²)) → 2 as t → 0
    return 1.0 / (1.0 + d * d * inv_s2), 4.0 * ratio * inv_s2 * ia * ib, s


def _pair_forces(Y, ia, rows, cols, p, inv_s2, attract, bounds, out, wsum):  # pragma: no cover - numba
    """Over pairs (i, j), each listed once, add f·∂(d²/s²)/∂y to both ends and sum w per chunk into wsum.

    f = p_ij w_ij (attraction: -∂ log w) or w_ij² (repulsion: -∂w). Pairs are cut into fixed chunks
    (`bounds`), each adding into its own slice of `out`: threads never write to the same place, and the sums do
    not depend on their number.
    """
    for c in numba.prange(len(bounds) - 1):
        z = 0.0
        for e in range(bounds[c], bounds[c + 1]):
            i, j = rows[e], cols[e]
            e0, e1 = Y[i, 0] - Y[j, 0], Y[i, 1] - Y[j, 1]
            w, k, s = _pair(e0, e1, ia[i], ia[j], inv_s2)
            z += w
            f = k * w * (p[e] if attract else w)
            out[c, i, 0] += f * (e0 + s * ia[i] * Y[i, 0])
            out[c, i, 1] += f * (e1 + s * ia[i] * Y[i, 1])
            out[c, j, 0] += f * (s * ia[j] * Y[j, 0] - e0)
            out[c, j, 1] += f * (s * ia[j] * Y[j, 1] - e1)
        wsum[c] = z


# Threads pay off only for large layouts: below this, waking them costs more than the work (and on a
# busy 2-core machine, much more), so small maps run serially. Results are identical either way.
_PARALLEL_MIN = 20000
_CHUNKS = 8  # pair chunks, each with its own force buffer; fixed, so sums do not depend on the thread count
_KERNELS = {parallel: numba.njit(parallel=parallel, cache=not parallel)(_pair_forces) for parallel in (False, True)}

Pairs = tuple[np.ndarray, np.ndarray]


def attraction_edges(P: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, p) of the symmetric P's upper triangle: every attracting pair once."""
    upper = sp.triu(P, k=1, format="coo")
    return upper.row.astype(np.int64), upper.col.astype(np.int64), upper.data.astype(np.float64)


def all_pairs(n: int) -> Pairs:
    """Every pair i < j once, for the exact repulsion."""
    rows, cols = np.triu_indices(n, 1)
    return rows.astype(np.int64), cols.astype(np.int64)


def sampled_pairs(n: int, m: int, rng: np.random.Generator) -> Pairs:
    """n·m pairs: every point with m partners drawn uniformly among the others, for the sampled repulsion."""
    rows = np.repeat(np.arange(n, dtype=np.int64), m)
    return rows, (rows + rng.integers(1, n, size=n * m)) % n


def _forces(Y: np.ndarray, ia: np.ndarray, rows: np.ndarray, cols: np.ndarray, p: np.ndarray, inv_s2: float,
            attract: bool) -> tuple[np.ndarray, float]:
    """Summed pair forces on every point and Σ w over the pairs (see `_pair_forces`)."""
    out, wsum = np.zeros((_CHUNKS, *Y.shape)), np.zeros(_CHUNKS)
    bounds = np.linspace(0, len(rows), _CHUNKS + 1).astype(np.int64)
    _KERNELS[len(Y) >= _PARALLEL_MIN](Y, ia, rows, cols, p, inv_s2, attract, bounds, out, wsum)
    return out.sum(axis=0), float(wsum.sum())


def tsne_gradient(Y: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray], pairs: Pairs,
                  exaggeration: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """Euclidean gradient of KL(P‖Q), q ∝ 1 / (1 + d²/scale²) on Poincaré distances d, P by `attraction_edges`.

    Exact when `pairs` is `all_pairs(n)`; with `sampled_pairs` the repulsion and its normaliser are estimated
    from the same pairs (the sampling rate cancels in their ratio).
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    ia = 1.0 / np.maximum(1.0 - np.einsum("ij,ij->i", Y, Y), ball.TINY)
    inv_s2 = 1.0 / (scale * scale)
    attract, _ = _forces(Y, ia, *edges, inv_s2, True)
    repel, wsum = _forces(Y, ia, *pairs, np.empty(0), inv_s2, False)
    return 2.0 * exaggeration * attract - repel / wsum


class RiemannianDescent:
    """openTSNE's gradient descent (momentum, per-coordinate gains) along the Poincaré ball's geodesics.

    No point moves farther than `max_step` (hyperbolic length) in one step: momentum and gains can otherwise
    fling a lone point towards the rim, where nothing pulls it back within the remaining iterations.
    """

    def __init__(self, eps: float = ball.EPS, min_gain: float = 0.01, max_step: float = np.inf):
        self.eps = eps
        self.min_gain = min_gain
        self.max_step = max_step
        self.update: np.ndarray | None = None
        self.gains: np.ndarray | None = None

    def step(self, Y: np.ndarray, grad: np.ndarray, learning_rate: float, momentum: float) -> np.ndarray:
        """One step: Riemannian gradient (1 - |y|²)²/4 · grad, momentum, step cap, exponential map, projection."""
        if self.update is None:
            self.update, self.gains = np.zeros_like(Y), np.ones_like(Y)
        a = 1.0 - np.einsum("ij,ij->i", Y, Y)
        grad = grad * (a * a / 4.0)[:, None]
        same = np.sign(grad) == np.sign(self.update)
        self.gains = np.maximum(np.where(same, self.gains * 0.8, self.gains + 0.2), self.min_gain)
        self.update = momentum * self.update - learning_rate * self.gains * grad
        self.update = np.nan_to_num(self.update, posinf=1e300, neginf=-1e300)  # steps beyond float range saturate
        length = 2.0 * np.hypot(self.update[:, 0], self.update[:, 1]) / np.maximum(a, ball.TINY)
        self.update *= np.minimum(1.0, self.max_step / np.maximum(length, ball.TINY))[:, None]
        return ball.project(ball.expmap(Y, self.update), self.eps)


def hyperbolic_tsne(P: sp.csr_matrix, Y: np.ndarray, *, n_iter: int = 250, early_exaggeration_iter: int = 250,
                    early_exaggeration: float = 12.0, learning_rate: float | str = "auto",
                    pairs: Callable[[], Pairs], eps: float = ball.EPS, scale: float = 1.0) -> np.ndarray:
    """Optimise a disk layout from Y against P: exaggerated phase (momentum 0.5), then the plain one (0.8).

    `learning_rate` "auto" is n / early_exaggeration in the first phase and a tenth of it in the second,
    times scale² (the kernel's distances are d / scale, so its gradients grow as 1 / scale²).
    """
    n = len(Y)
    descent = RiemannianDescent(eps, max_step=_MAX_STEP * scale)
    Y = ball.project(np.asarray(Y, dtype=np.float64), eps)
    auto = max(n / early_exaggeration, 50.0) * scale * scale
    phases = ((early_exaggeration_iter, early_exaggeration, 0.5, auto),
              (n_iter, 1.0, 0.8, auto * _PLAIN_LR))
    edges = attraction_edges(P)
    for iters, alpha, momentum, lr in phases:
        lr = lr if learning_rate == "auto" else float(learning_rate)
        for _ in range(iters):
            Y = descent.step(Y, tsne_gradient(Y, edges, pairs(), alpha, scale), lr, momentum)
    return Y


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
    return ball.hyperboloid_to_disk(np.hstack([time, space]))


# --------------------------------------------------------------------------- centring

def medoid(Y: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> int:
    """Row (of `rows`) with the smallest sum of Poincaré distances to the others; sampled for big classes."""
    if len(rows) > _MEDOID_SAMPLE:
        rows = np.sort(rng.choice(rows, _MEDOID_SAMPLE, replace=False))
    return int(rows[np.argmin(ball.pairwise_distances(Y[rows], Y[rows]).sum(axis=1))])


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
    default 0.3 keeps the layout readable (median radius ≈ 0.85 on digits) with the same trustworthiness.
    """

    def __init__(self, method: str = "tsne", perplexity: float = 15, n_iter: int = 250,
                 early_exaggeration_iter: int = 250, early_exaggeration: float = 12,
                 learning_rate: float | str = "auto", negative_samples: int = 32, exact_max: int = 1000,
                 n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = None,
                 center: str | None = "mean", center_class: str | int | None = None, metric: str = "cosine",
                 scale: float = 0.3, eps: float = ball.EPS, random_state: int | None = 0):
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
        exact = all_pairs(n) if n <= self.exact_max else None
        m = min(self.negative_samples, n - 1)
        pairs = (lambda: exact) if exact is not None else (lambda: sampled_pairs(n, m, rng))
        return hyperbolic_tsne(tsne_affinities(knn, X, self.perplexity), initial_layout(X, self.random_state),
                               n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter,
                               early_exaggeration=self.early_exaggeration, learning_rate=self.learning_rate,
                               pairs=pairs, eps=self.eps, scale=self.scale)

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
            return ball.mean(Y) if self.center == "mean" else None
        return Y[self.center_index_]

    def fit(self, X: object, knn: KNNGraph | None = None, labels: Sequence | None = None) -> PoincareMap:
        """Embed X in the disk; `knn` is the shared graph of X, `labels` are needed for `center_class`."""
        X = as_points(X)
        self._check(len(X), labels)
        knn = self._graph(X, knn)
        Y = self._layout(X, knn)
        self.center_ = self._center_point(Y, knn, labels)
        if self.center_ is not None:
            Y = ball.move_to_origin(Y, self.center_)
        self.n_features_in_ = X.shape[1]
        self.embedding_ = ball.project(Y, self.eps)
        return self

    def fit_transform(self, X: object, knn: KNNGraph | None = None, labels: Sequence | None = None) -> np.ndarray:
        """Fit and return the (n, 2) disk coordinates of X, all with |y| <= 1 - eps."""
        return self.fit(X, knn, labels).embedding_

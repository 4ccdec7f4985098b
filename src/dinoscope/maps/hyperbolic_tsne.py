"""t-SNE in the hyperbolic plane (the Poincaré disk map's default method), as separate pieces: affinities come
from `affinities.symmetric_p`, the initial layout from PCA, and the optimiser here.

Output similarities are q_ij ∝ w_ij = (1 + d_ij²/s²)⁻¹ on Poincaré distances d_ij (s: the kernel's `scale`).
With a_i = 1 - |y_i|² and t_ij² = |y_i - y_j|² / (a_i a_j), so that d_ij = 2·asinh(t_ij), the KL divergence has

    ∂C/∂y_i = 2 Σ_j (α p_ij - q_ij) w_ij ∂(d_ij²)/∂y_i,
    ∂(d_ij²)/∂y_i = 4 d_ij / (t_ij sqrt(1 + t_ij²)) · [(y_i - y_j) + (|y_i - y_j|² / a_i) y_i] / (a_i a_j)

(α is the early exaggeration; shown for s = 1). Note the factor d_ij: the kernel is a function of d², and
using ∂d instead of ∂(d²) — as some published code did — gives a different, wrong force. Steps follow the
Riemannian gradient (a_i² / 4 times the Euclidean one) along the exponential map, with openTSNE's momentum
and gains, each point's step capped at one kernel unit of hyperbolic length, and every point is kept at most
1 - eps from the centre. Each pair's force is computed once and applied to both ends. The attraction is exact
(sparse P); the repulsion is exact over `all_pairs` or estimated from `sampled_pairs`, an unbiased estimate
of the same sums (Z from the same pairs).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import scipy.sparse as sp
from openTSNE import initialization

from ..console import progress_bar
from ..geometry import ball

# "auto" learning rate: openTSNE's n / exaggeration while exaggerated, a tenth of that afterwards (openTSNE's n
# would fling most points to 1 - eps). No point moves farther than _MAX_STEP kernel units in one iteration.
_PLAIN_LR = 0.1
_MAX_STEP = 1.0


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
                    pairs: Callable[[], Pairs], eps: float = ball.EPS, scale: float = 1.0,
                    verbose: bool = False) -> np.ndarray:
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
    with progress_bar("hyperbolic t-SNE", enabled=verbose) as bar:
        task = bar.add_task("hyperbolic t-SNE", total=early_exaggeration_iter + n_iter)
        for iters, alpha, momentum, lr in phases:
            lr = lr if learning_rate == "auto" else float(learning_rate)
            for _ in range(iters):
                Y = descent.step(Y, tsne_gradient(Y, edges, pairs(), alpha, scale), lr, momentum)
                bar.advance(task)
    return Y

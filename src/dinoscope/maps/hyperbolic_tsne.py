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
(sparse P); the repulsion is exact over `all_pairs` or estimated from m random partners per point, an unbiased
estimate of the same sums (Z from the same pairs). The partners are drawn inside the force kernel by a
counter-based generator (a hash of seed, iteration, point and draw), so no pair list is built per iteration and
the draws do not depend on the number of threads.

Points are renumbered internally (reverse Cuthill-McKee on P) so that neighbours sit in nearby rows and the
kernel's scattered reads and writes mostly hit the cache; the result comes back in the caller's order.

Every `check_every` iterations of the plain phase the KL divergence is estimated (its attraction part exactly,
log Z from the sampled pairs; all checks use one draw, so that their differences carry little sampling noise),
and the phase can stop once it fell by less than `tol` nats per iteration since the previous check.
Coordinates stay float64 throughout: at 1 - 1e-5 from the centre float32 keeps only a few digits of 1 - |y|²,
which every force divides by.
"""

from __future__ import annotations

import types
from typing import NamedTuple

import numba
import numpy as np
import scipy.sparse as sp
from openTSNE import initialization
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..console import progress_bar
from ..geometry import ball

# "auto" learning rate: openTSNE's n / exaggeration while exaggerated, a tenth of that afterwards (openTSNE's n
# would fling most points to 1 - eps). No point moves farther than _MAX_STEP kernel units in one iteration.
_PLAIN_LR = 0.1
_MAX_STEP = 1.0
_TINY = ball.TINY
# numpy's error model: a float division by zero gives inf instead of a checked branch in every pair's arithmetic
# (the kernels guard their divisors themselves)
_JIT = {"cache": True, "error_model": "numpy"}


def initial_layout(X: np.ndarray, random_state: int | None) -> np.ndarray:
    """First two principal components, scaled to standard deviation 1e-4: a tiny, flat patch at the centre."""
    return np.asarray(initialization.pca(X, random_state=random_state), dtype=np.float64)


@numba.njit(inline="always", **_JIT)
def _pair(e0: float, e1: float, ia: float, ib: float, inv_s2: float) -> tuple[float, float, float]:
    """For e = y_i - y_j, ia = 1 / (1 - |y_i|²) and ib alike: kernel w = 1 / (1 + d²/s²), factor c and |e|².

    ∂(d²/s²)/∂y_i = c · (e + |e|² ia y_i) and ∂(d²/s²)/∂y_j = c · (|e|² ib y_j - e).
    asinh(t) = log1p(u) with u = t + t² / (1 + sqrt(1 + t²)) is evaluated as log(v) · u / (v - 1), v = 1 + u
    (Goldberg's form, a few ulps, exact for small t as well): libm's log1p costs four times its log.
    """
    s = e0 * e0 + e1 * e1
    x = s * ia * ib  # t²
    q = np.sqrt(1.0 + x)
    t = np.sqrt(x)
    u = t + x / (1.0 + q)
    v = 1.0 + u
    d = 2.0 * (u if v == 1.0 else np.log(v) * (u / (v - 1.0)))  # 2·asinh(t)
    ratio = 2.0 if t < 1e-8 else d / (t * q)  # d / (t sqrt(1+t²)) → 2 as t → 0
    return 1.0 / (1.0 + d * d * inv_s2), 4.0 * ratio * inv_s2 * ia * ib, s


@numba.njit(inline="always", **_JIT)
def _add(out, c, i, j, f, e0, e1, s, ia, Y):  # pragma: no cover - numba
    """Add f·∂(d²/s²)/∂y to both ends of pair (i, j) in chunk c's force buffer."""
    out[c, i, 0] += f * (e0 + s * ia[i] * Y[i, 0])
    out[c, i, 1] += f * (e1 + s * ia[i] * Y[i, 1])
    out[c, j, 0] += f * (s * ia[j] * Y[j, 0] - e0)
    out[c, j, 1] += f * (s * ia[j] * Y[j, 1] - e1)


@numba.njit(inline="always", **_JIT)
def _partner(key, i, n):  # pragma: no cover - numba
    """A partner j ≠ i of point i, uniform over the others, from a 64-bit counter (splitmix64's finaliser); its top
    32 bits scaled to n - 1 by a multiply and a shift (Lemire's reduction: a 64-bit modulo costs more than the rest
    of the hash; the bias, n / 2³², is far below the sampling noise)."""
    z = key + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (i + 1 + np.int64(((z >> np.uint64(32)) * np.uint64(n - 1)) >> np.uint64(32))) % n


def _force_kernel(Y, ia, rows, cols, p, pair_rows, pair_cols, m, key, inv_s2, attract_bounds, repel_bounds,
                  out_a, out_r, sums, objective):  # pragma: no cover - numba
    """Attraction over the edges (rows, cols, p) and repulsion into separate per-chunk buffers, in one pass.

    Repulsion: with m > 0 every point of chunk c's range gets m partners drawn from `key`; with m = 0 the listed
    pairs (pair_rows, pair_cols) of chunk c's range. Attraction adds p_ij w_ij·∂(d²/s²) (-∂ log w), repulsion
    w_ij²·∂(d²/s²) (-∂w). sums[c] = (Σ p log w over the edges if `objective`, Σ w over the repulsion pairs).
    Chunks are fixed and each writes only its own buffer slice: threads never write to the same place, and the
    sums do not depend on their number.
    """
    n = Y.shape[0]
    for c in numba.prange(len(attract_bounds) - 1):
        out_a[c] = 0.0
        out_r[c] = 0.0
        za = 0.0
        for e in range(attract_bounds[c], attract_bounds[c + 1]):
            i, j = rows[e], cols[e]
            e0, e1 = Y[i, 0] - Y[j, 0], Y[i, 1] - Y[j, 1]
            w, k, s = _pair(e0, e1, ia[i], ia[j], inv_s2)
            if objective:
                za -= p[e] * np.log(1.0 / w)
            _add(out_a, c, i, j, k * w * p[e], e0, e1, s, ia, Y)
        zr = 0.0
        if m > 0:
            for i in range(repel_bounds[c], repel_bounds[c + 1]):
                base = key + np.uint64(i) * np.uint64(m)
                for r in range(m):
                    j = _partner(base + np.uint64(r), i, n)
                    e0, e1 = Y[i, 0] - Y[j, 0], Y[i, 1] - Y[j, 1]
                    w, k, s = _pair(e0, e1, ia[i], ia[j], inv_s2)
                    zr += w
                    _add(out_r, c, i, j, k * w * w, e0, e1, s, ia, Y)
        else:
            for e in range(repel_bounds[c], repel_bounds[c + 1]):
                i, j = pair_rows[e], pair_cols[e]
                e0, e1 = Y[i, 0] - Y[j, 0], Y[i, 1] - Y[j, 1]
                w, k, s = _pair(e0, e1, ia[i], ia[j], inv_s2)
                zr += w
                _add(out_r, c, i, j, k * w * w, e0, e1, s, ia, Y)
        sums[c, 0] = za
        sums[c, 1] = zr


def _combine_kernel(out_a, out_r, attract, repel, grad):  # pragma: no cover - numba
    """grad = attract · Σ_c out_a[c] - repel · Σ_c out_r[c], the chunks summed in a fixed order."""
    for i in numba.prange(grad.shape[0]):
        for d in range(grad.shape[1]):
            a = 0.0
            r = 0.0
            for c in range(out_a.shape[0]):
                a += out_a[c, i, d]
                r += out_r[c, i, d]
            grad[i, d] = attract * a - repel * r


def _step_kernel(Y, grad, update, gains, learning_rate, momentum, min_gain, max_step, eps):  # pragma: no cover
    """`RiemannianDescent.step` for every point, in place: Riemannian gradient, gains, momentum, step cap, exp map
    (x ⊕ tanh(λ|v|/2) v/|v|, Möbius addition in the form of `ball.mobius_add`), projection to 1 - eps."""
    tiny = 1e-15
    for i in numba.prange(Y.shape[0]):
        y0, y1 = Y[i, 0], Y[i, 1]
        a = 1.0 - (y0 * y0 + y1 * y1)
        scale = a * a / 4.0
        for d in range(2):
            g = grad[i, d] * scale
            same = np.sign(g) == np.sign(update[i, d])
            gain = gains[i, d] * 0.8 if same else gains[i, d] + 0.2
            gains[i, d] = max(gain, min_gain)
            u = momentum * update[i, d] - learning_rate * gains[i, d] * g
            if np.isnan(u):
                u = 0.0
            update[i, d] = min(max(u, -1e300), 1e300)  # steps beyond float range saturate
        u0, u1 = update[i, 0], update[i, 1]
        r = max(np.sqrt(u0 * u0 + u1 * u1), tiny)
        cap = min(1.0, max_step / max(2.0 * r / max(a, tiny), tiny))
        u0, u1 = u0 * cap, u1 * cap
        update[i, 0], update[i, 1] = u0, u1
        r = max(np.sqrt(u0 * u0 + u1 * u1), tiny)
        f = np.tanh(r / max(a, tiny)) / r  # tanh(λ r / 2) / r, λ = 2 / (1 - |y|²)
        v0, v1 = f * u0, f * u1
        b = 1.0 - (v0 * v0 + v1 * v1)
        s0, s1 = y0 + v0, y1 + v1
        s = s0 * s0 + s1 * s1
        den = max(s + a * b, tiny)
        z0, z1 = ((s + a) * y0 + a * v0) / den, ((s + a) * y1 + a * v1) / den
        rz = max(np.sqrt(z0 * z0 + z1 * z1), tiny)
        if rz > 1.0 - eps:
            z0, z1 = z0 * ((1.0 - eps) / rz), z1 * ((1.0 - eps) / rz)
        Y[i, 0], Y[i, 1] = z0, z1


# Threads pay off only for large layouts: below this, waking them costs more than the work (and on a
# busy 2-core machine, much more), so small maps run serially. Results are identical either way.
_PARALLEL_MIN = 20000
_CHUNKS = 8  # pair chunks, each with its own force buffer; fixed, so sums do not depend on the thread count


def _variants(kernel) -> dict[bool, numba.core.registry.CPUDispatcher]:
    """`kernel` compiled serial and parallel, each cached under its own name: numba's cache key leaves out the
    options, so two variants of one function would load each other's code from the cache (numba issue #6845) and
    the parallel one ran on one thread."""
    compiled = {}
    for parallel in (False, True):
        name = f"{kernel.__name__}_{'parallel' if parallel else 'serial'}"
        fn = types.FunctionType(kernel.__code__, kernel.__globals__, name, kernel.__defaults__, kernel.__closure__)
        fn.__qualname__ = name
        compiled[parallel] = numba.njit(parallel=parallel, **_JIT)(fn)
    return compiled


_FORCES, _COMBINE, _STEP = _variants(_force_kernel), _variants(_combine_kernel), _variants(_step_kernel)

Pairs = tuple[np.ndarray, np.ndarray]
_NO_PAIRS = np.empty(0, dtype=np.int64)


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


def draw_key(seed: int, iteration: int) -> np.uint64:
    """The counter base of one iteration's partner draws (point i's r-th partner hashes key + i·m + r)."""
    return np.uint64(((seed * 0x2545F4914F6CDD1D + iteration + 1) * 0x9E3779B97F4A7C15 << 20) % 2**64)


class Repulsion(NamedTuple):
    """How the repulsion is summed: over listed `pairs` (m = 0) or over m partners per point drawn from `key`."""

    pairs: Pairs = (_NO_PAIRS, _NO_PAIRS)
    m: int = 0
    key: np.uint64 = np.uint64(0)

    def draws(self, n: int) -> int:
        """Pairs summed per evaluation."""
        return n * self.m if self.m else len(self.pairs[0])


class Forces:
    """Per-iteration force evaluation on n points: buffers allocated once, attraction and repulsion in one pass."""

    def __init__(self, n: int, edges: tuple[np.ndarray, np.ndarray, np.ndarray], scale: float = 1.0):
        self.n, self.edges, self.inv_s2 = n, edges, 1.0 / (scale * scale)
        self.parallel = n >= _PARALLEL_MIN
        self.out_a, self.out_r = np.empty((_CHUNKS, n, 2)), np.empty((_CHUNKS, n, 2))
        self.sums, self.grad = np.empty((_CHUNKS, 2)), np.empty((n, 2))
        self.attract_bounds = np.linspace(0, len(edges[0]), _CHUNKS + 1).astype(np.int64)
        self.plogp = 2.0 * float(np.sum(edges[2] * np.log(np.maximum(edges[2], 1e-300))))

    def gradient(self, Y: np.ndarray, repulsion: Repulsion, exaggeration: float = 1.0,
                 objective: bool = False) -> tuple[np.ndarray, float]:
        """Euclidean gradient of KL(P‖Q) (a buffer reused by the next call) and, if `objective`, KL's estimate."""
        ia = 1.0 / np.maximum(1.0 - np.einsum("ij,ij->i", Y, Y), _TINY)
        m = repulsion.m
        count = self.n if m else len(repulsion.pairs[0])  # points with m partners each, or listed pairs
        repel_bounds = np.linspace(0, count, _CHUNKS + 1).astype(np.int64)
        _FORCES[self.parallel](Y, ia, *self.edges, *repulsion.pairs, m, repulsion.key, self.inv_s2,
                               self.attract_bounds, repel_bounds, self.out_a, self.out_r, self.sums, objective)
        wsum = float(self.sums[:, 1].sum())
        _COMBINE[self.parallel](self.out_a, self.out_r, 2.0 * exaggeration, 1.0 / wsum, self.grad)
        if not objective:
            return self.grad, float("nan")
        # KL = Σ p log p - Σ p log w + log Z over the ordered pairs i ≠ j, Z scaled up from the pairs summed
        z = wsum * self.n * (self.n - 1) / repulsion.draws(self.n)
        return self.grad, self.plogp - 2.0 * float(self.sums[:, 0].sum()) + float(np.log(z))


def tsne_gradient(Y: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray], pairs: Pairs,
                  exaggeration: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """Euclidean gradient of KL(P‖Q), q ∝ 1 / (1 + d²/scale²) on Poincaré distances d, P by `attraction_edges`.

    Exact when `pairs` is `all_pairs(n)`; with `sampled_pairs` the repulsion and its normaliser are estimated
    from the same pairs (the sampling rate cancels in their ratio).
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    pairs = tuple(np.ascontiguousarray(a, dtype=np.int64) for a in pairs)
    return Forces(len(Y), edges, scale).gradient(Y, Repulsion(pairs), exaggeration)[0].copy()


def sampled_gradient(Y: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray], m: int, seed: int = 0,
                     iteration: int = 0, exaggeration: float = 1.0, scale: float = 1.0) -> np.ndarray:
    """`tsne_gradient` with the repulsion estimated from m partners per point, drawn in the kernel."""
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    repulsion = Repulsion(m=m, key=draw_key(seed, iteration))
    return Forces(len(Y), edges, scale).gradient(Y, repulsion, exaggeration)[0].copy()


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

    def step(self, Y: np.ndarray, grad: np.ndarray, learning_rate: float, momentum: float,
             in_place: bool = False) -> np.ndarray:
        """One step: Riemannian gradient (1 - |y|²)²/4 · grad, momentum, step cap, exponential map, projection."""
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        Y = Y if in_place else Y.copy()
        if self.update is None:
            self.update, self.gains = np.zeros_like(Y), np.ones_like(Y)
        _STEP[len(Y) >= _PARALLEL_MIN](Y, np.ascontiguousarray(grad, dtype=np.float64), self.update, self.gains,
                                       float(learning_rate), float(momentum), float(self.min_gain),
                                       float(self.max_step), float(self.eps))
        return Y


class Result(NamedTuple):
    """The layout, the iterations run (both phases) and the KL estimates at the checks of the plain phase."""

    embedding: np.ndarray
    n_iter: int
    kl: list[float]


def hyperbolic_tsne(P: sp.csr_matrix, Y: np.ndarray, *, n_iter: int = 250, early_exaggeration_iter: int = 250,
                    early_exaggeration: float = 12.0, learning_rate: float | str = "auto",
                    negative_samples: int | None = None, pairs: Pairs | None = None, seed: int = 0,
                    eps: float = ball.EPS, scale: float = 1.0, tol: float = 0.0, check_every: int = 10,
                    early_negative_samples: int | None = None, verbose: bool = False) -> Result:
    """Optimise a disk layout from Y against P: exaggerated phase (momentum 0.5), then the plain one (0.8).

    The repulsion sums over `pairs` (e.g. `all_pairs(n)`), or else over `negative_samples` partners per point
    drawn afresh every iteration (seeded by `seed`; `early_negative_samples` of them while exaggerated, where the
    attraction dominates; None: as many as later). Every `check_every` iterations of the plain phase the KL
    divergence is estimated (`Result.kl`); with tol > 0 the phase stops at the first check where it fell by less
    than tol per iteration since the previous one.
    `learning_rate` "auto" is n / early_exaggeration in the first phase and a tenth of it in the second,
    times scale² (the kernel's distances are d / scale, so its gradients grow as 1 / scale²).
    """
    n = len(Y)
    if pairs is None and not negative_samples:
        raise ValueError("hyperbolic_tsne needs the pairs of an exact repulsion or a number of negative samples")
    descent = RiemannianDescent(eps, max_step=_MAX_STEP * scale)
    Y = np.ascontiguousarray(ball.project(np.asarray(Y, dtype=np.float64), eps))
    auto = max(n / early_exaggeration, 50.0) * scale * scale
    early = early_negative_samples or negative_samples
    phases = ((early_exaggeration_iter, early_exaggeration, 0.5, auto, False, early),
              (n_iter, 1.0, 0.8, auto * _PLAIN_LR, True, negative_samples))
    exact = None if pairs is None else Repulsion(tuple(np.ascontiguousarray(a, dtype=np.int64) for a in pairs))
    order = None
    if exact is None:  # neighbours in nearby rows: the forces' scattered reads and writes then mostly hit the cache
        order = reverse_cuthill_mckee(sp.csr_matrix(P), symmetric_mode=True).astype(np.int64)
        P, Y = sp.csr_matrix(P)[order][:, order], np.ascontiguousarray(Y[order])
    forces = Forces(n, attraction_edges(P), scale)
    done, history = 0, []
    with progress_bar("hyperbolic t-SNE", enabled=verbose) as bar:
        task = bar.add_task("hyperbolic t-SNE", total=early_exaggeration_iter + n_iter)
        for iters, alpha, momentum, lr, stop, samples in phases:
            lr = lr if learning_rate == "auto" else float(learning_rate)
            for it in range(iters):
                check = stop and (it + 1) % check_every == 0
                # checks share one draw: the differences of their KL estimates then hardly carry sampling noise
                key = draw_key(seed, _CHECK_DRAW if check else done)
                repulsion = exact or Repulsion(m=min(samples, n - 1), key=key)
                grad, kl = forces.gradient(Y, repulsion, alpha, objective=check)
                descent.step(Y, grad, lr, momentum, in_place=True)
                done += 1
                bar.advance(task)
                if check:
                    history.append(kl)
                    if tol > 0 and len(history) > 1 and history[-2] - history[-1] < tol * check_every:
                        break
    if order is not None:
        Y[order] = Y.copy()
    return Result(Y, done, history)


_CHECK_DRAW = 2**40  # the iteration number whose draw every check of the plain phase uses

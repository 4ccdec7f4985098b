"""Poincaré-ball and hyperboloid maths (curvature -1), one implementation for NumPy and PyTorch.

Every function is written once, in PyTorch, and accepts NumPy arrays too: NumPy in, NumPy out
(computed in float64 on one torch thread, inputs shared without copy when they are already
float64); tensors in, tensors out with their dtype, device and autograd graph. Points are the
last axis of an array, so a function applies to one point `(d,)`, to a set `(n, d)`, or to any
broadcastable batch.

Distances use the form d(x, y) = 2·asinh(sqrt(|x-y|² / ((1-|x|²)(1-|y|²)))), which equals the
textbook arccosh(1 + 2|x-y|²/((1-|x|²)(1-|y|²))) but keeps full precision for nearby points
(arccosh near 1 loses half the digits) and needs no clamp of its argument. Points are kept
inside the ball by `project`, at most 1 - EPS from the centre; functions that divide by
1 - |x|² clamp it at TINY, so a point on or past the boundary gives a large, finite distance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from ..compute import one_thread
from ..errors import DinoscopeError
from . import EPS, TINY


def _both(fn: Callable) -> Callable:
    """Run a torch function on NumPy arrays as well: arrays are converted in, results converted back."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if any(isinstance(a, torch.Tensor) for a in (*args, *kwargs.values())):
            return fn(*args, **kwargs)
        as_tensor = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64)) if _is_array(a) else a  # noqa: E731
        with one_thread():
            out = fn(*map(as_tensor, args), **{k: as_tensor(v) for k, v in kwargs.items()})
        return out.numpy() if isinstance(out, torch.Tensor) else out

    return wrapper


def _is_array(a: object) -> bool:
    return isinstance(a, (np.ndarray, list, tuple))


def _sq(x: torch.Tensor) -> torch.Tensor:
    """Squared norm over the last axis, kept as a trailing axis of length 1."""
    return (x * x).sum(dim=-1, keepdim=True)


def _norm(x: torch.Tensor) -> torch.Tensor:
    return _sq(x).sqrt().clamp_min(TINY)


@_both
def project(x, eps: float = EPS):
    """Pull every point with |x| > 1 - eps back onto radius 1 - eps (direction kept); others unchanged."""
    if not 0 < eps < 1:
        raise DinoscopeError(f"eps must lie in (0, 1), got {eps}")
    r = _norm(x)
    return torch.where(r > 1 - eps, x * ((1 - eps) / r), x)


@_both
def mobius_add(x, y):
    """Möbius addition x ⊕ y: the hyperbolic translation that moves the centre to x, applied to y.

    The textbook form ((1 + 2x·y + |y|²) x + (1 - |x|²) y) / (1 + 2x·y + |x|²|y|²) is evaluated as
    ((|x+y|² + a) x + a y) / (|x+y|² + a b) with a = 1 - |x|², b = 1 - |y|² (the same numbers): near the rim
    its sums of O(1) terms cancel to O(1 - |x|²) and kept only eps / (1 - |x|²)² of hyperbolic precision, this
    form keeps the eps / (1 - |x|²) that the float64 coordinates themselves carry (e.g. move_to_origin(p, c)
    of nearby p, c; x ⊕ (-x) is exactly 0).
    """
    a, b, s = 1 - _sq(x), 1 - _sq(y), _sq(x + y)
    return ((s + a) * x + a * y) / (s + a * b).clamp_min(TINY)


@_both
def move_to_origin(x, center):
    """The isometry (-center) ⊕ x: moves `center` to the origin and keeps every Poincaré distance."""
    return mobius_add(-center, x)


@_both
def distance(x, y):
    """Poincaré distance between x and y, elementwise over broadcast leading axes."""
    a = (1 - _sq(x)).clamp_min(TINY)
    b = (1 - _sq(y)).clamp_min(TINY)
    return 2 * torch.asinh((_sq(x - y) / (a * b)).sqrt())[..., 0]


@_both
def pairwise_distances(x, y):
    """(n, m) Poincaré distances between the rows of x (n, d) and y (m, d); the map distance for metrics."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise DinoscopeError(f"need two point sets (n, d) and (m, d), got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    a = (1 - _sq(x)).clamp_min(TINY)
    b = (1 - _sq(y)).clamp_min(TINY)
    diff2 = sum((x[:, k, None] - y[None, :, k]) ** 2 for k in range(x.shape[1]))  # exact, no |x|²+|y|²-2xy cancellation
    return 2 * torch.asinh((diff2 / (a * b.T)).sqrt())


@_both
def to_hyperboloid(p):
    """Poincaré ball point (d,) → hyperboloid point (d+1,) with x0 = sqrt(1 + |x_1:|²) first."""
    a = (1 - _sq(p)).clamp_min(TINY)
    return torch.cat([(1 + _sq(p)) / a, 2 * p / a], dim=-1)


@_both
def hyperboloid_to_disk(x):
    """Hyperboloid point (d+1,), time coordinate first → Poincaré ball point (d,)."""
    return x[..., 1:] / (1 + x[..., :1])


@_both
def expmap0(v):
    """Exponential map at the origin: the point reached by the geodesic with initial velocity v."""
    r = _norm(v)
    return torch.tanh(r) * v / r


@_both
def logmap0(y):
    """Logarithmic map at the origin (inverse of `expmap0`): the tangent vector pointing at y."""
    r = _norm(y)
    return torch.atanh(r.clamp_max(1 - TINY)) * y / r


@_both
def expmap(x, v):
    """Exponential map at x: follow the geodesic from x with initial velocity v (Riemannian step)."""
    r = _norm(v)
    lam = 2 / (1 - _sq(x)).clamp_min(TINY)
    return mobius_add(x, torch.tanh(lam * r / 2) * v / r)


@_both
def mean(points, weights=None, n_iter: int = 100, tol: float = 1e-10):
    """Fréchet (Karcher) mean of (n, d) points: Einstein midpoint, refined by Riemannian gradient descent."""
    if points.ndim != 2 or points.shape[0] == 0:
        raise DinoscopeError(f"need a non-empty (n, d) point set, got shape {tuple(points.shape)}")
    w = torch.ones(points.shape[0], dtype=points.dtype) if weights is None else weights.to(points.dtype)
    if w.shape != points.shape[:1] or (w < 0).any() or w.sum() <= 0:
        raise DinoscopeError("weights must be one non-negative number per point, not all zero")
    w = (w / w.sum())[:, None]
    x = to_hyperboloid(points)  # Einstein midpoint = normalised hyperboloid centroid
    s = (w * x).sum(dim=0)
    m = hyperboloid_to_disk(s / (s[0] ** 2 - (s[1:] ** 2).sum()).clamp_min(TINY).sqrt())
    cost = lambda c: (w[:, 0] * distance(points, c) ** 2).sum()  # noqa: E731
    rate, best = 1.0, cost(m)
    for _ in range(n_iter):  # m ← exp_m(rate · Σ w log_m(x)), in the chart that moves m to the origin
        step = rate * (w * logmap0(move_to_origin(points, m))).sum(dim=0)
        if _norm(step).item() < tol:
            break
        candidate = project(mobius_add(m, expmap0(step)))
        candidate_cost = cost(candidate)
        if candidate_cost < best:
            m, best = candidate, candidate_cost
        else:  # overshoot (far, spread points): halve the step
            rate /= 2
    return m

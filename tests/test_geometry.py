"""Poincaré-ball maths: identities that hold for every point, in NumPy and in PyTorch.

Tolerances follow from float64 and the conditioning of the maths, never from one machine's last digits: the ball's
formulas divide by 1 - |x|², whose rounding (about eps absolute) is a relative error eps / (1 - |x|²), so errors are
stated as multiples of eps64 = 2.2e-16 times that condition number; the Karcher mean is iterative and is held to
the resolution of its stopping rule (`mean_resolution`).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from dinoscope.errors import DinoscopeError
from dinoscope.geometry import ball as g
from dinoscope.geometry.hierarchy import class_tree, place_on_disk
from dinoscope.metrics.hierarchy import hierarchy_score

EPS64 = np.finfo(np.float64).eps  # 2.2e-16


def points(n: int, seed: int = 0, scale: float = 0.6) -> np.ndarray:
    """n random points inside the unit disk, some near the boundary."""
    return g.project(np.random.default_rng(seed).normal(size=(n, 2)) * scale, 1e-4)


def rim_gap(x: np.ndarray) -> np.ndarray:
    """1 - |x|² per point: what the ball's formulas divide by, so eps / (1 - |x|²) is their relative rounding."""
    return 1 - (x * x).sum(-1)


def distance_error(*sets: np.ndarray) -> float:
    """Bound on the float64 rounding of a Poincaré distance between points of these sets (absolute).

    1 - |x|² is rounded by about eps, a relative error eps / (1 - |x|²); d = 2 asinh(t) passes the relative error
    of t² = |x-y|² / ((1-|x|²)(1-|y|²)) on as at most that much absolute error, and the rest rounds by a few eps of
    d, which is at most ln(16 / gap²) for points whose 1 - |x|² is at least `gap`.
    """
    gap = min(float(rim_gap(s).min()) for s in sets)
    return 16 * EPS64 * (1 / gap + np.log(16 / gap**2))


def on_circle(radius, angle) -> np.ndarray:
    """Points at these radii and angles."""
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def time_coordinate(x: np.ndarray) -> np.ndarray:
    """x0 = (1 + |x|²) / (1 - |x|²) of the hyperboloid point: the size of the numbers the Einstein midpoint sums."""
    return (1 + (x * x).sum(-1)) / rim_gap(x)


def assert_within(actual, desired, bound) -> None:
    """|actual - desired| <= bound elementwise, for error bounds that differ from point to point."""
    err = np.abs(np.asarray(actual) - desired)
    assert (err <= bound).all(), f"error up to {(err / bound).max():.3g} times its bound"


def mean_resolution(x: np.ndarray, m: np.ndarray) -> float:
    """How far (Euclidean, in the disk) `g.mean(x)` may stop from the exact Karcher mean m of x.

    The mean's steps are taken only while the float64 cost f = mean d(·, x)² decreases. f rises by at least δ² at a
    hyperbolic offset δ from its minimum (the Hessian of d² is at least 2 in curvature -1), while its rounding is
    ~eps·f, and more near the rim where each distance carries eps / (1 - |x|²): so steps stop being accepted once
    δ² ≲ 16 eps f / gap. A hyperbolic δ at m is δ (1 - |m|²) / 2 in the disk. The step-size stop (1e-10) is smaller.
    """
    f = float((g.distance(x, m) ** 2).mean())
    gap = min(float(rim_gap(x).min()), float(rim_gap(m)))
    return np.sqrt(16 * EPS64 * f / gap) * float(rim_gap(m)) / 2


def test_distance_matches_the_arccosh_formula_and_is_a_metric():
    x, y, z = points(200, 0), points(200, 1), points(200, 2)
    d = g.distance(x, y)
    textbook = np.arccosh(1 + 2 * ((x - y) ** 2).sum(1) / ((1 - (x * x).sum(1)) * (1 - (y * y).sum(1))))
    # The textbook form is the imprecise one: arccosh(1 + z) loses eps / d² (relative) near d = 0, and both inherit
    # the relative rounding eps / (1 - |x|²) of the factors they divide by.
    rtol = 16 * EPS64 * (1 / textbook.min() ** 2 + 1 / min(rim_gap(x).min(), rim_gap(y).min()))
    np.testing.assert_allclose(d, textbook, rtol=rtol)
    np.testing.assert_array_equal(g.distance(y, x), d)  # exact: (x-y)² = (y-x)² and a·b = b·a in IEEE arithmetic
    np.testing.assert_array_equal(g.distance(x, x), 0.0)  # exact: x - x = 0
    # up to the rounding of the three distances involved
    assert (g.distance(x, z) <= g.distance(x, y) + g.distance(y, z) + 3 * distance_error(x, y, z)).all()


def test_pairwise_matches_elementwise_and_is_precise_for_close_points_near_the_boundary():
    x, y = points(30, 3), points(40, 4)
    D = g.pairwise_distances(x, y)
    # the same formula, its squared difference summed over the 2 coordinates in another order: t² differs by a few
    # ulps, which d inherits at most in relative terms
    np.testing.assert_allclose(D, g.distance(x[:, None, :], y[None, :, :]), rtol=8 * EPS64)
    edge = np.array([[0.99999, 0.0]])
    near = edge + np.array([[0.0, 1e-9]])
    exact = 2 * np.arcsinh(1e-9 / (1 - 0.99999**2))
    # Both sides round the same 1 - |x|² (1 - |near|² rounds to it as well) and then differ by a few ulps of the
    # division, sqrt and asinh; the textbook arccosh form would be off by eps / d² ≈ 2e-8 here (d = 1e-4).
    np.testing.assert_allclose(g.pairwise_distances(edge, near)[0, 0], exact, rtol=16 * EPS64)


def test_numpy_and_torch_agree_and_autograd_flows():
    x, y = points(10, 5), points(10, 6)
    xt = torch.tensor(x, requires_grad=True)
    d = g.distance(xt, torch.tensor(y))
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float64
    np.testing.assert_array_equal(d.detach().numpy(), g.distance(x, y))  # the same float64 torch code on the same data
    d.sum().backward()
    assert torch.isfinite(xt.grad).all()


def test_isometries_preserve_distances():
    x = points(50, 7)
    D = g.pairwise_distances(x, x)
    for c in (x[3], np.array([0.9, -0.3])):
        moved = g.move_to_origin(x, c)
        # both sides' distance rounding, and the moved points are rounded too (a few eps, which 1 - |m|² amplifies)
        np.testing.assert_allclose(g.pairwise_distances(moved, moved), D, rtol=0, atol=4 * distance_error(x, moved))
    # near the rim as well: close points 2e-5 from it, one of them moved to the centre (as centring a map does)
    rng = np.random.default_rng(13)
    near = g.project(on_circle(1 - 2e-5, 1.0) + rng.normal(size=(20, 2)) * 1e-5, 1e-5)
    moved = g.move_to_origin(near, near[0])
    np.testing.assert_allclose(g.pairwise_distances(moved, moved), g.pairwise_distances(near, near), rtol=0,
                               atol=4 * distance_error(near, moved))
    c = x[3]
    np.testing.assert_array_equal(g.move_to_origin(x, c)[3], 0.0)  # exact: -c + c = 0, so a·(-c) + a·c = 0 on top
    # a Möbius translation by c stretches the disk by at most L = (1 + |c|) / (1 - |c|): there and back, the
    # roundings (a few eps each) grow by at most L²
    lip = (1 + np.linalg.norm(c)) / (1 - np.linalg.norm(c))
    np.testing.assert_allclose(g.mobius_add(c, g.move_to_origin(x, c)), x, rtol=0, atol=16 * EPS64 * lip**2)


def test_round_trips():
    x = points(100, 8)
    # the computed 1 - |x|² cancels between the hyperboloid's coordinates: a few roundings of |x| < 1
    np.testing.assert_allclose(g.hyperboloid_to_disk(g.to_hyperboloid(x)), x, rtol=0, atol=8 * EPS64)
    h = g.to_hyperboloid(x)
    np.testing.assert_allclose(h[:, 0], np.sqrt(1 + (h[:, 1:] ** 2).sum(1)), rtol=8 * EPS64)  # on the hyperboloid
    # atanh's amplification 1 / (1 - r²) near the rim is undone by tanh's slope 1 - r²: a few eps of |x| < 1
    np.testing.assert_allclose(g.expmap0(g.logmap0(x)), x, rtol=0, atol=8 * EPS64)
    v = np.random.default_rng(9).normal(size=(100, 2))
    r = np.linalg.norm(v, axis=1)
    # |expmap0(v)| = tanh|v| is rounded by eps, and atanh amplifies that by 1 / (1 - tanh²) = cosh²|v|
    assert_within(g.logmap0(g.expmap0(v)), v, (8 * EPS64 * np.cosh(r) ** 2 * r)[:, None])
    # d(0, y) inherits the relative rounding eps·cosh²|v| of 1 - |y|² = 1 / cosh²|v| as absolute error
    assert_within(g.distance(np.zeros(2), g.expmap0(v)), 2 * r, 16 * EPS64 * (np.cosh(r) ** 2 + r))


def test_expmap_moves_along_the_geodesic_by_the_tangent_length():
    x = np.array([0.5, 0.2])
    v = np.array([[0.01, -0.02], [-0.1, 0.05]])
    lam = 2 / (1 - x @ x)
    y = g.expmap(x, v)
    # the distance of nearby points is computed from y - x, whose coordinates lose |x| / |y - x| of their digits
    want = lam * np.linalg.norm(v, axis=1)
    assert_within(g.distance(x, y), want, 16 * EPS64 * (1 + np.linalg.norm(x) / np.linalg.norm(y - x, axis=1)) * want)


def test_project_keeps_points_inside_with_the_stated_eps():
    x = np.array([[2.0, 0.0], [0.3, 0.4], [1e300, -1e300], [0.0, 0.0]])
    p = g.project(x, 1e-5)
    assert np.isfinite(p).all()
    # |p| = (1 - eps)·|x| / r, with r = |x| and the scaling rounded (≤ 4 eps/2) and NumPy's norm of p (≤ 2 eps/2)
    assert (np.linalg.norm(p, axis=1) <= 1 - 1e-5 + 4 * EPS64).all()
    np.testing.assert_array_equal(p[1], x[1])  # points inside are returned as they are
    with pytest.raises(DinoscopeError, match="eps"):
        g.project(x, 0.0)


def test_mean_of_one_point_symmetric_points_and_equivariance():
    x = points(40, 10, scale=0.3)
    # the Einstein midpoint of one point is that point, up to the rounding of its hyperboloid coordinates (size x0)
    np.testing.assert_allclose(g.mean(x[:1]), x[0], rtol=0, atol=16 * EPS64 * time_coordinate(x[0]))
    sym = np.array([[0.7, 0.1], [-0.7, -0.1], [0.2, -0.5], [-0.2, 0.5]])
    # the hyperboloid coordinates cancel in pairs, up to their rounding
    np.testing.assert_allclose(g.mean(sym), 0.0, atol=16 * EPS64 * time_coordinate(sym).max())
    c = np.array([0.4, -0.6])
    moved = g.move_to_origin(x, c)
    m = g.mean(moved)
    # two means, each within its stopping rule's resolution of the exact one (an isometry keeps the cost)
    np.testing.assert_allclose(m, g.move_to_origin(g.mean(x), c), rtol=0, atol=2 * mean_resolution(moved, m))


def test_mean_is_the_frechet_mean():
    """The sum of squared distances is smallest at the mean: any nearby point does worse."""
    x = points(60, 11, scale=0.8)
    m = g.mean(x)
    cost = lambda p: (g.distance(x, p) ** 2).sum()  # noqa: E731
    rng = np.random.default_rng(12)
    # A 1e-3 offset raises the cost by ~1e-6·n, far above both its rounding (~eps·cost) and the 1e-8-sized
    # resolution of the mean (whose first-order effect is ~1e-11).
    assert all(cost(m) < cost(g.project(m + 1e-3 * rng.normal(size=2))) for _ in range(20))
    w = np.r_[np.zeros(59), 1.0]
    # all weight on one point: as the mean of that point alone
    np.testing.assert_allclose(g.mean(x, w), x[-1], rtol=0, atol=16 * EPS64 * time_coordinate(x[-1]))
    with pytest.raises(DinoscopeError, match="weights"):
        g.mean(x, -w)


def test_numpy_calls_run_on_one_torch_thread_and_restore_the_setting():
    before = torch.get_num_threads()
    seen = []
    with g.one_thread():
        seen.append(torch.get_num_threads())
    g.mean(np.random.default_rng(0).uniform(-0.5, 0.5, size=(100, 2)))
    assert seen == [1] and torch.get_num_threads() == before


# A float64 reference: the same formulas in 40-digit arithmetic (mpmath), on the float64 inputs as given.

def _mp(x) -> list:
    return [mpmath.mpf(float(t)) for t in x]


def _sq(x: list):
    return sum(t * t for t in x)


def ref_distance(x, y) -> float:
    x, y = _mp(x), _mp(y)
    return float(2 * mpmath.asinh(mpmath.sqrt(sum((a - b) ** 2 for a, b in zip(x, y, strict=True))
                                              / ((1 - _sq(x)) * (1 - _sq(y))))))


def ref_mobius_add(x, y) -> np.ndarray:
    x, y = _mp(x), _mp(y)
    xy = sum(a * b for a, b in zip(x, y, strict=True))
    den = 1 + 2 * xy + _sq(x) * _sq(y)
    return np.array([float(((1 + 2 * xy + _sq(y)) * a + (1 - _sq(x)) * b) / den) for a, b in zip(x, y, strict=True)])


def ref_to_hyperboloid(p) -> np.ndarray:
    p = _mp(p)
    a = 1 - _sq(p)
    return np.array([float((1 + _sq(p)) / a)] + [float(2 * t / a) for t in p])


def ref_expmap0(v) -> np.ndarray:
    v = _mp(v)
    r = mpmath.sqrt(_sq(v))
    return np.array([float(mpmath.tanh(r) * t / r) for t in v])


def ref_logmap0(y) -> np.ndarray:
    y = _mp(y)
    r = mpmath.sqrt(_sq(y))
    return np.array([float(mpmath.atanh(r) * t / r) for t in y])


def ref_expmap(x, v) -> np.ndarray:
    xm, vm = _mp(x), _mp(v)
    r = mpmath.sqrt(_sq(vm))
    k = mpmath.tanh(r / (1 - _sq(xm))) / r  # tanh(λ r / 2) / r with λ = 2 / (1 - |x|²)
    return ref_mobius_add(x, [float(k * t) for t in vm])


def spread_around(c: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The points c ⊕ ±s (rounded once from the 40-digit values): their exact Karcher mean is c, by symmetry."""
    return np.stack([ref_mobius_add(c, t) for t in np.concatenate([s, -s])])


def test_float64_in_float64_out_with_float64_precision_up_to_the_rim():
    """Float64 inputs stay float64 in every public function (NumPy in, NumPy out; tensors keep their dtype) and
    match a 40-digit reference to float64 precision, on points 2e-5 from the rim where float32 (spacing 6e-8
    below 1) could not even hold 1 - |x|² to better than a few per mille."""
    rng = np.random.default_rng(20)
    gaps = np.array([2e-5, 1e-4, 1e-3, 0.3, 0.9, 5e-5])
    x = on_circle(1 - gaps, rng.uniform(0, 2 * np.pi, 6))
    y = on_circle(1 - gaps[::-1], rng.uniform(0, 2 * np.pi, 6))
    v = rng.normal(size=(6, 2)) * 3
    # every result below is within (a small multiple of) eps / (1 - |x|²) relative of the exact one
    tol = 64 * EPS64 / min(rim_gap(x).min(), rim_gap(y).min())

    def check(got, want):
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())

    with mpmath.workdps(40):
        check(g.distance(x, y), [ref_distance(p, q) for p, q in zip(x, y, strict=True)])
        check(g.pairwise_distances(x, y), [[ref_distance(p, q) for q in y] for p in x])
        check(g.mobius_add(x, y), [ref_mobius_add(p, q) for p, q in zip(x, y, strict=True)])
        check(g.move_to_origin(x, y[0]), [ref_mobius_add(-y[0], p) for p in x])
        check(g.to_hyperboloid(x), [ref_to_hyperboloid(p) for p in x])
        check(g.hyperboloid_to_disk(np.stack([ref_to_hyperboloid(p) for p in x])), x)
        check(g.expmap0(v), [ref_expmap0(t) for t in v])
        check(g.logmap0(x), [ref_logmap0(p) for p in x])
        check(g.expmap(x, 1e-5 * v), [ref_expmap(p, 1e-5 * t) for p, t in zip(x, v, strict=True)])
        outside = np.linalg.norm(1.5 * x, axis=1, keepdims=True) > 1 - 1e-5
        check(g.project(1.5 * x, 1e-5), np.where(outside, (1 - 1e-5) * x / np.linalg.norm(x, axis=1, keepdims=True),
                                                 1.5 * x))

        c = on_circle(np.array([1 - 3e-5]), np.array([0.7]))[0]
        spread = spread_around(c, np.array([[0.3, 0.1], [-0.1, 0.25]]))
        m = g.mean(spread, np.ones(len(spread)))
        assert m.dtype == np.float64
        np.testing.assert_allclose(m, c, rtol=0, atol=mean_resolution(spread, c))

    for name, args in [("distance", (x, y)), ("pairwise_distances", (x, y)), ("mobius_add", (x, y)),
                       ("move_to_origin", (x, y[0])), ("to_hyperboloid", (x,)), ("expmap0", (v,)),
                       ("logmap0", (x,)), ("expmap", (x, v)), ("project", (x,)), ("mean", (x,))]:
        fn = getattr(g, name)
        out = fn(*map(torch.from_numpy, args))
        assert out.dtype == torch.float64, name
        np.testing.assert_array_equal(out.numpy(), fn(*args), err_msg=name)  # the same float64 torch code
        assert fn(*(torch.from_numpy(a).float() for a in args)).dtype == torch.float32, name


S_GROUP = np.array([[0.05, 0.02], [-0.01, 0.04]])  # each group: its centre moved by ±these (4 points)
X_GROUPS = np.repeat(np.array([[10.0, 0, 2, 0], [10.0, 0, 0, 2], [0, 10.0, 2, 0], [0, 10.0, 0, 2]]), 4, axis=0)
GROUPS = np.repeat(["a1", "a2", "b1", "b2"], 4)  # a tree of two pairs, (a1 a2) and (b1 b2), by X_GROUPS


def groups_around(centres: np.ndarray) -> list[np.ndarray]:
    with mpmath.workdps(40):
        return [spread_around(c, S_GROUP) for c in centres]


def test_tree_positions_stay_float64_up_to_the_rim():
    """place_on_disk on a float64 map computes in float64: every node at its exact position within the mean's
    resolution, 3e-5 from the rim too (rounding them to float32 alone would move the leaves 100 times farther)."""
    a_side = on_circle(np.array([1 - 3e-5, 1 - 2e-4]), np.array([0.1, 0.5]))
    centres = np.concatenate([a_side, -a_side])
    per_group = groups_around(centres)
    Y = np.concatenate(per_group)  # b1, b2 mirror a1, a2 through the centre: the root, the mean of all, is 0
    tree = class_tree(X_GROUPS, GROUPS)
    nodes = place_on_disk(tree, Y, GROUPS)
    assert nodes.dtype == np.float64 and nodes.shape == (7, 2)
    for leaf, (c, pts) in enumerate(zip(centres, per_group, strict=True)):
        np.testing.assert_allclose(nodes[leaf], c, rtol=0, atol=mean_resolution(pts, c))
    np.testing.assert_allclose(nodes[-1], 0.0, rtol=0, atol=mean_resolution(Y, np.zeros(2)))
    a, b = (4, 5) if set(tree.members(4)) == {0, 1} else (5, 4)  # the (a1 a2) and (b1 b2) subtrees mirror
    np.testing.assert_allclose(nodes[a], -nodes[b], rtol=0, atol=2 * mean_resolution(Y[:8], nodes[a]))


def test_hierarchy_score_is_that_of_the_exact_class_centres(monkeypatch):
    """hierarchy_score ranks float64 distances between float64 class centres, near the rim as well."""
    centres = on_circle(np.array([1 - 3e-5, 1 - 2e-4, 1 - 5e-5, 1 - 1e-3]), np.array([0.1, 0.7, 3.5, 4.4]))
    Y = np.concatenate(groups_around(centres))
    tree = class_tree(X_GROUPS, GROUPS)
    seen = []
    pairwise = g.pairwise_distances
    monkeypatch.setattr(g, "pairwise_distances", lambda p, q: seen.append((p.dtype, q.dtype)) or pairwise(p, q))
    score = hierarchy_score(tree, Y, GROUPS)
    assert seen == [(np.float64, np.float64)] and isinstance(score, float)
    with mpmath.workdps(40):
        exact = np.array([[ref_distance(p, q) for q in centres] for p in centres])
    # the centres' distances differ by far more than their float64 resolution, so the ranks are exact
    assert score == spearmanr(squareform(exact, checks=False), squareform(tree.cophenetic, checks=False)).statistic

"""Poincaré-ball maths: identities that hold for every point, in NumPy and in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dinoscope.errors import DinoscopeError
from dinoscope.geometry import ball as g


def points(n: int, seed: int = 0, scale: float = 0.6) -> np.ndarray:
    """n random points inside the unit disk, some near the boundary."""
    return g.project(np.random.default_rng(seed).normal(size=(n, 2)) * scale, 1e-4)


def test_distance_matches_the_arccosh_formula_and_is_a_metric():
    x, y, z = points(200, 0), points(200, 1), points(200, 2)
    textbook = np.arccosh(1 + 2 * ((x - y) ** 2).sum(1) / ((1 - (x * x).sum(1)) * (1 - (y * y).sum(1))))
    np.testing.assert_allclose(g.distance(x, y), textbook, rtol=1e-9)
    np.testing.assert_allclose(g.distance(x, y), g.distance(y, x))
    np.testing.assert_array_equal(g.distance(x, x), 0.0)
    assert (g.distance(x, z) <= g.distance(x, y) + g.distance(y, z) + 1e-9).all()


def test_pairwise_matches_elementwise_and_is_precise_for_close_points_near_the_boundary():
    x, y = points(30, 3), points(40, 4)
    D = g.pairwise_distances(x, y)
    np.testing.assert_allclose(D, g.distance(x[:, None, :], y[None, :, :]), rtol=1e-12)
    edge = np.array([[0.99999, 0.0]])
    near = edge + np.array([[0.0, 1e-9]])
    exact = 2 * np.arcsinh(1e-9 / (1 - 0.99999**2))
    np.testing.assert_allclose(g.pairwise_distances(edge, near)[0, 0], exact, rtol=1e-6)


def test_numpy_and_torch_agree_and_autograd_flows():
    x, y = points(10, 5), points(10, 6)
    xt = torch.tensor(x, requires_grad=True)
    d = g.distance(xt, torch.tensor(y))
    assert isinstance(d, torch.Tensor)
    np.testing.assert_allclose(d.detach().numpy(), g.distance(x, y), rtol=1e-12)
    d.sum().backward()
    assert torch.isfinite(xt.grad).all()


def test_isometries_preserve_distances():
    x = points(50, 7)
    D = g.pairwise_distances(x, x)
    for c in (x[3], np.array([0.9, -0.3])):
        moved = g.move_to_origin(x, c)
        np.testing.assert_allclose(g.pairwise_distances(moved, moved), D, atol=1e-8)
    np.testing.assert_allclose(g.move_to_origin(x, x[3])[3], 0.0, atol=1e-12)
    np.testing.assert_allclose(g.mobius_add(x[3], g.move_to_origin(x, x[3])), x, atol=1e-12)  # inverse map


def test_round_trips():
    x = points(100, 8)
    np.testing.assert_allclose(g.hyperboloid_to_disk(g.to_hyperboloid(x)), x, atol=1e-12)
    h = g.to_hyperboloid(x)
    np.testing.assert_allclose(h[:, 0], np.sqrt(1 + (h[:, 1:] ** 2).sum(1)), rtol=1e-12)  # on the hyperboloid
    np.testing.assert_allclose(g.expmap0(g.logmap0(x)), x, atol=1e-12)
    v = np.random.default_rng(9).normal(size=(100, 2))
    np.testing.assert_allclose(g.logmap0(g.expmap0(v)), v, atol=1e-9)
    np.testing.assert_allclose(g.distance(np.zeros(2), g.expmap0(v)), 2 * np.linalg.norm(v, axis=1), rtol=1e-9)


def test_expmap_moves_along_the_geodesic_by_the_tangent_length():
    x = np.array([0.5, 0.2])
    v = np.array([[0.01, -0.02], [-0.1, 0.05]])
    lam = 2 / (1 - x @ x)
    np.testing.assert_allclose(g.distance(x, g.expmap(x, v)), lam * np.linalg.norm(v, axis=1), rtol=1e-9)


def test_project_keeps_points_inside_with_the_stated_eps():
    x = np.array([[2.0, 0.0], [0.3, 0.4], [1e300, -1e300], [0.0, 0.0]])
    p = g.project(x, 1e-5)
    assert np.isfinite(p).all()
    assert (np.linalg.norm(p, axis=1) <= 1 - 1e-5 + 1e-15).all()
    np.testing.assert_array_equal(p[1], x[1])
    with pytest.raises(DinoscopeError, match="eps"):
        g.project(x, 0.0)


def test_mean_of_one_point_symmetric_points_and_equivariance():
    x = points(40, 10, scale=0.3)
    np.testing.assert_allclose(g.mean(x[:1]), x[0], atol=1e-12)
    sym = np.array([[0.7, 0.1], [-0.7, -0.1], [0.2, -0.5], [-0.2, 0.5]])
    np.testing.assert_allclose(g.mean(sym), 0.0, atol=1e-12)
    c = np.array([0.4, -0.6])
    np.testing.assert_allclose(g.mean(g.move_to_origin(x, c)), g.move_to_origin(g.mean(x), c), atol=1e-9)


def test_mean_is_the_frechet_mean():
    """The sum of squared distances is smallest at the mean: any nearby point does worse."""
    x = points(60, 11, scale=0.8)
    m = g.mean(x)
    cost = lambda p: (g.distance(x, p) ** 2).sum()  # noqa: E731
    rng = np.random.default_rng(12)
    assert all(cost(m) < cost(g.project(m + 1e-3 * rng.normal(size=2))) for _ in range(20))
    w = np.r_[np.zeros(59), 1.0]
    np.testing.assert_allclose(g.mean(x, w), x[-1], atol=1e-9)
    with pytest.raises(DinoscopeError, match="weights"):
        g.mean(x, -w)


def test_numpy_calls_run_on_one_torch_thread_and_restore_the_setting():
    before = torch.get_num_threads()
    seen = []
    with g.one_thread():
        seen.append(torch.get_num_threads())
    g.mean(np.random.default_rng(0).uniform(-0.5, 0.5, size=(100, 2)))
    assert seen == [1] and torch.get_num_threads() == before

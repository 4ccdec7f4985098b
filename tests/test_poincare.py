"""Poincaré maps: the t-SNE gradient, the optimiser at the boundary, centring, the class tree, geodesics."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from test_geometry import EPS64, distance_error, mean_resolution, rim_gap  # noqa: E402

from dinoscope.errors import DinoscopeError  # noqa: E402
from dinoscope.geometry import ball as g  # noqa: E402
from dinoscope.geometry.geodesics import geodesic_circle, geodesic_points  # noqa: E402
from dinoscope.geometry.hierarchy import class_tree, place_on_disk  # noqa: E402
from dinoscope.maps import hyperbolic_tsne  # noqa: E402
from dinoscope.maps.hyperbolic_tsne import (  # noqa: E402
    RiemannianDescent,
    all_pairs,
    attraction_edges,
    sampled_pairs,
    tsne_gradient,
)
from dinoscope.maps.poincare import PoincareMap  # noqa: E402
from dinoscope.metrics.faithfulness import knn_accuracy, trustworthiness  # noqa: E402
from dinoscope.metrics.hierarchy import coarse_knn_accuracy, hierarchy_score  # noqa: E402
from dinoscope.neighbors import knn_graph  # noqa: E402
from dinoscope.render.disk import plot_disk  # noqa: E402

FAST = dict(n_iter=100, early_exaggeration_iter=50)


def kl(Y: torch.Tensor, P: np.ndarray, exaggeration: float, scale: float = 1.0) -> torch.Tensor:
    """The loss whose gradient the optimiser follows: -α Σ p log w + log Σ w, w = 1 / (1 + d²/s²), over i ≠ j."""
    i, j = np.nonzero(~np.eye(len(P), dtype=bool))
    w = 1 / (1 + (g.distance(Y[i], Y[j]) / scale) ** 2)
    return -(exaggeration * torch.tensor(P[i, j]) * torch.log(w)).sum() + torch.log(w.sum())


def gradient_terms(Y: np.ndarray, P: np.ndarray, exaggeration: float, scale: float) -> np.ndarray:
    """Σ over the pairs of |each pair's term| in every gradient component: the magnitude its rounding is relative to."""
    i, j = np.nonzero(~np.eye(len(P), dtype=bool))
    kernel = lambda Z: 1 / (1 + (g.distance(Z[i], Z[j]) / scale) ** 2)  # noqa: E731
    w = kernel(torch.tensor(Y)).numpy()
    dw = torch.autograd.functional.jacobian(kernel, torch.tensor(Y)).numpy()  # (pairs, n, 2)
    share = -exaggeration * P[i, j] / w + 1 / w.sum()  # ∂ loss / ∂ w of each pair
    return np.abs(share[:, None, None] * dw).sum(axis=0)


def affinity_problem(n: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    """A seeded disk layout of n points and a random symmetric affinity matrix (`density` of pairs), summing to 1."""
    rng = np.random.default_rng(0)
    A = rng.random((n, n)) * (rng.random((n, n)) < density)
    A = A + A.T
    np.fill_diagonal(A, 0)
    return g.project(rng.normal(size=(n, 2)) * 0.5), A / A.sum()


def digits_sample(n: int, k: int):
    """A seeded sample of n digits as float32, their labels and their k-NN graph."""
    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).choice(len(X), n, replace=False)
    X = X[idx].astype(np.float32)
    return X, y[idx], knn_graph(X, k=k)


@pytest.fixture(scope="module")
def problem():
    return affinity_problem(15, 0.4)


@pytest.fixture(scope="module")
def digits():
    return digits_sample(500, 90)


@pytest.fixture(scope="module")
def digits_map(digits):
    X, y, graph = digits
    return PoincareMap(**FAST).fit_transform(X, knn=graph)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_gradient_matches_autograd_and_finite_differences(problem, scale):
    Y, P = problem
    ours = tsne_gradient(Y, attraction_edges(sp.csr_matrix(P)), all_pairs(len(Y)), exaggeration=4.0, scale=scale)
    Yt = torch.tensor(Y, requires_grad=True)
    kl(Yt, P, 4.0, scale).backward()
    # Two float64 codes for the same sums: each pair's term is within a few eps / (1 - |y|²) of the exact one (they
    # may round 1 - |y|², down to 2e-5 at the rim, differently), so each component is within that of its |terms|.
    bound = 64 * EPS64 / rim_gap(Y).min() * gradient_terms(Y, P, 4.0, scale)
    assert (np.abs(ours - Yt.grad.numpy()) <= bound).all()
    # Central difference at h = 1e-5: its truncation h² f⁽³⁾ / 6 is ~1e-9 of the component here, and the rounding
    # of the two losses (sums of 210 float64 terms of one sign, within 210 eps/2 |f| each) at most 4e-7 of it once
    # divided by 2h (at h = 1e-6 that could reach 4e-6).
    h, (r, c) = 1e-5, (3, 1)
    plus, minus = Y.copy(), Y.copy()
    plus[r, c] += h
    minus[r, c] -= h
    numeric = (kl(torch.tensor(plus), P, 4.0, scale) - kl(torch.tensor(minus), P, 4.0, scale)).item() / (2 * h)
    assert ours[r, c] == pytest.approx(numeric, rel=1e-6, abs=0)


@pytest.mark.slow
def test_threads_and_sampling_keep_the_gradient(problem, monkeypatch):
    """The threaded kernel gives the serial result bit for bit; sampled pairs estimate the exact repulsion."""
    Y, P = problem
    edges = attraction_edges(sp.csr_matrix(P))
    serial = tsne_gradient(Y, edges, all_pairs(len(Y)), scale=0.3)
    monkeypatch.setattr(hyperbolic_tsne, "_PARALLEL_MIN", 0)
    np.testing.assert_array_equal(tsne_gradient(Y, edges, all_pairs(len(Y)), scale=0.3), serial)
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    sampled = np.mean([tsne_gradient(Y, edges, sampled_pairs(len(Y), 4, rng), scale=0.3) for _ in range(3000)], axis=0)
    # A statistical bound, not a rounding one (seeded draws, the same on every machine): one draw scatters by
    # ~0.5 % of max|grad| around the exact gradient, so the mean of 3000 by ~1e-4; 5 % also covers the ratio
    # estimate's O(1 / (n m)) bias, while a wrong repulsion would be off by its whole size.
    assert np.abs(sampled - serial).max() < 0.05 * np.abs(serial).max()


def test_steps_are_capped_in_hyperbolic_length():
    rng = np.random.default_rng(0)
    Y = g.project(rng.normal(size=(50, 2)) * 0.6)
    descent = RiemannianDescent(max_step=0.3)
    moved = descent.step(Y, rng.normal(size=(50, 2)) * 1e6, learning_rate=1e3, momentum=0.8)
    # every step is cut to 0.3, up to the rounding of the step and of its length, eps / (1 - |y|²) relative (some
    # points sit 1e-5 from the rim); the points that the final projection pulled in moved less
    rel = 64 * EPS64 / min(rim_gap(Y).min(), rim_gap(moved).min())
    assert g.distance(Y, moved).max() == pytest.approx(0.3, rel=rel, abs=0)


def test_map_on_digits_is_faithful_and_separates_classes(digits, digits_map):
    X, y, graph = digits
    Y = digits_map
    assert Y.shape == (500, 2) and (np.linalg.norm(Y, axis=1) < 1).all()
    D_high = knn_graph(X, k=499, metric="cosine")  # every neighbour, to build the full distance matrix
    D = np.zeros((500, 500))
    np.put_along_axis(D, D_high.indices, D_high.distances, axis=1)
    D_low = g.pairwise_distances(Y, Y)
    random_disk = g.project(np.random.default_rng(1).uniform(-0.7, 0.7, size=(500, 2)))
    T = trustworthiness(D, D_low)
    assert T > 0.95 > trustworthiness(D, g.pairwise_distances(random_disk, random_disk)) + 0.2
    assert knn_accuracy(D_low, y.astype(str)) > 0.9


# n_iter 50: the fewest iterations PoincareMap accepts (its n_iter constraint, as the run settings)
@pytest.mark.parametrize("learning_rate", [1e9, 1e-9])
def test_extreme_learning_rates_keep_points_finite_and_inside(digits, learning_rate):
    X, _, graph = digits
    eps = 1e-4
    Y = PoincareMap(learning_rate=learning_rate, n_iter=50, early_exaggeration_iter=10, eps=eps,
                    center=None).fit_transform(X, knn=graph)
    assert np.isfinite(Y).all()
    # the projection's scaling and NumPy's norm round by at most 6 eps/2 (as in test_geometry)
    assert (np.linalg.norm(Y, axis=1) <= 1 - eps + 4 * EPS64).all()


def test_sampled_repulsion_large_path_runs(digits):
    X, y, graph = digits
    Y = PoincareMap(exact_max=100, negative_samples=16, **FAST).fit_transform(X, knn=graph)
    assert knn_accuracy(g.pairwise_distances(Y, Y), y.astype(str)) > 0.85


def test_centring_on_a_class_medoid_is_an_isometry(digits):
    X, y, graph = digits
    plain = PoincareMap(center=None, **FAST).fit(X, knn=graph)
    centred = PoincareMap(center_class=3, **FAST).fit(X, list(y), knn=graph)
    np.testing.assert_array_equal(centred.embedding_[centred.center_index_], 0.0)  # exact: (-c) ⊕ c = 0
    assert y[centred.center_index_] == 3
    rows = np.flatnonzero(y == 3)
    D = g.pairwise_distances(plain.embedding_[rows], plain.embedding_[rows])
    assert centred.center_index_ == rows[np.argmin(D.sum(axis=1))]  # the class medoid
    # both sides' distance rounding, and the moved points are rounded too (as in test_geometry)
    np.testing.assert_allclose(g.pairwise_distances(centred.embedding_, centred.embedding_),
                               g.pairwise_distances(plain.embedding_, plain.embedding_), rtol=0,
                               atol=4 * distance_error(centred.embedding_, plain.embedding_))
    with pytest.raises(DinoscopeError, match="labels"):
        PoincareMap(center_class=3).fit(X, knn=graph)


@pytest.mark.slow
def test_umap_method_lands_in_the_disk(digits):
    X, y, graph = digits
    Y = PoincareMap(method="umap").fit_transform(X, knn=graph)  # 100 epochs: 0.87-0.94 over seeds
    assert (np.linalg.norm(Y, axis=1) < 1).all()
    assert knn_accuracy(g.pairwise_distances(Y, Y), y.astype(str)) > 0.9


def test_bad_settings_raise_one_line_errors(digits):
    X, _, graph = digits
    with pytest.raises(ValueError, match="'method' parameter of PoincareMap") as err:
        PoincareMap(method="spiral").fit(X, knn=graph)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="'center' parameter of PoincareMap"):
        PoincareMap(center="middle").fit(X, knn=graph)


def planted():
    """Four blobs in two well-separated pairs (a two-level tree) and a disk layout that keeps it."""
    rng = np.random.default_rng(0)
    top = np.array([[10.0, 0, 0, 0], [0, 10.0, 0, 0]])
    centres = np.repeat(top, 2, axis=0) + np.array([[0, 0, 2.0, 0], [0, 0, 0, 2.0]] * 2)
    groups = np.repeat(["a1", "a2", "b1", "b2"], 50)
    X = np.repeat(centres, 50, axis=0) + rng.normal(size=(200, 4)) * 0.1
    disk = np.repeat(np.array([[0.6, 0.1], [0.6, -0.1], [-0.6, 0.1], [-0.6, -0.1]]), 50, axis=0)
    return X, groups, disk + rng.normal(size=(200, 2)) * 0.01


def test_class_tree_and_hierarchy_score_on_a_planted_tree():
    X, groups, Y = planted()
    tree = class_tree(X, groups)
    assert tree.leaves == ["a1", "a2", "b1", "b2"] and tree.n_nodes == 7
    assert sorted(map(sorted, tree.children[:2].tolist())) == [[0, 1], [2, 3]]
    assert list(tree.parent) == [4, 4, 5, 5, 6, 6, -1] or list(tree.parent) == [5, 5, 4, 4, 6, 6, -1]
    assert hierarchy_score(tree, Y, groups) > 0.8
    crossed = Y[np.r_[0:50, 100:150, 50:100, 150:200]]  # a1 next to b1 and a2 next to b2: the tree broken
    assert hierarchy_score(tree, crossed, groups) < 0.5
    nodes = place_on_disk(tree, Y, groups)
    # The root is the mean of everything, its points taken in another order. The mean's steps are accepted when
    # the float64 cost decreases, and the cost is flat to within its resolution about sqrt(eps) ~ 1.5e-8 (times the
    # points' spread) from the minimiser, so two orders of the same points agree to that (`mean_resolution`, each),
    # not to the last digit.
    np.testing.assert_allclose(nodes[-1], g.mean(Y), rtol=0, atol=2 * mean_resolution(Y, nodes[-1]))
    assert coarse_knn_accuracy(Y, [s[0] for s in groups]) == 1.0


def test_geodesic_arcs_are_orthogonal_to_the_boundary():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = g.project(rng.normal(size=(2, 2)) * 0.5)
        c, r = geodesic_circle(p, q)
        assert c @ c == pytest.approx(r**2 + 1, rel=8 * EPS64, abs=0)  # r = sqrt(c·c - 1): a few roundings
        # c solves 2 c·x = 1 + |x|² (x = p, q) to eps times the 2x2 system's condition number, and
        # |c - x|² = r² + (1 + |x|² - 2 c·x) cancels |c|² down to r²
        rel = 16 * EPS64 * np.linalg.cond(np.stack([p, q])) * (c @ c) / r**2
        assert np.linalg.norm(c - p) == pytest.approx(r, rel=rel, abs=0)
        assert np.linalg.norm(c - q) == pytest.approx(r, rel=rel, abs=0)
        pq = np.stack([p, q])
        mid = g.mean(pq)  # the hyperbolic midpoint lies on the drawn arc, up to the mean's resolution
        assert np.linalg.norm(c - mid) == pytest.approx(r, abs=mean_resolution(pq, mid) + 8 * EPS64 * np.sqrt(c @ c))
        arc = geodesic_points(p, q)
        assert (np.linalg.norm(arc, axis=1) < 1).all()
        # c + r (cos a, sin a) with a = atan2(p - c): a few roundings of numbers of size |c| + r
        np.testing.assert_allclose(arc[[0, -1]], [p, q], rtol=0, atol=8 * EPS64 * (np.linalg.norm(c) + r))
    assert geodesic_circle(np.array([0.3, 0.3]), np.array([-0.5, -0.5])) is None  # a diameter


def test_plot_disk_draws_tree_and_names():
    X, groups, Y = planted()
    tree = class_tree(X, groups)
    fig, ax = plt.subplots()
    plot_disk(ax, Y, list(groups), tree, place_on_disk(tree, Y, groups), caption="Poincaré")
    assert {t.get_text() for t in ax.texts} == set(tree.leaves)
    assert len(ax.lines) == len(tree.edges)
    plt.close(fig)

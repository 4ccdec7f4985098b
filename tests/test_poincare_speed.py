"""The fast paths of the hyperbolic t-SNE: partners drawn in the kernel, threads, the fused step, early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics.pairwise import cosine_distances
from test_poincare import affinity_problem, digits_sample

from dinoscope.geometry import ball as g
from dinoscope.maps import hyperbolic_tsne as ht
from dinoscope.maps.affinities import symmetric_p
from dinoscope.maps.poincare import PoincareMap
from dinoscope.metrics.faithfulness import knn_accuracy, trustworthiness


@pytest.fixture(scope="module")
def problem():
    return affinity_problem(40, 0.3)


@pytest.fixture(scope="module")
def digits():
    return digits_sample(400, 45)


def exact_kl(Y: np.ndarray, P: np.ndarray, scale: float) -> float:
    """KL(P‖Q) over the ordered pairs i ≠ j, from the full distance matrix."""
    i, j = np.nonzero(~np.eye(len(P), dtype=bool))
    w = 1 / (1 + (g.distance(Y[i], Y[j]) / scale) ** 2)
    p = P[i, j]
    q = w / w.sum()
    keep = p > 0
    return float((p[keep] * np.log(p[keep] / q[keep])).sum())


def test_partners_are_uniform_over_the_others_and_never_the_point():
    n, draws = 7, 70000
    key = ht.draw_key(3, 5)
    partners = np.array([ht._partner(key + np.uint64(r), 2, n) for r in range(draws)])
    assert (partners != 2).all() and partners.min() >= 0 and partners.max() < n
    counts = np.bincount(partners, minlength=n)[np.arange(n) != 2]
    # 6 cells of expected 11667: a binomial standard deviation of ~100, so 5 % is > 5 sigma off
    assert np.abs(counts / (draws / (n - 1)) - 1).max() < 0.05
    assert ht.draw_key(3, 5) != ht.draw_key(3, 6) != ht.draw_key(4, 5)


def test_kernel_draws_estimate_the_exact_gradient(problem):
    Y, P = problem
    edges = ht.attraction_edges(sp.csr_matrix(P))
    exact = ht.tsne_gradient(Y, edges, ht.all_pairs(len(Y)), scale=0.3)
    one = ht.sampled_gradient(Y, edges, 4, seed=0, iteration=0, scale=0.3)
    assert not np.allclose(one, exact)  # one draw is noisy, so the mean below tests something
    mean = np.mean([ht.sampled_gradient(Y, edges, 4, seed=0, iteration=t, scale=0.3) for t in range(2000)], axis=0)
    # as tests/test_poincare.py's bound for sampled_pairs: a wrong repulsion is off by its whole size
    assert np.abs(mean - exact).max() < 0.05 * np.abs(exact).max()
    assert np.abs(mean - exact).max() < 0.5 * np.abs(one - exact).max()


def test_threads_give_the_serial_result_bit_for_bit(problem, digits, monkeypatch):
    Y, P = problem
    edges = ht.attraction_edges(sp.csr_matrix(P))
    X, _, graph = digits
    Pd, Y0 = symmetric_p(graph, X, 15), ht.initial_layout(X, 0)
    run = lambda: ht.hyperbolic_tsne(Pd, Y0, n_iter=60, early_exaggeration_iter=20, negative_samples=8,  # noqa: E731
                                     seed=1, scale=0.3, tol=1e-9)
    serial = (ht.sampled_gradient(Y, edges, 4, seed=0, iteration=3, scale=0.3),
              ht.tsne_gradient(Y, edges, ht.all_pairs(len(Y)), scale=0.3), run())
    monkeypatch.setattr(ht, "_PARALLEL_MIN", 0)
    threaded = (ht.sampled_gradient(Y, edges, 4, seed=0, iteration=3, scale=0.3),
                ht.tsne_gradient(Y, edges, ht.all_pairs(len(Y)), scale=0.3), run())
    np.testing.assert_array_equal(threaded[0], serial[0])
    np.testing.assert_array_equal(threaded[1], serial[1])
    np.testing.assert_array_equal(threaded[2].embedding, serial[2].embedding)
    assert threaded[2].kl == serial[2].kl


def reference_step(Y, grad, update, gains, lr, momentum, min_gain, max_step, eps):
    """The optimiser's step written with the ball's (torch) functions, as it was before the fused kernel."""
    a = 1.0 - np.einsum("ij,ij->i", Y, Y)
    grad = grad * (a * a / 4.0)[:, None]
    same = np.sign(grad) == np.sign(update)
    gains = np.maximum(np.where(same, gains * 0.8, gains + 0.2), min_gain)
    update = np.nan_to_num(momentum * update - lr * gains * grad, posinf=1e300, neginf=-1e300)
    length = 2.0 * np.hypot(update[:, 0], update[:, 1]) / np.maximum(a, g.TINY)
    update = update * np.minimum(1.0, max_step / np.maximum(length, g.TINY))[:, None]
    return g.project(g.expmap(Y, update), eps), update, gains


def test_fused_step_matches_the_ball_functions():
    rng = np.random.default_rng(0)
    Y = g.project(rng.normal(size=(300, 2)) * 0.6)
    Y[:5] *= (1 - 1e-5) / np.linalg.norm(Y[:5], axis=1, keepdims=True)  # some at the rim
    descent = ht.RiemannianDescent(max_step=0.3)
    ref_update, ref_gains, ref = np.zeros_like(Y), np.ones_like(Y), Y.copy()
    ours = Y.copy()
    for t in range(5):
        grad = rng.normal(size=Y.shape) * 10.0 ** (2 * t)
        ours = descent.step(ours, grad, learning_rate=50.0, momentum=0.8)
        ref, ref_update, ref_gains = reference_step(ref, grad, ref_update, ref_gains, 50.0, 0.8, 0.01, 0.3, 1e-5)
        np.testing.assert_array_equal(descent.gains, ref_gains)
        # the same float64 formulas in another order: each distance within a few hundred eps / (1 - |y|²)
        assert g.distance(ours, ref).max() < 1e-8
    assert (np.linalg.norm(ours, axis=1) <= 1 - 1e-5 + 1e-15).all()


def test_kl_estimate_is_exact_with_all_pairs_and_close_when_sampled(problem):
    Y, P = problem
    forces = ht.Forces(len(Y), ht.attraction_edges(sp.csr_matrix(P)), scale=0.3)
    _, kl = forces.gradient(Y, ht.Repulsion(ht.all_pairs(len(Y))), objective=True)
    truth = exact_kl(Y, P, 0.3)
    assert kl == pytest.approx(truth, rel=1e-10)
    sampled = [forces.gradient(Y, ht.Repulsion(m=20, key=ht.draw_key(0, t)), objective=True)[1] for t in range(50)]
    assert np.mean(sampled) == pytest.approx(truth, abs=0.02)
    _, nothing = forces.gradient(Y, ht.Repulsion(ht.all_pairs(len(Y))))
    assert np.isnan(nothing)


def test_stopping_rule_stops_early_and_records_the_iterations(digits):
    X, y, graph = digits
    kw = dict(n_iter=200, early_exaggeration_iter=30, exact_max=0, negative_samples=8, early_negative_samples=8)
    full = PoincareMap(**kw).fit(X, knn=graph)
    assert full.n_iter_ == 230 and np.isfinite(full.kl_divergence_)
    early = PoincareMap(tol=5e-3, **kw).fit(X, knn=graph)
    assert 30 + 20 <= early.n_iter_ < 230 and early.n_iter_ % 10 == 0
    assert np.isfinite(early.kl_divergence_) and 0 < early.kl_divergence_ < 5
    huge = PoincareMap(tol=1e6, **kw).fit(X, knn=graph)
    assert huge.n_iter_ == 30 + 20  # the first comparison is at the second check
    assert early.embedding_.shape == (400, 2) and (np.linalg.norm(early.embedding_, axis=1) < 1).all()
    with pytest.raises(ValueError, match="'tol' parameter of PoincareMap"):
        PoincareMap(tol=-1.0).fit(X, knn=graph)


def test_sampled_partners_are_uniform_over_the_others():
    n, i, draws = 7, 3, 70_000
    key = ht.draw_key(5, 0)
    partners = np.array([ht._partner(key + np.uint64(r), i, n) for r in range(draws)])
    counts = np.bincount(partners, minlength=n)
    assert counts[i] == 0
    expected = draws / (n - 1)  # chi-square with 5 degrees of freedom: 20.5 is its 0.999 quantile
    assert ((np.delete(counts, i) - expected) ** 2 / expected).sum() < 20.5


def test_fewer_partners_while_exaggerated_keep_the_map(digits):
    X, y, graph = digits
    kw = dict(n_iter=150, early_exaggeration_iter=100, exact_max=0, negative_samples=16)
    scores, D_high = {}, cosine_distances(X)
    for early in (16, 2):
        Y = PoincareMap(early_negative_samples=early, **kw).fit_transform(X, knn=graph)
        D = g.pairwise_distances(Y, Y)
        scores[early] = (trustworthiness(D_high, D), knn_accuracy(D, y.astype(str)))
    assert scores[2][0] > scores[16][0] - 0.01 and scores[2][1] > scores[16][1] - 0.03
    assert scores[16][1] > 0.85


def test_serial_and_parallel_kernels_are_cached_apart():
    # numba keys its cache by the function, not by its options: sharing one name, the parallel variant loaded
    # the serial one's code (numba issue #6845)
    for variants in (ht._FORCES, ht._COMBINE, ht._STEP):
        names = {variants[p].py_func.__qualname__ for p in (False, True)}
        assert len(names) == 2
        assert variants[True].targetoptions.get("parallel") and not variants[False].targetoptions.get("parallel")

"""The shared kNN graph: exact equals brute force, approximate has high recall, files round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from dinoscope.errors import DinoscopeError
from dinoscope.neighbors import exact_neighbors, knn_graph, load_graph, locality_order, save_graph

EPS32 = np.finfo(np.float32).eps  # 1.2e-7


def cosine_error(dim: int) -> float:
    """Bound on the float32 rounding of a cosine distance: the rows are normalised (norms of `dim` squares) and
    dotted (`dim` terms), each rounding by at most about dim·eps32/2 of values at most 1, so 1 - dot is within
    (dim + 4)·eps32 of exact."""
    return (dim + 4) * EPS32


def euclidean_error(X: np.ndarray, rows: np.ndarray, cols: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Bound on the float32 rounding of Euclidean distances computed as sqrt(|q|² + |r|² - 2 q·r): the three
    `dim`-term sums round by dim·eps32/2 of |q|² + |r|² each, and the square root halves that over 2d."""
    sq = (X.astype(np.float64) ** 2).sum(1)
    return (X.shape[1] + 2) * EPS32 * (sq[rows] + sq[cols]) / (2 * d) + EPS32 * d


@pytest.fixture(scope="module")
def points() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(700, 24)).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_graph_equals_sklearn_brute_force(points, metric):
    graph = knn_graph(points, k=12, metric=metric)
    ref_d, ref_i = NearestNeighbors(n_neighbors=13, metric=metric, algorithm="brute").fit(points).kneighbors()
    assert graph.exact and graph.metric == metric
    assert graph.indices.shape == (700, 12) and graph.indices.dtype == np.int64
    assert graph.distances.dtype == np.float32
    # How far our float32 distances may be from sklearn's: for cosine both are float32 (twice the bound), for
    # Euclidean sklearn's are float64.
    rows = np.arange(700)[:, None]
    if metric == "cosine":
        tol = np.full((700, 13), 2 * cosine_error(points.shape[1]))
    else:
        tol = euclidean_error(points, rows, ref_i, ref_d)
    assert (np.abs(graph.distances - ref_d[:, :12]) <= tol[:, :12]).all()
    # The neighbours are sklearn's, in its order, wherever rounding cannot reorder them: the sorted distances next
    # to a neighbour (the 13th for the 12th) are farther than both sides' rounding. Neighbours within rounding of
    # each other (sklearn's float32 cosine distances do tie to the ulp here) may come in either order, but must be
    # at the right distance in exact (float64) terms.
    gap = np.diff(ref_d, axis=1)
    clear = np.ones((700, 12), dtype=bool)
    clear[:, 1:] &= gap[:, :11] > tol[:, 1:12] + tol[:, :11]
    clear &= gap > tol[:, 1:] + tol[:, :12]
    assert clear.mean() > 0.98  # all but a few
    np.testing.assert_array_equal(graph.indices[clear], ref_i[:, :12][clear])
    exact = pairwise_distances(points.astype(np.float64), metric=metric)
    found, want = exact[rows, graph.indices], exact[rows, ref_i[:, :12]]
    assert (np.abs(found - want) <= 2 * tol[:, :12]).all()
    assert (np.diff(graph.distances, axis=1) >= 0).all()


def test_approximate_graph_has_high_recall():
    X, _ = make_blobs(3000, 32, centers=15, random_state=0)
    approx = knn_graph(X, k=15, method="approx", seed=0)
    exact = knn_graph(X, k=15, method="exact")
    assert not approx.exact and approx.indices.shape == (3000, 15)
    assert not (approx.indices == np.arange(3000)[:, None]).any()
    recall = (approx.indices[:, :, None] == exact.indices[:, None, :]).any(axis=2).mean()
    assert recall >= 0.9
    # searched in locality order and put back: each row's distances are its own neighbours' true ones
    true = pairwise_distances(X, metric="cosine")[np.arange(3000)[:, None], approx.indices]
    np.testing.assert_allclose(approx.distances, true, atol=2 * cosine_error(32))
    assert exact.recall == 1.0
    # the recall the graph reports, measured on a sample of 1000 points, is the true one up to sampling error
    assert abs(approx.recall - recall) <= 0.02


def test_locality_order_keeps_each_cluster_together():
    X, y = make_blobs(64000, 16, centers=8, cluster_std=0.5, random_state=0)
    P = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    order = locality_order(P, "cosine", seed=0)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(P)))
    # 64 cells, each inside one cluster: the cluster changes along the order at most at the cells' borders,
    # where in the points' own (shuffled) order it changes at ~7 of every 8 steps
    assert np.count_nonzero(np.diff(y[order])) <= 63
    assert np.count_nonzero(np.diff(y)) > 50000


def test_auto_switches_to_approximate_above_exact_max(points):
    assert knn_graph(points, k=5, exact_max=1000).exact
    assert not knn_graph(points, k=5, exact_max=100).exact


@pytest.mark.parametrize("method", ["exact", "approx"])
def test_duplicates_keep_each_other_and_never_self(method):
    X = np.random.default_rng(1).normal(size=(300, 8))
    X = np.vstack([X, X[:50]])  # rows 300..349 duplicate rows 0..49
    graph = knn_graph(X, k=5, method=method)
    rows = np.arange(len(X))
    assert not (graph.indices == rows[:, None]).any()
    twin = np.r_[np.arange(300, 350), np.arange(0, 50)]
    assert (graph.indices[np.r_[0:50, 300:350], 0] == twin).all()
    # cosine distance of a row to its copy: 0 up to the float32 rounding of the normalised 8-term dot
    np.testing.assert_allclose(graph.distances[np.r_[0:50, 300:350], 0], 0, atol=cosine_error(X.shape[1]))


def test_k_is_clipped_to_n_minus_one():
    graph = knn_graph(np.random.default_rng(2).normal(size=(6, 3)), k=90)
    assert graph.k == 5
    assert (np.sort(graph.indices, axis=1) == np.array([[j for j in range(6) if j != i] for i in range(6)])).all()


def test_search_finds_reference_rows():
    ref = np.random.default_rng(3).normal(size=(50, 4))
    idx, dist = exact_neighbors(ref, ref[[7, 11]] * 3.0, 1, "cosine")
    assert idx[:, 0].tolist() == [7, 11] and np.allclose(dist, 0, atol=cosine_error(ref.shape[1]))  # float32 rounding


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros(10), "2-D"),
        (np.zeros((2, 3)), "at least 3"),
        (np.array([[0.0, 1.0], [np.nan, 1.0], [1.0, 1.0]]), "NaN"),
    ],
)
def test_bad_input_is_a_one_line_error(X, match):
    with pytest.raises(DinoscopeError, match=match) as info:
        knn_graph(X)
    assert "\n" not in str(info.value)


def test_bad_metric_and_method():
    X = np.ones((5, 2))
    with pytest.raises(DinoscopeError, match="metric"):
        knn_graph(X, metric="manhattan")
    with pytest.raises(DinoscopeError, match="method"):
        knn_graph(X, method="faiss")


def test_save_load_round_trip(points, tmp_path):
    graph = knn_graph(points, k=7, metric="euclidean")
    path = tmp_path / "run" / "neighbors.npz"
    save_graph(graph, path)
    assert [p.name for p in path.parent.iterdir()] == ["neighbors.npz"]  # no temporary left behind
    back = load_graph(path)
    np.testing.assert_array_equal(back.indices, graph.indices)
    np.testing.assert_array_equal(back.distances, graph.distances)
    assert (back.metric, back.exact, back.recall) == ("euclidean", True, 1.0)


def test_load_missing_graph_is_a_clear_error(tmp_path):
    with pytest.raises(DinoscopeError, match="rerun the neighbors stage"):
        load_graph(tmp_path / "nope.npz")


def test_a_truncated_graph_is_a_clear_error(points, tmp_path):
    path = tmp_path / "neighbors.npz"
    save_graph(knn_graph(points, k=7, metric="euclidean"), path)
    path.write_bytes(path.read_bytes()[:200])  # a zip cut short (a damaged disk or copy: our writes are atomic)
    with pytest.raises(DinoscopeError, match="cannot read kNN graph .*rerun the neighbors stage"):
        load_graph(path)

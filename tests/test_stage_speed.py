"""The fast paths of the later stages (issue #12): they must give what the slow ones gave."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsClassifier

from dinoscope.analysis import hdbscan_clusters, reduce_for_clustering
from dinoscope.analysis.clusters import clustering_epochs
from dinoscope.metrics import faithfulness
from dinoscope.metrics.faithfulness import knn_accuracy, map_metrics, nearest, pairwise_distances
from dinoscope.neighbors import knn_graph


def _blobs(seed: int = 0, far: float = 12.0, dim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dim)) * far
    y = rng.integers(0, 6, 900)
    return (centres[y] + rng.normal(size=(900, dim)) * rng.uniform(0.5, 2.0, 6)[y, None]).astype(np.float32), y


def test_hdbscan_equals_scikit_learns():
    # the hdbscan library and scikit-learn's port agree here; at min_samples=5 they split these overlapping blobs
    # differently (ARI 0.81: 4 clusters and 25 noise points against 3 and none), which is theirs, not ours
    X, _ = _blobs()
    ours = hdbscan_clusters(X, min_cluster_size=20, min_samples=40)
    exact = HDBSCAN(min_cluster_size=20, min_samples=40, copy=True).fit_predict(X)
    assert ours.max() >= 1
    assert adjusted_rand_score(exact, ours) > 0.99


def test_hdbscan_finds_far_apart_blobs_with_exact_duplicates():
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(size=(50, 2)) + c for c in ([0, 0], [500, 0], [0, 900], [700, 700])])
    X = np.concatenate([X, X[:3]])  # exact duplicates: zero distances
    found = hdbscan_clusters(X, min_cluster_size=10)
    assert (found >= 0).all() and len(set(found.tolist())) == 4


def test_default_min_samples_is_capped():
    X, _ = _blobs(2)
    assert np.array_equal(hdbscan_clusters(X, min_cluster_size=60),
                          hdbscan_clusters(X, min_cluster_size=60, min_samples=30))


def test_clustering_epochs_shrink_with_n_and_the_reduction_still_separates_blobs():
    assert clustering_epochs(1_797) == 200 and clustering_epochs(20_000) == 105 and clustering_epochs(70_000) == 30
    assert clustering_epochs(10**7) == 30
    X, y = _blobs(3, far=20.0, dim=8)
    reduced = reduce_for_clustering(X, knn_graph(X, k=30), seed=0, n_epochs=30, init="pca")
    assert reduced.shape == (len(X), 5)
    assert adjusted_rand_score(y, hdbscan_clusters(reduced, min_cluster_size=30)) > 0.95
    flat = X[:, :3]  # 3 features for 5 components: the default start must still work
    assert reduce_for_clustering(flat, knn_graph(flat, k=30), seed=0, n_epochs=30).shape == (len(X), 5)


def _sklearn_knn_accuracy(D, y, k=10, folds=5, seed=0):
    correct = 0
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(y):
        clf = KNeighborsClassifier(n_neighbors=min(k, len(train)), metric="precomputed")
        clf.fit(D[np.ix_(train, train)], y[train])
        correct += int((clf.predict(D[np.ix_(test, train)]) == y[test]).sum())
    return correct / len(y)


@pytest.mark.parametrize("k", [1, 10, 25])
def test_knn_accuracy_equals_scikit_learn_cross_validation(k):
    rng = np.random.default_rng(k)
    X = rng.normal(size=(400, 4))
    y = np.array([str(v) for v in (X[:, 0] + 0.7 * rng.normal(size=400) > 0).astype(int) + (X[:, 1] > 1)])
    D = pairwise_distances(X)
    assert knn_accuracy(D, y, k, seed=3) == _sklearn_knn_accuracy(D, y, k, seed=3)
    # a candidate list too short for some rows falls back to ranking those rows fully
    assert knn_accuracy(D, y, k, seed=3, order=nearest(D, k)) == _sklearn_knn_accuracy(D, y, k, seed=3)


def test_nearest_in_threaded_blocks_equals_a_full_sort():
    rng = np.random.default_rng(0)
    D = pairwise_distances(rng.normal(size=(700, 3)))  # > one block of rows
    full = np.argsort(np.where(np.eye(700, dtype=bool), np.inf, D), axis=1, kind="stable")[:, :7]
    assert np.array_equal(nearest(D, 7), full)
    assert np.array_equal(nearest(D, 7, exclude_self=False)[:, 0], np.arange(700))


def test_map_metrics_equals_its_figures_computed_one_by_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8)).astype(np.float32)
    labels = np.array([str(int(v > 0)) for v in X[:, 0]])
    for Y in (X[:, :2], rng.normal(size=(400, 2))):  # a faithful map and a random one
        got = map_metrics(X, Y, labels, metric="euclidean")
        D_high, D_low = pairwise_distances(X), pairwise_distances(Y)
        assert got["trustworthiness"] == faithfulness.trustworthiness(D_high, D_low)
        assert got["continuity"] == faithfulness.continuity(D_high, D_low)
        assert got["knn_recall"] == faithfulness.knn_recall(D_high, D_low)
        assert got["knn_accuracy"] == _sklearn_knn_accuracy(D_low, labels)
        assert got["knn_accuracy_embedding"] == _sklearn_knn_accuracy(D_high, labels)

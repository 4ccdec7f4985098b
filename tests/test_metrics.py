"""Faithfulness metrics: exact values on known maps and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness as sk_trustworthiness

from dinoscope.errors import DinoscopeError
from dinoscope.metrics.faithfulness import (
    continuity,
    embedding_side,
    knn_accuracy,
    knn_recall,
    map_metrics,
    pairwise_distances,
    trustworthiness,
)

EPS64 = np.finfo(np.float64).eps  # 2.2e-16

# The figures are ratios of integer counts: trustworthiness and continuity are 1 - 2·penalty / (n k (2n - 3k - 1))
# with an integer penalty, kNN recall a share of hits. They come out exact when the neighbour sets are; a changed
# set moves them by a whole unit (6e-7 and more here), far above any rounding of the final arithmetic.


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


def test_identity_map_is_perfect():
    X = np.random.default_rng(0).normal(size=(200, 2))
    m = map_metrics(X, X, metric="euclidean")
    # exact: both distance matrices are the same computation on the same points, so the penalty is 0
    assert m["trustworthiness"] == 1.0
    assert m["continuity"] == 1.0
    assert m["knn_recall"] == 1.0
    assert m["n_used"] == 200


def test_random_map_is_at_baseline():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(600, 10)), rng.normal(size=(600, 2))
    m = map_metrics(X, Y, k=10, metric="euclidean")
    # statistical bounds: chance level is 0.5 (the seeded figures are 0.50 and 0.49), and random maps of 600 points
    # scatter around it by about 0.01
    assert m["trustworthiness"] == pytest.approx(0.5, abs=0.05)
    assert m["continuity"] == pytest.approx(0.5, abs=0.05)
    assert m["knn_recall"] < 0.05  # chance is k / (n - 1) = 0.017


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_trustworthiness_and_continuity_match_sklearn(digits, metric):
    rng = np.random.default_rng(2)
    X = digits[0] + rng.normal(scale=1e-3, size=digits[0].shape)  # break the ties of integer pixels
    Y = rng.normal(size=(len(X), 2)) + X[:, :2]
    D_high, D_low = pairwise_distances(X, metric), pairwise_distances(Y)
    # sklearn ranks on the same float64 matrices (the same pairwise_distances) and finds the k nearest with its own
    # search, whose float64 distances differ from ours by ulps: the k-th and (k+1)-th neighbours are 1e-4 (map) and
    # 1e-6 (embedding) apart relative at the closest, so the sets agree on any machine. The integer penalties then
    # agree, and the figures differ at most by how each rounds its last product: a few eps.
    for k in (5, 10):
        expected = sk_trustworthiness(X, Y, n_neighbors=k, metric=metric)
        assert trustworthiness(D_high, D_low, k) == pytest.approx(expected, rel=0, abs=4 * EPS64)
    if metric == "euclidean":  # sklearn measures the second argument's neighbours in Euclidean terms only
        expected = sk_trustworthiness(Y, X, n_neighbors=10)
        assert continuity(D_high, D_low, 10) == pytest.approx(expected, rel=0, abs=4 * EPS64)


def test_continuity_detects_torn_neighbourhoods():
    """A map that folds two far clusters together is untrustworthy yet continuous."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(150, 2)), rng.normal(size=(150, 2))
    X = np.vstack([a, b + 100.0])
    Y = np.vstack([a, b])  # both clusters on top of each other
    m = map_metrics(X, Y, metric="euclidean")
    assert m["continuity"] > 0.95 > m["trustworthiness"]


def test_callable_map_distance_is_used():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 5))
    Y = rng.normal(size=(150, 2))
    calls = []

    def dist_to_X(A, B):  # ignores the map: distances of X, so the "map" is perfect
        calls.append(A.shape)
        return pairwise_distances(X, "euclidean")

    m = map_metrics(X, Y, metric="euclidean", map_distance=dist_to_X)
    assert calls == [(150, 2)]
    assert m["trustworthiness"] == 1.0 and m["knn_recall"] == 1.0  # exact: the same matrix twice, penalty 0
    with pytest.raises(DinoscopeError, match="shape"):
        map_metrics(X, Y, map_distance=lambda A, B: np.zeros((3, 3)))


def test_knn_recall_counts_shared_neighbours():
    X = np.arange(10.0)[:, None]
    Y = X.copy()
    Y[[0, 9]] = Y[[9, 0]]  # swap the two ends
    r = knn_recall(pairwise_distances(X), pairwise_distances(Y), k=1)
    assert r == 6 / 10  # exact (a count over 10): rows 0, 1, 8, 9 lose their nearest neighbour


def test_knn_accuracy_with_string_and_missing_labels(digits):
    X, y = digits
    labels = [f"digit-{v}" for v in y]
    labels[:40] = [None] * 40
    m = map_metrics(X, X[:, :2], labels, metric="euclidean")
    assert 0.9 < m["knn_accuracy_embedding"] <= 1.0
    assert m["knn_accuracy"] < m["knn_accuracy_embedding"] - 0.3  # two pixels are a poor map
    shuffled = knn_accuracy(pairwise_distances(X), np.random.default_rng(5).permutation(y), k=10)
    assert shuffled < 0.25


def test_subsample_is_seeded_and_bounded(digits):
    X, y = digits
    Y = X[:, :2]
    a = map_metrics(X, Y, y, sample=100, seed=1)
    assert a == map_metrics(X, Y, y, sample=100, seed=1)
    assert a["n_used"] == 100
    assert a != map_metrics(X, Y, y, sample=100, seed=2)


def test_one_embedding_side_serves_every_map_with_the_same_figures(digits):
    X, y = digits
    side = embedding_side(X, y, sample=300, seed=3)
    for Y in (X[:, :2], X[:, 5:7], np.random.default_rng(0).normal(size=(len(X), 2))):
        assert map_metrics(X, Y, y, sample=300, seed=3, side=side) == map_metrics(X, Y, y, sample=300, seed=3)
    unlabelled = embedding_side(X, sample=300, seed=3)
    assert unlabelled.accuracy is None and "knn_accuracy" not in map_metrics(X, X[:, :2], side=unlabelled)


def test_bad_inputs():
    X = np.ones((20, 3))
    with pytest.raises(DinoscopeError, match="map has 19 points"):
        map_metrics(X, np.ones((19, 2)))
    with pytest.raises(DinoscopeError, match="k=10"):
        map_metrics(X, np.ones((20, 2)))
    with pytest.raises(DinoscopeError, match="labels"):
        map_metrics(np.random.default_rng(0).normal(size=(40, 3)), np.ones((40, 2)), labels=[1, 2], k=3)

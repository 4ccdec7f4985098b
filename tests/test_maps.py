"""Maps on scikit-learn's digits: shapes, seeds, the shared graph, placing new points."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from openTSNE import affinity
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness

from dinoscope.config import settings_from_flags
from dinoscope.errors import DinoscopeError
from dinoscope.maps import PCAMap, TSNEMap, UMAPMap
from dinoscope.maps.affinities import graph_affinities
from dinoscope.neighbors import KNNGraph, exact_neighbors, knn_graph, umap_knn
from dinoscope.pipeline import build_map

EPS32 = np.finfo(np.float32).eps  # 1.2e-7

FAST_TSNE = dict(n_iter=150, early_exaggeration_iter=75, n_jobs=1)
FAST_UMAP = dict(n_epochs=100)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """600 digits to fit on and 60 held out to place."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    return X[:600], X[600:660], y[:660]


@pytest.fixture(scope="module")
def graph(digits):
    return knn_graph(digits[0], k=90, metric="cosine")


def _trust(X, Y):
    return trustworthiness(X, Y, n_neighbors=10, metric="cosine")


def _placed_near_neighbours(X_fit, Y_fit, X_new, Y_new) -> float:
    """Share of new points placed closer to their nearest fitted point (cosine) than to a typical point."""
    nn = exact_neighbors(X_fit, X_new, 1, "cosine")[0][:, 0]
    d_nn = np.linalg.norm(Y_new - Y_fit[nn], axis=1)
    spread = np.median(np.linalg.norm(Y_fit - Y_fit.mean(0), axis=1))
    return float((d_nn < 0.25 * spread).mean())


def test_build_map_from_the_run_settings():
    settings = settings_from_flags(perplexity=12.0, seed=7, metric="euclidean")
    tsne = build_map("tsne", settings)
    assert isinstance(tsne, TSNEMap) and (tsne.perplexity, tsne.random_state) == (12.0, 7)
    umap = build_map("umap", settings)
    assert isinstance(umap, UMAPMap) and umap.metric == "euclidean"  # the graph's metric, not a setting of its own
    assert build_map("pca", settings_from_flags(seed=1)).get_params() == {"n_components": 2, "random_state": 1}
    with pytest.raises(DinoscopeError, match="available maps: pca, tsne, umap"):
        build_map("isomap", settings)


def test_pca_map_places_points_exactly(digits):
    X, X_new, _ = digits
    m = PCAMap().fit(X)
    assert m.embedding_.shape == (600, 2) and m.embedding_.dtype == np.float32
    # The same float32 sums (each row's 64-term dot with a component, minus the mean's) for 5 rows and for 600,
    # which BLAS may block and so order differently: each is within 64 eps/2 of its sum of |terms|, plus the
    # subtraction's and the result's rounding.
    V = np.abs(m.pca_.components_.T)
    scale = np.abs(X[:5]) @ V + np.abs(m.pca_.mean_) @ V
    assert (np.abs(m.transform(X[:5]) - m.embedding_[:5]) <= (X.shape[1] + 2) * EPS32 * scale).all()
    assert PCAMap(50).fit_transform(X).shape == (600, 50)
    with pytest.raises(DinoscopeError, match="64-D"):
        m.transform(X_new[:, :10])
    with pytest.raises(DinoscopeError, match="dimensions"):
        PCAMap(100).fit(X)


def test_graph_affinities_equal_opentsne_own(digits, graph):
    X = digits[0]
    ours = graph_affinities(graph, X, perplexity=20).P
    own = affinity.PerplexityBasedNN(X, perplexity=20, metric="cosine", method="exact").P
    assert ours.nnz == own.nnz
    # All that differs is the distances' precision: openTSNE recomputes them in float64, the shared graph keeps
    # float32 ones, within (64 + 4) eps of exact (a 64-term dot of unit vectors, and their normalisation). Moving
    # the graph's distances by that much, with random signs, shows how far such rounding can move P.
    err = (X.shape[1] + 4) * EPS32 * np.random.default_rng(0).choice([-1.0, 1.0], size=graph.distances.shape)
    moved = KNNGraph(graph.indices, graph.distances.astype(np.float64) + err, graph.metric, graph.exact)
    assert abs(ours - own).max() < 2 * abs(graph_affinities(moved, X, perplexity=20).P - ours).max()


def test_tsne_seeded_shared_graph_quality_and_transform(digits, graph):
    X, X_new, _ = digits
    a = TSNEMap(**FAST_TSNE).fit(X, knn=graph)
    b = TSNEMap(**FAST_TSNE).fit(X, knn=graph)
    assert a.embedding_.shape == (600, 2) and a.embedding_.dtype == np.float32
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    assert a.pca_.n_components_ == 50 and a.graph_based_
    plain = TSNEMap(**FAST_TSNE).fit(X)
    assert not plain.graph_based_
    assert _trust(X, a.embedding_) > _trust(X, plain.embedding_) - 0.02
    assert _trust(X, a.embedding_) > 0.95
    back = pickle.loads(pickle.dumps(a))
    assert back.tsne_embedding_.affinities.P is None and back.tsne_embedding_.affinities.knn_index.indices is None
    assert a.tsne_embedding_.affinities.P is not None  # pickling leaves out only what placing does not read
    placed = back.transform(X_new)
    assert placed.shape == (60, 2) and np.isfinite(placed).all()
    assert _placed_near_neighbours(X, a.embedding_, X_new, placed) > 0.8
    assert _placed_near_neighbours(X, plain.embedding_, X_new, plain.transform(X_new)) > 0.8


def test_tsne_graph_of_wrong_size(digits, graph):
    with pytest.raises(DinoscopeError, match="600 points but X has 100"):
        TSNEMap(**FAST_TSNE).fit(digits[0][:100], knn=graph)


def test_umap_knn_prepends_self(graph):
    indices, distances = umap_knn(graph, 15)
    assert indices.shape == distances.shape == (600, 15)
    assert (indices[:, 0] == np.arange(600)).all() and (distances[:, 0] == 0).all()
    np.testing.assert_array_equal(indices[:, 1:], graph.indices[:, :14])
    with pytest.raises(DinoscopeError, match="at least 99 neighbours"):
        umap_knn(graph, 100)


def test_umap_seeded_shared_graph_quality_and_transform(digits, graph):
    X, X_new, _ = digits
    a = UMAPMap(**FAST_UMAP).fit(X, knn=graph)
    b = UMAPMap(**FAST_UMAP).fit(X, knn=graph)
    assert a.embedding_.shape == (600, 2) and a.embedding_.dtype == np.float32
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    plain = UMAPMap(**FAST_UMAP).fit(X)
    assert _trust(X, a.embedding_) > _trust(X, plain.embedding_) - 0.02
    placed = a.transform(X_new)  # builds the search index the precomputed graph lacked
    assert placed.shape == (60, 2) and np.isfinite(placed).all()
    assert _placed_near_neighbours(X, a.embedding_, X_new, placed) > 0.8
    with pytest.raises(DinoscopeError, match="euclidean distances but UMAP is set to cosine"):
        UMAPMap(**FAST_UMAP).fit(X, knn=knn_graph(X, k=20, metric="euclidean"))

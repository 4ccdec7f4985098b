"""The fast spectral start of the UMAP maps: umap-learn's eigenvectors, its fallbacks where they do not exist."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components
from sklearn.datasets import load_digits
from umap.spectral import spectral_layout

from dinoscope.maps.spectral import fuzzy_graph, leading_eigenvectors, spectral_init
from dinoscope.neighbors import knn_graph


def unit_columns(A: np.ndarray) -> np.ndarray:
    return A / np.linalg.norm(A, axis=0)


def test_same_eigenvectors_as_umap_learn():
    X = load_digits().data[:800].astype(np.float32)
    graph = fuzzy_graph(X, knn_graph(X, k=30), 15, None).tocsr()
    ours = leading_eigenvectors(graph, 2, seed=0)
    theirs = spectral_layout(X, graph, 2, np.random.RandomState(0))
    # each eigenvector matches up to its sign (the eigenvalues are distinct)
    cosines = np.abs(np.sum(unit_columns(ours) * unit_columns(theirs), axis=0))
    assert (cosines > 0.999).all()


def test_start_is_scaled_like_umap_learn_and_seeded():
    X = load_digits().data[:500].astype(np.float32)
    knn = knn_graph(X, k=20)
    start = spectral_init(X, knn, 15, 3, None, seed=0)
    assert start.shape == (500, 3) and start.dtype == np.float32
    assert np.isclose(np.abs(start).max(), 10.0, atol=1e-3)  # umap-learn's max_coord, plus its 1e-4 jitter
    np.testing.assert_array_equal(start, spectral_init(X, knn, 15, 3, None, seed=0))


def test_a_graph_in_pieces_falls_back_to_umap_learns_layout():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(60, 8)) + 50, rng.normal(size=(60, 8)) - 50]).astype(np.float32)
    knn = knn_graph(X, k=10, metric="euclidean")
    start = spectral_init(X, knn, 10, 2, None, seed=0)
    assert start.shape == (120, 2) and np.isfinite(start).all()
    # umap-learn lays out each piece on its own: the two blobs do not overlap
    a, b = start[:60], start[60:]
    assert np.linalg.norm(a.mean(0) - b.mean(0)) > 3 * max(a.std(0).max(), b.std(0).max())


def test_groups_of_copies_cut_off_by_the_pruning_start_beside_their_neighbours(monkeypatch):
    rng = np.random.default_rng(0)
    main = rng.normal(size=(1000, 8))
    places = rng.normal(size=(5, 8))
    places *= 4.5 / np.linalg.norm(places, axis=1, keepdims=True)  # out where no point has them among its nearest
    copies = np.repeat(places, 12, axis=0) + rng.normal(size=(60, 8)) * 1e-4  # 5 groups of 12 near-copies
    X = np.vstack([main, copies]).astype(np.float32)
    knn = knn_graph(X, k=30, metric="euclidean")  # the shared graph reaches past the copies, the map's 10 do not
    piece = connected_components(fuzzy_graph(X, knn, 10, None))[1]
    cut_off = [g for g in range(5) if piece[1000 + 12 * g] != piece[0]]
    assert len(cut_off) >= 3  # groups in pieces of their own, the main piece holding 94% or more
    monkeypatch.setattr("umap.spectral.spectral_layout", lambda *a, **k: pytest.fail("the layout of pieces was used"))
    start = spectral_init(X, knn, 10, 2, None, seed=0)
    assert start.shape == (1060, 2) and np.isfinite(start).all()
    spread = start[:1000].std()
    for group in cut_off:
        rows = np.arange(1000 + 12 * group, 1012 + 12 * group)
        neighbours = knn.indices[rows[0]][knn.indices[rows[0]] < 1000]  # its nearest points of the main piece
        assert (np.linalg.norm(start[rows] - start[neighbours].mean(axis=0), axis=1) < 0.1 * spread).all()


def test_a_graph_in_very_many_pieces_starts_from_pca(monkeypatch):
    import dinoscope.maps.spectral as spectral

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 8)) * 100  # 30 tight groups of 12 near-copies: a graph in 30 pieces
    X = (np.repeat(centres, 12, axis=0) + rng.normal(size=(360, 8)) * 0.01).astype(np.float32)
    knn = knn_graph(X, k=10, metric="euclidean")
    monkeypatch.setattr(spectral, "PIECES_MAX", 10)
    monkeypatch.setattr("umap.spectral.spectral_layout", lambda *a, **k: pytest.fail("the c x c layout was used"))
    start = spectral_init(X, knn, 10, 2, None, seed=0)
    assert start.shape == (360, 2) and np.isfinite(start).all()
    assert np.isclose(np.abs(start).max(), 10.0, atol=1e-3)
    # the first principal component orders the groups as the data does
    from sklearn.decomposition import PCA

    pc = PCA(1, random_state=0).fit_transform(X)[:, 0]
    assert abs(np.corrcoef(pc, start[:, 0])[0, 1]) > 0.99

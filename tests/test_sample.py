"""Maps of many points (`maps.sample`): fitted on a seeded sample, the rest placed among their sampled neighbours."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dinoscope import pipeline
from dinoscope.analysis import analyze
from dinoscope.config import settings_from_flags
from dinoscope.maps.sample import (
    fit_sample,
    place_unsampled,
    placing,
    sample_graph,
    sampled_neighbors,
    spread_labels,
    tour,
)
from dinoscope.neighbors import knn_graph
from dinoscope.query.nearby import K
from dinoscope.rundir.results import load_run


@pytest.fixture(scope="module")
def blobs():
    """Three separated 8-D blobs of 300 points, their exact 40-NN graph and a map putting each blob at its own x."""
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], 300)
    centres = np.eye(3, 8, dtype=np.float32) * 12
    X = centres[groups] + rng.normal(size=(900, 8)).astype(np.float32)
    Y = np.stack([groups * 10.0, np.zeros(900)], axis=1) + rng.normal(size=(900, 2))
    return X, groups, knn_graph(X, k=40), Y.astype(np.float32)


def test_a_sample_only_above_fit_max_and_the_same_for_a_seed(blobs):
    _, _, graph, _ = blobs
    assert fit_sample(graph, 900, 0) is None and fit_sample(graph, 0, 0) is None
    sample = fit_sample(graph, 300, 0)
    assert len(sample) == 300 and len(np.unique(sample)) == 300 and (np.diff(sample) > 0).all()
    np.testing.assert_array_equal(fit_sample(graph, 300, 0), sample)
    assert not np.array_equal(fit_sample(graph, 300, 1), sample)


def test_the_tour_walks_through_near_copies_and_jumps_elsewhere():
    indices = np.array([[1, 2, 3], [0, 2, 3], [1, 0, 3], [2, 1, 0], [-1, 2, 0]])  # 0, 1, 2 near-copies
    distances = np.array([[0.01, 0.02, 1], [0.01, 0.01, 1], [0.01, 0.02, 1], [0.5, 0.6, 1], [0.01, 0.5, 1]])
    order = tour(indices, distances, np.array([0, 4, 3, 1, 2]), 0.1)
    np.testing.assert_array_equal(order, [0, 1, 2, 4, 3])  # 4's near neighbour is missing (-1): a jump
    rng = np.random.default_rng(0)
    big = rng.integers(-1, 500, size=(500, 6))
    assert sorted(tour(big, np.sort(rng.random((500, 6)), axis=1), rng.permutation(500), 0.5)) == list(range(500))


def _copies(images: int, copies: int, seed: int = 0):
    """`copies` noisy near-copies of each of `images` random 16-D points, rows shuffled, and their exact 30-NN graph."""
    rng = np.random.default_rng(seed)
    image = rng.permutation(np.repeat(np.arange(images), copies))
    X = rng.normal(size=(images, 16)).astype(np.float32)[image] + rng.normal(size=(len(image), 16)).astype(
        np.float32) * 0.01
    return image, knn_graph(X, k=30)


def test_near_copies_are_sampled_evenly_and_every_point_alike():
    image, graph = _copies(200, 12)  # a quarter sampled: 3 copies of each image, where chance gives 0 to 8
    counts = np.bincount(image[fit_sample(graph, 600, 0)], minlength=200)
    chance = np.bincount(image[np.random.default_rng(0).choice(len(image), 600, replace=False)], minlength=200)
    assert counts.min() >= 2 and counts.max() <= 4 and chance.max() - chance.min() >= 5
    drawn = np.zeros(len(image))  # the draw is still uniform: every point's chance is a quarter
    for seed in range(200):
        drawn[fit_sample(graph, 600, seed)] += 1
    assert abs(drawn.mean() / 200 - 0.25) < 1e-12 and np.abs(drawn / 200 - 0.25).max() < 0.15


def test_sampled_neighbours_are_the_nearest_sampled_ones_in_the_graph(blobs):
    X, _, graph, _ = blobs
    sample = fit_sample(graph, 450, 0)
    rest = np.setdiff1d(np.arange(len(X)), sample)
    indices, distances, short = sampled_neighbors(graph, sample, rest)
    assert len(short) == 0  # 40 neighbours, half of them sampled: every row has 10
    for row, point in enumerate(rest[:50]):
        mine = graph.indices[point][np.isin(graph.indices[point], sample)][:K]  # nearest first
        np.testing.assert_array_equal(sample[indices[row]], mine)
        np.testing.assert_array_equal(distances[row], graph.distances[point][np.isin(graph.indices[point], sample)][:K])


def test_rows_with_too_few_sampled_neighbours_are_said_so(blobs):
    X, _, graph, _ = blobs
    sample = fit_sample(graph, 90, 0)  # a tenth sampled: about 4 of a row's 40 neighbours
    rest = np.setdiff1d(np.arange(len(X)), sample)
    indices, _, short = sampled_neighbors(graph, sample, rest)
    assert len(short) > len(rest) // 2
    assert (indices[short] == -1).all() and (indices[np.setdiff1d(np.arange(len(rest)), short)] >= 0).all()


@pytest.mark.parametrize("fit_max", [450, 90])  # placed by the graph alone / mostly by the cells search
def test_unsampled_points_land_in_their_blob_and_sampled_ones_stay(blobs, fit_max):
    X, groups, graph, Y = blobs
    sample = fit_sample(graph, fit_max, 0)
    out = place_unsampled(placing(X, graph, sample), Y[sample], disk=False)
    assert out.shape == Y.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out[sample], Y[sample])
    assert (np.abs(out[:, 0] - groups * 10.0) < 4).mean() > 0.99


def test_a_disk_map_stays_in_the_disk(blobs):
    X, groups, graph, Y = blobs
    disk = (Y / (np.linalg.norm(Y, axis=1, keepdims=True) + 1)).astype(np.float64)
    sample = fit_sample(graph, 300, 0)
    out = place_unsampled(placing(X, graph, sample), disk[sample], disk=True)
    assert out.dtype == np.float64 and (np.linalg.norm(out, axis=1) < 1).all()


@pytest.mark.parametrize("fit_max", [450, 60])  # every row read from the graph / most rows searched
def test_the_sample_graph_is_its_nearest_sampled_neighbours(blobs, fit_max):
    X, _, graph, _ = blobs
    sample = fit_sample(graph, fit_max, 0)
    g = sample_graph(X, graph, sample, 14)
    assert g.indices.shape == (len(sample), 14) and (np.diff(g.distances, axis=1) >= 0).all()
    assert not (g.indices == np.arange(len(sample))[:, None]).any()  # no point is its own neighbour
    exact = knn_graph(X[sample], k=14)  # the sample's own exact graph
    recall = np.mean([len(set(a) & set(b)) / 14 for a, b in zip(g.indices, exact.indices, strict=True)])
    assert recall > (0.99 if fit_max == 450 else 0.8)  # the cells search of short rows is approximate


def test_unsampled_points_take_the_label_of_their_sampled_neighbours(blobs):
    X, groups, graph, _ = blobs
    sample = fit_sample(graph, 300, 0)
    plan, rest = placing(X, graph, sample), np.setdiff1d(np.arange(len(X)), sample)
    out = spread_labels(plan, groups[sample])
    np.testing.assert_array_equal(out[sample], groups[sample])
    assert (out[rest] == groups[rest]).mean() > 0.99
    wrong = groups[sample].copy()
    wrong[:5] = 7  # a few sampled points mislabelled: outvoted by the rest of their blob, but where they are nearest
    assert (spread_labels(plan, wrong)[rest] == 7).mean() < 0.03


def test_clusters_above_cluster_max_are_fitted_on_a_sample(blobs):
    X, groups, graph, _ = blobs
    ids, labels = [str(i) for i in range(len(X))], [str(g) for g in groups]
    columns, summary = analyze(X, ids, labels, None, graph, cluster_max=450, n_clusters=3)
    assert summary["hdbscan"]["fitted_on"] == summary["kmeans"]["fitted_on"] == 450
    assert summary["hdbscan"]["min_cluster_size"] == 5  # 0.5 % of the 450 fitted, at least 5
    for name in ("hdbscan", "kmeans"):  # three separated blobs: found by both, for every point
        assert summary[name]["n_clusters"] == 3 and summary[name]["nmi"] > 0.95
    assert len(columns["cluster"]) == len(columns["kmeans_cluster"]) == len(X)
    _, whole = analyze(X, ids, labels, None, graph, n_clusters=3)
    assert "fitted_on" not in whole["hdbscan"]


def test_a_learned_map_is_refitted_when_its_sampled_teacher_is():
    from dinoscope.pipeline import _map_key

    small, large = settings_from_flags(fit_max=1000), settings_from_flags(fit_max=2000)
    assert _map_key("g", small, "pca", True) == _map_key("g", large, "pca", True)  # fitted on every point
    assert _map_key("g", small, "tsne", True) != _map_key("g", large, "tsne", True)
    assert _map_key("g", small, "param_tsne", True) != _map_key("g", large, "param_tsne", True)  # its teacher moved
    assert _map_key("g", small, "param_tsne", False) == _map_key("g", large, "param_tsne", False)


@pytest.mark.slow
def test_a_run_above_fit_max_fits_a_sample_and_places_the_rest(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data[:600].astype(np.float32), digits.target[:600]
    np.savez(tmp_path / "vectors.npz", embeddings=X, labels=y.astype(str))
    out = tmp_path / "run"
    pipeline.run_pipeline(out, settings_from_flags(source=str(tmp_path / "vectors.npz"), maps="pca,tsne,umap",
                                                   fit_max=400, cluster_max=300), progress=False)
    result = load_run(out)
    assert all(xy.shape == (600, 2) and np.isfinite(xy).all() for xy in result.maps.values())
    maps = result.manifest["stages"]["maps"]["maps"]
    assert maps["tsne"]["fitted_on"] == maps["umap"]["fitted_on"] == 400 and "fitted_on" not in maps["pca"]
    ran = maps["tsne"]["iterations"]  # what its stopping rules let run, within the caps
    assert 0 < ran["early_exaggeration_iter"] <= 250 and 0 < ran["n_iter"] <= 750 and "iterations" not in maps["pca"]
    figures = result.metrics["maps"]
    assert figures["tsne"]["fitted_on"] == 400
    assert figures["tsne"]["knn_accuracy"] > 0.9 and figures["umap"]["knn_accuracy"] > 0.9  # digits: ~0.97 refitted
    assert "fitted on a seeded sample of 400 of the 600 images" in (out / "report.html").read_text()
    clusters = json.loads((out / "analysis.json").read_text())["hdbscan"]
    assert clusters["fitted_on"] == 300 and clusters["nmi"] > 0.6  # digits: ~0.8 on every point
    assert "HDBSCAN fitted on a seeded sample of 300" in (out / "report.html").read_text()

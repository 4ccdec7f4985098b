"""The analyses on data where the truth is planted: duplicates, label flips, outliers, clusters, search."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import average_precision_score, normalized_mutual_info_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor

from dinoscope.analysis import (
    COLUMNS,
    DEFAULT_THRESHOLD,
    SimilarityIndex,
    analyze,
    cross_split_pairs,
    first_member_of,
    group_labels,
    groups_as_ids,
    hash_pairs,
    hdbscan_clusters,
    kmeans_clusters,
    kth_neighbor_distance,
    label_issues,
    local_outlier_factor,
    medoids,
    near_duplicate_groups,
    pixel_hashes,
    read_image,
    reduce_for_clustering,
    similar_pairs,
)
from dinoscope.errors import DinoscopeError
from dinoscope.neighbors import knn_graph
from dinoscope.render.grids import image_grid, short_caption

_spec = importlib.util.spec_from_file_location("bench_analysis", Path(__file__).parents[1] / "benchmarks/analysis.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def digits():
    """400 digits as flattened pixels with their labels."""
    bunch = load_digits()
    return bunch.data[:400].astype(np.float32), bunch.target[:400]


def pixels(images: np.ndarray) -> np.ndarray:
    return images[..., 0].reshape(len(images), -1).astype(np.float32)


def test_planted_near_duplicates_found_with_precision_and_recall():
    images, _ = bench.digit_images()
    images = images[:300]
    rng = np.random.default_rng(1)
    originals = rng.choice(len(images), 30, replace=False)
    copies = [bench.near_copy(images[i], ("resize", "jpeg", "crop")[j % 3], rng) for j, i in enumerate(originals)]
    graph = knn_graph(pixels(np.concatenate([images, np.stack(copies)])), k=10)
    truth = {(int(o), 300 + j) for j, o in enumerate(originals)}
    precision, recall = bench.pair_scores(bench.group_pairs(near_duplicate_groups(graph, DEFAULT_THRESHOLD)), truth)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    # A loose threshold chains look-alike digits together: precision collapses, which the benchmark guards against.
    loose, _ = bench.pair_scores(bench.group_pairs(near_duplicate_groups(graph, 0.9)), truth)
    assert loose < 0.5


def test_groups_first_members_and_cross_split_leaks():
    pairs = np.array([[1, 4], [4, 6], [2, 3]])
    groups = group_labels(pairs, 7)
    assert groups.tolist() == [-1, 0, 1, 1, 0, -1, 0]
    ids = list("abcdefg")
    assert first_member_of(groups, ids) == [None, None, None, "c", "b", None, "b"]
    assert groups_as_ids(groups, ids) == [["b", "e", "g"], ["c", "d"]]
    splits = ["train", "train", "test", "train", "test", None, "train"]
    assert cross_split_pairs(pairs, splits).tolist() == [[1, 4], [4, 6], [2, 3]]
    assert cross_split_pairs(pairs, ["train"] * 7).shape == (0, 2)


def test_exact_duplicates_by_pixel_hash():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    images += [images[3].copy(), images[1].copy(), images[3].copy()]
    pairs = hash_pairs(pixel_hashes(lambda i: images[i], len(images)))
    assert pairs.tolist() == [[3, 5], [1, 6], [3, 7]]
    assert first_member_of(group_labels(pairs, 8), [str(i) for i in range(8)]) == [None] * 5 + ["3", "1", "3"]


def test_flipped_labels_rank_near_the_top(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), 20, replace=False)
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, 10, 20)) % 10
    scores, suggested = label_issues(knn_graph(X, k=10), [str(v) for v in given], k=10)
    is_flipped = np.isin(np.arange(len(y)), flipped)
    assert average_precision_score(is_flipped, scores) > 0.7  # base rate 0.05
    assert np.mean([suggested[i] == str(y[i]) for i in flipped]) > 0.8


def test_unlabelled_images_get_nan_scores_but_suggestions(digits):
    X, y = digits
    labels = [str(v) for v in y]
    labels[0] = None
    scores, suggested = label_issues(knn_graph(X, k=5), labels, k=5)
    assert np.isnan(scores[0]) and suggested[0] == str(y[0]) and np.isfinite(scores[1:]).all()


def test_obvious_outliers_rank_high(digits):
    X, _ = digits
    noise = np.random.default_rng(0).uniform(0, 16, (12, X.shape[1])).astype(np.float32)
    graph = knn_graph(np.vstack([X, noise]), k=20)
    is_out = np.arange(len(X) + 12) >= len(X)
    assert roc_auc_score(is_out, kth_neighbor_distance(graph, 5)) > 0.9


def test_lof_equals_scikit_learn():
    X, _ = make_blobs(300, centers=3, random_state=0)
    X = np.vstack([X, [[20.0, 20.0]]])
    ours = local_outlier_factor(knn_graph(X, k=20, metric="euclidean"), 20)
    theirs = -LocalOutlierFactor(n_neighbors=20).fit(X).negative_outlier_factor_
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    assert ours.argmax() == 300


def test_kmeans_fitted_on_a_sample_gives_every_point_its_nearest_centre_in_blocks(monkeypatch):
    from dinoscope.analysis import clusters

    X, y = make_blobs(500, centers=4, n_features=10, cluster_std=0.5, random_state=0)
    sample = np.arange(0, 500, 3)
    whole = kmeans_clusters(X, 4, fit_rows=sample)
    monkeypatch.setattr(clusters, "PREDICT_ROWS", 7)
    np.testing.assert_array_equal(kmeans_clusters(X, 4, fit_rows=sample), whole)
    assert normalized_mutual_info_score(y, whole) > 0.99


@pytest.mark.slow  # numba compiles umap-learn on first use (~20 s)
def test_separated_blobs_are_clustered_exactly():
    X, y = make_blobs(400, centers=4, n_features=20, cluster_std=0.5, random_state=0)
    graph = knn_graph(X, k=20)
    hdb = hdbscan_clusters(reduce_for_clustering(X, graph, n_components=5, seed=0), min_cluster_size=20)
    assert normalized_mutual_info_score(y, hdb) > 0.95
    km = kmeans_clusters(X, 4)
    assert normalized_mutual_info_score(y, km) > 0.99
    typical = medoids(X, km, n=3)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    for c, members in typical.items():
        assert (km[members] == c).all()
        centre = Xn[km == c].mean(axis=0)
        assert members[0] == np.flatnonzero(km == c)[np.argmax(Xn[km == c] @ centre)]


def test_exact_search_equals_brute_force(digits):
    X, _ = digits
    index = SimilarityIndex(X, [f"d{i}" for i in range(len(X))])
    queries = X[:7] + 0.5
    found, sims = index.search(queries, 10)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    brute = np.argsort(-(Qn @ Xn.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(found, brute)
    np.testing.assert_allclose(sims, np.take_along_axis(Qn @ Xn.T, brute, axis=1), atol=1e-5)
    by_id, _ = index.search_ids(["d3", "d5"], 4)
    assert 3 not in by_id[0] and 5 not in by_id[1]
    np.testing.assert_array_equal(by_id[0], index.search(X[3], 5)[0][0][1:])
    by_image, _ = index.search_images([np.zeros((8, 8, 3), np.uint8)], lambda ims: X[[42] * len(ims)], 3)
    assert by_image[0, 0] == 42


@pytest.mark.slow  # numba compiles pynndescent on first use (~20 s)
def test_approximate_search_reports_measured_recall(digits):
    X, _ = digits
    index = SimilarityIndex(X, method="approx", recall_queries=200)
    assert not index.exact and 0.9 <= index.recall <= 1.0
    found, _ = index.search_ids([str(i) for i in range(50)], 5)
    assert found.shape == (50, 5) and not (found == np.arange(50)[:, None]).any()


def _one_line_error(fn, match: str) -> None:
    with pytest.raises(DinoscopeError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


def test_bad_inputs_give_one_line_errors(digits, tmp_path):
    X, y = digits
    index = SimilarityIndex(X[:50])
    graph = knn_graph(X[:50], k=5)
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello\nworld")
    cases = [
        (lambda: index.search_ids(["nope"], 3), "unknown id 'nope'"),
        (lambda: index.search(X[0], 50), "k must be between 1 and 49"),
        (lambda: index.search_ids(["0"], 0), "k must be between"),
        (lambda: index.search(np.ones(5), 3), "query vectors are 5-D but the index holds 64-D"),
        (lambda: index.search(np.full(64, np.nan), 3), "NaN"),
        (lambda: index.search_images([X[0]], lambda ims: np.ones((2, 64)), 3), "one vector per image"),
        (lambda: SimilarityIndex(X[:3], ["a", "a", "b"]), "unique"),
        (lambda: SimilarityIndex(X[:3], method="fast"), "unknown search method"),
        (lambda: read_image(not_image), "notes.png"),
        (lambda: read_image(tmp_path / "missing.jpg"), "is not a file"),
        (lambda: similar_pairs(graph, 1.5), "cosine similarity in"),
        (lambda: similar_pairs(knn_graph(X[:50], k=5, metric="euclidean")), "cosine similarities"),
        (lambda: label_issues(graph, ["1"] * 10), "got 10 labels"),
        (lambda: label_issues(graph, ["1"] * 50), "two classes"),
        (lambda: kth_neighbor_distance(graph, 6), "need 1..5 neighbours"),
        (lambda: kmeans_clusters(X[:50], 51), "k-means needs"),
        (lambda: analyze(X[:50], [str(i) for i in range(49)], None, None, graph), "ids has 49 rows"),
        (lambda: image_grid([], [], tmp_path / "g.png"), "at least one image"),
        (lambda: image_grid([X[:2]], ["x"], tmp_path / "g.png"), "must be uint8"),
    ]
    for fn, match in cases:
        _one_line_error(fn, match)


def test_read_image_returns_rgb(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 7), 200, np.uint8)).save(path)
    image = read_image(path)
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8 and (image == 200).all()


def test_analyze_returns_one_row_per_image_and_a_json_summary(digits):
    X, y = digits
    X = np.vstack([X[:200], X[:3]])  # three exact copies, placed in the test split
    ids = [f"img{i}" for i in range(len(X))]
    labels = [str(v) for v in y[:200]] + [str(v) for v in y[:3]]
    splits = ["train"] * 200 + ["test"] * 3
    images = np.vstack([X[:200], X[:3]]).reshape(-1, 8, 8).astype(np.uint8)
    columns, summary = analyze(X, ids, labels, splits, knn_graph(X, k=15), read=lambda i: images[i], top=5)
    assert tuple(columns) == COLUMNS and all(len(c) == len(X) for c in columns.values())
    assert columns["exact_duplicate_of"][200:] == ["img0", "img1", "img2"]
    assert columns["duplicate_of"][200:] == ["img0", "img1", "img2"]
    assert sorted(summary["duplicates"]["cross_split_pairs"])[:3] == [["img0", "img200"], ["img1", "img201"],
                                                                       ["img2", "img202"]]
    assert summary["kmeans"]["k"] == 10 and summary["kmeans"]["nmi"] > 0.5
    assert len(summary["outliers"]["top"]) == 5 and len(summary["label_issues"]["top"]) == 5
    assert set(summary["timings"]) >= {"hdbscan", "kmeans", "outliers", "near_duplicates", "label_issues"}
    json.dumps(summary)


def test_analyze_without_labels_or_splits(digits):
    X, _ = digits
    columns, summary = analyze(X[:100], [str(i) for i in range(100)], None, None, knn_graph(X[:100], k=10))
    assert np.isnan(columns["label_issue_score"]).all() and summary["label_issues"] is None
    assert summary["kmeans"]["k"] == 10 and "nmi" not in summary["kmeans"]
    assert summary["duplicates"]["exact_groups"] is None
    _, one_class = analyze(X[:100], [str(i) for i in range(100)], ["7"] * 100, None, knn_graph(X[:100], k=10))
    assert one_class["label_issues"] is None and one_class["kmeans"]["k"] == 10


def test_image_grid_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (8, 8), dtype=np.uint8), rng.integers(0, 255, (40, 20, 3), dtype=np.uint8),
              rng.integers(0, 255, (300, 200, 4), dtype=np.uint8)]
    path = image_grid(images, ["zero", "naïve\nlabel", "x" * 100], tmp_path / "grid.png", cols=2, thumb=64)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (2 * 72, 2 * (72 + 12))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_captions_are_printable_ascii_and_short():
    assert short_caption("naïve\nlabel", 40) == "na\\xefve label"
    assert short_caption("x" * 100, 10) == "xxxxxxx..."

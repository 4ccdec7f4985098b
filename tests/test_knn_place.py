"""k-NN placement (`query.nearby`): new points go among their nearest fitted points, flat or on the disk."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import numpy as np
import pytest

from dinoscope.errors import DinoscopeError
from dinoscope.geometry import ball
from dinoscope.jit import compiled
from dinoscope.neighbors import exact_neighbors
from dinoscope.query import nearby
from dinoscope.query.nearby import (
    CANDIDATES,
    K,
    cells,
    load_cells,
    membership,
    place_nearby,
    save_cells,
    search_cells,
    weighted_mean,
)


@pytest.fixture(scope="module")
def blobs():
    """Two separated 8-D blobs (fitted) and their 2-D map: blob 0 around x = -5, blob 1 around x = +5."""
    rng = np.random.default_rng(0)
    centres = np.zeros((2, 8), np.float32)
    centres[0, 0], centres[1, 1] = 10, 10
    groups = np.repeat([0, 1], 200)
    X = centres[groups] + rng.normal(size=(400, 8)).astype(np.float32)
    Y = np.stack([np.where(groups == 0, -5.0, 5.0), np.zeros(400)], axis=1) + rng.normal(size=(400, 2)) * 0.5
    new = centres[np.repeat([0, 1], 25)] + rng.normal(size=(50, 8)).astype(np.float32)
    return X, Y.astype(np.float32), new


def test_new_points_land_among_their_neighbours(blobs):
    X, Y, new = blobs
    placed = place_nearby(X, {"flat": Y}, new)["flat"]
    assert placed.shape == (50, 2) and placed.dtype == np.float32
    assert (placed[:25, 0] < -3).all() and (placed[25:, 0] > 3).all()  # each in its own blob's region
    indices, _ = exact_neighbors(X, new, K)
    low, high = Y[indices].min(axis=1), Y[indices].max(axis=1)
    assert ((placed >= low - 1e-5) & (placed <= high + 1e-5)).all()  # a weighted mean: inside its neighbours' box


def test_the_nearest_neighbour_weighs_most():
    weights = membership(np.array([[0.1, 0.2, 0.4, 0.8]], np.float32))
    assert weights[0, 0] == pytest.approx(1.0)
    assert (np.diff(weights[0]) < 0).all()
    # an exact copy (distance 0) weighs as a near one does: no jump of the scale to the next neighbour
    copy, near = membership(np.array([[0.0, 0.1, 0.3, 0.7], [1e-7, 0.1, 0.3, 0.7]], np.float32))
    np.testing.assert_allclose(copy, near, rtol=1e-4)
    # the order of a row does not matter
    np.testing.assert_allclose(membership(np.array([[0.4, 0.8, 0.1, 0.2]], np.float32))[0], weights[0, [2, 3, 0, 1]])


def test_membership_is_umaps_kernel_sharpened():
    from umap.umap_ import smooth_knn_dist

    rng = np.random.default_rng(0)
    d = np.sort(rng.uniform(0, 1, (200, K)) ** rng.uniform(0.2, 3, (200, 1)), axis=1).astype(np.float32)
    d[:3, :6] = 0.3  # six neighbours at one distance: no scale reaches log2(k), umap-learn's floor applies
    beyond = d - d[:, :1]
    sigmas, _ = smooth_knn_dist(beyond + 1.0, float(K), local_connectivity=1.0)
    np.testing.assert_allclose(membership(d), np.exp(-4 * beyond / sigmas[:, None]), rtol=1e-3, atol=1e-6)


def test_cells_find_most_exact_neighbours_and_score_them_exactly():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(30, 16))[rng.integers(0, 30, 3000)] + rng.normal(size=(3000, 16)) * 0.5).astype(np.float32)
    new = X[:300] + rng.normal(size=(300, 16)).astype(np.float32) * 0.2
    index = cells(X)
    assert index.members.shape == (60, CANDIDATES)  # COVERAGE x 3000 / 100 cells: each point in two lists
    indices, distances = search_cells(index, new, K)
    truth, _ = exact_neighbors(X, new, K)
    recall = np.mean([len(np.intersect1d(a, b)) for a, b in zip(indices, truth, strict=True)]) / K
    assert recall > 0.9
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    cosine = 1 - np.einsum("md,mkd->mk", unit(new), unit(X)[indices])
    np.testing.assert_allclose(distances, cosine, atol=1e-5)  # exact cosine distances of the candidates found


@pytest.mark.parametrize("width", [K, K + 1, 100, 142, 500])
def test_largest_finds_each_rows_k_largest_scores_ties_and_negatives_included(width):
    rng = np.random.default_rng(width)
    scores = rng.uniform(-1, 1, size=(400, width)).astype(np.float32)
    scores[:100, : K + 2] = 0.5  # exact ties across the k-th
    kth = np.sort(scores[100:200], axis=1)[:, -K]
    scores[100:200, 0] = np.nextafter(kth, np.float32(-2))  # a near-tie one float below the k-th
    scores[200:250] = -np.abs(scores[200:250])  # every score negative
    scores[250:260] = -0.0
    top = nearby._largest(scores, K)
    assert top.shape == (400, K) and all(len(np.unique(row)) == K for row in top)  # k distinct columns
    np.testing.assert_array_equal(np.sort(np.take_along_axis(scores, top, axis=1), axis=1),
                                  np.sort(scores, axis=1)[:, -K:])


def test_compiled_kernels_do_what_their_python_says():
    # numba types int32 arithmetic and mixed floats its own way: the compiled keys and gathers must be the plain ones
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.uniform(-1, 1, (60, 142)), np.zeros((2, 142)), -np.zeros((2, 142))]).astype(np.float32)
    raw = scores.view(np.int32)
    np.testing.assert_array_equal(compiled(nearby._keys)(raw, 8), nearby._keys(raw, 8))
    keys = nearby._keys(raw, 8)
    keys.partition(142 - K - 1, axis=1)
    for got, want in zip(compiled(nearby._top_of)(keys, K, 8), nearby._top_of(keys, K, 8), strict=True):
        np.testing.assert_array_equal(got, want)
    top = nearby._largest(scores, K)
    order, cell = rng.permutation(len(scores)), rng.integers(0, 3, len(scores))
    members, lengths = rng.integers(0, 1000, (3, 142)), rng.uniform(0.5, 2, len(scores)).astype(np.float32)
    outputs = []
    for gather in (nearby._gather, compiled(nearby._gather)):
        indices, distances = np.empty((len(scores), K), np.int64), np.empty((len(scores), K), np.float32)
        gather(top, scores, order, cell, members, lengths, indices, distances)
        outputs.append((indices, distances))
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_allclose(outputs[0][1], outputs[1][1], rtol=0, atol=np.finfo(np.float32).eps)


def test_the_search_runs_every_blas_on_one_thread():
    # the kernels' products run on scipy's BLAS, numpy's on its own: a BLAS left on all cores would make each of
    # place_nearby's threads wait for the other's. threadpoolctl limits only the libraries loaded when the limit is
    # set, so a fresh process sets it before the kernel has loaded scipy's, then searches and looks
    code = """if True:
        import numpy as np
        from threadpoolctl import threadpool_info
        from dinoscope.query import nearby
        index = nearby.cells(np.eye(200, 8, dtype=np.float32) + 0.1)  # faiss loads a BLAS of its own
        with nearby._one_blas_thread():
            nearby.search_cells(index, np.ones((5, 8), np.float32), 3)
            print([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"])
    """
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2"}  # two threads by default even on a machine of one core
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    threads = ast.literal_eval(out.strip().splitlines()[-1])
    assert len(threads) >= 3 and set(threads) == {1}  # numpy's, scipy's and faiss's


def test_queries_in_blocks_find_what_one_block_finds(blobs, monkeypatch):
    X, _, new = blobs
    index = cells(X)
    whole = search_cells(index, new, K)
    monkeypatch.setattr(nearby, "SCORES_MAX", 7 * index.members.shape[1])  # 7 queries a block, the last one of 1
    indices, distances = search_cells(index, new, K)
    np.testing.assert_array_equal(indices, whole[0])
    # the same dot products, but BLAS may pick another kernel for another block's rows (AMD): float32 rounding
    np.testing.assert_allclose(distances, whole[1], rtol=0, atol=16 * np.finfo(np.float32).eps)


def test_queries_on_several_threads_land_where_one_thread_puts_them(blobs, monkeypatch):
    X, Y, new = blobs
    one = place_nearby(X, {"flat": Y}, new)["flat"]  # 50 queries: under PART_MIN, one thread
    index = cells(X)
    neighbours = np.sort(search_cells(index, new, K)[0], axis=1)
    monkeypatch.setattr(nearby, "PART_MIN", 10)
    monkeypatch.setattr(nearby.os, "cpu_count", lambda: 3)  # three parts of 17, 17 and 16 queries
    parts = [search_cells(index, part, K)[0] for part in np.array_split(new, 3)]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts), axis=1), neighbours)  # the same neighbours
    # BLAS may round a float32 score an ulp apart in a product of 17 rows and one of 50 (its kernels' edge rows), and
    # the sharpened weights magnify a distance's rounding by SHARPNESS / scale: 1e-5 of the map's extent, not 1e-7
    extent = float(np.ptp(Y))
    np.testing.assert_allclose(place_nearby(X, {"flat": Y}, new)["flat"], one, atol=1e-5 * extent)


def test_copies_among_the_fitted_points_still_give_k_distinct_neighbours(blobs):
    X, _, new = blobs
    copies = np.concatenate([X[:33]] * 3 + [X[200:201]])  # blob 0's first 33 points three times: 100, one cell
    _, ranked = exact_neighbors(copies, new, K + 1)
    assert (ranked[:, K - 1] == ranked[:, K]).any()  # the 10th nearest ties with the 11th: three copies at 10-12
    indices, distances = search_cells(cells(copies), new, K)
    assert all(len(np.unique(row)) == K for row in indices)  # k distinct fitted points, none counted twice
    np.testing.assert_allclose(np.sort(distances, axis=1), ranked[:, :K], atol=1e-6)


def test_a_saved_index_searches_as_the_one_it_was_saved_from_and_only_for_its_embeddings(blobs, tmp_path):
    X, _, new = blobs
    index = cells(X)
    save_cells(index, tmp_path / "cells.npz", "key-a")
    loaded = load_cells(tmp_path / "cells.npz", X, "key-a")
    for a, b in zip(search_cells(index, new, K), search_cells(loaded, new, K), strict=True):
        np.testing.assert_array_equal(a, b)
    assert load_cells(tmp_path / "cells.npz", X, "key-b") is None  # built from other embeddings
    assert load_cells(tmp_path / "cells.npz", X[:, :4], "key-a") is None  # of another size
    assert load_cells(tmp_path / "cells.npz", X[:100], "key-a") is None  # lists points the embeddings lack
    assert load_cells(tmp_path / "missing.npz", X, "key-a") is None
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cells.npz").read_bytes()[:300])
    assert load_cells(tmp_path / "cut.npz", X, "key-a") is None  # damaged: built again by the caller


def test_a_set_no_larger_than_the_candidates_is_searched_exactly(blobs):
    X, _, new = blobs
    index = cells(X[:CANDIDATES])
    assert len(index.centroids) == 1
    indices, distances = search_cells(index, new, K)
    truth, exact = exact_neighbors(X[:CANDIDATES], new, K)
    np.testing.assert_array_equal(np.sort(indices, axis=1), np.sort(truth, axis=1))  # rows come in no order
    np.testing.assert_allclose(np.sort(distances, axis=1), exact, atol=1e-6)
    with pytest.raises(DinoscopeError, match=f"cannot find {CANDIDATES + 1} neighbours among {CANDIDATES}"):
        search_cells(index, new, CANDIDATES + 1)


def test_disk_placement_stays_in_the_disk_and_is_flat_near_the_centre(blobs):
    X, Y, new = blobs
    rim = Y / (np.linalg.norm(Y, axis=1, keepdims=True) + 1e-3)  # every fitted point within 1e-3 of the rim
    placed = place_nearby(X, {"disk": rim}, new, disks={"disk"})["disk"]
    assert (np.linalg.norm(placed.astype(np.float64), axis=1) < 1).all()
    # near the centre the disk is flat to second order: the Einstein midpoint is the weighted mean there
    rng = np.random.default_rng(1)
    tiny, rows, w = rng.normal(size=(100, 2)) * 1e-4, rng.permutation(100).reshape(20, 5), rng.uniform(0.1, 1, (20, 5))
    np.testing.assert_allclose(weighted_mean(tiny, rows, w, True), weighted_mean(tiny, rows, w, False), rtol=0,
                               atol=1e-11)
    # and it is the midpoint: equal weights on two points give the geodesic midpoint, equidistant from both
    pair = np.array([[0.5, 0.1], [-0.2, 0.6]])
    mid = weighted_mean(pair, np.array([[0, 1]]), np.ones((1, 2)), True)[0]
    d = ball.distance(np.repeat(mid[None].astype(np.float64), 2, 0), pair)
    assert d[0] == pytest.approx(d[1], rel=1e-5)


def test_a_map_of_another_size_is_refused(blobs):
    X, Y, new = blobs
    with pytest.raises(DinoscopeError, match="the flat map has 399 points but there are 400 fitted embeddings"):
        place_nearby(X, {"flat": Y[:-1]}, new)

"""k-NN placement (`query.nearby`): new points go among their nearest fitted points, flat or on the disk."""

from __future__ import annotations

import numpy as np
import pytest

from dinoscope.errors import DinoscopeError
from dinoscope.geometry import ball
from dinoscope.neighbors import exact_neighbors
from dinoscope.query.nearby import K, membership, place_nearby, weighted_mean


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


def test_disk_placement_stays_in_the_disk_and_is_flat_near_the_centre(blobs):
    X, Y, new = blobs
    rim = Y / (np.linalg.norm(Y, axis=1, keepdims=True) + 1e-3)  # every fitted point within 1e-3 of the rim
    placed = place_nearby(X, {"disk": rim}, new, disks={"disk"})["disk"]
    assert (np.linalg.norm(placed.astype(np.float64), axis=1) < 1).all()
    # near the centre the disk is flat to second order: the Einstein midpoint is the weighted mean there
    rng = np.random.default_rng(1)
    tiny, w = rng.normal(size=(20, 5, 2)) * 1e-4, rng.uniform(0.1, 1, (20, 5))
    np.testing.assert_allclose(weighted_mean(tiny, w, True), weighted_mean(tiny, w, False), rtol=0, atol=1e-11)
    # and it is the midpoint: equal weights on two points give the geodesic midpoint, equidistant from both
    pair = np.array([[[0.5, 0.1], [-0.2, 0.6]]])
    mid = weighted_mean(pair, np.ones((1, 2)), True)[0]
    d = ball.distance(np.repeat(mid[None].astype(np.float64), 2, 0), pair[0])
    assert d[0] == pytest.approx(d[1], rel=1e-5)


def test_a_map_of_another_size_is_refused(blobs):
    X, Y, new = blobs
    with pytest.raises(DinoscopeError, match="the flat map has 399 points but there are 400 fitted embeddings"):
        place_nearby(X, {"flat": Y[:-1]}, new)

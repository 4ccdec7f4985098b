"""The viewer's prepared data: binary arrays that match the run, the class tree on the disk, atlases, caching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from viewer_fixtures import CLASSES, COLOURS, make_run

from dinoscope.errors import DinoscopeError
from dinoscope.neighbors import load_graph
from dinoscope.rundir import artifacts
from dinoscope.rundir.directory import RunDir
from dinoscope.viewer.data import MAX_CATEGORIES, _categories, prepare_viewer
from dinoscope.viewer.thumbs import MAX_SIDE, atlas_layout


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path)


def _index(out):
    return json.loads((out / "index.json").read_text())


def test_points_are_binary_arrays_that_match_the_run(run_dir):
    out = prepare_viewer(run_dir, progress=False)
    index = _index(out)
    ids, coords = artifacts.read_maps(run_dir / "maps.parquet")
    assert index["n"] == len(ids) == 120 and index["random_weights"] is True
    assert [m["name"] for m in index["maps"]] == list(coords)
    for entry in index["maps"]:
        xy = np.fromfile(out / entry["file"], dtype="<f4").reshape(-1, 2)
        np.testing.assert_allclose(xy, coords[entry["name"]], rtol=1e-6, atol=1e-6)
    assert json.loads((out / "ids.json").read_text()) == ids
    graph = load_graph(run_dir / "neighbors.npz")
    nb = np.fromfile(out / "neighbors.u32", dtype="<u4").reshape(len(ids), -1)
    assert index["neighbors"]["k"] == 12
    np.testing.assert_array_equal(nb, graph.indices[:, :12])


def test_columns_are_categories_or_numbers(run_dir):
    out = prepare_viewer(run_dir, progress=False)
    cols = {c["name"]: c for c in _index(out)["columns"]}
    label = cols["label"]
    assert label["kind"] == "category" and sorted(label["categories"]) == sorted(CLASSES)
    codes = np.fromfile(out / label["file"], dtype="<u2")
    emb = artifacts.read_embeddings(run_dir / "embeddings.parquet")
    assert [label["categories"][c] for c in codes] == emb.labels
    assert label["counts"] == [30] * 4
    score = cols["outlier_score"]
    assert score["kind"] == "number" and 0 <= score["min"] < score["max"] <= 1
    assert len(np.fromfile(out / score["file"], dtype="<f4")) == 120
    assert cols["duplicate_of"]["categories"][0] == "(none)" and cols["duplicate_of"]["counts"] == [119, 1]


def test_many_distinct_values_keep_the_most_common_and_other():
    values = ["common"] * 50 + [f"v{i}" for i in range(400)] + [None] * 3
    codes, names, counts = _categories(values)
    assert len(names) == MAX_CATEGORIES and names[0] == "common" and names[-1] == "(other)"
    assert counts[0] == 50 and sum(counts) == len(values)
    assert names[codes[-1]] == "(none)"


def test_disk_map_ships_the_class_tree_as_geodesics(run_dir):
    maps = {m["name"]: m for m in _index(prepare_viewer(run_dir, progress=False))["maps"]}
    assert maps["poincare"]["disk"] and not maps["tsne"]["disk"]
    tree = maps["poincare"]["hierarchy"]
    assert sorted(leaf["name"] for leaf in tree["leaves"]) == sorted(CLASSES)
    assert len(tree["lines"]) == 2 * (len(CLASSES) - 1)  # a binary tree over 4 leaves has 6 edges
    pts = np.array([p for line in tree["lines"] for p in line]).reshape(-1, 2)
    assert (np.linalg.norm(pts, axis=1) < 1).all()


def test_atlases_hold_every_thumbnail_in_its_cell(run_dir):
    out = prepare_viewer(run_dir, thumb_size=16, progress=False)
    thumbs = _index(out)["thumbs"]
    assert thumbs["size"] == 16 and thumbs["cols"] == MAX_SIDE // 16
    atlas = np.asarray(Image.open(run_dir / "thumbs" / thumbs["files"][0]).convert("RGB"))
    assert max(atlas.shape[:2]) <= MAX_SIDE
    emb = artifacts.read_embeddings(run_dir / "embeddings.parquet")
    for row in (0, 45, 119):
        cell = atlas[(row // thumbs["cols"]) * 16:, (row % thumbs["cols"]) * 16:][:16, :16]
        assert (cell[10, 10] == COLOURS[CLASSES.index(emb.labels[row])]).all()


def test_atlas_layout_respects_the_size_limit():
    layout = atlas_layout(1_000_000, 32)
    assert layout["cols"] * 32 <= MAX_SIDE and layout["per_atlas"] == 128 * 128
    assert layout["atlases"] == -(-1_000_000 // 16384)
    with pytest.raises(DinoscopeError, match="thumbnail size"):
        atlas_layout(10, 5000)


def test_prepared_data_is_reused_until_the_run_changes(run_dir):
    out = prepare_viewer(run_dir, progress=False)
    key = _index(out)["key"]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    atlas = run_dir / "thumbs" / "atlas_000.png"
    atlas_time = atlas.stat().st_mtime_ns
    prepare_viewer(run_dir, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    run = RunDir(run_dir, create=False)
    run.mark_done("maps", "another-key", 0.0, ["maps.parquet"], maps=run.stage("maps")["maps"])
    prepare_viewer(run_dir, progress=False)
    assert _index(out)["key"] != key
    assert atlas.stat().st_mtime_ns == atlas_time  # thumbnails depend on the images only


def test_without_images_the_viewer_has_no_thumbnails(run_dir):
    (run_dir.parent / "images.npz").unlink()
    index = _index(prepare_viewer(run_dir, progress=False))
    assert index["thumbs"] is None and not (run_dir / "thumbs").exists()


def test_a_run_without_maps_is_a_clear_error(tmp_path):
    run = RunDir(tmp_path / "empty")
    run.save()
    with pytest.raises(DinoscopeError, match="stage 'maps' has not run"):
        prepare_viewer(tmp_path / "empty", progress=False)
    with pytest.raises(DinoscopeError, match="not a dinoscope run"):
        prepare_viewer(tmp_path / "nowhere", progress=False)


def test_only_maps_the_maps_stage_lists_are_shown(run_dir):
    run = RunDir(run_dir, create=False)
    listed = {m: rec for m, rec in run.stage("maps")["maps"].items() if m != "pca"}
    run.mark_done("maps", run.stage("maps")["key"], 0.0, ["maps.parquet"], maps=listed)
    assert [m["name"] for m in _index(prepare_viewer(run_dir, progress=False))["maps"]] == ["tsne", "poincare"]

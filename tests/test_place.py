"""Learned maps through the pipeline (models/<name>.pt, held-out figures, report) and placing new points."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from sklearn.datasets import load_digits

from dinoscope.config import load_settings, settings_from_flags
from dinoscope.errors import DinoscopeError
from dinoscope.pipeline import maps_stage, run_pipeline
from dinoscope.query.place import place
from dinoscope.rundir import artifacts
from dinoscope.rundir.access import open_run
from dinoscope.rundir.model import RunModel

from conftest import cli_exit_code

STAGES = ("extract", "neighbors", "maps", "metrics", "plot", "report")
QUICK = {"maps.poincare.n_iter": 50, "maps.poincare.early_exaggeration_iter": 50,
         "maps.param_poincare.max_epochs": 30}


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """Digits as precomputed 64-D embeddings: 300 to map and 40 new ones to place, as .npy files."""
    X, _ = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp("vectors")
    np.save(folder / "run.npy", X[:300].astype(np.float32))
    np.save(folder / "new.npy", X[300:340].astype(np.float32))
    np.save(folder / "narrow.npy", X[300:340, :10].astype(np.float32))
    return folder


@pytest.fixture(scope="module")
def learned_run(vectors, tmp_path_factory):
    """A run of the precomputed digits with the learned Poincaré map (and its teacher)."""
    out = tmp_path_factory.mktemp("runs") / "learned"
    settings = load_settings(base=settings_from_flags(source=str(vectors / "run.npy"), maps="param_poincare"), **QUICK)
    run_pipeline(out, settings, progress=False, stages=STAGES)
    return out


def test_maps_stage_saves_learned_maps_and_scores_them_held_out(learned_run):
    run, settings = open_run(learned_run, create=False)
    assert list(run.stage("maps")["maps"]) == ["poincare", "param_poincare"]
    emb = artifacts.read_embeddings(run.file("embeddings.parquet"))
    _, coords = artifacts.read_maps(run.file("maps.parquet"))
    modules = RunModel(run, settings).maps
    assert list(modules) == ["param_poincare"]
    with torch.no_grad():
        out = modules["param_poincare"](torch.tensor(emb.vectors)).numpy()
    # exact: the module is the trace of the network whose forward pass on these same rows gave the stored coordinates
    np.testing.assert_array_equal(out, coords["param_poincare"])
    assert np.linalg.norm(out.astype(np.float64), axis=1).max() < 1
    held = json.loads(run.file("metrics.json").read_text())["maps"]["param_poincare"]["heldout"]
    assert (held["n_fit"], held["n_placed"]) == (270, 30)
    assert 0 < held["knn_recall"] <= 1 and 0 < held["agreement"] <= 1 and held["knn_accuracy"] is None
    # k-NN placement is scored on every map, the same split of the (here whole) run; the disk's own points
    for name in ("poincare", "param_poincare"):
        knn = json.loads(run.file("metrics.json").read_text())["maps"][name]["knn_heldout"]
        assert (knn["n_fit"], knn["n_placed"]) == (270, 30)
        assert 0.5 < knn["knn_recall"] <= 1 and 0.5 < knn["agreement"] <= 1 and knn["knn_accuracy"] is None
    report = run.file("report.html").read_text()
    assert "Placing new images (held out)" in report and "<td>k-NN</td>" in report and "<td>learned</td>" in report
    assert run.file("plots/param_poincare.png").is_file()
    assert not maps_stage(run, open_run(learned_run, create=False)[1], progress=False)  # cached


def test_a_missing_module_is_refitted(learned_run, tmp_path):
    copy = shutil.copytree(learned_run, tmp_path / "run")
    (copy / "models/param_poincare.pt").unlink()
    run, settings = open_run(copy, create=False)
    assert maps_stage(run, settings, progress=False)
    assert (copy / "models/param_poincare.pt").is_file()


def test_place_embeddings_writes_table_and_plot(learned_run, vectors, tmp_path, capsys):
    copy = shutil.copytree(learned_run, tmp_path / "run")
    placed = place(copy, vectors / "new.npy", method="learned", progress=False)
    table = pq.read_table(copy / "placed.parquet")
    assert table.column_names == ["id", "source", "label", "param_poincare_x", "param_poincare_y"]
    assert table.num_rows == 40 == len(placed.ids)
    module = RunModel(*open_run(copy, create=False)).maps["param_poincare"]
    with torch.no_grad():
        expected = module(torch.from_numpy(np.load(vectors / "new.npy"))).numpy()
    # exact: the same module file on the same 40 rows in this process; the table stores float32 as float64 (lossless)
    np.testing.assert_array_equal(placed.coords["param_poincare"], expected)
    np.testing.assert_array_equal(table.column("param_poincare_x").to_numpy(), expected[:, 0])
    assert (copy / "plots/placed_param_poincare.png").is_file()
    # a run directory made the same way (here: precomputed 64-D vectors) is accepted: its embeddings are placed
    assert len(place(copy, learned_run, method="learned", progress=False).ids) == 300
    assert cli_exit_code(["place", str(copy), "--source", str(vectors / "new.npy"), "--method", "learned",
                          "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "param_poincare" in out and "points/s" in out
    # k-NN placement (the default) puts them on every map of the run, the teacher's disk included
    assert cli_exit_code(["place", str(copy), "--source", str(vectors / "new.npy"), "--quiet"]) == 0
    assert pq.read_table(copy / "placed.parquet").column_names == [
        "id", "source", "label", "poincare_x", "poincare_y", "param_poincare_x", "param_poincare_y"]


def test_place_refuses_other_sizes_and_backbones(learned_run, vectors, mapped_run, capsys):
    before = sorted(p.name for p in learned_run.iterdir())
    with pytest.raises(DinoscopeError, match=r"10-D embeddings but .* 64-D"):
        place(learned_run, vectors / "narrow.npy", progress=False)
    with pytest.raises(DinoscopeError, match=r"vit_small_patch16_224\.dino at 32px \(cls\).* precomputed 64-D"):
        place(learned_run, mapped_run, progress=False)
    assert cli_exit_code(["place", str(learned_run), "--source", str(vectors / "narrow.npy")]) == 2
    assert "10-D" in capsys.readouterr().err
    assert sorted(p.name for p in learned_run.iterdir()) == before  # nothing written


@pytest.mark.slow  # runs the backbone
def test_place_images_with_the_runs_backbone(mapped_run, tmp_path):
    copy = shutil.copytree(mapped_run, tmp_path / "run")
    images = np.random.default_rng(0).integers(0, 255, (5, 20, 24, 3), dtype=np.uint8)
    np.savez(tmp_path / "new.npz", images=images, labels=np.array(["a", "b", "a", "b", "a"]))
    placed = place(copy, tmp_path / "new.npz", method="learned", progress=False)
    run, settings = open_run(copy, create=False)
    with torch.no_grad():
        model = RunModel(run, settings)
        expected = model.maps["param_test"](torch.from_numpy(model.embed(list(images))))
    # exact: the same backbone and module, the same 5 images in one batch, in this process
    np.testing.assert_array_equal(placed.coords["param_test"], expected.numpy())
    assert placed.labels == ["a", "b", "a", "b", "a"] and placed.embed_seconds > 0
    assert (copy / "plots/placed_param_test.png").is_file()


def test_a_run_without_learned_maps_says_how_to_fit_them(vectors, tmp_path):
    out = tmp_path / "pca"
    run_pipeline(out, settings_from_flags(source=str(vectors / "run.npy"), maps="pca"), progress=False,
                 stages=("extract", "neighbors", "maps"))
    with pytest.raises(DinoscopeError, match="no learned maps.*--maps param_umap.*--method knn"):
        place(out, vectors / "new.npy", method="learned", progress=False)
    with pytest.raises(DinoscopeError, match="unknown placing method 'nearest'; choose knn or learned"):
        place(out, vectors / "new.npy", method="nearest", progress=False)
    # k-NN placement needs no learned map: the run's own points land next to where the map has them
    placed = place(out, out, progress=False)
    _, coords = artifacts.read_maps(out / "maps.parquet")
    extent = np.ptp(coords["pca"], axis=0).max()
    assert np.median(np.linalg.norm(placed.coords["pca"] - coords["pca"], axis=1)) < 0.05 * extent


def test_knn_placement_keeps_its_index_in_the_run(vectors, tmp_path):
    out = tmp_path / "pca"
    run_pipeline(out, settings_from_flags(source=str(vectors / "run.npy"), maps="pca"), progress=False,
                 stages=("extract", "neighbors", "maps"))
    first = place(out, vectors / "new.npy", progress=False).coords["pca"]
    kept = out / artifacts.CELLS
    written = kept.stat().st_mtime_ns
    again = place(out, vectors / "new.npy", progress=False).coords["pca"]
    assert kept.stat().st_mtime_ns == written  # read, not built again
    np.testing.assert_array_equal(again, first)
    kept.write_bytes(kept.read_bytes()[:300])  # a damaged index (cut short) is built again, not trusted
    np.testing.assert_array_equal(place(out, vectors / "new.npy", progress=False).coords["pca"], first)
    assert kept.stat().st_size > 100
    assert not [p for p in out.iterdir() if p.name.startswith(".cells")]  # no temporary left behind

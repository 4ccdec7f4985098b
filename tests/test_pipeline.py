"""The stages end to end on tiny data: artifacts, caching, partial reruns, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from dinoscope import pipeline, sources
from dinoscope.config import settings_from_flags
from dinoscope.errors import DinoscopeError
from dinoscope.rundir import artifacts
from dinoscope.rundir.access import image_reader, open_run
from dinoscope.rundir.results import load_run

from conftest import FAST, write_image_folder

pytestmark = pytest.mark.slow


def _snapshot(path):
    """Every file under `path` with its bytes, to prove a failed command changed nothing."""
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_full_run_writes_every_artifact(digits_run):
    for name in ("manifest.json", "embeddings.parquet", "neighbors.npz", "maps.parquet", "metrics.json",
                 "plots/pca.png", "plots/tsne.png", "plots/umap.png", "plots/grid.png", "report.html",
                 "models/tsne.pkl", "models/umap.pkl", "models/pca.pkl", "models/poincare.pkl",
                 "plots/poincare.png", "analysis.parquet", "analysis.json",
                 "plots/analysis/outliers.png", "plots/analysis/clusters.png"):
        assert (digits_run / name).is_file(), name
    assert not (digits_run / "shards").exists()
    assert not list(digits_run.rglob("*.tmp"))

    table = pq.read_table(digits_run / "embeddings.parquet")
    assert table.column_names == ["id", "source", "label", "split", "embedding", "pixel_hash", "perceptual_hash"]
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[384]"
    result = load_run(digits_run)
    assert len(set(result.embeddings.ids)) == FAST["limit"]
    assert set(result.embeddings.labels) == {str(d) for d in range(10)}
    assert np.isfinite(result.embeddings.vectors).all()

    maps = pq.read_table(digits_run / "maps.parquet").column_names
    assert maps == ["id", "pca_x", "pca_y", "tsne_x", "tsne_y", "umap_x", "umap_y", "poincare_x", "poincare_y"]
    assert all(xy.shape == (FAST["limit"], 2) and np.isfinite(xy).all() for xy in result.maps.values())

    metrics = result.metrics
    assert metrics["random_weights"] is True
    for name in ("pca", "tsne", "umap", "poincare"):
        m = metrics["maps"][name]
        for key in ("trustworthiness", "continuity", "knn_recall", "knn_accuracy", "knn_accuracy_embedding"):
            assert 0.0 <= m[key] <= 1.0, (name, key)
        assert m["seconds"] > 0
    # t-SNE and UMAP keep local structure far better than a linear 2-D projection.
    assert metrics["maps"]["tsne"]["trustworthiness"] > metrics["maps"]["pca"]["trustworthiness"]

    manifest = json.loads((digits_run / "manifest.json").read_text())
    assert manifest["random_weights"] is True
    assert manifest["stages"]["extract"]["model"] == "vit_small_patch16_224.dino"
    assert set(manifest["stages"]) == set(pipeline.STAGES)
    assert manifest["settings"]["model"]["resolution"] == 32
    assert "torch" in manifest["versions"]


def test_analysis_rows_and_report_sections(digits_run):
    from dinoscope.analysis import COLUMNS

    table = pq.read_table(digits_run / "analysis.parquet")
    assert table.column_names == ["id", *COLUMNS]
    assert table.column("id").to_pylist() == load_run(digits_run).embeddings.ids
    summary = json.loads((digits_run / "analysis.json").read_text())
    assert summary["hdbscan"]["n_clusters"] >= 2 and 0 <= summary["kmeans"]["nmi"] <= 1
    assert summary["label_issues"]["top"] and summary["grids"]["outliers"] == "plots/analysis/outliers.png"
    html = (digits_run / "report.html").read_text()
    for section in ("Clusters", "Outliers", "Near-duplicates", "Possible label mistakes"):
        assert f"<h2>{section}</h2>" in html


def test_report_and_plots_say_random_weights(digits_run):
    html = (digits_run / "report.html").read_text()
    assert "RANDOM WEIGHTS" in html
    assert html.count("data:image/png;base64,") >= 1
    for title in ("PCA", "t-SNE", "UMAP", "trustworthiness"):
        assert title in html
    assert (digits_run / "plots/grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_does_no_work(digits_run, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("a cached stage ran again")

    monkeypatch.setattr("dinoscope.embed.extract.extract", boom)
    monkeypatch.setattr("dinoscope.pipeline.build_map", boom)
    run, settings = pipeline.open_run(digits_run, settings_from_flags(**FAST))
    before = _snapshot(digits_run)
    assert [pipeline.STAGE_FUNCS[s](run, settings, False) for s in pipeline.STAGES] == [False] * len(pipeline.STAGES)
    assert _snapshot(digits_run) == before


def test_changed_perplexity_refits_only_tsne(digits_run, tmp_path, monkeypatch):
    out = tmp_path / "copy"
    shutil.copytree(digits_run, out)
    fitted = []
    real = pipeline.build_map
    monkeypatch.setattr(pipeline, "build_map", lambda name, *a, **k: fitted.append(name) or real(name, *a, **k))
    old = load_run(out).maps
    run = pipeline.run_pipeline(out, settings_from_flags(**FAST, perplexity=10), progress=False)
    new = load_run(out).maps
    assert fitted == ["tsne"]
    np.testing.assert_array_equal(new["umap"], old["umap"])
    assert not np.allclose(new["tsne"], old["tsne"])
    assert run.stage("extract")["key"] == json.loads((digits_run / "manifest.json").read_text())[
        "stages"]["extract"]["key"]


def test_precomputed_embeddings_need_no_backbone(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits

    X = load_digits().data[:200].astype(np.float32)
    np.save(tmp_path / "vectors.npy", X)
    out = tmp_path / "run"
    pipeline.run_pipeline(out, settings_from_flags(source=str(tmp_path / "vectors.npy"), maps="pca,umap"),
                          progress=False)
    result = load_run(out)
    np.testing.assert_allclose(result.embeddings.vectors, X)
    assert set(result.maps) == {"pca", "umap"}
    assert result.manifest["stages"]["extract"]["model"] is None
    assert "RANDOM WEIGHTS" not in (out / "report.html").read_text()
    # the run knows it has no images: its readers do not load the source to find that out
    monkeypatch.setattr(sources, "load_source", lambda *a, **k: pytest.fail("the source was loaded"))
    run, settings = open_run(out, create=False)
    assert image_reader(run, settings, result.embeddings.ids) is None


def test_corrupt_image_is_skipped_and_reported(tmp_path):
    folder = write_image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    run, settings = pipeline.open_run(out, settings_from_flags(**{**FAST, "source": str(folder)}))
    pipeline.extract_stage(run, settings, progress=False)
    emb = artifacts.read_embeddings(out / "embeddings.parquet")
    assert len(emb) == 6 and "dogs/broken.png" not in emb.ids
    assert sorted(set(emb.labels)) == ["cats", "dogs"]
    skipped = run.stage("extract")["skipped"]
    assert [s["id"] for s in skipped] == ["dogs/broken.png"]


def test_strict_fails_on_corrupt_image_and_writes_nothing(tmp_path):
    folder = write_image_folder(tmp_path / "imgs")
    out = tmp_path / "run"
    run, settings = pipeline.open_run(out, settings_from_flags(**{**FAST, "source": str(folder), "strict": True}))
    with pytest.raises(DinoscopeError, match="broken.png"):
        pipeline.extract_stage(run, settings, progress=False)
    assert not (out / "embeddings.parquet").exists()
    assert not (out / "manifest.json").exists()


def test_bad_input_leaves_the_run_as_it_was(digits_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(digits_run, out)
    before = _snapshot(out)
    for flags in ({"source": str(tmp_path / "missing_folder")}, {"model": "not-a-model"}):
        with pytest.raises(DinoscopeError):
            pipeline.run_pipeline(out, settings_from_flags(**{**FAST, **flags}), progress=False)
        assert _snapshot(out) == before


def test_nearly_constant_embeddings_are_warned_about(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = (1.0 + 1e-6 * rng.normal(size=(50, 8))).astype(np.float32)
    np.save(tmp_path / "flat.npy", X)
    run, settings = pipeline.open_run(tmp_path / "run", settings_from_flags(source=str(tmp_path / "flat.npy")))
    pipeline.extract_stage(run, settings, progress=False)
    assert "barely differ" in capsys.readouterr().err


def test_poincare_disk_in_the_pipeline(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data[:400].astype(np.float32), digits.target[:400]
    np.savez(tmp_path / "vectors.npz", embeddings=X, labels=y.astype(str))
    (tmp_path / "super.yaml").write_text("{0: round, 6: round, 8: round, 9: round, 1: line, 4: line, 7: line, "
                                         "2: curve, 3: curve, 5: curve}\n")
    out = tmp_path / "run"
    pipeline.run_pipeline(out, settings_from_flags(source=str(tmp_path / "vectors.npz"), maps="pca,poincare",
                                                   superclasses=tmp_path / "super.yaml"), progress=False)
    result = load_run(out)
    Y = result.maps["poincare"]
    assert Y.dtype == np.float64 and np.isfinite(Y).all() and np.linalg.norm(Y, axis=1).max() < 1
    figures = result.metrics["maps"]["poincare"]
    assert figures["trustworthiness"] > result.metrics["maps"]["pca"]["trustworthiness"]
    assert 0 < figures["hierarchy_score"] <= 1 and 0.5 < figures["coarse_knn_accuracy"] <= 1
    assert (out / "plots" / "poincare.png").is_file()
    assert "Poincaré disk" in (out / "report.html").read_text()

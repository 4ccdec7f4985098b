"""A small run directory written directly (no backbone, no map fitting) whose points sit where the tests expect.

Four classes of 16x16 single-colour images; on map "tsne" class c forms a tight blob at CORNERS[c], on "pca" the
classes lie along a line, and "poincare" is a disk map. One class name is HTML, to check that labels are escaped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dinoscope.config import settings_from_flags
from dinoscope.neighbors import knn_graph, save_graph
from dinoscope.rundir import artifacts
from dinoscope.rundir.directory import RunDir
from dinoscope.sources import load_source

CLASSES = ["cat", "dog", "<img src=x onerror=alert(1)>", "fish"]
CORNERS = np.array([[-10.0, 10.0], [10.0, 10.0], [-10.0, -10.0], [10.0, -10.0]])
COLOURS = np.array([[220, 40, 40], [40, 200, 40], [40, 40, 220], [230, 200, 30]], np.uint8)


def make_run(root: Path, per_class: int = 30, seed: int = 0) -> Path:
    """Write images.npz and a run directory beside it (embeddings, graph, maps, analysis); returns the run."""
    rng = np.random.default_rng(seed)
    n = per_class * len(CLASSES)
    cls = np.repeat(np.arange(len(CLASSES)), per_class)
    images = np.repeat(COLOURS[cls][:, None, None, :], 16, axis=1).repeat(16, axis=2)
    images[:, :4, :4] = (np.arange(n) % 256)[:, None, None, None]  # every image differs a little
    npz = root / "images.npz"
    np.savez(npz, images=images, labels=np.array(CLASSES)[cls])
    dataset = load_source(str(npz))
    run_dir = root / "run"
    run = RunDir(run_dir)
    settings = settings_from_flags(source=str(npz), model="dino-vits16", random_weights=True, k=15)
    run.manifest["settings"] = settings.model_dump(mode="json")
    run.manifest["random_weights"] = True
    vectors = (np.eye(len(CLASSES), 8)[cls] * 4 + rng.normal(0, 0.3, (n, 8))).astype(np.float32)
    emb = artifacts.Embeddings(dataset.ids, dataset.origins, dataset.labels, None, vectors)
    artifacts.write_embeddings(run.file("embeddings.parquet"), emb)
    run.mark_done("extract", "k-extract", 0.0, ["embeddings.parquet"], n=n, model="vit_small_patch16_224.dino")
    save_graph(knn_graph(vectors, k=15), run.file("neighbors.npz"))
    run.mark_done("neighbors", "k-neighbors", 0.0, ["neighbors.npz"])
    jitter = rng.normal(0, 0.8, (n, 2))
    angle = rng.uniform(0, 2 * np.pi, n)
    disk = np.stack([np.cos(angle), np.sin(angle)], 1) * (0.2 + 0.15 * cls)[:, None]
    coords = {
        "tsne": CORNERS[cls] + jitter,
        "pca": np.stack([cls * 3.0 + jitter[:, 0] * 0.2, jitter[:, 1]], 1),
        "poincare": disk + rng.normal(0, 0.02, (n, 2)),
    }
    artifacts.write_maps(run.file("maps.parquet"), dataset.ids, coords)
    run.mark_done("maps", "k-maps", 0.0, ["maps.parquet"], maps={m: {"key": m, "seconds": 0.0} for m in coords})
    artifacts.write_table(run.file("analysis.parquet"), {
        "id": dataset.ids, "cluster": cls.astype(np.int64), "outlier_score": rng.random(n).astype(np.float32),
        "duplicate_of": [None] * (n - 1) + [dataset.ids[0]]})
    run.mark_done("analyze", "k-analyze", 0.0, ["analysis.parquet"])
    return run_dir

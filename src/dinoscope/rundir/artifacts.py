"""What a run directory holds: every artifact's name, and the typed readers and writers of its tables.

Every stage and feature names files through these constants, so the layout of a run lives in one place
(see "The run directory" in the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DinoscopeError
from .directory import RunDir, atomic_path

EMBEDDINGS = "embeddings.parquet"  # id, source, label, split, embedding, pixel_hash, perceptual_hash
NEIGHBORS = "neighbors.npz"  # the shared kNN graph
MAPS = "maps.parquet"  # id, <map>_x, <map>_y
METRICS = "metrics.json"  # faithfulness per map, timings
ANALYSIS = "analysis.parquet"  # one row per image: clusters, outlier scores, duplicates, label issues
FINDINGS = "analysis.json"  # the analyses' summary for the report
REPORT = "report.html"
PLACED = "placed.parquet"  # new images placed on the learned maps
CELLS = "cells.npz"  # k-NN placement's index of the embeddings, made by the first `place --method knn`
SHARDS = "shards"  # extraction's resumable shards (removed once embeddings.parquet is whole)
MODELS = "models"  # fitted maps (.pkl) and learned maps (.pt)
PLOTS = "plots"
VIEWER = "viewer"  # the viewer's binary data
THUMBS = "thumbs"  # thumbnail atlases
EXPORT = "export"  # exported extractors, one folder per format


def model_file(name: str, suffix: str = ".pt") -> str:
    """models/<map>.pt (a learned map's TorchScript network) or models/<map>.pkl (any fitted map)."""
    return f"{MODELS}/{name}{suffix}"


def plot_file(name: str) -> str:
    """plots/<name>.png."""
    return f"{PLOTS}/{name}.png"


@dataclass
class Embeddings:
    """One row per kept image: stable id, origin, label, split and its embedding."""

    ids: list[str]
    origins: list[str]
    labels: list[str | None] | None
    splits: list[str | None] | None
    vectors: np.ndarray  # (n, d) float32
    pixel_hashes: list[str] | None = None  # exact content hash per image (None: precomputed vectors, older runs)
    perceptual_hashes: list[bytes | None] | None = None  # perceptual hash per image, None for near-flat images

    def __len__(self) -> int:
        return len(self.ids)


def item_columns(emb: Embeddings) -> dict[str, pa.Array]:
    """The per-image text columns every table of a run starts with: id, source, label, split (null when absent)."""
    n = len(emb)
    return {
        "id": pa.array(emb.ids, pa.string()),
        "source": pa.array(emb.origins, pa.string()),
        "label": pa.array(emb.labels if emb.labels is not None else [None] * n, pa.string()),
        "split": pa.array(emb.splits if emb.splits is not None else [None] * n, pa.string()),
    }


def write_embeddings(path: Path, emb: Embeddings) -> None:
    """embeddings.parquet: id, source, label, split, embedding (fixed_size_list<float32>), and the images' hashes
    for duplicates when extraction computed them (pixel_hash string, perceptual_hash binary, null when flat)."""
    d = emb.vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(emb.vectors, dtype=np.float32).reshape(-1))
    columns = {**item_columns(emb), "embedding": pa.FixedSizeListArray.from_arrays(flat, d)}
    if emb.pixel_hashes is not None and emb.perceptual_hashes is not None:
        columns["pixel_hash"] = pa.array(emb.pixel_hashes, pa.string())
        columns["perceptual_hash"] = pa.array(emb.perceptual_hashes, pa.binary())
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


def _read_vectors(file: pq.ParquetFile) -> np.ndarray:
    """(n, d) float32 embeddings of an embeddings.parquet, read a batch at a time into one array: the whole column
    read at once and then copied held them twice (1.5 GB more at 1M x 384)."""
    d = file.schema_arrow.field("embedding").type.list_size
    vectors = np.empty((file.metadata.num_rows, d), np.float32)
    at = 0
    for batch in file.iter_batches(columns=["embedding"]):
        part = batch.column(0).flatten().to_numpy(zero_copy_only=False).reshape(-1, d)
        vectors[at:at + len(part)] = part
        at += len(part)
    return vectors


def read_embeddings(path: Path) -> Embeddings:
    """Read embeddings.parquet back into arrays."""
    if not path.exists():
        raise DinoscopeError(f"{path} is missing; run `dinoscope extract` first")
    file = pq.ParquetFile(path)
    vectors = _read_vectors(file)
    table = file.read(columns=[c for c in file.schema_arrow.names if c != "embedding"])
    labels = table.column("label").to_pylist()
    splits = table.column("split").to_pylist()
    hashed = "pixel_hash" in table.column_names and "perceptual_hash" in table.column_names
    embeddings = Embeddings(
        ids=table.column("id").to_pylist(),
        origins=table.column("source").to_pylist(),
        labels=None if all(x is None for x in labels) else labels,
        splits=None if all(x is None for x in splits) else splits,
        vectors=vectors,
        pixel_hashes=table.column("pixel_hash").to_pylist() if hashed else None,
        perceptual_hashes=table.column("perceptual_hash").to_pylist() if hashed else None,
    )
    del table
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps what it read unless told (1.6 GB at 1M)
    return embeddings


def write_table(path: Path, columns: dict[str, np.ndarray | list]) -> None:
    """Any one-row-per-image table (analysis.parquet) written atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(pa.table({name: pa.array(col) for name, col in columns.items()}), tmp)


def write_maps(path: Path, ids: list[str], coords: dict[str, np.ndarray]) -> None:
    """maps.parquet: id and <map>_x, <map>_y for each map (Embedding Atlas style names)."""
    columns: dict[str, np.ndarray | list] = {"id": ids}
    for name, xy in coords.items():
        columns[f"{name}_x"] = np.asarray(xy[:, 0])  # float64 kept: disk maps need it near the boundary
        columns[f"{name}_y"] = np.asarray(xy[:, 1])
    write_table(path, columns)


def read_maps(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """maps.parquet back into ids and {map name: (n, 2) coordinates}."""
    if not path.exists():
        return [], {}
    table = pq.read_table(path)
    names = [c[:-2] for c in table.column_names if c.endswith("_x")]
    coords = {
        m: np.stack([table.column(f"{m}_x").to_numpy(), table.column(f"{m}_y").to_numpy()], axis=1)
        for m in names
    }
    return table.column("id").to_pylist(), coords


def read_json(run: RunDir, name: str) -> dict:
    """A JSON artifact of the run (metrics.json, analysis.json), or {} when its stage has not run."""
    import json

    path = run.file(name)
    return json.loads(path.read_text()) if path.exists() else {}


def read_graph(run: RunDir):
    """The run's shared kNN graph."""
    from ..neighbors import load_graph

    return load_graph(run.file(NEIGHBORS))

"""The Parquet artifacts of a run (embeddings, maps): their schema, written atomically, read back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DinoscopeError
from .directory import atomic_path


@dataclass
class Embeddings:
    """One row per kept image: stable id, origin, label, split and its embedding."""

    ids: list[str]
    origins: list[str]
    labels: list[str | None] | None
    splits: list[str | None] | None
    vectors: np.ndarray  # (n, d) float32

    def __len__(self) -> int:
        return len(self.ids)


def write_embeddings(path: Path, emb: Embeddings) -> None:
    """embeddings.parquet: id, source, label, split, embedding (fixed_size_list<float32>)."""
    n, d = emb.vectors.shape
    flat = pa.array(np.ascontiguousarray(emb.vectors, dtype=np.float32).reshape(-1))
    columns = {
        "id": pa.array(emb.ids, pa.string()),
        "source": pa.array(emb.origins, pa.string()),
        "label": pa.array(emb.labels if emb.labels is not None else [None] * n, pa.string()),
        "split": pa.array(emb.splits if emb.splits is not None else [None] * n, pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(flat, d),
    }
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)


def read_embeddings(path: Path) -> Embeddings:
    """Read embeddings.parquet back into arrays."""
    if not path.exists():
        raise DinoscopeError(f"{path} is missing; run `dinoscope extract` first")
    table = pq.read_table(path)
    col = table.column("embedding").combine_chunks()
    d = col.type.list_size
    vectors = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, d)
    labels = table.column("label").to_pylist()
    splits = table.column("split").to_pylist()
    return Embeddings(
        ids=table.column("id").to_pylist(),
        origins=table.column("source").to_pylist(),
        labels=None if all(x is None for x in labels) else labels,
        splits=None if all(x is None for x in splits) else splits,
        vectors=vectors,
    )


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

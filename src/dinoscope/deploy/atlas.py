"""The run as one Parquet file for Apple's Embedding Atlas (`pip install embedding-atlas`).

Columns: id, label, split, source; every map's <map>_x, <map>_y; `neighbors`, the run's kNN graph in the
structure Embedding Atlas reads with `--neighbors` (one struct per row, {"ids": [row, ...], "distances": [d, ...]},
ids being zero-based rows of this file, nearest first, the point itself left out); and, when the run's images can
still be read, `image`: a small PNG thumbnail per row as {"bytes": png} (the Hugging Face image layout that
Embedding Atlas shows with `--image`).
"""

from __future__ import annotations

import io
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..console import progress_bar, warn
from ..errors import DinoscopeError
from ..rundir import artifacts
from ..rundir.directory import atomic_path

THUMB = 96  # thumbnail side in pixels
NEIGHBORS_COLUMN = "neighbors"
IMAGE_COLUMN = "image"
DEFAULT_MAP = "tsne"


@dataclass
class AtlasExport:
    """What `export_atlas` wrote: the file, its maps, the map it opens on, and the command that opens it."""

    path: Path
    maps: list[str]
    map: str
    neighbors: bool
    images: bool
    rows: int

    @property
    def command(self) -> str:
        """The `embedding-atlas` command line that opens the file on `map`."""
        parts = ["embedding-atlas", str(self.path), "--x", f"{self.map}_x", "--y", f"{self.map}_y"]
        if self.neighbors:
            parts += ["--neighbors", NEIGHBORS_COLUMN]
        if self.images:
            parts += ["--image", IMAGE_COLUMN]
        return shlex.join(parts)


def _aligned_maps(run, ids: list[str]) -> dict[str, np.ndarray]:
    """maps.parquet's coordinates in the row order of embeddings.parquet."""
    map_ids, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    if not coords:
        raise DinoscopeError(f"{run.file(artifacts.MAPS)} is missing or holds no map; run `dinoscope map` first")
    if map_ids == ids:
        return coords
    position = {ident: i for i, ident in enumerate(map_ids)}
    missing = [i for i in ids if i not in position]
    if missing:
        raise DinoscopeError(f"{artifacts.MAPS} lacks {len(missing)} of the embedded images (e.g. {missing[0]}); "
                             "rerun `dinoscope map`")
    order = np.array([position[i] for i in ids], dtype=np.int64)
    return {name: xy[order] for name, xy in coords.items()}


def neighbors_column(indices: np.ndarray, distances: np.ndarray) -> pa.StructArray:
    """The kNN graph as Embedding Atlas's neighbours column: struct<ids: list<int64>, distances: list<float32>>."""
    n, k = indices.shape
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    ids = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(indices, dtype=np.int64).reshape(-1)))
    dist = pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(distances, dtype=np.float32).reshape(-1)))
    return pa.StructArray.from_arrays([ids, dist], names=["ids", "distances"])


def _thumbnails(read, n: int, size: int, progress: bool) -> pa.StructArray:
    """One PNG thumbnail per row as struct<bytes: binary>; a row whose image cannot be read is null."""
    from ..render.grids import thumbnail

    pngs: list[bytes | None] = []
    failed = 0
    with progress_bar("thumbnails", enabled=progress) as bar:
        task = bar.add_task("thumbnails", total=n)
        for row in range(n):
            try:
                buffer = io.BytesIO()
                thumbnail(read(row), size).save(buffer, format="PNG")
                pngs.append(buffer.getvalue())
            except (OSError, ValueError, DinoscopeError):
                pngs.append(None)
                failed += 1
            bar.advance(task)
    if failed:
        warn(f"{failed} of {n} images could not be read; their rows have no thumbnail")
    data = pa.array(pngs, pa.binary())
    return pa.StructArray.from_arrays([data], names=["bytes"], mask=data.is_null())


def export_atlas(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, map_name: str | None = None,
                 images: bool = True, thumb: int = THUMB, progress: bool = True) -> AtlasExport:
    """Write the run as one Parquet file for Embedding Atlas (default RUN/export/atlas.parquet).

    `map_name` is the map the printed command opens on (default tsne when the run has it, else its first map); every
    map's columns are written whatever it is. `images=False` leaves the thumbnails out."""
    from ..rundir.access import image_reader, open_run

    run, settings = open_run(run_dir, create=False)
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    n = len(emb)
    coords = _aligned_maps(run, emb.ids)
    names = list(coords)
    if map_name is None:
        map_name = DEFAULT_MAP if DEFAULT_MAP in coords else names[0]
    elif map_name not in coords:
        raise DinoscopeError(f"the run has no map '{map_name}'; it has {', '.join(names)}")

    columns: dict[str, pa.Array] = artifacts.item_columns(emb)
    for name, xy in coords.items():
        columns[f"{name}_x"] = pa.array(np.asarray(xy[:, 0], dtype=np.float64))
        columns[f"{name}_y"] = pa.array(np.asarray(xy[:, 1], dtype=np.float64))

    has_neighbors = run.file(artifacts.NEIGHBORS).exists()
    if has_neighbors:
        graph = artifacts.read_graph(run)
        if graph.indices.shape[0] != n:
            raise DinoscopeError(f"{artifacts.NEIGHBORS} has {graph.indices.shape[0]} rows for {n} embeddings; "
                                 "rerun `dinoscope neighbors`")
        columns[NEIGHBORS_COLUMN] = neighbors_column(graph.indices, graph.distances)
    else:
        warn(f"{artifacts.NEIGHBORS} is missing; the export has no neighbours column")

    has_images = False
    if images:
        read = image_reader(run, settings, emb.ids)
        if read is None:
            warn("the run's images cannot be read; the export has no image column")
        else:
            columns[IMAGE_COLUMN] = _thumbnails(read, n, thumb, progress)
            has_images = True

    path = Path(out) if out is not None else run.file(f"{artifacts.EXPORT}/atlas.parquet")
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(columns), tmp)
    return AtlasExport(path=path, maps=names, map=map_name, neighbors=has_neighbors, images=has_images, rows=n)

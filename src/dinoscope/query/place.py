"""Put new images (or their embeddings) on a run's maps without refitting anything.

Two methods: `learned` runs the run's learned maps (one forward pass each, what `export` and `serve` ship);
`knn` puts each new point at the weighted mean of its nearest fitted points on every map of the run
(`query.nearby`), which needs the run's embeddings and lands where refitting would (benchmarks/place.py).

New images are embedded by exactly the backbone that made the run (`rundir.model.RunModel`); precomputed
embeddings are taken as they are once their size matches. A run directory (or an embeddings.parquet inside
one) is accepted only when it was made with the same backbone, resolution and pooling. The result goes to
RUN/placed.parquet (id, source, label, <map>_x, <map>_y per learned map) and RUN/plots/placed_<map>.png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..console import progress_bar, warn
from ..errors import DinoscopeError
from ..rundir import artifacts
from ..rundir.access import open_run
from ..rundir.directory import MANIFEST, RunDir
from ..rundir.model import RunModel

_IDENTITY = ("model", "resolution", "pool")  # what makes two runs' embeddings comparable
_BATCH = 64
METHODS = ("knn", "learned")


@dataclass
class Placed:
    """New points on a run's learned maps."""

    ids: list[str]
    origins: list[str]
    labels: list[str | None] | None
    coords: dict[str, np.ndarray]  # map name -> (n, 2) float32
    seconds: dict[str, float]  # map name -> seconds to place every point
    embed_seconds: float  # 0 for precomputed embeddings
    path: Path  # placed.parquet
    plots: dict[str, Path]  # map name -> plots/placed_<map>.png


def _describe(ext: dict, dim: int) -> str:
    """How a run's embeddings were made, in words: backbone, resolution, pooling and size."""
    if ext.get("model") is None:
        return f"precomputed {dim}-D embeddings"
    return f"{ext['model']} at {ext.get('resolution')}px ({ext.get('pool')}), {dim}-D"


def _embedding_size(path: Path) -> int:
    """The embedding length stored in an embeddings.parquet, read from its schema only."""
    return pq.read_schema(path).field("embedding").type.list_size


def _other_run(run: RunDir, source: str, dim: int) -> str:
    """When `source` is a run directory or a file inside one: its embeddings, if made like this run's; else refused."""
    path = Path(source).expanduser()
    folder = path if (path / MANIFEST).is_file() else path.parent if (path.parent / MANIFEST).is_file() else None
    if folder is None:
        return source
    other = RunDir(folder, create=False)
    ours, theirs = run.require("extract"), other.require("extract")
    their_dim = _embedding_size(other.file(artifacts.EMBEDDINGS))
    if [ours.get(f) for f in _IDENTITY] != [theirs.get(f) for f in _IDENTITY] or their_dim != dim:
        raise DinoscopeError(f"{source} holds embeddings of {_describe(theirs, their_dim)} but {run.path} was made "
                             f"with {_describe(ours, dim)}; place images, or embeddings made the same way")
    return str(other.file(artifacts.EMBEDDINGS)) if path == folder else source


def _embed(model: RunModel, dataset, progress: bool) -> tuple[np.ndarray, list[int]]:
    """Embed a dataset's images with the run's backbone; unreadable images are skipped with a warning."""
    from ..embed.extract import read_batch

    kept, parts = [], []
    with progress_bar("embedding", enabled=progress) as bar:
        task = bar.add_task("embedding", total=len(dataset))
        for start in range(0, len(dataset), _BATCH):
            rows, images, failures = read_batch(dataset, list(range(start, min(start + _BATCH, len(dataset)))),
                                                strict=False, side=model.backbone.resolution)
            for row, _, reason in failures:
                warn(f"skipped {dataset.origins[row]}: {reason}")
            if images:
                parts.append(model.embed(images))
                kept += rows
            bar.update(task, advance=_BATCH)
    if not kept:
        raise DinoscopeError("none of the new images could be read; see the warnings above")
    return np.concatenate(parts).astype(np.float32), kept


def _learned(model: RunModel, vectors: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every learned map's coordinates of `vectors` and the seconds each took (warm: TorchScript's first calls
    optimise the module, which stays out of the timing)."""
    coords, seconds = {}, {}
    for name in model.maps:
        for _ in range(2):
            model.coordinates(vectors[:2], [name])
        t0 = time.perf_counter()
        coords.update(model.coordinates(vectors, [name]))
        seconds[name] = time.perf_counter() - t0
    return coords, seconds


def _cells(run: RunDir, reference: np.ndarray):
    """The k-NN index of the run's embeddings: RUN/cells.npz when it was built from them, else built now and kept
    there (a k-means of the embeddings: 0.1 s at 20,000, tens of seconds at a million), for the next placement."""
    from ..hashing import fingerprint
    from .nearby import CANDIDATES, COVERAGE, cells, load_cells, save_cells

    key = fingerprint({"extract": run.require("extract")["key"], "candidates": CANDIDATES, "coverage": COVERAGE})
    index = load_cells(run.file(artifacts.CELLS), reference, key)
    if index is None:
        index = cells(reference)
        with run.writing():
            save_cells(index, run.file(artifacts.CELLS), key)
    return index


def _nearby(run: RunDir, vectors: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every map's coordinates of `vectors` by k-NN placement among the run's fitted points; the seconds are the
    whole placement's, reading or building the neighbour index included, shared by the maps (one search serves
    them all)."""
    from ..maps.registry import distance
    from .nearby import place_nearby

    reference = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS)).vectors
    _, maps = artifacts.read_maps(run.file(artifacts.MAPS))
    if not maps:
        raise DinoscopeError(f"{run.path} has no maps yet; fit them first: dinoscope map {run.path}")
    t0 = time.perf_counter()
    coords = place_nearby(reference, maps, vectors, disks={m for m in maps if distance(m) == "poincare"},
                          index=_cells(run, reference))
    seconds = time.perf_counter() - t0
    return coords, dict.fromkeys(coords, seconds)


def place(run_dir: str | Path, source: str | Path, *, split: str = "all", device: str | None = None,
          method: str = "knn", progress: bool = True) -> Placed:
    """Place the items of `source` (anything `load_source` takes) on the maps of the run at `run_dir`: every map
    by `method="knn"`, the learned maps by `method="learned"` (see the module notes).

    Writes RUN/placed.parquet and RUN/plots/placed_<map>.png; `device` runs the backbone and maps (default:
    the run's device setting).
    """
    from ..render.plots import plot_placed
    from ..sources import load_source

    if method not in METHODS:
        raise DinoscopeError(f"unknown placing method {method!r}; choose {' or '.join(METHODS)}")
    run, settings = open_run(run_dir, create=False)
    model = RunModel(run, settings, device)
    if method == "learned" and not model.maps:
        raise DinoscopeError(f"{run.path} has no learned maps; fit them first: dinoscope map {run.path} "
                             "--maps param_umap,param_tsne,param_poincare (or place with --method knn)")
    dim = _embedding_size(run.file(artifacts.EMBEDDINGS))
    dataset = load_source(_other_run(run, str(source), dim), split=split)
    t0 = time.perf_counter()
    if dataset.is_embedded:
        vectors, rows = dataset.embeddings, list(range(len(dataset)))
        if vectors.shape[1] != dim:
            raise DinoscopeError(f"{source} holds {vectors.shape[1]}-D embeddings but {run.path} was made with "
                                 f"{_describe(run.require('extract'), dim)}")
    else:
        vectors, rows = _embed(model, dataset, progress)
    embed_seconds = 0.0 if dataset.is_embedded else time.perf_counter() - t0
    coords, seconds = _learned(model, vectors) if method == "learned" else _nearby(run, vectors)
    pick = lambda xs: None if xs is None else [xs[i] for i in rows]  # noqa: E731
    ids, origins, labels = pick(dataset.ids), pick(dataset.origins), pick(dataset.labels)
    columns: dict = {"id": ids, "source": origins, "label": labels if labels is not None else [None] * len(rows)}
    for name, xy in coords.items():
        columns[f"{name}_x"], columns[f"{name}_y"] = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    with run.writing():
        artifacts.write_table(run.file(artifacts.PLACED), columns)
        plots = {name: run.file(plot_placed(run, name, xy, labels)) for name, xy in coords.items()}
    return Placed(ids, origins, labels, coords, seconds, embed_seconds, run.file(artifacts.PLACED), plots)

"""The viewer's data, prepared once per run into RUN/viewer/ (binary arrays + index.json) and RUN/thumbs/.

Points travel as little-endian binary arrays, never JSON per point: map_<i>.f32 (x, y interleaved, float32),
col_<i>.u16 (category codes) or col_<i>.f32 (numbers, NaN for missing), neighbors.u32 (n x k rows), and
ids.json (loaded by the viewer after the first draw). index.json says what each file holds and is written last,
with a fingerprint of the stages it was made from, so an up-to-date folder is reused as it is.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import maps as maps_registry
from ..console import say, warn
from ..errors import DinoscopeError
from ..hashing import fingerprint
from ..rundir import artifacts
from ..rundir.directory import RunDir, atomic_path, write_json
from . import thumbs

FORMAT = 1
VIEWER_DIR = artifacts.VIEWER
THUMBS_DIR = artifacts.THUMBS
INDEX = "index.json"
N_NEIGHBORS = 12  # neighbours shown when an image is clicked
MAX_CATEGORIES = 256  # a column with more distinct values keeps its most common ones and "(other)"
NONE = "(none)"
OTHER = "(other)"


def _write_array(path: Path, array: np.ndarray, dtype: str) -> None:
    """A flat little-endian array file, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes())


def _categories(values: list) -> tuple[np.ndarray, list[str], list[int]]:
    """Codes (uint16), names and counts of a categorical column: the most common values first, None as "(none)"."""
    names = np.array([NONE if v is None else str(v) for v in values], dtype=object)
    uniq, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    if len(uniq) > MAX_CATEGORIES:
        keep = order[: MAX_CATEGORIES - 1]
        rank = np.full(len(uniq), MAX_CATEGORIES - 1)
        rank[keep] = np.arange(len(keep))
        codes = rank[inverse]
        return (codes.astype(np.uint16), [str(uniq[i]) for i in keep] + [OTHER],
                np.bincount(codes, minlength=MAX_CATEGORIES).tolist())
    rank = np.empty(len(uniq), np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inverse].astype(np.uint16), [str(uniq[i]) for i in order], counts[order].tolist()


def _column(out: Path, i: int, name: str, values: list | np.ndarray) -> dict:
    """Write one column for colouring: numbers with many values as float32, anything else as categories."""
    arr = np.asarray(values) if not isinstance(values, list) else None
    numeric = arr is not None and arr.dtype.kind in "fiub"
    if numeric and (arr.dtype.kind == "f" or len(np.unique(arr)) > MAX_CATEGORIES):
        data = arr.astype(np.float32)
        finite = data[np.isfinite(data)]
        _write_array(out / f"col_{i}.f32", data, "f4")
        return {"name": name, "kind": "number", "file": f"col_{i}.f32",
                "min": float(finite.min()) if len(finite) else 0.0, "max": float(finite.max()) if len(finite) else 0.0}
    if numeric:
        values = arr.tolist()
    codes, names, counts = _categories(list(values))
    _write_array(out / f"col_{i}.u16", codes, "u2")
    return {"name": name, "kind": "category", "file": f"col_{i}.u16", "categories": names, "counts": counts}


def _geodesics(vectors: np.ndarray, Y: np.ndarray, labels: list | None) -> dict | None:
    """The class tree placed on a disk map (`geometry.hierarchy.disk_tree`, as the plots draw it), as geodesic
    polylines and labelled leaves; None without 2+ classes."""
    from ..geometry.geodesics import geodesic_points
    from ..geometry.hierarchy import disk_tree

    found = disk_tree(vectors, Y, labels)
    if found is None:
        return None
    tree, nodes = found
    lines = [np.round(geodesic_points(nodes[p], nodes[c], n=24), 5).ravel().tolist() for p, c in tree.edges]
    leaves = [{"name": name, "x": float(nodes[i, 0]), "y": float(nodes[i, 1])} for i, name in enumerate(tree.leaves)]
    return {"lines": lines, "leaves": leaves}


def _map_entry(out: Path, i: int, name: str, Y: np.ndarray, emb: artifacts.Embeddings) -> dict:
    """Write one map's coordinates; a non-Euclidean (disk) map also gets its hierarchy's geodesics."""
    disk = maps_registry.distance(name) == "poincare"
    _write_array(out / f"map_{i}.f32", Y, "f4")
    lo, hi = Y.min(axis=0), Y.max(axis=0)
    entry = {"name": name, "file": f"map_{i}.f32", "disk": disk, "bounds": [*map(float, lo), *map(float, hi)]}
    if disk:
        entry["hierarchy"] = _geodesics(emb.vectors, Y, emb.labels)
    return entry


def _settings_summary(run: RunDir) -> dict:
    """The settings worth showing beside the maps: source, model, weights, resolution, k, seed."""
    s = run.manifest.get("settings") or {}
    ext = run.stage("extract") or {}
    return {
        "source": (s.get("source") or {}).get("source"),
        "model": ext.get("model") or (s.get("model") or {}).get("model"),
        "weights": ext.get("weights"),
        "resolution": ext.get("resolution"),
        "pool": ext.get("pool"),
        "images": ext.get("n"),
        "k": (s.get("neighbors") or {}).get("k"),
        "seed": s.get("seed"),
    }


def _read_analysis(run: RunDir) -> dict[str, list | np.ndarray]:
    """analysis.parquet's columns (id left out); empty when the analyze stage has not run."""
    path = run.file(artifacts.ANALYSIS)
    if not path.exists():
        return {}
    table = pq.read_table(path)
    out: dict[str, list | np.ndarray] = {}
    for name in table.column_names:
        if name == "id":
            continue
        col = table.column(name)
        numeric = pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)
        if pa.types.is_floating(col.type):
            out[name] = col.to_numpy()  # missing scores (nulls) become NaN
        else:
            out[name] = col.to_numpy() if numeric and col.null_count == 0 else col.to_pylist()
    return out


INPUTS = (artifacts.EMBEDDINGS, artifacts.MAPS, artifacts.ANALYSIS, artifacts.NEIGHBORS, artifacts.METRICS)


def _data_key(run: RunDir) -> str:
    """Fingerprint of everything the viewer data is made from: stage records and the input files' identities."""
    stages = {s: run.stage(s) for s in ("extract", "neighbors", "maps", "metrics", "analyze")}
    files = {name: [path.stat().st_size, path.stat().st_mtime_ns] for name in INPUTS
             if (path := run.file(name)).exists()}
    return fingerprint({"format": FORMAT, "stages": {s: (r or {}).get("key") for s, r in stages.items()},
                        "maps": (stages["maps"] or {}).get("maps"), "files": files, "settings": _settings_summary(run),
                        "random_weights": bool(run.manifest.get("random_weights"))})


def _write_data(run: RunDir, out: Path, key: str, thumb_index: dict | None) -> dict:
    """Write every array file and then index.json into `out`; returns the index."""
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    ids, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    listed = (run.stage("maps") or {}).get("maps")
    if listed is not None:  # a map counts only while the maps stage lists it
        coords = {name: xy for name, xy in coords.items() if name in listed}
    if not coords:
        raise DinoscopeError(f"{run.path} has no maps yet; run `dinoscope map {run.path}` first")
    if ids != emb.ids:
        raise DinoscopeError(f"{run.path}: maps.parquet and embeddings.parquet disagree; rerun `dinoscope map`")
    n = len(ids)
    maps = [_map_entry(out, i, name, Y, emb) for i, (name, Y) in enumerate(coords.items())]
    columns: dict[str, list | np.ndarray] = {}
    if emb.labels is not None:
        columns["label"] = emb.labels
    if emb.splits is not None:
        columns["split"] = emb.splits
    columns.update(_read_analysis(run))
    cols = [_column(out, i, name, values) for i, (name, values) in enumerate(columns.items())]
    neighbors = None
    if run.file(artifacts.NEIGHBORS).exists():
        graph = artifacts.read_graph(run)
        k = min(N_NEIGHBORS, graph.k)
        _write_array(out / "neighbors.u32", graph.indices[:, :k], "u4")
        neighbors = {"file": "neighbors.u32", "k": k}
    with atomic_path(out / "ids.json") as tmp:
        tmp.write_text(json.dumps(ids))
    index = {
        "format": FORMAT,
        "key": key,
        "title": run.path.name,
        "n": n,
        "random_weights": bool(run.manifest.get("random_weights")),
        "settings": _settings_summary(run),
        "metrics": artifacts.read_json(run, artifacts.METRICS).get("maps", {}),
        "maps": maps,
        "columns": cols,
        "neighbors": neighbors,
        "ids": "ids.json",
        "thumbs": thumb_index,
    }
    write_json(out / INDEX, index)
    return index


def _prepare_thumbs(run: RunDir, ids: list[str], size: int, progress: bool) -> dict | None:
    """RUN/thumbs/ up to date for this run's images, or None when the images cannot be read."""
    from ..config import Settings
    from ..rundir.access import image_reader

    key = fingerprint({"extract": (run.stage("extract") or {}).get("key"), "size": size, "max": thumbs.MAX_SIDE})
    out = run.file(THUMBS_DIR)
    index = thumbs.read_index(out)
    if index is not None and index.get("key") == key:
        return index
    settings = Settings.model_validate(run.manifest.get("settings") or {})
    read = image_reader(run, settings, ids)
    if read is None:
        return None
    shutil.rmtree(out, ignore_errors=True)
    say("view", f"drawing {len(ids)} thumbnails into {out}")
    return thumbs.write_atlases(out, read, len(ids), size, key, progress=progress)


def prepare_viewer(run_dir: str | Path, thumb_size: int = 32, progress: bool = True) -> Path:
    """Make RUN/viewer/ and RUN/thumbs/ current for the run (reused when nothing changed); returns RUN/viewer."""
    run = RunDir(run_dir, create=False)
    run.require("maps")
    with run.writing():
        return _prepare(run, thumb_size, progress)


def _prepare(run: RunDir, thumb_size: int, progress: bool) -> Path:
    """prepare_viewer's work, under the run's writer lock."""
    out = run.file(VIEWER_DIR)
    ids = artifacts.read_maps(run.file(artifacts.MAPS))[0]
    thumb_index = _prepare_thumbs(run, ids, thumb_size, progress)
    if thumb_index is None:
        warn("the run's images cannot be read; the viewer shows points without thumbnails")
    thumb_ref = None if thumb_index is None else {k: thumb_index[k] for k in ("size", "cols", "per_atlas", "files")}
    key = fingerprint({"data": _data_key(run), "thumbs": thumb_ref})
    current = read_index(out)
    if current is not None and current.get("key") == key:
        return out
    shutil.rmtree(out, ignore_errors=True)
    _write_data(run, out, key, thumb_ref)
    say("view", f"viewer data for {len(ids)} points in {out}")
    return out


def read_index(out: Path) -> dict | None:
    """RUN/viewer/index.json when it is whole, else None."""
    try:
        return json.loads((out / INDEX).read_text())
    except (OSError, json.JSONDecodeError):
        return None

"""Precomputed embeddings (N, D): checked (numeric, finite, not ragged) and read from NumPy or Parquet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DinoscopeError
from ..hashing import content_fingerprint
from .base import Dataset
from .memory import index_ids
from .reasons import one_line


def embedded(name: str, where: Path, vectors: np.ndarray, *, labels: list[str] | None = None,
             classes: list[str] | None = None, ids: list[str] | None = None, splits: list[str] | None = None,
             origins: list[str] | None = None) -> Dataset:
    """A `Dataset` of vectors (no `read`), once they are checked to be a non-empty, finite, numeric (N, D)."""
    if vectors.dtype.kind not in "iuf":
        raise DinoscopeError(f"{where}: embeddings must be numbers, found {vectors.dtype}; save floats")
    if vectors.ndim != 2:
        raise DinoscopeError(f"{where}: embeddings must be a 2-D (N, D) array, found shape {vectors.shape}")
    if vectors.size == 0:
        raise DinoscopeError(f"{where} holds no embeddings (shape {vectors.shape}); give at least one vector")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise DinoscopeError(
            f"{where}: {bad.size} of {len(vectors)} rows hold NaN, inf or missing values "
            f"(first: row {bad[0]}); drop or fix those rows"
        )
    default_ids, default_origins = index_ids(name, len(vectors), splits)
    if ids is not None:
        bad_ids = [i for i, count in Counter(ids).items() if count > 1 or i is None]
        if bad_ids:
            raise DinoscopeError(f"{where}: ids must be present and unique; {bad_ids[0]!r} is not")
    return Dataset(
        name=name,
        ids=ids if ids is not None else default_ids,
        origins=origins if origins is not None else default_origins,
        labels=labels,
        splits=splits,
        fingerprint=content_fingerprint("embeddings", vectors, ids, labels, splits, classes),
        embeddings=vectors,
        classes=classes,
    )


def load_parquet(path: Path) -> Dataset:
    """A Parquet table with an `embedding` column (list of numbers) and optional label, id, split, source."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DinoscopeError(f"cannot read {path} as Parquet ({one_line(exc)}); give a valid file") from exc
    if "embedding" not in table.column_names:
        raise DinoscopeError(
            f"{path} has no 'embedding' column (it has: {', '.join(table.column_names) or 'none'}); "
            "store one list of floats per row in a column named 'embedding'"
        )
    texts = {
        name: [None if v is None else str(v) for v in table.column(name).to_pylist()]
        for name in ("label", "id", "split", "source")
        if name in table.column_names
    }
    labels = texts.get("label")
    return embedded(
        path.stem, path, _vectors(path, table.column("embedding")),
        labels=labels, classes=sorted(set(labels) - {None}) if labels else None,
        ids=texts.get("id"), splits=texts.get("split"), origins=texts.get("source"),
    )


def _vectors(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    """A list / fixed_size_list column as an (N, D) array; ragged, null or non-numeric rows are errors."""
    col = column.combine_chunks()
    kind = col.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise DinoscopeError(f"{path}: the 'embedding' column is {kind}; store one list of numbers per row")
    if not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        raise DinoscopeError(f"{path}: the 'embedding' column holds non-numbers ({kind}); store floats")
    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DinoscopeError(f"{path}: row {row} has no embedding (null); drop it or fill it in")
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    ragged = np.flatnonzero(lengths != lengths[0]) if len(lengths) else []
    if len(ragged):
        row = int(ragged[0])
        raise DinoscopeError(
            f"{path}: row {row} has {lengths[row]} values but row 0 has {lengths[0]}; "
            "every embedding must have the same length"
        )
    values = col.flatten().to_numpy(zero_copy_only=False)  # nulls inside a row become NaN, caught later
    return values.reshape(len(col), int(lengths[0]) if len(lengths) else 0)

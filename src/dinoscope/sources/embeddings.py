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


def say(name: str) -> str:
    """A name from a file as it is when printable, else quoted with escapes (never a line break)."""
    return name if isinstance(name, str) and name.isprintable() and name.strip() == name and name else repr(name)


def flat(text: object) -> str:
    """`text` on one line: runs of whitespace (line breaks too) become one space."""
    return " ".join(str(text).split())


def embedded(name: str, where: Path, vectors: np.ndarray, *, labels: list[str] | None = None,
             classes: list[str] | None = None, ids: list[str] | None = None, splits: list[str] | None = None,
             origins: list[str] | None = None) -> Dataset:
    """A `Dataset` of vectors (no `read`), once they are checked to be a non-empty, finite, numeric (N, D).

    `labels`, `ids`, `splits` and `origins` give one value per row; a missing origin is the row's default one.
    """
    if vectors.dtype.kind not in "iuf":
        raise DinoscopeError(f"{where}: embeddings must be numbers, found {flat(vectors.dtype)}; save floats")
    if vectors.ndim != 2:
        raise DinoscopeError(f"{where}: embeddings must be a 2-D (N, D) array, found shape {vectors.shape}")
    if vectors.size == 0:
        raise DinoscopeError(f"{where} holds no embeddings (shape {vectors.shape}); give at least one vector")
    columns = {"labels": labels, "ids": ids, "splits": splits, "origins": origins}
    for column, values in columns.items():
        if values is not None and len(values) != len(vectors):
            raise DinoscopeError(f"{where}: {len(values)} {column} for {len(vectors)} embeddings; "
                                 f"give exactly one per embedding")
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32 becomes inf: reported just below
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad.size:
        raise DinoscopeError(
            f"{where}: {bad.size} of {len(vectors)} rows hold NaN, inf or missing values "
            f"(first: row {bad[0]}); drop or fix those rows"
        )
    default_ids, default_origins = index_ids(name, len(vectors), splits)
    if ids is not None:
        bad_ids = [i for i, count in Counter(ids).items() if count > 1 or not isinstance(i, str)]
        if bad_ids:
            raise DinoscopeError(f"{where}: ids must be present and unique; {bad_ids[0]!r} is not")
    elif len(set(default_ids)) != len(default_ids):  # a missing split and the split 'None' number alike
        raise DinoscopeError(f"{where}: the splits None and 'None' give the same item ids; "
                             "give every row its split, or add a column of unique ids")
    if origins is not None:
        origins = [o if isinstance(o, str) else d for o, d in zip(origins, default_origins, strict=True)]
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


TEXT_COLUMNS = ("label", "id", "split", "source")


def load_parquet(path: Path) -> Dataset:
    """A Parquet table with an `embedding` column (list of numbers) and optional label, id, split, source."""
    try:
        table = pq.ParquetFile(path).read()  # not pq.read_table: it refuses repeated column names unexplained
    except (OSError, ValueError, pa.ArrowException) as exc:  # ValueError: a damaged name that is not UTF-8
        raise DinoscopeError(f"cannot read {path} as Parquet ({one_line(exc)}); give a valid file") from exc
    names = table.column_names
    if "embedding" not in names:
        raise DinoscopeError(
            f"{path} has no 'embedding' column (it has: {', '.join(map(say, names)) or 'none'}); "
            "store one list of floats per row in a column named 'embedding'"
        )
    for name in ("embedding", *TEXT_COLUMNS):
        if names.count(name) > 1:
            raise DinoscopeError(f"{path} has {names.count(name)} columns named '{name}'; keep or rename all but one")
    texts = {name: _texts(path, name, table.column(name)) for name in TEXT_COLUMNS if name in names}
    labels = texts.get("label")
    return embedded(
        path.stem, path, _vectors(path, table.column("embedding")),
        labels=labels, classes=sorted(set(labels) - {None}) if labels else None,
        ids=texts.get("id"), splits=texts.get("split"), origins=texts.get("source"),
    )


def _texts(path: Path, name: str, column: pa.ChunkedArray) -> list[str | None]:
    """A label / id / split / source column as text (None where null): it must hold strings or numbers."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
            or pa.types.is_floating(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)
            or getattr(pa.types, "is_string_view", lambda _: False)(kind)):
        raise DinoscopeError(f"{path}: the '{name}' column is {flat(column.type)}; store one string per row")
    return [None if v is None else str(v) for v in column.to_pylist()]


def _vectors(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    """A list / fixed_size_list column as an (N, D) array; ragged, null or non-numeric rows are errors."""
    col = column.combine_chunks()
    kind = col.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
        raise DinoscopeError(f"{path}: the 'embedding' column is {flat(kind)}; store one list of numbers per row")
    if not (pa.types.is_integer(kind.value_type) or pa.types.is_floating(kind.value_type)):
        raise DinoscopeError(f"{path}: the 'embedding' column holds non-numbers ({flat(kind)}); store floats")
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

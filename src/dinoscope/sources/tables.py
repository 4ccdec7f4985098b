"""Images stored in a table, the way the ecosystem stores image sets: Parquet with an image column (bytes, or the
{bytes, path} structs Hugging Face `datasets` writes), optional label and id columns.

Streamed, not loaded whole: the label and id columns are read up front, the image column one row group at a time
when extraction asks for a row (the last group read is kept, and extraction asks in order).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DinoscopeError
from ..hashing import fingerprint
from .base import Dataset, UnreadableImage
from .embeddings import load_parquet
from .memory import index_ids
from .reasons import one_line


@dataclass(frozen=True)
class Columns:
    """Which columns of a table hold the images, the labels and the ids (None: found by name or type)."""

    image: str | None = None
    label: str | None = None
    id: str | None = None


def load_table(path: Path, columns: Columns = Columns()) -> Dataset:
    """A Parquet file: precomputed embeddings when it has an `embedding` column, else images in a column."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DinoscopeError(f"cannot read {path} as Parquet ({one_line(exc)}); give a valid file") from exc
    names = parquet.schema_arrow.names
    if "embedding" in names and columns.image is None:
        return load_parquet(path)
    return _image_table(path, parquet, columns)


def _is_image_type(kind: pa.DataType) -> bool:
    """Binary bytes, or a struct with a binary `bytes` field (datasets' Image feature)."""
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    return pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0 and _is_image_type(kind.field("bytes").type)


def _column(path: Path, schema: pa.Schema, given: str | None, default: str | None, what: str) -> str | None:
    """The column holding `what`: the one named, else `default` when the table has it; a named one must exist."""
    if given is not None:
        if given not in schema.names:
            raise DinoscopeError(f"{path} has no column {given!r} for the {what} (it has: {', '.join(schema.names)})")
        return given
    return default if default in schema.names else None


def _image_table(path: Path, parquet: pq.ParquetFile, columns: Columns) -> Dataset:
    schema = parquet.schema_arrow
    images = _column(path, schema, columns.image, None, "images") or next(
        (f.name for f in schema if _is_image_type(f.type)), None)
    if images is None:
        raise DinoscopeError(f"{path} has no column of image bytes nor an 'embedding' column (it has: "
                             f"{', '.join(schema.names)}); name the images' column with --image-column")
    if not _is_image_type(schema.field(images).type):
        raise DinoscopeError(f"{path}: column {images!r} is {schema.field(images).type}, not image bytes or "
                             "{bytes, path} structs")
    label = _column(path, schema, columns.label, "label", "labels")
    ident = _column(path, schema, columns.id, "id", "ids")
    side = parquet.read(columns=[c for c in (label, ident) if c]) if (label or ident) else None
    n = parquet.metadata.num_rows
    if n == 0:
        raise DinoscopeError(f"{path} has no rows; give a table with at least one image")
    labels = _texts(side.column(label)) if label else None
    ids, _ = index_ids(path.stem, n)
    if ident:
        ids = _texts(side.column(ident))
        if None in ids or len(set(ids)) != n:
            raise DinoscopeError(f"{path}: the ids in column {ident!r} must be present and unique")
    stat = path.stat()
    reader = _RowGroups(path, images)
    return Dataset(
        name=path.stem,
        ids=ids,
        origins=[f"{path}[{i}]" for i in range(n)],
        labels=labels,
        splits=None,
        fingerprint=fingerprint(["table", str(path.resolve()), stat.st_size, stat.st_mtime_ns, images, label, ident]),
        read=lambda i: reader.image(i, ids[i]),
        classes=sorted(set(labels) - {None}) if labels else None,
    )


def _texts(column: pa.ChunkedArray) -> list[str | None]:
    """Labels or ids as text; datasets' ClassLabel integers stay their numbers (as text)."""
    return [None if v is None else str(v) for v in column.to_pylist()]


class _RowGroups:
    """Images of one column, read one row group at a time (the latest kept), safe to call from threads."""

    def __init__(self, path: Path, column: str):
        self.path, self.column = path, column
        self.parquet = pq.ParquetFile(path)
        sizes = [self.parquet.metadata.row_group(g).num_rows for g in range(self.parquet.num_row_groups)]
        self.starts = np.cumsum([0, *sizes])
        self.lock = threading.Lock()
        self.group, self.values = -1, None

    def image(self, row: int, ident: str) -> np.ndarray:
        from .folder import decode

        data = self._bytes(row)
        if not data:
            raise UnreadableImage(f"{ident}: no image bytes in column {self.column!r} (null or empty)")
        return decode(io.BytesIO(data), ident)

    def _bytes(self, row: int) -> bytes | None:
        group = int(np.searchsorted(self.starts, row, side="right") - 1)
        with self.lock:
            if group != self.group:
                table = self.parquet.read_row_group(group, columns=[self.column])
                self.group, self.values = group, table.column(self.column).combine_chunks()
            value = self.values[row - int(self.starts[group])].as_py()
        return value.get("bytes") if isinstance(value, dict) else value

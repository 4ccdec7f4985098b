"""Images stored in a table, the way the ecosystem stores image sets: Parquet with an image column (bytes, or the
{bytes, path} structs Hugging Face `datasets` writes), optional label and id columns; or a `datasets` folder
written by `save_to_disk` (Arrow stream files, memory-mapped; ClassLabel names from its dataset_info.json).

Streamed, not loaded whole: the label and id columns are read up front, a Parquet image column one row group at a
time when extraction asks for a row (the last group read is kept, and extraction asks in order).
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
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


def is_uri(spec: str) -> bool:
    """Whether a source names a file through a pyarrow filesystem (s3://, gs://, hdfs://, file://)."""
    return "://" in str(spec)


def _open_parquet(path: Path | str) -> pq.ParquetFile:
    """A Parquet file by local path, or by URI through the pyarrow filesystem it names (credentials as that
    filesystem finds them, e.g. the cluster's)."""
    if is_uri(path):
        fs, inner = pafs.FileSystem.from_uri(str(path))
        return pq.ParquetFile(inner, filesystem=fs)
    return pq.ParquetFile(path)


def load_table(path: Path | str, columns: Columns = Columns()) -> Dataset:
    """A Parquet file (a path, or a URI such as s3://bucket/images.parquet): precomputed embeddings when it has an
    `embedding` column, else images in a column."""
    try:
        parquet = _open_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DinoscopeError(f"cannot read {path} as Parquet ({one_line(exc)}); give a valid file") from exc
    names = parquet.schema_arrow.names
    if "embedding" in names and columns.image is None:
        if is_uri(path):
            raise DinoscopeError(f"{path}: precomputed embeddings are read from a local file; copy it here")
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


def _image_table(path: Path | str, parquet: pq.ParquetFile, columns: Columns) -> Dataset:
    """A Parquet table of images: side columns read now, the image column by row group on demand."""
    image, label, ident = _columns(path, parquet.schema_arrow, columns)
    side = parquet.read(columns=[c for c in (label, ident) if c]) if (label or ident) else None
    reader = _RowGroups(path, image)
    if is_uri(path):
        fs, inner = pafs.FileSystem.from_uri(str(path))
        info = fs.get_file_info(inner)
        stamp = ["table", str(path), info.size, info.mtime_ns]
    else:
        stat = Path(path).stat()
        stamp = ["table", str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]
    return _dataset(path, parquet.metadata.num_rows, side, image, label, ident, reader.image, None, stamp)


def load_saved_dataset(folder: Path, columns: Columns = Columns()) -> Dataset:
    """A Hugging Face `datasets` folder written by `save_to_disk`: its Arrow files memory-mapped, in order."""
    if (folder / "dataset_dict.json").is_file():
        splits = ", ".join(sorted(p.name for p in folder.iterdir() if (p / "state.json").is_file()))
        raise DinoscopeError(f"{folder} holds several splits ({splits}); point --source at one of their folders")
    try:
        state = json.loads((folder / "state.json").read_text())
        info = json.loads((folder / "dataset_info.json").read_text())
        files = [folder / f["filename"] for f in state["_data_files"]]
        table = pa.concat_tables([pa.ipc.open_stream(pa.memory_map(str(f))).read_all() for f in files])
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise DinoscopeError(f"cannot read {folder} as a saved datasets folder ({one_line(exc)}); "
                             "write it with Dataset.save_to_disk") from None
    image, label, ident = _columns(folder, table.schema, columns)
    names = ((info.get("features") or {}).get(label) or {}).get("names") if label else None
    images = table.column(image)
    stamps = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    return _dataset(folder, table.num_rows, table, image, label, ident,
                    lambda row, ident_, side=None: _decode(images[row].as_py(), image, ident_, side), names,
                    ["saved", str(folder.resolve()), stamps])


def _columns(where: Path, schema: pa.Schema, columns: Columns) -> tuple[str, str | None, str | None]:
    """The image, label and id columns of a table: named ones checked, the others found by type or name."""
    image = _column(where, schema, columns.image, None, "images") or next(
        (f.name for f in schema if _is_image_type(f.type)), None)
    if image is None:
        raise DinoscopeError(f"{where} has no 'embedding' column (it has: {', '.join(schema.names)}) nor a column of "
                             "image bytes; store one list of floats per row in a column named 'embedding', or name "
                             "the images' column with --image-column")
    if not _is_image_type(schema.field(image).type):
        raise DinoscopeError(f"{where}: column {image!r} is {schema.field(image).type}, not image bytes or "
                             "{bytes, path} structs")
    return image, _column(where, schema, columns.label, "label", "labels"), _column(where, schema, columns.id, "id",
                                                                                   "ids")


def _dataset(where: Path, n: int, side: pa.Table | None, image: str, label: str | None, ident: str | None,
             read_row, class_names: list[str] | None, stamp: list) -> Dataset:
    """The Dataset over a table's rows: labels (class names where the table has them) and ids from the side
    columns, images read by `read_row(row, id, side=None)` (`side`: see `folder.decode`)."""
    if n == 0:
        raise DinoscopeError(f"{where} has no rows; give a table with at least one image")
    labels = _texts(side.column(label)) if label else None
    if labels is not None and class_names:
        # datasets' ClassLabel: integers naming classes, -1 for "no label"
        labels = [None if v in (None, "-1") else class_names[int(v)] if v.isdigit() and int(v) < len(class_names)
                  else v for v in labels]
    name = PurePosixPath(str(where)).stem if is_uri(where) or where.is_file() else where.name
    ids, _ = index_ids(name, n)
    if ident:
        ids = _texts(side.column(ident))
        if None in ids or len(set(ids)) != n:
            raise DinoscopeError(f"{where}: the ids in column {ident!r} must be present and unique")
    return Dataset(
        name=name,
        ids=ids,
        origins=[f"{where}[{i}]" for i in range(n)],
        labels=labels,
        splits=None,
        fingerprint=fingerprint([*stamp, image, label, ident]),
        read=lambda i: read_row(i, ids[i]),
        read_small=lambda i, side: read_row(i, ids[i], side),
        classes=sorted(set(labels) - {None}) if labels else None,
    )


def _decode(value, column: str, ident: str, side: int | None = None) -> np.ndarray:
    """One cell of an image column (bytes, or a {bytes, path} struct) decoded; empty cells are unreadable."""
    from .folder import decode

    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        raise UnreadableImage(f"{ident}: no image bytes in column {column!r} (null or empty)")
    return decode(io.BytesIO(data), ident, side)


def _texts(column: pa.ChunkedArray) -> list[str | None]:
    """Labels or ids as text; datasets' ClassLabel integers stay their numbers (as text)."""
    return [None if v is None else str(v) for v in column.to_pylist()]


class _RowGroups:
    """Images of one column, read one row group at a time (the latest kept), safe to call from threads; pickled
    as its path and column (a Ray worker opens the file again)."""

    def __init__(self, path: Path | str, column: str):
        self.path, self.column = path, column
        self.parquet = _open_parquet(path)
        sizes = [self.parquet.metadata.row_group(g).num_rows for g in range(self.parquet.num_row_groups)]
        self.starts = np.cumsum([0, *sizes])
        self.lock = threading.Lock()
        self.group, self.values = -1, None

    def __getstate__(self) -> dict:
        return {"path": self.path, "column": self.column}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["column"])

    def image(self, row: int, ident: str, side: int | None = None) -> np.ndarray:
        group = int(np.searchsorted(self.starts, row, side="right") - 1)
        with self.lock:
            if group != self.group:
                table = self.parquet.read_row_group(group, columns=[self.column])
                self.group, self.values = group, table.column(self.column).combine_chunks()
            value = self.values[row - int(self.starts[group])].as_py()
        return _decode(value, self.column, ident, side)

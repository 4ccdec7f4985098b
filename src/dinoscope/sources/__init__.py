"""Where images come from: named datasets, a folder, a list of paths, NumPy arrays, Parquet tables or precomputed
embeddings -> `Dataset`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..cachedir import default_cache_dir
from ..errors import DinoscopeError
from ..hashing import fingerprint
from .arrays import load_arrays
from .base import Dataset, UnreadableImage
from .cifar10 import SPLITS as CIFAR10_SPLITS
from .cifar10 import load_cifar10
from .digits import load_digits
from .folder import IMAGE_EXTENSIONS, load_folder
from .lists import load_list
from .tables import Columns, is_uri, load_saved_dataset, load_table


@dataclass(frozen=True)
class NamedSource:
    """A dataset known by name: how to load a split of it into a cache folder, and which splits it has."""

    load: Callable[[str, Path], Dataset]
    splits: tuple[str, ...] = ()


SOURCES: dict[str, NamedSource] = {
    "digits": NamedSource(load_digits),
    "cifar10": NamedSource(load_cifar10, CIFAR10_SPLITS),
}

# suffix -> loader(path, columns): columns name a table's image, label and id columns (tables only)
FILE_LOADERS: dict[str, Callable[[Path, Columns], Dataset]] = {
    ".npz": lambda path, _: load_arrays(path), ".npy": lambda path, _: load_arrays(path), ".parquet": load_table,
    ".txt": lambda path, _: load_list(path),
}


def load_source(
    spec: str, *, split: str = "all", strict: bool = False, cache_dir: Path | None = None,
    columns: Columns = Columns(),
) -> Dataset:
    """The items of `spec` (a dataset name, a folder, or a .npz/.npy/.parquet/.txt file) in `split`; `columns` name a
    Parquet table's image, label and id columns.

    `strict` is for sources that can check every item upfront; none needs to today, since a folder's
    unreadable files surface as `UnreadableImage` during extraction, which honours --strict itself.
    """
    if spec in SOURCES:
        named = SOURCES[spec]
        _check_split(spec, split, named.splits)
        dataset = named.load(split, Path(cache_dir).expanduser() if cache_dir else default_cache_dir())
    else:
        dataset = _select_split(spec, _load_path(spec, columns), split)
    if len(dataset) == 0:
        raise DinoscopeError(f"source '{spec}' is empty; give a source with at least one item")
    return dataset


def _load_path(spec: str, columns: Columns) -> Dataset:
    """A folder of images or a NumPy / Parquet file (a Parquet one by URI too: s3://...); anything else is an
    unknown source."""
    if is_uri(spec) and spec.lower().endswith(".parquet"):
        return load_table(spec, columns)
    path = Path(spec).expanduser()
    if path.is_dir():
        saved = (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()
        return load_saved_dataset(path, columns) if saved else load_folder(path)
    loader = FILE_LOADERS.get(path.suffix.lower())
    if path.is_file() and loader is not None:
        return loader(path, columns)
    if path.is_file():
        problem = f"unknown source '{spec}' (a {path.suffix or 'extensionless'} file)"
    elif "/" in spec or os.sep in spec or path.suffix:
        problem = f"source '{spec}' does not exist"
    else:
        problem = f"unknown source '{spec}'"
    names, suffixes = ", ".join(sorted(SOURCES)), "/".join(FILE_LOADERS)
    raise DinoscopeError(f"{problem}: give a dataset name ({names}), a folder, or a {suffixes} file")


def _check_split(name: str, split: str, available: Sequence[str]) -> None:
    """Refuse a split the source does not have, naming the ones it does."""
    if split == "all" or split in available:
        return
    if not available:
        raise DinoscopeError(f"{name} has no splits (asked for '{split}'); use split 'all'")
    raise DinoscopeError(f"{name} has no split '{split}'; choose one of all, {', '.join(available)}")


def _select_split(spec: str, dataset: Dataset, split: str) -> Dataset:
    """The items of one split of a loaded dataset (files may carry a split per item)."""
    _check_split(f"'{spec}'", split, sorted({s for s in dataset.splits or [] if s is not None}))
    if split == "all":
        return dataset
    picked = dataset.subset([i for i, s in enumerate(dataset.splits or []) if s == split])
    return replace(picked, fingerprint=fingerprint([dataset.fingerprint, split]))


__all__ = ["IMAGE_EXTENSIONS", "SOURCES", "Columns", "Dataset", "NamedSource", "UnreadableImage", "default_cache_dir",
           "load_source"]

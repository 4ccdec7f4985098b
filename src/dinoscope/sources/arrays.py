"""NumPy files (.npy / .npz): uint8 images (N, H, W[, C]) or (N, D) precomputed embeddings, with labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DinoscopeError
from .base import Dataset
from .embeddings import embedded, flat, say
from .memory import in_memory
from .reasons import one_line

SIDE_KEYS = ("labels", "classes")


def load_arrays(path: Path) -> Dataset:
    """Images or embeddings from a .npy or .npz file: a 2-D array is embeddings, a 3-D or 4-D one images."""
    arrays = _open(path)
    key = _main_key(path, arrays)
    data = arrays[key]
    if data.ndim == 0:
        raise DinoscopeError(f"{path}: '{say(key)}' is a single value, not an array of items; save images "
                             "(N, H, W[, C]) or embeddings (N, D)")
    if key == "embeddings" or (key != "images" and data.ndim == 2):
        labels, classes = _labels(path, arrays, len(data))
        return embedded(path.stem, path, data, labels=labels, classes=classes)
    _check_images(path, data)
    labels, classes = _labels(path, arrays, len(data))
    return in_memory(path.stem, data, labels, None, classes)


def _open(path: Path) -> dict[str, np.ndarray]:
    """The file's arrays by name, whatever its suffix says: an .npz archive's by their names, a .npy array
    (memory-mapped) named 'images' or 'embeddings' by its shape."""
    try:
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"embeddings" if loaded.ndim == 2 else "images": loaded}
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # a damaged file fails in numpy, zipfile or zlib, each with its own exceptions
        raise DinoscopeError(
            f"cannot read {path} ({flat(one_line(exc))}); save arrays of numbers or strings with np.save / np.savez"
        ) from exc
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray):
            raise DinoscopeError(f"{path}: the archive member {say(key)} is not a NumPy array; "
                                 "save the file with np.savez")
    return arrays


def _main_key(path: Path, arrays: dict[str, np.ndarray]) -> str:
    """'embeddings', else 'images', else the only array besides labels and classes."""
    for key in ("embeddings", "images"):
        if key in arrays:
            return key
    others = [name for name in arrays if name not in SIDE_KEYS]
    if len(others) != 1:
        raise DinoscopeError(
            f"{path} holds arrays {', '.join(map(say, arrays)) or '(none)'}; name the images 'images' "
            "(or the (N, D) vectors 'embeddings')"
        )
    return others[0]


def _labels(path: Path, arrays: dict[str, np.ndarray], n: int) -> tuple[list[str] | None, list[str] | None]:
    """Labels as class names: strings as they are, ints through `classes` when given (else their digits)."""
    if "labels" not in arrays:
        return None, None
    raw = arrays["labels"]
    if raw.ndim != 1:
        raise DinoscopeError(f"{path}: labels must be a 1-D array (one per item), found shape {raw.shape}")
    if len(raw) != n:
        raise DinoscopeError(f"{path}: {len(raw)} labels for {n} items; give exactly one label per item")
    if raw.dtype.kind in "US":
        labels = _texts(raw)
        return labels, sorted(set(labels))
    if raw.dtype.kind not in "iu":
        raise DinoscopeError(f"{path}: labels must be ints or strings, found {flat(raw.dtype)}")
    if "classes" not in arrays:
        return [str(x) for x in raw.tolist()], [str(x) for x in np.unique(raw).tolist()]
    names = arrays["classes"]
    if names.ndim != 1 or names.dtype.kind not in "USiu":
        raise DinoscopeError(
            f"{path}: classes must be a 1-D array of names (one per label value), found {flat(names.dtype)} "
            f"of shape {names.shape}"
        )
    classes = _texts(names)
    out_of_range = raw[(raw < 0) | (raw >= len(classes))]
    if out_of_range.size:
        raise DinoscopeError(
            f"{path}: label {out_of_range[0]} has no class name ({len(classes)} classes); "
            "give one name per label value in 'classes'"
        )
    return [classes[x] for x in raw.tolist()], classes


def _texts(values: np.ndarray) -> list[str]:
    """Strings, ints or bytes as text; bytes that are not UTF-8 keep their undecodable bytes as \\x escapes."""
    return [x.decode("utf-8", "backslashreplace") if isinstance(x, bytes) else str(x) for x in values.tolist()]


def _check_images(path: Path, images: np.ndarray) -> None:
    """Images must be uint8 (N, H, W) or (N, H, W, 1|3|4): say what was found and how to convert it."""
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise DinoscopeError(
            f"{path}: images must be shaped (N, H, W) or (N, H, W, 1|3|4), found {images.shape}"
        )
    if images.dtype != np.uint8:
        raise DinoscopeError(
            f"{path}: images must be uint8 (0..255), found {flat(images.dtype)}; convert with "
            "np.clip(x * 255, 0, 255).astype(np.uint8) for 0..1 values, or x.astype(np.uint8) for 0..255"
        )
    if images.size == 0:
        raise DinoscopeError(
            f"{path} is empty: images of shape {images.shape} hold no pixels; give at least one image of "
            "at least 1x1 pixels"
        )

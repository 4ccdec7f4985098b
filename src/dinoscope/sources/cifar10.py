"""CIFAR-10 (50k train, 10k test, 32x32): read from a local copy of the python batches, else downloaded."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..errors import DinoscopeError
from .base import Dataset
from .memory import in_memory
from .reasons import one_line

FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
SPLITS = tuple(BATCHES)


def load_cifar10(split: str, cache_dir: Path) -> Dataset:
    """CIFAR-10's `split` ("train", "test" or "all") as (32, 32, 3) uint8 images labelled by class name."""
    root = cache_dir / FOLDER
    if not root.is_dir():
        _download(cache_dir)
    classes = _label_names(root / "batches.meta")
    images, targets, splits = [], [], []
    for name in SPLITS if split == "all" else (split,):
        for batch in BATCHES[name]:
            pixels, labels = _read_batch(root / batch, len(classes))
            images.append(pixels)
            targets.extend(labels)
            splits.extend([name] * len(labels))
    return in_memory("cifar10", np.concatenate(images), [classes[t] for t in targets], splits, classes)


def _label_names(path: Path) -> list[str]:
    """The class names of batches.meta, in label order."""
    names = _unpickle(path).get(b"label_names")
    if not names:
        raise DinoscopeError(f"{path} has no label_names; remove the {FOLDER} folder to download it again")
    return [name.decode() for name in names]


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, list[int]]:
    """One pickled batch: rows of 3072 bytes (red, green, blue planes, row-major) -> (N, 32, 32, 3)."""
    batch = _unpickle(path)
    data, labels = batch.get(b"data"), batch.get(b"labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32 and labels is not None and len(labels) == len(data)
            and all(0 <= t < n_classes for t in labels)):
        raise DinoscopeError(f"{path} is not a CIFAR-10 batch; remove {path.parent} to download it again")
    pixels = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return pixels, [int(t) for t in labels]


def _unpickle(path: Path) -> dict:
    """A file of the CIFAR python format (a pickled dict with bytes keys)."""
    try:
        with open(path, "rb") as f:
            content = pickle.load(f, encoding="bytes")
    except FileNotFoundError:
        raise DinoscopeError(
            f"{path} is missing: the CIFAR-10 copy in {path.parent} is incomplete; remove it to download "
            f"again, or extract {URL} there"
        ) from None
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise DinoscopeError(
            f"cannot read {path} ({one_line(exc)}); remove {path.parent} to download it again"
        ) from exc
    if not isinstance(content, dict):
        raise DinoscopeError(f"{path} is not a CIFAR-10 file; remove {path.parent} to download it again")
    return content


def _download(cache_dir: Path) -> None:
    """Fetch and extract the archive into `cache_dir` with torchvision (checksummed)."""
    import torchvision.datasets

    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        torchvision.datasets.CIFAR10(root=cache_dir, train=True, download=True)
    except (OSError, RuntimeError) as exc:  # no network, a refused connection, a corrupt archive
        raise DinoscopeError(
            f"cifar10 could not be downloaded ({one_line(exc)}); extract {URL} so that {cache_dir / FOLDER} "
            "holds its batches, or pass --cache-dir to a folder that has them"
        ) from exc

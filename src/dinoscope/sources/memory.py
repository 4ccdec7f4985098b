"""Items held in memory: stable index ids, content fingerprints, and image arrays as a `Dataset`."""

from __future__ import annotations

import numpy as np

from ..hashing import content_fingerprint
from .base import Dataset
from .pixels import to_rgb


def index_ids(name: str, n: int, splits: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Ids "<name>:<split>:00042" and origins "<name>[<split>][42]", numbered within each split."""
    width = max(5, len(str(n)))
    seen: dict[str, int] = {}
    ids, origins = [], []
    for split in splits if splits is not None else ["all"] * n:
        i = seen[split] = seen.get(split, -1) + 1
        ids.append(f"{name}:{split}:{i:0{width}d}")
        origins.append(f"{name}[{split}][{i}]")
    return ids, origins


def in_memory(name: str, images: np.ndarray, labels: list[str] | None, splits: list[str] | None,
              classes: list[str] | None) -> Dataset:
    """A `Dataset` over (N, H, W) or (N, H, W, 1|3|4) uint8 images; `read(i)` gives (H, W, 3) RGB."""
    ids, origins = index_ids(name, len(images), splits)
    return Dataset(
        name=name,
        ids=ids,
        origins=origins,
        labels=labels,
        splits=splits,
        fingerprint=content_fingerprint(name, images, labels, splits, classes),
        read=lambda i: to_rgb(images[i]),
        classes=classes,
    )

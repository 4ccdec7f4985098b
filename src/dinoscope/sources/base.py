"""What every source returns: items with stable ids, labels and origins, and a way to read them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


class UnreadableImage(Exception):
    """An image that could not be decoded; extraction reports and skips it (or fails with --strict)."""


@dataclass
class Dataset:
    """A collection ready for the backbone (`read`) or already embedded (`embeddings`).

    ids      stable, unique strings (a relative path, or "<name>:<split>:<index>")
    origins  where each item came from (a path, or "<name>[<split>][<index>]")
    labels   class name per item, or None when the source has no labels
    splits   split per item ("train", "test", ...) or None
    read     i -> uint8 array (H, W, 3); raises UnreadableImage for a bad file
    read_small  (i, side) -> the same image decoded at a reduced scale with both sides >= side, where the format
             allows it (JPEG: libjpeg's 1/2 to 1/8 scaling); None when the source cannot (see `reader`)
    embeddings  (N, D) float32 when the source is precomputed vectors (then read is None)
    fingerprint  changes whenever the items or their content change (stage caching)
    """

    name: str
    ids: list[str]
    origins: list[str]
    labels: list[str] | None
    splits: list[str] | None
    fingerprint: str
    read: Callable[[int], np.ndarray] | None = None
    embeddings: np.ndarray | None = None
    classes: list[str] | None = field(default=None)
    read_small: Callable[[int, int], np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_embedded(self) -> bool:
        return self.embeddings is not None

    def reader(self, side: int | None = None) -> Callable[[int], np.ndarray] | None:
        """How to read images that will be shrunk to `side` pixels: decoded at a reduced scale where the source
        can (a 12-megapixel JPEG for a 224-pixel model decodes at 1/8, several times faster), else `read`."""
        if side is None or self.read_small is None:
            return self.read
        return lambda i, _r=self.read_small: _r(i, side)

    def subset(self, index: Sequence[int]) -> Dataset:
        """The items at `index`, in that order (used by --limit)."""
        idx = list(index)
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]  # noqa: E731
        read = None if self.read is None else (lambda i, _r=self.read: _r(idx[i]))
        small = None if self.read_small is None else (lambda i, side, _r=self.read_small: _r(idx[i], side))
        emb = None if self.embeddings is None else self.embeddings[idx]
        return Dataset(
            name=self.name,
            ids=pick(self.ids),
            origins=pick(self.origins),
            labels=pick(self.labels),
            splits=pick(self.splits),
            fingerprint=f"{self.fingerprint}[{len(idx)}]",
            read=read,
            embeddings=emb,
            classes=self.classes,
            read_small=small,
        )

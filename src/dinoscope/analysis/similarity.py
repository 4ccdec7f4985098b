"""Similarity search: exact cosine search (faiss's brute force on L2-normalised float32) up to `exact_max`
vectors, the shared graph's faiss HNSW index above it, whose recall is measured against exact search when built."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..checks import as_points
from ..errors import DinoscopeError
from ..neighbors import exact_neighbors, hnsw_index, hnsw_search

EXACT_MAX = 300_000
EmbedImages = Callable[[list[np.ndarray]], np.ndarray]


def normalize(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero), so that cosine similarity is a dot product."""
    X = np.asarray(vectors, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def exact_top_k(reference: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar reference rows of each query: the shared kNN's exact search, as similarities."""
    indices, distances = exact_neighbors(reference, queries, k, metric="cosine")
    return indices, (1.0 - distances).astype(np.float32)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, for a query by image; a one-line DinoscopeError when it is not one."""
    from ..sources.base import UnreadableImage
    from ..sources.folder import decode

    path = Path(path)
    if not path.is_file():
        raise DinoscopeError(f"{path} is not a file; give the path of an image (JPEG, PNG, WebP, ...)")
    try:
        return decode(path, str(path))
    except UnreadableImage as exc:
        raise DinoscopeError(f"{exc} (not a readable image); give a JPEG, PNG, WebP, BMP or TIFF file") from None


class SimilarityIndex:
    """Cosine similarity search over fixed vectors; `recall` is 1 when exact, measured when approximate."""

    def __init__(self, vectors: np.ndarray, ids: Sequence[str] | None = None, *, method: str = "auto",
                 exact_max: int = EXACT_MAX, ef_search: int = 128, recall_queries: int = 500, seed: int = 0):
        if method not in ("auto", "exact", "approx"):
            raise DinoscopeError(f"unknown search method {method!r}; choose auto, exact or approx")
        self.vectors = np.ascontiguousarray(normalize(as_points(vectors, "vectors", min_rows=2)))
        self.ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(self.vectors))]
        if len(self.ids) != len(self.vectors):
            raise DinoscopeError(f"got {len(self.ids)} ids for {len(self.vectors)} vectors")
        self._position = {ident: i for i, ident in enumerate(self.ids)}
        if len(self._position) != len(self.ids):
            raise DinoscopeError("ids must be unique; some id occurs more than once")
        self.exact = method == "exact" or (method == "auto" and len(self.vectors) <= exact_max)
        self._ann = None if self.exact else hnsw_index(self.vectors, "cosine", ef_search)
        self.recall = 1.0 if self.exact else self.measure_recall(recall_queries, seed=seed)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        """Dimension of the indexed vectors."""
        return self.vectors.shape[1]

    def _check_k(self, k: int) -> None:
        if not 1 <= k < len(self):
            raise DinoscopeError(f"k must be between 1 and {len(self) - 1} (the index holds {len(self)} vectors), "
                                 f"got {k}")

    def _top_k(self, queries: np.ndarray, k: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        """(indices, similarities) of the k most similar indexed vectors to normalised queries."""
        if exact:
            return exact_top_k(self.vectors, queries, k)
        indices, distances = hnsw_search(self._ann, queries, k, "cosine")
        return indices, (1.0 - distances).astype(np.float32)

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar indexed vectors per query row (or (d,) vector): (indices, similarities), best first."""
        self._check_k(k)
        Q = as_points(np.atleast_2d(queries), "query vectors", min_rows=1)
        if Q.shape[1] != self.dim:
            raise DinoscopeError(f"query vectors are {Q.shape[1]}-D but the index holds {self.dim}-D vectors")
        return self._top_k(normalize(Q), k, self.exact)

    def positions(self, ids: Sequence[str]) -> np.ndarray:
        """Row of each id in the index; a one-line error naming the first unknown id."""
        missing = [i for i in ids if i not in self._position]
        if missing:
            raise DinoscopeError(f"unknown id {missing[0]!r} ({len(missing)} unknown); ids look like {self.ids[0]!r}")
        return np.array([self._position[i] for i in ids], dtype=np.int64)

    def search_ids(self, ids: str | Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar other indexed images to each given id (itself left out)."""
        self._check_k(k)
        rows = self.positions([ids] if isinstance(ids, str) else list(ids))
        indices, sims = self._top_k(self.vectors[rows], k + 1, self.exact)
        keep = indices != rows[:, None]
        keep[keep.all(axis=1), -1] = False  # self not returned (approximate): drop the last instead
        return indices[keep].reshape(len(rows), k), sims[keep].reshape(len(rows), k)

    def search_images(self, images: list[np.ndarray], embed_images: EmbedImages,
                      k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k most similar indexed images to each (H, W, 3) uint8 image, embedded by the run's backbone."""
        if not images:
            raise DinoscopeError("no query image given")
        vectors = np.asarray(embed_images(list(images)))
        if vectors.ndim != 2 or vectors.shape[0] != len(images):
            raise DinoscopeError(f"embed_images returned shape {vectors.shape} for {len(images)} images; "
                                 "it must return one vector per image")
        return self.search(vectors, k)

    def measure_recall(self, n_queries: int = 500, k: int = 10, seed: int = 0) -> float:
        """Mean share of the exact k nearest neighbours that the index returns, over indexed vectors as queries."""
        k = min(k, len(self) - 1)
        rows = np.random.default_rng(seed).choice(len(self), min(n_queries, len(self)), replace=False)
        truth, _ = self._top_k(self.vectors[rows], k, exact=True)
        found, _ = self._top_k(self.vectors[rows], k, exact=self.exact)
        return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth.tolist(), found.tolist(), strict=True)]))

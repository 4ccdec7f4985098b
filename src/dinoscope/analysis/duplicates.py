"""Near-duplicates (connected components of kNN edges above a cosine similarity), exact duplicates
(content hashes) and duplicates that cross splits (train/test leaks)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DinoscopeError
from ..hashing import content_fingerprint
from ..neighbors import KNNGraph

# benchmarks/analysis.py, planted resized / JPEG / cropped copies of digits: pair precision/recall 0.967/1.000 on
# pixel features (0.76-0.89/0.93-0.98 with random-weight ViTs); conservative: it finds copies, not look-alikes.
DEFAULT_THRESHOLD = 0.997


def similar_pairs(graph: KNNGraph, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """(m, 2) unique pairs i < j of graph edges whose cosine similarity is at least `threshold`."""
    if graph.metric != "cosine":
        raise DinoscopeError(f"duplicate thresholds are cosine similarities; the graph uses {graph.metric} distances")
    if not -1.0 <= threshold <= 1.0:
        raise DinoscopeError(f"the duplicate threshold is a cosine similarity in [-1, 1], got {threshold}")
    close = (1.0 - graph.distances) >= threshold
    rows = np.broadcast_to(np.arange(len(graph))[:, None], close.shape)[close]
    pairs = np.sort(np.stack([rows, graph.indices[close]], axis=1), axis=1)
    return np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0).reshape(-1, 2)


def group_labels(pairs: np.ndarray, n: int) -> np.ndarray:
    """Connected components of `pairs` over n points: groups numbered 0.. by first member, -1 for singletons."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    adjacency = coo_matrix((np.ones(len(pairs), bool), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(adjacency, directed=False)
    sizes = np.bincount(component)
    first_seen = np.unique(component, return_index=True)[1]  # first member of every component
    order = np.argsort(first_seen, kind="stable")
    numbering = np.full(len(sizes), -1, dtype=np.int64)
    shared = order[sizes[order] > 1]
    numbering[shared] = np.arange(len(shared))
    return numbering[component]


def near_duplicate_groups(graph: KNNGraph, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Group per image (-1: none): images joined by chains of kNN edges with cosine similarity >= threshold."""
    return group_labels(similar_pairs(graph, threshold), len(graph))


def first_member_of(groups: np.ndarray, ids: Sequence[str]) -> list[str | None]:
    """Per image, the id of its group's first member; None for that first member and for images in no group."""
    groups = np.asarray(groups)
    first: dict[int, int] = {}
    out: list[str | None] = []
    for i, g in enumerate(groups.tolist()):
        head = first.setdefault(g, i) if g >= 0 else i
        out.append(ids[head] if head != i else None)
    return out


def groups_as_ids(groups: np.ndarray, ids: Sequence[str]) -> list[list[str]]:
    """The groups as lists of ids (members in dataset order), largest group first."""
    groups = np.asarray(groups)
    members: dict[int, list[str]] = {}
    for i in np.flatnonzero(groups >= 0):
        members.setdefault(int(groups[i]), []).append(ids[i])
    return sorted(members.values(), key=len, reverse=True)


def pixel_hashes(read: Callable[[int], np.ndarray], n: int) -> list[str]:
    """Content hash of every decoded image (uint8 pixels with their shape): same pixels, same hash."""
    return [content_fingerprint(np.asarray(read(i))) for i in range(n)]


def file_hashes(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Content hash of every file's bytes, read in chunks."""
    out = []
    for path in paths:
        digest = hashlib.blake2b(digest_size=12)
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise DinoscopeError(f"cannot hash {path} ({exc.strerror or type(exc).__name__})") from None
        out.append(digest.hexdigest())
    return out


def hash_pairs(hashes: Sequence[str]) -> np.ndarray:
    """(m, 2) pairs (first image with a hash, later image with the same hash): exact duplicates."""
    first: dict[str, int] = {}
    pairs = [(first.setdefault(h, i), i) for i, h in enumerate(hashes)]
    return np.array([p for p in pairs if p[0] != p[1]], dtype=np.int64).reshape(-1, 2)


def cross_split_pairs(pairs: np.ndarray, splits: Sequence[str | None]) -> np.ndarray:
    """The pairs whose two images sit in different (known) splits: leaks such as a test image seen in training."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    split = np.asarray(list(splits), dtype=object)
    a, b = split[pairs[:, 0]], split[pairs[:, 1]]
    known = np.array([x is not None and y is not None for x, y in zip(a, b, strict=True)], dtype=bool)
    return pairs[known & (a != b)]

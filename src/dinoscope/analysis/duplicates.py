"""Duplicates of three kinds, each pair found by the strongest: exact (same pixels, by content hash), perceptual
(perceptual hashes far closer than the images' ordinary hash neighbours) and semantic (embeddings far closer than
the images' ordinary neighbours, with hashes that do not contradict it); their groups; and pairs that cross splits
(train/test leaks).

"Far closer" is set from the data, not by a constant similarity: a pair counts when its distance is at most a
fixed share of each image's typical neighbour distance (the median over its neighbours 2..11), which holds for
any feature extractor and any density of the collection. A semantic pair must in addition be somewhat closer than
typical by hash too, where both images have one: an embedding (a weak or random one above all) can put two unrelated
images side by side, such as two crops of plain sky, whose hashes then sit as far apart as any others.
benchmarks/analysis.py measures it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DinoscopeError
from ..hashing import content_fingerprint
from ..neighbors import KNNGraph

KINDS = ("exact", "perceptual", "semantic")  # strongest first
# The former fixed cosine threshold, kept for `similar_pairs` (an explicit --duplicate-threshold): tuned on digits
# with pixel features; on other sets and extractors its precision fell to 0.03 (issue #16).
DEFAULT_THRESHOLD = 0.997
TYPICAL_K = 10  # an image's typical neighbour distance: the median over its neighbours 2..TYPICAL_K + 1
# benchmarks/analysis.py, planted copies in digits and Fashion-MNIST, three seeds: hash ratio 0.5 with semantic 0.1
# gave pair precision and recall 0.93-1.00 with pixel features and a random-weight ViT alike. Asking the embedding
# to agree with the hash as well cost recall: the random ViT is not invariant to brightness.
PERCEPTUAL_RATIO = 0.5  # hash distance at most this share of both images' typical hash distance
SEMANTIC_RATIO = 0.1  # embedding distance at most this share of both images' typical neighbour distance
# The same benchmark, three seeds, both sets and extractors: the planted copies found only by the embedding had hash
# ratios up to 0.76, the false semantic pairs (crops of the sample photos, mostly plain sky) 0.97 and above; every
# value from 0.75 to 0.95 gave the same pairs, 0.7 lost true ones and 0.97 let a false one through.
SEMANTIC_HASH_RATIO = 0.85  # a semantic pair's hash distance at most this share of both images' typical hash distance
HASH_EXACT_MAX = 50_000  # hashes searched exactly up to this many, by a binary HNSW index above
ROWS = 65_536  # kNN rows whose edges are tested at once


class HashNeighbors(NamedTuple):
    """The images that have a perceptual hash and their nearest hashes: searched once, read by both hash tests."""

    rows: np.ndarray  # (m,) positions of the images with a hash
    codes: np.ndarray  # (m, bytes) uint8, their hashes
    indices: np.ndarray  # (m, TYPICAL_K + 1) nearest codes, as positions into rows (-1 where fewer)
    distances: np.ndarray  # (m, TYPICAL_K + 1) their Hamming distances


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


def typical_distance(distances: np.ndarray, k: int = TYPICAL_K) -> np.ndarray:
    """Per row of kNN distances (nearest first), the median over neighbours 2..k+1: how far an image's ordinary
    neighbours sit, leaving out the nearest (it may be the copy)."""
    distances = np.asarray(distances)
    return np.median(np.asarray(distances[:, 1:k + 1] if distances.shape[1] > 1 else distances, np.float64), axis=1)


def distance_ratio(d: np.ndarray, pairs: np.ndarray, typical: np.ndarray) -> np.ndarray:
    """Distance of each pair over the smaller typical distance of its two images (0 for identical, inf where an
    image's neighbours all coincide with it but this pair does not)."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    ref = np.minimum(typical[pairs[:, 0]], typical[pairs[:, 1]])
    d = np.asarray(d, np.float64)
    return np.divide(d, ref, out=np.where(d > 0, np.inf, 0.0), where=ref > 0)


def standout_pairs(indices: np.ndarray, distances: np.ndarray, max_ratio: float,
                   typical: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(m, 2) unique pairs i < j of kNN edges whose distance is at most `max_ratio` times both images' typical
    neighbour distance, and those ratios."""
    typical = typical_distance(distances) if typical is None else typical
    n, k = indices.shape
    found = [(np.zeros((0, 2), np.int64), np.zeros(0))]
    for start in range(0, n, ROWS):  # in blocks of rows: every edge at once is ~4 GB of temporaries at 1M x 90
        stop = min(n, start + ROWS)
        pairs = np.stack([np.repeat(np.arange(start, stop), k), np.asarray(indices[start:stop]).reshape(-1)], axis=1)
        d = np.asarray(distances[start:stop], np.float64).reshape(-1)
        keep = (pairs[:, 1] >= 0) & (pairs[:, 0] != pairs[:, 1])
        pairs, d = pairs[keep], d[keep]
        ratio = distance_ratio(d, pairs, typical)
        close = ratio <= max_ratio
        found.append((pairs[close], ratio[close]))
    pairs = np.sort(np.concatenate([p for p, _ in found]).reshape(-1, 2), axis=1)
    ratio = np.concatenate([r for _, r in found])
    order = np.lexsort((ratio, pairs[:, 1], pairs[:, 0]))
    pairs, ratio = pairs[order], ratio[order]
    first = np.ones(len(pairs), bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    return pairs[first].reshape(-1, 2), ratio[first]


def hash_codes(hashes: Sequence[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the images that have a perceptual hash, their hashes as (m, bytes) uint8 rows)."""
    rows = [i for i, h in enumerate(hashes) if h is not None]
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 1), np.uint8)
    return np.asarray(rows, np.int64), np.frombuffer(b"".join(hashes[i] for i in rows), np.uint8).reshape(len(rows), -1)


def hash_neighbors(codes: np.ndarray, k: int, exact_max: int = HASH_EXACT_MAX) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest codes of every code by Hamming distance, self excluded (indices, distances; -1 where fewer):
    faiss's exact binary search up to `exact_max` codes, its binary HNSW index above (1M random 512-bit codes: ~2 min to
    build and ~3 min to search on 2 cores)."""
    import faiss

    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    n, bits = len(codes), codes.shape[1] * 8
    if n == 0:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
    index = faiss.IndexBinaryFlat(bits) if n <= exact_max else faiss.IndexBinaryHNSW(bits, 16)
    if n > exact_max:
        index.hnsw.efConstruction, index.hnsw.efSearch = 40, max(64, 2 * k)
    index.add(codes)
    found_d, found = index.search(codes, min(k + 1, n))
    own = found == np.arange(n)[:, None]
    own[~own.any(axis=1), -1] = True  # self hidden behind ties: drop the farthest instead
    keep = ~own
    width = min(k, n - 1)
    indices = found[keep].reshape(n, -1)[:, :width].astype(np.int64)
    distances = found_d[keep].reshape(n, -1)[:, :width].astype(np.float32)
    if width < k:
        indices = np.pad(indices, ((0, 0), (0, k - width)), constant_values=-1)
        distances = np.pad(distances, ((0, 0), (0, k - width)), constant_values=np.inf)
    return indices, distances


def pair_cosine_distances(vectors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of each pair's two vectors."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    norms = np.maximum(np.linalg.norm(vectors, axis=1), np.finfo(np.float32).tiny)
    dots = np.einsum("ij,ij->i", vectors[pairs[:, 0]], vectors[pairs[:, 1]]) / (norms[pairs[:, 0]] * norms[pairs[:, 1]])
    return np.maximum(1.0 - dots, 0.0)


def hash_neighborhood(hashes: Sequence[bytes | None]) -> HashNeighbors:
    """The images with a perceptual hash and each one's TYPICAL_K + 1 nearest hashes by Hamming distance."""
    rows, codes = hash_codes(hashes)
    return HashNeighbors(rows, codes, *hash_neighbors(codes, TYPICAL_K + 1))


def perceptual_pairs(hashes: Sequence[bytes | None], max_ratio: float = PERCEPTUAL_RATIO,
                     near: HashNeighbors | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(m, 2) pairs i < j whose perceptual hashes stand out from both images' typical hash neighbours, and
    1 - their ratio. Images without a hash (near-flat ones) are never paired here."""
    near = hash_neighborhood(hashes) if near is None else near
    if len(near.rows) < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    local, ratio = standout_pairs(near.indices, near.distances, max_ratio)
    return np.sort(near.rows[local], axis=1).reshape(-1, 2), 1.0 - ratio


def hash_agrees(pairs: np.ndarray, near: HashNeighbors, n: int, max_ratio: float = SEMANTIC_HASH_RATIO) -> np.ndarray:
    """Per pair of images 0..n-1, whether its hash distance is at most `max_ratio` of both images' typical hash
    distance; True where either image has no hash (a near-flat image's hash cannot judge)."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    position = np.full(n, -1, np.int64)
    position[near.rows] = np.arange(len(near.rows))
    local = position[pairs]
    judged = (local >= 0).all(axis=1)
    local = local[judged]
    hamming = np.unpackbits(near.codes[local[:, 0]] ^ near.codes[local[:, 1]], axis=1).sum(axis=1)
    agrees = ~judged
    agrees[judged] = distance_ratio(hamming, local, typical_distance(near.distances)) <= max_ratio
    return agrees


def semantic_pairs(vectors: np.ndarray, graph: KNNGraph, threshold: float | None = None,
                   max_ratio: float = SEMANTIC_RATIO, near: HashNeighbors | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(m, 2) pairs i < j whose embeddings stand out from both images' typical neighbours and, given the hashes'
    `near`, whose hashes agree (see hash_agrees) - or, given `threshold`, whose cosine similarity reaches it - and
    1 - their distance ratio (clipped to [0, 1])."""
    typical = typical_distance(graph.distances)
    if threshold is None:
        pairs, ratio = standout_pairs(graph.indices, graph.distances, max_ratio, typical)
        if near is not None:
            agrees = hash_agrees(pairs, near, len(graph))
            pairs, ratio = pairs[agrees], ratio[agrees]
    else:
        pairs = similar_pairs(graph, threshold)
        ratio = distance_ratio(pair_cosine_distances(vectors, pairs), pairs, typical)
    return pairs, np.clip(1.0 - ratio, 0.0, 1.0)


def duplicate_pairs(vectors: np.ndarray, graph: KNNGraph, pixel_hashes: Sequence[str] | None = None,
                    perceptual_hashes: Sequence[bytes | None] | None = None, threshold: float | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every duplicate pair once, under the strongest kind that found it: ((m, 2) pairs i < j, kinds as indices
    into KINDS, scores: 1 for exact, else 1 - the pair's distance ratio)."""
    near = hash_neighborhood(perceptual_hashes) if perceptual_hashes is not None else None
    found = [(np.sort(hash_pairs(pixel_hashes), axis=1), None) if pixel_hashes is not None else None,
             perceptual_pairs(perceptual_hashes, near=near) if near is not None else None,
             semantic_pairs(vectors, graph, threshold, near=near)]
    parts = [(p, np.full(len(p), kind), np.ones(len(p)) if s is None else s)
             for kind, f in enumerate(found) if f is not None for p, s in [f]]
    pairs = np.concatenate([p for p, _, _ in parts]).astype(np.int64).reshape(-1, 2)
    kinds = np.concatenate([k for _, k, _ in parts]).astype(np.int64)
    scores = np.concatenate([s for _, _, s in parts]).astype(np.float64)
    order = np.lexsort((kinds, pairs[:, 1], pairs[:, 0]))
    pairs, kinds, scores = pairs[order], kinds[order], scores[order]
    first = np.ones(len(pairs), bool)
    first[1:] = np.any(pairs[1:] != pairs[:-1], axis=1)
    return pairs[first], kinds[first], scores[first]


def duplicate_columns(pairs: np.ndarray, kinds: np.ndarray, scores: np.ndarray, ids: Sequence[str]) -> dict:
    """Per image: its group (-1: none), the group's first member (None for it and for images in no group), the kind
    and score of its strongest pair (None for the first members and for images in no group: null in Parquet)."""
    n = len(ids)
    group = group_labels(pairs, n)
    of = first_member_of(group, ids)
    kind: list[str | None] = [None] * n
    score: list[float | None] = [None] * n
    pairs, kinds, scores = np.asarray(pairs).reshape(-1, 2), np.asarray(kinds), np.asarray(scores)
    for p in np.lexsort((-scores, kinds)).tolist():  # strongest kind first, then highest score
        for i in pairs[p].tolist():
            if of[i] is not None and kind[i] is None:
                kind[i], score[i] = KINDS[kinds[p]], float(scores[p])
    return {"duplicate_group": group, "duplicate_of": of, "duplicate_kind": kind, "duplicate_score": score}


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

"""The everyday uses of the embeddings, all on the shared kNN graph: clusters, similarity search, outliers,
near-duplicates and label mistakes. Each analysis is a pure function usable alone; `analyze` runs them all
and returns one row per image plus a summary for the report."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..checks import as_points
from ..errors import DinoscopeError
from ..maps.sample import FIT_MAX, fit_sample, placing, sample_graph, sample_index, spread_labels
from ..neighbors import KNNGraph
from .clusters import (
    cluster_agreement,
    default_min_cluster_size,
    hdbscan_clusters,
    kmeans_clusters,
    medoids,
    reduce_for_clustering,
)
from .duplicates import (
    DEFAULT_THRESHOLD,
    KINDS,
    cross_split_pairs,
    duplicate_columns,
    duplicate_pairs,
    file_hashes,
    first_member_of,
    group_labels,
    groups_as_ids,
    hash_pairs,
    near_duplicate_groups,
    perceptual_pairs,
    pixel_hashes,
    semantic_pairs,
    similar_pairs,
)
from .label_issues import label_issues, neighbor_label_probs
from .outliers import kth_neighbor_distance, local_outlier_factor
from .similarity import SimilarityIndex, exact_top_k, read_image

COLUMNS = ("cluster", "kmeans_cluster", "outlier_score", "lof_score", "duplicate_group", "duplicate_of",
           "duplicate_kind", "duplicate_score", "exact_duplicate_of", "label_issue_score", "suggested_label")


def top_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the n highest scores, highest first (NaN scores last)."""
    order = np.argsort(-np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf), kind="stable")
    return order[:n]


def _check_rows(graph: KNNGraph, vectors: np.ndarray, **columns: Sequence | None) -> None:
    """Every per-image input has one row per graph point."""
    n = len(graph)
    for name, col in {"vectors": vectors, **columns}.items():
        if col is not None and len(col) != n:
            raise DinoscopeError(f"{name} has {len(col)} rows but the kNN graph has {n} points")


class _Timer:
    """Seconds per named analysis, for the summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        self.seconds[name] = round(time.perf_counter() - start, 3)
        return out


def _clusters_summary(vectors: np.ndarray, clusters: np.ndarray, labels, ids, n_medoids: int) -> dict:
    """Counts, label agreement and medoid ids of one clustering."""
    sizes = np.bincount(clusters[clusters >= 0]) if (clusters >= 0).any() else np.zeros(0, int)
    out: dict[str, Any] = {
        "n_clusters": int(len(sizes)),
        "noise_fraction": float(np.mean(clusters < 0)),
        "sizes": sizes.tolist(),
        "medoids": {str(c): [ids[i] for i in m] for c, m in medoids(vectors, clusters, n_medoids).items()},
    }
    if labels is not None:
        out.update(cluster_agreement(labels, clusters))
    return out


def _image_hashes(read: Callable[[int], np.ndarray], n: int) -> tuple[list[str], list[bytes | None]]:
    """Exact and perceptual hash of every image, reading each once (runs whose extraction kept none)."""
    from ..hashing import image_hashes

    both = [image_hashes(np.asarray(read(i))) for i in range(n)]
    return [b[0] for b in both], [b[1] for b in both]


def analyze(vectors: np.ndarray, ids: Sequence[str], labels: Sequence[str | None] | None,
            splits: Sequence[str | None] | None, graph: KNNGraph, *, read: Callable[[int], np.ndarray] | None = None,
            pixel_hashes: Sequence[str] | None = None, perceptual_hashes: Sequence[bytes | None] | None = None,
            n_clusters: int | None = None, min_cluster_size: int | None = None, cluster_dims: int = 5,
            outlier_k: int = 5, lof_k: int = 50, duplicate_threshold: float | None = None,
            label_k: int = 20, top: int = 20, n_medoids: int = 5, max_listed: int = 1000, cluster_max: int = FIT_MAX,
            seed: int = 0) -> tuple[dict[str, np.ndarray | list], dict[str, Any]]:
    """Run every analysis on the embeddings and their shared (cosine) kNN graph: (columns, one row per image; summary).

    Exact and perceptual duplicates need the images' hashes (`dinoscope.hashing.image_hashes`, kept by extraction);
    without them, `read(i)` (the source's image reader) computes them here, and with neither only semantic
    duplicates are found. `duplicate_threshold` replaces the semantic test set from the data by a fixed cosine
    similarity. Neighbour counts larger than the graph holds are capped to it; `max_listed` caps the duplicate
    groups and leak pairs listed in the summary. Above `cluster_max` points (the setting's default, `FIT_MAX`; 0:
    never) the clusters are fitted on a seeded sample of that many (`maps.sample`: the sample's graph read from the
    shared one) and every other point takes the cluster of most weight among its nearest sampled points;
    `min_cluster_size` shrinks with the sample.
    """
    X = as_points(vectors, "vectors")
    ids = list(ids)
    labelled = labels is not None and any(x is not None for x in labels)
    _check_rows(graph, X, ids=ids, labels=labels, splits=splits)
    n, timer = len(ids), _Timer()
    labels = list(labels) if labelled else None

    n_neighbors = min(15, graph.k + 1)
    sample = fit_sample(graph, cluster_max, seed)
    if sample is None:
        X_fit, graph_fit, plan = X, graph, None
    else:
        X_fit = X[sample]
        index = sample_index(X_fit)  # built once, if either needs it
        graph_fit = timer("sample_graph", lambda: sample_graph(X, graph, sample, n_neighbors - 1, index))
        plan = timer("sample_placing", lambda: placing(X, graph, sample, index))
    reduced = timer("reduce", lambda: reduce_for_clustering(X_fit, graph_fit, n_components=cluster_dims, seed=seed,
                                                            n_neighbors=n_neighbors))
    size = max(2, round(min_cluster_size * len(X_fit) / n)) if min_cluster_size else default_min_cluster_size(
        len(X_fit))
    cluster = timer("hdbscan", lambda: hdbscan_clusters(reduced, min_cluster_size=size))
    if plan is not None:
        cluster = timer("spread", lambda: spread_labels(plan, cluster))
    n_classes = len({str(x) for x in labels if x is not None}) if labels else 0
    k_means = min(n_clusters or (n_classes if n_classes >= 2 else 10), len(X_fit))
    kmeans_cluster = timer("kmeans", lambda: kmeans_clusters(X, k_means, seed=seed, fit_rows=sample))
    outlier_k, lof_k, label_k = min(outlier_k, graph.k), min(lof_k, graph.k), min(label_k, graph.k)
    outlier = timer("outliers", lambda: kth_neighbor_distance(graph, outlier_k))
    lof = timer("lof", lambda: local_outlier_factor(graph, lof_k))
    _check_rows(graph, X, pixel_hashes=pixel_hashes, perceptual_hashes=perceptual_hashes)
    if pixel_hashes is None and read is not None:
        pixel_hashes, perceptual_hashes = timer("image_hashes", lambda: _image_hashes(read, n))
    pairs, kinds, scores = timer("near_duplicates", lambda: duplicate_pairs(
        X, graph, pixel_hashes, perceptual_hashes, duplicate_threshold))
    duplicates = duplicate_columns(pairs, kinds, scores, ids)
    dup_group = duplicates["duplicate_group"]
    exact_group = None if pixel_hashes is None else group_labels(pairs[kinds == 0], n)
    if n_classes >= 2:  # one class leaves nothing to confuse it with
        issue, suggested = timer("label_issues", lambda: label_issues(graph, labels, label_k))
    else:
        issue, suggested = np.full(n, np.nan, np.float32), [None] * n

    columns = {
        "cluster": cluster,
        "kmeans_cluster": kmeans_cluster,
        "outlier_score": outlier,
        "lof_score": lof,
        **duplicates,
        "exact_duplicate_of": first_member_of(exact_group, ids) if exact_group is not None else [None] * n,
        "label_issue_score": issue,
        "suggested_label": suggested,
    }
    leak_pairs = np.zeros((0, 2), np.int64)
    if splits is not None:
        leak_pairs = np.unique(cross_split_pairs(pairs, splits), axis=0).reshape(-1, 2)
    fitted_on = {} if sample is None else {"fitted_on": len(sample)}
    summary = {
        "n": n,
        "hdbscan": {**_clusters_summary(X, cluster, labels, ids, n_medoids), "min_cluster_size": size,
                    "dims": cluster_dims, **fitted_on},
        "kmeans": {**_clusters_summary(X, kmeans_cluster, labels, ids, n_medoids), "k": int(k_means), **fitted_on},
        "outliers": {"k": outlier_k, "lof_k": lof_k, "top": [ids[i] for i in top_indices(outlier, top)],
                     "top_lof": [ids[i] for i in top_indices(lof, top)]},
        "duplicates": {
            "method": "semantic by cosine threshold" if duplicate_threshold is not None else "set from the data",
            "threshold": duplicate_threshold,
            "kinds": [k for i, k in enumerate(KINDS) if (i == 0 and pixel_hashes is not None)
                      or (i == 1 and perceptual_hashes is not None) or i == 2],
            "n_pairs": {k: int((kinds == i).sum()) for i, k in enumerate(KINDS)},
            "n_images_by_kind": {k: sum(x == k for x in duplicates["duplicate_kind"]) for k in KINDS},
            "note": None if perceptual_hashes is not None else "no image hashes (vectors only): semantic duplicates "
                                                              "only",
            "n_groups": int(dup_group.max() + 1),
            "n_images": int((dup_group >= 0).sum()),
            "groups": groups_as_ids(dup_group, ids)[:max_listed],
            "exact_groups": None if exact_group is None else groups_as_ids(exact_group, ids)[:max_listed],
            "n_cross_split_pairs": int(len(leak_pairs)),
            "cross_split_pairs": [[ids[a], ids[b]] for a, b in leak_pairs[:max_listed].tolist()],
        },
        "label_issues": None if n_classes < 2 else {
            "k": label_k,
            "top": [{"id": ids[i], "label": labels[i], "suggested": suggested[i], "score": float(issue[i])}
                    for i in top_indices(issue, top)],
        },
        "timings": timer.seconds,
    }
    return columns, summary


__all__ = ["COLUMNS", "DEFAULT_THRESHOLD", "KINDS", "SimilarityIndex", "analyze", "cluster_agreement",
           "cross_split_pairs", "default_min_cluster_size", "duplicate_columns", "duplicate_pairs", "exact_top_k",
           "file_hashes", "first_member_of", "group_labels", "groups_as_ids", "hash_pairs", "hdbscan_clusters",
           "kmeans_clusters", "kth_neighbor_distance", "label_issues", "local_outlier_factor", "medoids",
           "near_duplicate_groups", "neighbor_label_probs", "perceptual_pairs", "pixel_hashes", "read_image",
           "reduce_for_clustering", "semantic_pairs", "similar_pairs", "top_indices"]

"""Clusters: HDBSCAN on a 5-D UMAP of the embeddings (built from the shared graph), k-means with a chosen k,
their agreement with the labels (NMI, ARI) and each cluster's most typical images (medoids)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..checks import as_points
from ..errors import DinoscopeError
from ..neighbors import KNNGraph
from .similarity import normalize

# HDBSCAN's min_samples unless given: min_cluster_size up to 30 (benchmarks/analysis.py: at 70k Fashion-MNIST the
# same NMI as min_samples = min_cluster_size = 350, half the noise, 4x faster; digits NMI 0.92 instead of 0.89)
DEFAULT_MIN_SAMPLES = 30
PREDICT_ROWS = 65_536  # points given their nearest k-means centre at once


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's smallest cluster: 0.5% of the images, at least 5 (chosen on benchmarks/analysis.py)."""
    return max(5, n // 200)


def clustering_epochs(n: int) -> int:
    """UMAP epochs of the clustering reduction: 200 up to ~10k points, then fewer as n grows (30 from 70k on), so
    that the single-threaded (seeded) layout stays a few seconds; benchmarks/analysis.py --cluster-n shows the
    NMI/ARI of 5-D, 30 epochs at 70k within 0.01 NMI of 10-D, 200 epochs (and higher ARI)."""
    return int(np.clip(2_100_000 // max(n, 1), 30, 200))


def reduce_for_clustering(vectors: np.ndarray, graph: KNNGraph | None = None, *, n_components: int = 5,
                          n_neighbors: int = 15, n_epochs: int | None = None, init: str | None = None,
                          seed: int | None = 0) -> np.ndarray:
    """UMAP to a few dimensions with min_dist=0 (dense, separated clumps that HDBSCAN finds) on `graph` (the shared
    one; a cosine graph is built when not given), by the same `maps.spectral.umap_on_graph` as the UMAP maps.

    `n_epochs` defaults to `clustering_epochs(n)`; `init` to spectral up to 10,000 points and PCA above (chosen on
    benchmarks/analysis.py --cluster-n when umap-learn's own spectral start took most of a minute at 70k; the
    layout then corrects the PCA start).
    """
    from ..maps.spectral import umap_on_graph
    from ..neighbors import knn_graph

    X = as_points(vectors, "vectors")
    n = X.shape[0]
    if not 2 <= n_neighbors < n or not 1 <= n_components < n - 1:
        raise DinoscopeError(f"cannot reduce {n} points to {n_components}-D with {n_neighbors} neighbours; "
                             "use fewer components or neighbours")
    graph = knn_graph(X, k=n_neighbors, seed=seed or 0) if graph is None else graph
    if len(graph) != n:
        raise DinoscopeError(f"the kNN graph has {len(graph)} points but there are {n} vectors")
    if init is None:  # PCA needs as many features as components
        init = "spectral" if n <= 10_000 or X.shape[1] < n_components else "pca"
    model = umap_on_graph(X, graph, n_neighbors, n_epochs or clustering_epochs(n), seed, n_components=n_components,
                          init=init, min_dist=0.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        return np.asarray(model.fit_transform(X), dtype=np.float32)


def hdbscan_clusters(points: np.ndarray, *, min_cluster_size: int | None = None,
                     min_samples: int | None = None) -> np.ndarray:
    """HDBSCAN cluster per point (-1: noise); needs no number of clusters. `min_samples` (the core distance's
    neighbour) defaults to min(min_cluster_size, DEFAULT_MIN_SAMPLES).

    The `hdbscan` library's (scikit-learn-contrib) Borůvka KD-tree HDBSCAN, O(n log n) in low dimensions, where
    scikit-learn's builds its tree by an O(n²) Prim's: 6 s instead of ~150 s on a 5-D reduction of 70k points.
    """
    from hdbscan import HDBSCAN

    X = as_points(points, "points")
    size = min_cluster_size or default_min_cluster_size(X.shape[0])
    if size < 2:
        raise DinoscopeError(f"min_cluster_size must be at least 2, got {size}")
    samples = min(min_samples or min(size, DEFAULT_MIN_SAMPLES), X.shape[0] - 1)
    return HDBSCAN(min_cluster_size=size, min_samples=samples, core_dist_n_jobs=1).fit_predict(
        np.asarray(X, dtype=np.float64)).astype(np.int64)


def kmeans_clusters(vectors: np.ndarray, n_clusters: int, *, seed: int = 0,
                    fit_rows: np.ndarray | None = None) -> np.ndarray:
    """k-means cluster per point on L2-normalised vectors (so that it follows cosine similarity), fitted on
    `fit_rows` only when given (a sample of very many points) and every point then given its nearest centre."""
    from sklearn.cluster import KMeans

    X = as_points(vectors, "vectors")
    fit = normalize(X if fit_rows is None else X[fit_rows])
    if not 1 <= n_clusters <= fit.shape[0]:
        raise DinoscopeError(f"k-means needs 1 <= k <= {fit.shape[0]} clusters, got {n_clusters}")
    model = KMeans(n_clusters, n_init=3, random_state=seed).fit(fit)
    if fit_rows is None:
        return model.labels_.astype(np.int64)
    # every point, a block at a time: a normalised copy of all of them is 1.5 GB at 1M x 384
    return np.concatenate([model.predict(normalize(X[i:i + PREDICT_ROWS])) for i in range(0, len(X), PREDICT_ROWS)]
                          ).astype(np.int64)


def cluster_agreement(labels: Sequence[str | None], clusters: np.ndarray) -> dict[str, float]:
    """NMI and ARI between the labels and the clusters, over the labelled images (noise counts as one cluster)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    known = np.array([x is not None for x in labels], dtype=bool)
    if not known.any():
        raise DinoscopeError("no image is labelled; NMI and ARI need labels")
    truth = np.asarray([str(x) for x in labels], dtype=object)[known]
    pred = np.asarray(clusters)[known]
    return {"nmi": float(normalized_mutual_info_score(truth, pred)), "ari": float(adjusted_rand_score(truth, pred))}


def medoids(vectors: np.ndarray, clusters: np.ndarray, n: int = 5) -> dict[int, np.ndarray]:
    """Per cluster (noise left out), its `n` members closest to the cluster's mean direction, most typical first."""
    X = normalize(as_points(vectors, "vectors", min_rows=1))
    clusters = np.asarray(clusters)
    out = {}
    for c in np.unique(clusters[clusters >= 0]):
        members = np.flatnonzero(clusters == c)
        sims = X[members] @ X[members].mean(axis=0)
        out[int(c)] = members[np.argsort(-sims, kind="stable")[:n]]
    return out

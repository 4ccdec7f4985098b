"""UMAP's spectral initialisation from the shared graph, found from the fast end of the spectrum.

umap-learn starts its layout from the eigenvectors of the fuzzy graph's normalised Laplacian
L = I - D^-1/2 G D^-1/2 with the smallest eigenvalues, and asks ARPACK for them as such (which="SM", √n Lanczos
vectors): most of a minute at 70,000 points, and growing faster than n. They are also the eigenvectors of
M = D^-1/2 G D^-1/2 with the *largest* eigenvalues, which Lanczos finds in seconds (which="LA"; 70,000
Fashion-MNIST points: 1.3 s against umap-learn's 46 s, the same eigenvectors to a cosine of 0.99999). The graph,
its pruning and the final scaling are umap-learn's own, so the layout starts where umap-learn's would; a graph in
pieces, or a solver that does not converge, falls back to umap-learn's own `spectral_layout` (which lays out each
piece, or falls back to a random start). That layout places the pieces by a c × c matrix of their centres'
distances, so a graph in very many pieces (a collection of many small groups of near-copies: 67,143 pieces among
1,000,000 points would need 34 GiB) starts from the data's first principal components instead, umap-learn's
`init="pca"`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackError, eigsh

from ..neighbors import KNNGraph, umap_knn

_LANCZOS = 32  # Lanczos vectors: fewer restarts than umap-learn's √n at a fraction of its cost per restart
MAIN_SHARE = 0.9  # a graph whose largest piece holds this share of the points starts from its eigenvectors
PIECES_MAX = 4096  # pieces umap-learn's layout of a graph in pieces may place (its c × c float64 matrix: 134 MB)


def fuzzy_graph(X: np.ndarray, knn: KNNGraph, n_neighbors: int, n_epochs: int | None) -> sp.coo_matrix:
    """umap-learn's fuzzy simplicial set of the shared graph, pruned of the edges its layout never samples."""
    from umap.umap_ import fuzzy_simplicial_set

    indices, distances = umap_knn(knn, n_neighbors)
    graph = fuzzy_simplicial_set(X, n_neighbors, None, knn.metric, knn_indices=indices,
                                 knn_dists=distances)[0].tocoo()
    epochs = n_epochs if n_epochs is not None and n_epochs > 10 else (500 if len(X) <= 10_000 else 200)
    graph.data[graph.data < graph.data.max() / epochs] = 0.0
    graph.eliminate_zeros()
    return graph


def leading_eigenvectors(graph: sp.spmatrix, dim: int, seed: int | None) -> np.ndarray | None:
    """The `dim` eigenvectors after the first of D^-1/2 G D^-1/2, largest eigenvalues first; None if unsolved."""
    n = graph.shape[0]
    sqrt_deg = np.sqrt(np.asarray(graph.sum(axis=0)).ravel())
    scale = sp.diags(1.0 / sqrt_deg)
    k = dim + 1
    start = np.random.default_rng(seed).normal(size=n)
    try:
        values, vectors = eigsh((scale @ graph @ scale).tocsr(), k, which="LA", ncv=min(n - 1, max(2 * k + 1,
                                _LANCZOS)), tol=1e-4, v0=start, maxiter=5 * n)
    except ArpackError:
        return None
    return vectors[:, np.argsort(-values)[1:k]]


def _main_piece_layout(graph: sp.csr_matrix, knn: KNNGraph, piece: np.ndarray, dim: int,
                       seed: int | None) -> np.ndarray | None:
    """The start of a graph with one main piece and small ones cut off by the pruning (groups of near-copies whose
    weak edges to the rest fell below the layout's sampling floor): the main piece's leading eigenvectors, and every
    other point at the mean of those of its shared-graph neighbours that lie in the main piece (the centre when none
    does). umap-learn's layout of pieces would squeeze the main piece into the box of one piece among hundreds."""
    main = piece == np.argmax(np.bincount(piece))
    inside = np.flatnonzero(main)
    vectors = leading_eigenvectors(graph[inside][:, inside], dim, seed)
    if vectors is None:
        return None
    layout = np.zeros((len(piece), dim))
    layout[inside] = vectors
    outside = np.flatnonzero(~main)
    neighbours = knn.indices[outside]
    weight = main[neighbours]
    counts = weight.sum(axis=1, keepdims=True)
    layout[outside] = np.einsum("mk,mkd->md", weight, layout[neighbours]) / np.maximum(counts, 1)
    layout[outside[counts[:, 0] == 0]] = vectors.mean(axis=0)
    return layout


def spectral_init(X: np.ndarray, knn: KNNGraph, n_neighbors: int, dim: int, n_epochs: int | None,
                  seed: int | None) -> np.ndarray:
    """The (n, dim) float32 start umap-learn's `init="spectral"` makes from this graph, scaled and jittered alike."""
    from umap.spectral import spectral_layout
    from umap.umap_ import noisy_scale_coords

    graph = fuzzy_graph(X, knn, n_neighbors, n_epochs).tocsr()
    random_state = np.random.RandomState(seed)
    pieces, piece = connected_components(graph)
    layout = None
    if len(X) > dim + 2 and pieces == 1:
        layout = leading_eigenvectors(graph, dim, seed)
    elif len(X) > dim + 2 and np.bincount(piece).max() >= MAIN_SHARE * len(X):
        layout = _main_piece_layout(graph, knn, piece, dim, seed)
    if layout is None and pieces > PIECES_MAX:
        from sklearn.decomposition import PCA

        layout = PCA(dim, random_state=seed).fit_transform(X)
    elif layout is None:
        layout = spectral_layout(X, graph, dim, random_state, metric=knn.metric)
    return noisy_scale_coords(layout, random_state, max_coord=10, noise=0.0001).astype(np.float32)


def umap_on_graph(X: np.ndarray, knn: KNNGraph, n_neighbors: int, n_epochs: int | None, random_state: int | None,
                  n_components: int = 2, init: str | np.ndarray = "spectral", **options):
    """An unfitted umap-learn UMAP that reads the shared graph and starts from `spectral_init` (or from `init`, any
    start umap.UMAP takes); seeded, it lays out on one thread (umap-learn's reproducible mode). `options` go to
    umap.UMAP (min_dist, output_metric, ...)."""
    import umap

    if isinstance(init, str) and init == "spectral":
        init = spectral_init(X, knn, n_neighbors, n_components, n_epochs, random_state)
    model = umap.UMAP(n_neighbors=n_neighbors, n_components=n_components, n_epochs=n_epochs, metric=knn.metric,
                      init=init, random_state=random_state, n_jobs=1 if random_state is not None else -1, **options)
    model.precomputed_knn = (*umap_knn(knn, n_neighbors), None)
    return model

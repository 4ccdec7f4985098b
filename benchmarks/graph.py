"""The shared kNN graph: dinoscope's exact and HNSW search against the searches of the peers it replaces.

The peers: pynndescent (umap-learn's kNN, and dinoscope's own approximate search before faiss), Annoy as
openTSNE runs it, and scikit-learn's brute force. Every method finds the k nearest neighbours (cosine) of every
point; recall is the share of the exact neighbours found, over a fixed sample of 2,000 points. Two inputs from
one real set: Fashion-MNIST as PCA-50 vectors (the "bring your own vectors" shape) and as raw 784-D pixels.

    python benchmarks/graph.py --fashion-mnist /usr/share/datasets/fashion-mnist            # 70,000 points
    python benchmarks/graph.py --fashion-mnist DIR --n 20000 --skip-slow
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dinoscope.neighbors import exact_neighbors, graph_recall, knn_graph

from _common import add_fashion_mnist, add_graph_k, add_seed, load_fashion_mnist, make_parser, print_columns, timed


def pynndescent_graph(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """pynndescent's graph as umap-learn builds it (k+1 with self, then self dropped)."""
    from pynndescent import NNDescent

    index = NNDescent(X, metric="cosine", n_neighbors=k + 1, random_state=seed, low_memory=True, n_jobs=-1)
    return index.neighbor_graph[0][:, 1:]


def annoy_graph(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """openTSNE's Annoy search with its default settings."""
    from openTSNE.nearest_neighbors import Annoy

    return Annoy(X, k, metric="cosine", n_jobs=-1, random_state=seed).build()[0]


def sklearn_graph(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """scikit-learn's brute-force cosine search."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute", n_jobs=-1).fit(X).kneighbors()[1]


def methods(skip_slow: bool) -> dict[str, Callable[[np.ndarray, int, int], np.ndarray]]:
    """name -> fn(X, k, seed) returning (n, k) neighbour indices, self excluded."""
    found = {
        "dinoscope exact (faiss)": lambda X, k, s: knn_graph(X, k, method="exact").indices,
        "dinoscope HNSW (faiss)": lambda X, k, s: knn_graph(X, k, method="approx", seed=s).indices,
        "pynndescent": pynndescent_graph,
        "openTSNE Annoy": annoy_graph,
    }
    if not skip_slow:
        found["scikit-learn brute"] = sklearn_graph
    return found


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with Fashion-MNIST's idx .gz files (required)")
    parser.add_argument("--n", type=int, default=70000)
    parser.add_argument("--skip-slow", action="store_true", help="leave out scikit-learn's brute force")
    add_graph_k(parser)
    add_seed(parser)
    args = parser.parse_args()
    if args.fashion_mnist is None:
        parser.error("--fashion-mnist DIR is required (Debian: apt-get install dataset-fashion-mnist)")
    from sklearn.decomposition import PCA

    pixels, _ = load_fashion_mnist(args.fashion_mnist, args.n, args.seed)
    inputs = {"PCA-50": PCA(50, random_state=args.seed).fit_transform(pixels / 255).astype(np.float32),
              "pixels-784": pixels / 255}
    pynn_warm = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
    pynndescent_graph(pynn_warm, 10, 0)  # numba's JIT compilation stays out of the timings
    exact_neighbors(pynn_warm, pynn_warm[:5], 3)
    rows = []
    for name, X in inputs.items():
        X = np.ascontiguousarray(X, dtype=np.float32)
        baseline = None
        for method, fn in methods(args.skip_slow).items():
            indices, seconds = timed(lambda fn=fn, X=X: fn(X, args.k, args.seed))
            recall = graph_recall(X, np.asarray(indices, dtype=np.int64), "cosine", sample=2000, seed=args.seed)
            baseline = baseline or seconds
            rows.append((f"{name} {X.shape[0]}x{X.shape[1]}", method, f"{seconds:.1f}", f"{seconds / baseline:.2f}",
                         f"{recall:.4f}"))
    print(f"\n{args.k}-NN cosine graph of every point; ratio = seconds / dinoscope exact on the same input")
    print_columns(("input", "method", "seconds", "ratio", "recall"), (22, 26, 9, 7, 8), rows, left=2)


if __name__ == "__main__":
    main()

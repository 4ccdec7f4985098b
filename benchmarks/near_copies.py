"""UMAP on noisy near-copies: dinoscope's UMAP and umap-learn's, when every image appears many times.

`benchmarks/scale.py` makes its 1M vectors by repeating each Fashion-MNIST image ~14 times with 5 % noise, and a
250k sample of them holds ~3.6 copies of an image on average, up to ~10. There UMAP's 15 neighbours are mostly a
point's own copies, and its 10-NN accuracy falls (0.78 on the 70k originals, 0.72-0.73 at 1M). This asks whether
that is dinoscope's UMAP or UMAP itself: the same vectors (scale.py's recipe, 384-D) with no copies, with 14 copies
of which a quarter are kept (what the 1M run's sample holds), and with 14 copies each, mapped by dinoscope's UMAP
(the shared cosine 90-NN graph) and by umap-learn alone (its own index, Euclidean and cosine), scored by
dinoscope's metrics (k = 10, a seeded 5,000-point sample). "pieces": connected pieces of the pruned fuzzy graph.

    python benchmarks/near_copies.py --fashion-mnist /usr/share/datasets/fashion-mnist
"""

from __future__ import annotations

import warnings

import numpy as np
from scale import make_vectors
from scipy.sparse.csgraph import connected_components

from _common import FASHION_MNIST, add_fashion_mnist, add_seed, make_parser, print_columns, random_points, timed

# name: (images, rows made, share of rows kept)
SETS = {"no copies": (20000, 20000, 1.0), "14 copies, a quarter kept": (5714, 80000, 0.25),
        "14 copies": (1428, 19992, 1.0)}


def pieces(graph) -> int:
    """Connected pieces of a fuzzy graph pruned as umap-learn's layout prunes it (weights under max / n_epochs)."""
    G = graph.tocoo()
    keep = G.data >= G.data.max() / 200
    G.data, G.row, G.col = G.data[keep], G.row[keep], G.col[keep]
    return int(connected_components(G.tocsr())[0])


def maps(X: np.ndarray, seed: int):
    """(name, seconds, coordinates, pieces) of each UMAP of X."""
    import umap

    from dinoscope.maps import UMAPMap
    from dinoscope.maps.spectral import fuzzy_graph
    from dinoscope.neighbors import knn_graph

    graph, t_graph = timed(lambda: knn_graph(X, k=90))
    Y, t = timed(lambda: UMAPMap(random_state=seed).fit_transform(X, knn=graph))
    yield "dinoscope UMAP", t_graph + t, Y, pieces(fuzzy_graph(X, graph, 15, None))
    for metric in ("euclidean", "cosine"):
        model = umap.UMAP(random_state=seed, metric=metric)
        Y, t = timed(lambda model=model: model.fit_transform(X))
        yield f"umap-learn, {metric}", t, Y, pieces(model.graph_)


def main() -> None:
    from dinoscope.maps import UMAPMap
    from dinoscope.metrics.faithfulness import embedding_side, map_metrics
    from dinoscope.neighbors import knn_graph

    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with Fashion-MNIST's idx .gz files", FASHION_MNIST)
    parser.add_argument("--dim", type=int, default=384)
    add_seed(parser)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="umap")
    W = random_points(600, 50)  # numba compiles outside the timings
    UMAPMap(random_state=0).fit_transform(W, knn=knn_graph(W, k=90))
    rows = []
    for name, (images, n, share) in SETS.items():
        X, y = make_vectors(args.fashion_mnist, n, args.dim, args.seed, images=images)
        keep = np.arange(n)
        if share < 1:
            keep = np.sort(np.random.default_rng(args.seed).choice(n, round(share * n), replace=False))
            X, y = X[keep], y[keep]
        copies = np.bincount(keep % images)  # make_vectors' row r is image r % images
        side = embedding_side(X, y, k=10, sample=5000, seed=args.seed)
        rows.append(f"{name}: {len(X):,} rows, copies of an image {copies[copies > 0].mean():.1f} on average, at "
                    f"most {copies.max()}; the embedding's own 10-NN accuracy {side.accuracy:.4f}")
        for label, seconds, Y, n_pieces in maps(X, args.seed):
            m = map_metrics(X, Y, y, k=10, sample=5000, seed=args.seed, side=side)
            rows.append([label, f"{seconds:.1f}", f"{m['trustworthiness']:.4f}", f"{m['continuity']:.4f}",
                         f"{m['knn_recall']:.4f}", f"{m['knn_accuracy']:.4f}", f"{n_pieces:,}"])
    print_columns(["map", "seconds", "trust", "continuity", "kNN recall", "10-NN acc", "pieces"],
                  [22, 9, 8, 11, 11, 10, 8], rows)


if __name__ == "__main__":
    main()

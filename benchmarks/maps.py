"""dinoscope's t-SNE and UMAP (sharing one kNN graph) against openTSNE and umap-learn run on their own.

Same input, same settings, same seed for both sides; the shared graph is timed once and charged to
dinoscope's total. Every method runs once on a tiny input first so that numba's JIT compilation
(umap-learn, pynndescent) is not timed. Scores are dinoscope's `map_metrics` (cosine distances in
the input space, k = 10, 10-NN accuracy with 5-fold cross-validation).

    python benchmarks/maps.py                                   # scikit-learn's digits
    python benchmarks/maps.py --fashion-mnist DIR --n 10000     # plus a Fashion-MNIST subsample
    python benchmarks/maps.py --n-jobs 1                        # single-threaded t-SNE on both sides
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import openTSNE
import umap

from dinoscope.maps import TSNEMap, UMAPMap
from dinoscope.metrics.faithfulness import map_metrics
from dinoscope.neighbors import knn_graph

from _common import (
    add_fashion_mnist,
    add_graph_k,
    add_seed,
    load_digits_xy,
    load_fashion_mnist,
    make_parser,
    print_columns,
    random_points,
    timed,
)

SCORES = ("trustworthiness", "continuity", "knn_recall", "knn_accuracy")


def make_runners(args: argparse.Namespace) -> dict[str, Callable]:
    """name -> fn(X, graph) returning 2-D coordinates; graph is None for the peers."""
    seed = None if args.umap_parallel else args.seed
    tsne = dict(perplexity=args.perplexity, n_iter=args.n_iter, early_exaggeration_iter=args.ee_iter)
    umap_kw = dict(n_neighbors=args.n_neighbors, min_dist=0.1, metric="cosine", random_state=seed)
    return {
        "dinoscope t-SNE": lambda X, g: TSNEMap(**tsne, n_jobs=args.n_jobs, random_state=args.seed)
        .fit_transform(X, knn=g),
        "openTSNE": lambda X, g: np.asarray(openTSNE.TSNE(
            **tsne, initialization="pca", metric="cosine", negative_gradient_method="fft", n_jobs=args.n_jobs,
            random_state=args.seed).fit(X)),
        "dinoscope UMAP": lambda X, g: UMAPMap(**umap_kw).fit_transform(X, knn=g),
        "umap-learn": lambda X, g: umap.UMAP(**umap_kw, n_jobs=1 if seed is not None else -1).fit_transform(X),
    }


def warm_up(runners: dict[str, Callable], k: int) -> None:
    """Run everything once on a tiny input so JIT compilation stays out of the timings."""
    X = random_points(400, 16)
    graph = knn_graph(X, k=k)
    knn_graph(X, k=k, method="approx")
    for name, run in runners.items():
        run(X, graph if name.startswith("dinoscope") else None)


def bench(name: str, X: np.ndarray, y: np.ndarray, runners: dict[str, Callable], k: int) -> None:
    """Time and score every map on one dataset and print the table."""
    graph, t_graph = timed(lambda: knn_graph(X, k=k, metric="cosine"))
    rows = {}
    for label, run in runners.items():
        Y, seconds = timed(lambda run=run, label=label: run(X, graph if label.startswith("dinoscope") else None))
        rows[label] = (seconds, map_metrics(X, Y, y, metric="cosine"))
    print(f"\n## {name}: {X.shape[0]} points x {X.shape[1]} dims; shared cosine graph k={k} "
          f"({'exact' if graph.exact else 'approx'}) {t_graph:.2f} s")
    table = []
    for ours, peer in (("dinoscope t-SNE", "openTSNE"), ("dinoscope UMAP", "umap-learn")):
        for label in (ours, peer):
            seconds, m = rows[label]
            ratio = f"{seconds / rows[peer][0]:.2f}x" if label == ours else ""
            table.append([label, f"{seconds:.2f}", ratio, *(f"{m[s]:.4f}" for s in SCORES)])
    print_columns(["map", "seconds", "vs peer", *SCORES], [16, 9, 9, *[17] * len(SCORES)], table)
    ours_total = t_graph + rows["dinoscope t-SNE"][0] + rows["dinoscope UMAP"][0]
    peers_total = rows["openTSNE"][0] + rows["umap-learn"][0]
    print(f"total: graph + dinoscope maps {ours_total:.2f} s vs peers {peers_total:.2f} s "
          f"({ours_total / peers_total:.2f}x); 10-NN accuracy in the input space "
          f"{rows['openTSNE'][1]['knn_accuracy_embedding']:.4f}")


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with Fashion-MNIST's idx .gz files")
    parser.add_argument("--n", type=int, default=10000, help="Fashion-MNIST subsample size")
    add_graph_k(parser)
    parser.add_argument("--perplexity", type=float, default=30)
    parser.add_argument("--n-iter", type=int, default=750)
    parser.add_argument("--ee-iter", type=int, default=250)
    parser.add_argument("--n-neighbors", type=int, default=15)
    parser.add_argument("--umap-parallel", action="store_true", help="unseeded, multi-threaded UMAP on both sides")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--n-jobs", type=int, default=-1, help="t-SNE threads on both sides (-1: all cores)")
    add_seed(parser)
    args = parser.parse_args()

    runners = make_runners(args)
    warm_up(runners, args.k)
    print("timings exclude numba JIT compilation (everything ran once on 400 random points first)")
    if not args.skip_digits:
        X, y = load_digits_xy()
        bench("scikit-learn digits", X, y, runners, args.k)
    if args.fashion_mnist:
        X, y = load_fashion_mnist(args.fashion_mnist, args.n, args.seed)
        bench("Fashion-MNIST subsample", X, y, runners, args.k)


if __name__ == "__main__":
    main()

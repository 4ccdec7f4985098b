"""dinoscope's hyperbolic maps against the squashed UMAP that users make today, all scored in the disk.

The peer is umap-learn with output_metric="hyperboloid", mapped to the Poincaré disk, re-centred on
its hyperbolic mean with a Möbius map, then every radius shrunk by r ↦ tanh(0.65·artanh r). Every
method reads the same shared kNN graph (cosine, built once, not timed) and the same seed. Each runs
once on a tiny input first so that numba's JIT compilation is not timed. Scores are `map_metrics`
(cosine distances in the input space, k = 10, 10-NN accuracy with 5-fold cross-validation) with the
Poincaré distance on the map, and the hierarchy score (Spearman correlation of class-centre
distances on the disk with the class tree's cophenetic distances).

With --repeat N every method is timed N times (seconds = the median, spread = min–max), for a
busy machine. The large-n run scores the map on a 5,000-point sample.

    python benchmarks/poincare.py                                   # scikit-learn's digits
    python benchmarks/poincare.py --fashion-mnist DIR --n 5000      # plus a Fashion-MNIST subsample
    python benchmarks/poincare.py --fashion-mnist DIR --large 70000 # plus the large-n t-SNE timing
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from dinoscope.geometry import ball
from dinoscope.geometry.hierarchy import class_tree
from dinoscope.maps.poincare import PoincareMap
from dinoscope.metrics.faithfulness import map_metrics
from dinoscope.metrics.hierarchy import hierarchy_score
from dinoscope.neighbors import KNNGraph, knn_graph

from _common import (
    add_fashion_mnist,
    add_seed,
    load_digits_xy,
    load_fashion_mnist,
    make_parser,
    median_spread,
    random_points,
    timed,
)

SCORES = ("trustworthiness", "continuity", "knn_recall", "knn_accuracy", "hierarchy")
PEER = "squashed UMAP (peer)"


def squashed_umap_peer(X: np.ndarray, knn: KNNGraph, seed: int = 0) -> np.ndarray:
    """Hyperbolic UMAP → disk → Möbius re-centre on the hyperbolic mean → r ↦ tanh(0.65·artanh r)."""
    Y = PoincareMap(method="umap", center="mean", random_state=seed).fit_transform(X, knn=knn)
    r = np.linalg.norm(Y, axis=1, keepdims=True)
    return Y * np.tanh(0.65 * np.arctanh(r)) / np.maximum(r, ball.TINY)


def runners(seed: int) -> dict[str, Callable[[np.ndarray, KNNGraph], np.ndarray]]:
    """name -> fn(X, graph) returning disk coordinates."""
    return {
        "Poincaré t-SNE": lambda X, g: PoincareMap(method="tsne", random_state=seed).fit_transform(X, knn=g),
        "Poincaré t-SNE, perplexity 30": lambda X, g: PoincareMap(method="tsne", perplexity=30,
                                                                  random_state=seed).fit_transform(X, knn=g),
        "Poincaré UMAP": lambda X, g: PoincareMap(method="umap", random_state=seed).fit_transform(X, knn=g),
        PEER: lambda X, g: squashed_umap_peer(X, g, seed),
    }


def warm_up(methods: dict[str, Callable], seed: int) -> None:
    """Run every method once on 300 random points so that numba compiles outside the timings."""
    X = random_points(300, 16, seed)
    g = knn_graph(X, k=90)
    for fn in methods.values():
        fn(X, g)


def score(X: np.ndarray, y: np.ndarray, Y: np.ndarray, seed: int) -> dict:
    """Faithfulness with Poincaré map distances, plus the hierarchy score against the class tree."""
    out = map_metrics(X, Y, y, k=10, seed=seed, metric="cosine", map_distance=ball.pairwise_distances)
    out["hierarchy"] = hierarchy_score(class_tree(X, y), Y, y)
    out["max_radius"] = float(np.linalg.norm(Y, axis=1).max())
    return out


def bench(name: str, X: np.ndarray, y: np.ndarray, methods: dict[str, Callable], seed: int,
          repeat: int = 1) -> list[dict]:
    """Every method on one dataset: median seconds over `repeat` runs (rounds interleaved), and scores."""
    graph, graph_s = timed(lambda: knn_graph(X, k=90, metric="cosine"))
    print(f"\n{name}: {X.shape[0]} points x {X.shape[1]} dims, shared graph {graph_s:.1f}s (not charged)", flush=True)
    maps, seconds = {}, {method: [] for method in methods}
    for _ in range(repeat):
        for method, fn in methods.items():
            maps[method], s = timed(lambda fn=fn: fn(X, graph))
            seconds[method].append(s)
            print(f"  {method}: {s:.1f}s", flush=True)
    rows = []
    for method in methods:
        median, spread = median_spread(seconds[method])
        rows.append({"data": name, "method": method, "seconds": median, "spread": spread,
                     **score(X, y, maps[method], seed)})
    return rows


def print_table(rows: list[dict]) -> None:
    """One markdown table for all datasets."""
    head = ["data", "method", "seconds", "spread", "× peer", *SCORES, "max |y|"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    peer = {r["data"]: r["seconds"] for r in rows if r["method"] == PEER}
    for r in rows:
        cells = [r["data"], r["method"], f"{r['seconds']:.1f}", "{:.1f}–{:.1f}".format(*r["spread"]),
                 f"{r['seconds'] / peer[r['data']]:.2f}", *(f"{r[s]:.3f}" for s in SCORES),
                 f"1-{1 - r['max_radius']:.0e}"]
        print("| " + " | ".join(cells) + " |")


def large_timing(folder: Path, n: int, seed: int) -> None:
    """Wall-clock of the sampled-repulsion t-SNE on n Fashion-MNIST images (graph by pynndescent, not charged)."""
    X, y = load_fashion_mnist(folder, n, seed)
    graph, graph_s = timed(lambda: knn_graph(X, k=90, metric="cosine"))
    Y, seconds = timed(lambda: PoincareMap(method="tsne", random_state=seed).fit_transform(X, knn=graph))
    radius = np.linalg.norm(Y, axis=1)
    print(f"\nlarge n: Poincaré t-SNE on {len(X)} Fashion-MNIST points: {seconds:.0f}s "
          f"(graph {graph_s:.0f}s, not charged); all finite: {np.isfinite(Y).all()}, "
          f"median |y| = {np.median(radius):.3f}, max |y| = 1-{1 - radius.max():.0e}", flush=True)
    figures = map_metrics(X, Y, y, k=10, seed=seed, metric="cosine", map_distance=ball.pairwise_distances)
    print("on a 5,000-point sample: " + ", ".join(f"{s} {figures[s]:.3f}" for s in SCORES[:4]), flush=True)


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with the Fashion-MNIST idx .gz files")
    parser.add_argument("--n", type=int, default=10000, help="Fashion-MNIST subsample for the comparison")
    parser.add_argument("--large", type=int, default=0, help="also time t-SNE on this many Fashion-MNIST points")
    add_seed(parser)
    parser.add_argument("--repeat", type=int, default=1, help="time every method this many times (median reported)")
    args = parser.parse_args()
    methods = runners(args.seed)
    warm_up(methods, args.seed)
    X, y = load_digits_xy()
    rows = bench("digits", X, y, methods, args.seed, args.repeat)
    if args.fashion_mnist:
        Xf, yf = load_fashion_mnist(args.fashion_mnist, args.n, args.seed)
        rows += bench(f"Fashion-MNIST {len(Xf)}", Xf, yf, methods, args.seed, args.repeat)
    print_table(rows)
    if args.fashion_mnist and args.large:
        large_timing(args.fashion_mnist, args.large, args.seed)
    print(f"\nnumba threads: {numba.get_num_threads()}")


if __name__ == "__main__":
    main()

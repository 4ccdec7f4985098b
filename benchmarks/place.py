"""Placing new points: dinoscope's learned maps against openTSNE's and umap-learn's `transform()`.

Fashion-MNIST pixels reduced by PCA to 50 dimensions stand in for embeddings (so this measures the maps, not a
backbone). The maps are fitted on `--n-fit` points (the shared cosine graph feeds t-SNE, UMAP and parametric
UMAP); then `--n-place` other points are placed by each learned map (one forward pass) and by the peers'
`transform()` (openTSNE: optimisation of the new points against the fixed map; umap-learn: its neighbour
search and SGD). Reported: placing throughput (learned maps: best of 3 passes; peers: one) and its ratio to
the peer, held-out 10-NN accuracy (placed points classified by their 10 nearest fitted points on the map; the
embedding space's figure is the ceiling), and training time. Everything runs once on a small input first, so
numba's JIT compilation is not timed.

    python benchmarks/place.py                                   # 20,000 fitted, 10,000 placed
    python benchmarks/place.py --n-fit 60000 --device cuda       # larger, learned maps trained on the GPU
    python benchmarks/place.py --poincare                        # also the learned Poincaré map (slow teacher)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from dinoscope.geometry import ball
from dinoscope.maps import ParametricPoincare, ParametricTSNE, ParametricUMAP, PoincareMap, TSNEMap, UMAPMap
from dinoscope.neighbors import knn_graph

from _common import (
    add_fashion_mnist,
    add_graph_k,
    add_seed,
    best_of,
    load_fashion_mnist,
    make_parser,
    print_columns,
    random_points,
    timed,
)

FASHION = Path("/usr/share/datasets/fashion-mnist")


def heldout_accuracy(Y_fit: np.ndarray, y_fit: np.ndarray, Y_new: np.ndarray, y_new: np.ndarray,
                     metric: str | Callable = "euclidean") -> float:
    """10-NN accuracy of placed points against the fitted points' labels, on the map."""
    if callable(metric):  # the disk: precomputed Poincaré distances
        clf = KNeighborsClassifier(10, metric="precomputed").fit(metric(Y_fit, Y_fit), y_fit)
        return float((clf.predict(metric(Y_new, Y_fit)) == y_new).mean())
    return float((KNeighborsClassifier(10).fit(Y_fit, y_fit).predict(Y_new) == y_new).mean())


def warm_up(args: argparse.Namespace) -> None:
    """Fit and place everything once on 400 random points: numba compiles outside the timings."""
    X = random_points(400, 50)
    g = knn_graph(X, k=args.k)
    tsne = TSNEMap(n_iter=50, early_exaggeration_iter=10, random_state=0)
    tsne.fit(X, knn=g)
    tsne.transform(X[:20])
    umap = UMAPMap(n_epochs=20)
    Y = umap.fit_transform(X, knn=g)
    umap.transform(X[:20])
    ParametricUMAP(n_epochs=1, warm_epochs=1, device=args.device).fit(X, knn=g, teacher=Y)


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with the idx .gz files", FASHION)
    parser.add_argument("--n-fit", type=int, default=20000, help="points the maps are fitted on")
    parser.add_argument("--n-place", type=int, default=10000, help="held-out points to place")
    add_graph_k(parser)
    parser.add_argument("--device", default="auto", help="where the learned maps train and place (auto, cpu, cuda)")
    parser.add_argument("--poincare", action="store_true", help="also the learned Poincaré map and its teacher")
    add_seed(parser)
    args = parser.parse_args()

    X, y = load_fashion_mnist(args.fashion_mnist, 70_000, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(X))
    fit, new = order[:args.n_fit], order[args.n_fit:args.n_fit + args.n_place]
    pca = PCA(50, random_state=args.seed).fit(X[fit])
    Z_fit, Z_new = pca.transform(X[fit]).astype(np.float32), pca.transform(X[new]).astype(np.float32)
    warm_up(args)
    graph, t_graph = timed(lambda: knn_graph(Z_fit, k=args.k))
    ceiling = heldout_accuracy(Z_fit, y[fit], Z_new, y[new])
    print(f"Fashion-MNIST, PCA-50 of pixels: {len(fit)} fitted, {len(new)} placed; shared cosine graph "
          f"k={args.k} {t_graph:.1f} s; held-out 10-NN accuracy in the PCA-50 space {ceiling:.4f}")
    print("timings exclude numba JIT compilation (everything ran once on 400 random points first)")

    pairs = [("t-SNE", TSNEMap(random_state=args.seed), ParametricTSNE(device=args.device, random_state=args.seed),
              "openTSNE transform"),
             ("UMAP", UMAPMap(random_state=args.seed), ParametricUMAP(device=args.device, random_state=args.seed),
              "umap-learn transform")]
    if args.poincare:
        pairs.append(("Poincaré", PoincareMap(random_state=args.seed),
                      ParametricPoincare(device=args.device, random_state=args.seed), None))
    rows = []
    for title, teacher, student, peer in pairs:
        metric = ball.pairwise_distances if title == "Poincaré" else "euclidean"
        T_fit, t_teacher = timed(lambda teacher=teacher: teacher.fit_transform(Z_fit, knn=graph))
        Y_fit, t_train = timed(lambda s=student, T=T_fit: s.fit_transform(Z_fit, knn=graph, teacher=T))
        student.transform(Z_new[:100])  # first call allocations
        Y_new, t_ours = best_of(lambda s=student: s.transform(Z_new), 3)
        ours = (f"learned {title}", t_ours, heldout_accuracy(Y_fit, y[fit], Y_new, y[new], metric), t_train)
        if peer is None:
            rows.append((ours, None, title, t_teacher))
            continue
        P_new, t_peer = timed(lambda teacher=teacher: teacher.transform(Z_new))
        theirs = (peer, t_peer, heldout_accuracy(T_fit, y[fit], P_new, y[new]), t_teacher)
        rows.append((ours, theirs, title, t_teacher))

    table: list[list[str] | str] = []
    for ours, theirs, title, t_teacher in rows:
        for label, seconds, acc, train in (ours, theirs) if theirs else (ours,):
            rate = len(new) / seconds
            ratio = f"{theirs[1] / ours[1]:.0f}x" if theirs and label == ours[0] else ""
            delta = f"{100 * (ours[2] - theirs[2]):+.2f}" if theirs and label == ours[0] else ""
            table.append([label, f"{rate:,.0f}", ratio, f"{acc:.4f}", delta, f"{train:.1f}"])
        if theirs is None:
            table.append(f"{'':<24}(no peer; teacher {title} fitted in {t_teacher:.1f} s)")
    print()
    print_columns(["placing", "points/s", "vs peer", "10-NN acc", "Δ acc (pts)", "train s"], [24, 12, 10, 11, 13, 9],
                  table)
    print("train s: the learned map's own training (its teacher excluded); for a peer, fitting its map")


if __name__ == "__main__":
    main()

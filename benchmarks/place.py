"""Placing new points: dinoscope's learned maps against openTSNE's and umap-learn's `transform()`.

Fashion-MNIST pixels reduced by PCA to 50 dimensions stand in for embeddings (so this measures the maps, not a
backbone). The maps are fitted on `--n-fit` points (the shared cosine graph feeds t-SNE and UMAP, each learned map
learns one of them); then `--n-place` other points are placed by each learned map (one forward pass) and by the
peers' `transform()` (openTSNE: optimisation of the new points against the fixed map; umap-learn: its neighbour
search and SGD), each on dinoscope's fitted map (so that only the placing differs), and each peer alone as a user
runs it (`openTSNE.TSNE().fit(X)` / `umap.UMAP().fit(X)`, its own neighbour index and metric, then `transform`:
its speed, and its accuracy on its own map). Reported: placing throughput (every way, peers included: the best of 5
rounds in which every way takes its turn, each repeating its placement until 0.2 s have passed, `interleaved`) and
its ratio to each peer, held-out 10-NN accuracy (placed points classified by their 10 nearest
fitted points on the map; the embedding space's figure is the ceiling), and training time. k-NN placement
(`dinoscope place --method knn`) puts each new point at the weighted mean of its nearest fitted points on the fitted
map, found by the k-means cells index (`query.nearby.cells`, its build reported as training) or, for reference, by
exact search.
Two real sets: scikit-learn's digits and Fashion-MNIST. Everything runs once on a small input first, so
numba's JIT compilation is not timed. The process keeps freed memory as the `dinoscope` command does
(`memory.keep_freed_memory`), for the peers too: they run in the same process.

    python benchmarks/place.py                                   # digits, and Fashion-MNIST 20,000 + 10,000
    python benchmarks/place.py --n-fit 60000 --device cuda       # larger, learned maps trained on the GPU
    python benchmarks/place.py --poincare                        # also the learned Poincaré map (slow teacher)
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from dinoscope.geometry import ball
from dinoscope.maps import ParametricPoincare, ParametricTSNE, ParametricUMAP, PoincareMap, TSNEMap, UMAPMap
from dinoscope.memory import keep_freed_memory
from dinoscope.neighbors import exact_neighbors, knn_graph
from dinoscope.query.nearby import K, cells, place_among, place_nearby

from _common import (
    FASHION_MNIST,
    add_fashion_mnist,
    add_graph_k,
    add_seed,
    interleaved,
    load_digits_xy,
    load_fashion_mnist,
    make_parser,
    print_columns,
    random_points,
    timed,
)


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
    place_nearby(X, {"m": Y}, X[:20])
    _umap(0).set_params(n_epochs=20).fit(X).transform(X[:20])  # the peers alone: their own indexes compile too
    _opentsne(0).fit(X).transform(X[:20], n_iter=10)
    ParametricUMAP(max_epochs=1, device=args.device).fit(X, knn=g, teacher=Y)


def load_set(name: str, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """A real set split into fitted and placed points, as PCA-50 (Fashion-MNIST) or raw (digits) vectors."""
    if name == "digits":
        X, y = load_digits_xy()
        order = np.random.default_rng(args.seed).permutation(len(X))
        fit, new = order[:1200], order[1200:]
        return X[fit], y[fit], X[new], y[new], "scikit-learn digits, 64-D pixels"
    X, y = load_fashion_mnist(args.fashion_mnist, 70_000, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(X))
    fit, new = order[:args.n_fit], order[args.n_fit:args.n_fit + args.n_place]
    pca = PCA(50, random_state=args.seed).fit(X[fit])
    return (pca.transform(X[fit]).astype(np.float32), y[fit], pca.transform(X[new]).astype(np.float32), y[new],
            "Fashion-MNIST, PCA-50 of pixels")


def compare(name: str, args: argparse.Namespace) -> None:
    """Fit every map on one set's fitted points, place its held-out points every way, print the table."""
    Z_fit, y_fit, Z_new, y_new, title_set = load_set(name, args)
    graph, t_graph = timed(lambda: knn_graph(Z_fit, k=args.k))
    ceiling = heldout_accuracy(Z_fit, y_fit, Z_new, y_new)
    print(f"\n{title_set}: {len(Z_fit)} fitted, {len(Z_new)} placed; shared cosine graph k={args.k} "
          f"{t_graph:.1f} s; held-out 10-NN accuracy in the input space {ceiling:.4f}")

    pairs = [("t-SNE", TSNEMap(random_state=args.seed), ParametricTSNE(device=args.device, random_state=args.seed),
              "openTSNE transform", _opentsne(args.seed)),
             ("UMAP", UMAPMap(random_state=args.seed), ParametricUMAP(device=args.device, random_state=args.seed),
              "umap-learn transform", _umap(args.seed))]
    if args.poincare:
        pairs.append(("Poincaré", PoincareMap(random_state=args.seed),
                      ParametricPoincare(device=args.device, random_state=args.seed), None, None))
    index, t_index = timed(lambda: cells(Z_fit))  # of the embeddings only: one serves every map
    table: list[list[str] | str] = []
    for title, teacher, student, peer, alone in pairs:
        disk = title == "Poincaré"
        metric = ball.pairwise_distances if disk else "euclidean"
        T_fit, t_teacher = timed(lambda teacher=teacher: teacher.fit_transform(Z_fit, knn=graph))
        Y_fit, t_train = timed(lambda s=student, T=T_fit: s.fit_transform(Z_fit, knn=graph, teacher=T))
        student.transform(Z_new[:100])  # first call allocations
        disks = {"m"} if disk else set()
        ways = {"learned": lambda s=student: s.transform(Z_new),
                "knn": lambda T=T_fit, d=disks: place_nearby(Z_fit, {"m": T}, Z_new, disks=d, index=index)["m"],
                "exact": lambda T=T_fit, d=disks: place_among(*exact_neighbors(Z_fit, Z_new, K), {"m": T},
                                                              disks=d)["m"]}
        if peer is not None:
            fitted, t_solo_fit = timed(lambda alone=alone: alone.fit(Z_fit))
            ways |= {"peer": lambda t=teacher: t.transform(Z_new), "alone": lambda f=fitted: f.transform(Z_new)}
        placed = interleaved(ways)
        (Y_new, t_learned), (K_new, t_knn), (E_new, t_exact) = placed["learned"], placed["knn"], placed["exact"]
        ours = [(f"learned {title}", t_learned, heldout_accuracy(Y_fit, y_fit, Y_new, y_new, metric), t_train),
                (f"k-NN {title}", t_knn, heldout_accuracy(T_fit, y_fit, K_new, y_new, metric), t_index),
                (f"k-NN {title}, exact", t_exact, heldout_accuracy(T_fit, y_fit, E_new, y_new, metric), 0.0)]
        theirs, solo = None, None
        if peer is not None:
            (P_new, t_peer), (S_new, t_solo) = placed["peer"], placed["alone"]
            theirs = (peer, t_peer, heldout_accuracy(T_fit, y_fit, P_new, y_new), t_teacher)
            S_fit = np.asarray(getattr(fitted, "embedding_", fitted))
            solo = (f"{peer.split()[0]} alone", t_solo, heldout_accuracy(S_fit, y_fit, S_new, y_new), t_solo_fit)
        for label, seconds, acc, train in ours + [row for row in (theirs, solo) if row]:
            mine = theirs is not None and label not in (theirs[0], solo[0])
            table.append([label, f"{len(Z_new) / seconds:,.0f}", f"{theirs[1] / seconds:.0f}x" if mine else "",
                          f"{solo[1] / seconds:.0f}x" if mine else "", f"{acc:.4f}",
                          f"{100 * (acc - theirs[2]):+.2f}" if mine else "",
                          f"{100 * (acc - solo[2]):+.2f}" if mine else "", f"{train:.1f}"])
        if theirs is None:
            table.append(f"{'':<24}(no peer; teacher {title} fitted in {t_teacher:.1f} s)")
    print_columns(["placing", "points/s", "vs peer", "vs alone", "10-NN acc", "Δ acc (pts)", "Δ vs alone", "train s"],
                  [24, 12, 9, 9, 11, 12, 11, 9], table)


def _opentsne(seed: int):
    """openTSNE as a user runs it: its defaults (its own kNN index, Euclidean), every core."""
    import openTSNE

    return openTSNE.TSNE(random_state=seed, n_jobs=os.cpu_count() or 1)


def _umap(seed: int):
    """umap-learn as a user runs it: its defaults (its own NN-descent index, Euclidean); seeded, so one thread."""
    import umap

    return umap.UMAP(random_state=seed)


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with the idx .gz files", FASHION_MNIST)
    parser.add_argument("--sets", default="digits,fashion", help="comma-separated: digits, fashion")
    parser.add_argument("--n-fit", type=int, default=20000, help="Fashion-MNIST points the maps are fitted on")
    parser.add_argument("--n-place", type=int, default=10000, help="held-out Fashion-MNIST points to place")
    add_graph_k(parser)
    parser.add_argument("--device", default="auto", help="where the learned maps train and place (auto, cpu, cuda)")
    parser.add_argument("--poincare", action="store_true", help="also the learned Poincaré map and its teacher")
    add_seed(parser)
    args = parser.parse_args()
    keep_freed_memory()
    warm_up(args)
    print("timings exclude numba JIT compilation (everything ran once on 400 random points first)")
    for name in args.sets.split(","):
        compare(name, args)
    print("vs peer, Δ acc: against the peer's transform on dinoscope's map (the same fitted points, only the placing "
          "differs); vs alone, Δ vs alone: against the peer run alone (its own index and metric, its own map)")
    print("train s: the learned map's own training (its teacher excluded); for k-NN placement, building "
          "its cells index (exact search builds nothing); "
          "for a peer, fitting its map")


if __name__ == "__main__":
    main()

"""dinoscope's t-SNE schedules (fixed counts, KL stopping rules) against openTSNE's default run (issue #12).

openTSNE runs as `openTSNE.TSNE(n_jobs=...).fit(X)`: its defaults (Annoy kNN on X, 250 exaggerated + 500
iterations), fresh in this process, everything it does timed. dinoscope's `TSNEMap` gets the shared cosine
graph (built once, timed apart: the pipeline builds it for every map) and runs at each setting:

* `old`: the former schedule, 250 exaggerated + 750 iterations (tol=0);
* `fixed500`: openTSNE's counts, 250 + 500 (tol=0);
* `default`: today's defaults (the normal phase stops on the KL's relative decrease, `tol`);
* `tol=X` for each `--tol X`: the defaults with that tolerance;
* `ee-stop`: the defaults plus `early_exaggeration_stop` (exaggeration ends when the KL's decrease peaks).

Scores are dinoscope's `map_metrics` (cosine in the input space, k = 10, a fixed 5,000-point sample, 10-NN
accuracy with 5-fold cross-validation); "vs openTSNE" is the wall-time ratio, the target is <= 0.6x with
trustworthiness and 10-NN accuracy within 0.005 of openTSNE's.

    python benchmarks/tsne_schedule.py                                  # digits + 70,000 Fashion-MNIST
    python benchmarks/tsne_schedule.py --n 20000 --settings old,default
    python benchmarks/tsne_schedule.py --skip-digits --points X.npy --labels y.npy --graph g.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import openTSNE

from dinoscope.maps import TSNEMap
from dinoscope.metrics.faithfulness import map_metrics
from dinoscope.neighbors import KNNGraph, knn_graph

from _common import (
    FASHION_MNIST,
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

SETTINGS = {
    "old": dict(n_iter=750, tol=0.0),
    "fixed500": dict(n_iter=500, tol=0.0),
    "default": {},
    "ee-stop": dict(early_exaggeration_stop=True),
}


def settings(args: argparse.Namespace) -> dict[str, dict]:
    """Label -> TSNEMap keyword arguments, in the order asked for."""
    out = {name: SETTINGS[name] for name in args.settings.split(",") if name}
    out.update({f"tol={tol:g}": dict(tol=tol) for tol in args.tol})
    return out


def opentsne_default(X: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """openTSNE's own default run: its kNN search, affinities, PCA initialisation and 250 + 500 iterations."""
    return np.asarray(openTSNE.TSNE(n_jobs=args.n_jobs, random_state=args.seed).fit(X))


def bench(name: str, X: np.ndarray, y: np.ndarray, graph: KNNGraph | None, args: argparse.Namespace) -> None:
    """Time and score openTSNE's default and every TSNEMap setting on one dataset, print the table."""
    if graph is None:
        graph, t_graph = timed(lambda: knn_graph(X, k=args.k, metric="cosine"))
        built = f"{t_graph:.2f} s"
    else:
        built = "loaded"
    jobs = 0 if args.n_jobs == -1 else args.n_jobs
    Y, t_peer = timed(lambda: opentsne_default(X, args))
    peer = map_metrics(X, Y, y, metric="cosine", seed=args.seed)
    rows = [["openTSNE default", "250+500", f"{t_peer:.1f}", "1.00x",
             f"{peer['trustworthiness']:.4f}", f"{peer['knn_accuracy']:.4f}", "", ""]]
    for label, kw in settings(args).items():
        est = TSNEMap(**{**kw, "n_jobs": jobs, "random_state": args.seed})
        _, seconds = timed(lambda est=est: est.fit(X, knn=graph))
        m = map_metrics(X, est.embedding_, y, metric="cosine", seed=args.seed)
        d_t, d_a = m["trustworthiness"] - peer["trustworthiness"], m["knn_accuracy"] - peer["knn_accuracy"]
        rows.append([f"TSNEMap {label}", f"{est.early_exaggeration_iter_}+{est.n_iter_}", f"{seconds:.1f}",
                     f"{seconds / t_peer:.2f}x", f"{m['trustworthiness']:.4f}", f"{m['knn_accuracy']:.4f}",
                     f"{d_t:+.4f}", f"{d_a:+.4f}"])
    print(f"\n## {name}: {X.shape[0]} points x {X.shape[1]} dims; shared cosine graph k={graph.k} "
          f"({'exact' if graph.exact else 'approx'}, {built}, not in TSNEMap's seconds)")
    print_columns(["run", "iters", "seconds", "vs openTSNE", "trustworthiness", "10-NN acc", "d trust", "d acc"],
                  [24, 10, 9, 13, 17, 11, 9, 9], rows)


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with Fashion-MNIST's idx .gz files", default=FASHION_MNIST)
    parser.add_argument("--n", type=int, default=70000, help="Fashion-MNIST subsample size (0: skip)")
    parser.add_argument("--pca", type=int, default=50,
                        help="reduce the Fashion-MNIST pixels to this many PCA components first (0: raw pixels)")
    parser.add_argument("--points", type=Path, help="a .npy of points to use instead of Fashion-MNIST")
    parser.add_argument("--labels", type=Path, help="their labels (.npy)")
    parser.add_argument("--graph", type=Path, help="their kNN graph (.npz with indices, distances; cosine, exact)")
    parser.add_argument("--settings", default="old,fixed500,default,ee-stop",
                        help=f"comma-separated TSNEMap settings, of {', '.join(SETTINGS)}")
    parser.add_argument("--tol", type=float, action="append", default=[], help="also run TSNEMap at this tol")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--n-jobs", type=int, default=-1, help="t-SNE threads on both sides (-1: all cores)")
    add_graph_k(parser)
    add_seed(parser)
    args = parser.parse_args()

    X = random_points(400, 16)  # first calls (FFTW plans, imports) stay out of the timings
    TSNEMap(n_iter=50, early_exaggeration_iter=10).fit(X, knn=knn_graph(X, k=30))
    opentsne_default(X, args)
    if not args.skip_digits:
        X, y = load_digits_xy()
        bench("scikit-learn digits", X, y, None, args)
    if args.points is not None:
        X, y = np.load(args.points).astype(np.float32), np.load(args.labels)
        graph = None
        if args.graph is not None:
            g = np.load(args.graph)
            graph = KNNGraph(g["indices"].astype(np.int64), g["distances"].astype(np.float32), "cosine", True)
        bench(f"{args.points.name}", X, y, graph, args)
    elif args.n:
        X, y = load_fashion_mnist(args.fashion_mnist, args.n, args.seed)
        if args.pca:
            from sklearn.decomposition import PCA

            X = PCA(args.pca, random_state=args.seed).fit_transform(X).astype(np.float32)
        bench(f"Fashion-MNIST{f' PCA-{args.pca}' if args.pca else ''}", X, y, None, args)


if __name__ == "__main__":
    main()

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
import gzip
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openTSNE
import umap
from sklearn.datasets import load_digits

from dinoscope.maps import TSNEMap, UMAPMap
from dinoscope.metrics.faithfulness import map_metrics
from dinoscope.neighbors import knn_graph

SCORES = ("trustworthiness", "continuity", "knn_recall", "knn_accuracy")


def load_fashion_mnist(folder: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subsample of Fashion-MNIST (train + test) from the original idx .gz files."""
    images, labels = [], []
    for split in ("train", "t10k"):
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz") as fh:
            images.append(np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 784))
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz") as fh:
            labels.append(np.frombuffer(fh.read(), np.uint8, offset=8))
    X, y = np.vstack(images), np.concatenate(labels)
    idx = np.sort(np.random.default_rng(seed).choice(len(X), min(n, len(X)), replace=False))
    return X[idx].astype(np.float32), y[idx]


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    """Result and wall-clock seconds of fn()."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def make_runners(args: argparse.Namespace) -> dict[str, Callable]:
    """name -> fn(X, graph) returning 2-D coordinates; graph is None for the peers."""
    seed = None if args.umap_parallel else args.seed
    tsne = dict(perplexity=args.perplexity, n_iter=args.n_iter, early_exaggeration_iter=args.ee_iter)
    umap_kw = dict(n_neighbors=args.n_neighbors, min_dist=0.1, metric="cosine", random_state=seed)
    return {
        "dinoscope t-SNE": lambda X, g: TSNEMap(**tsne, n_jobs=args.n_jobs, random_state=args.seed)
        .fit_transform(X, g),
        "openTSNE": lambda X, g: np.asarray(openTSNE.TSNE(
            **tsne, initialization="pca", metric="cosine", negative_gradient_method="fft", n_jobs=args.n_jobs,
            random_state=args.seed).fit(X)),
        "dinoscope UMAP": lambda X, g: UMAPMap(**umap_kw).fit_transform(X, g),
        "umap-learn": lambda X, g: umap.UMAP(**umap_kw, n_jobs=1 if seed is not None else -1).fit_transform(X),
    }


def warm_up(runners: dict[str, Callable], k: int) -> None:
    """Run everything once on a tiny input so JIT compilation stays out of the timings."""
    X = np.random.default_rng(0).normal(size=(400, 16)).astype(np.float32)
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
    print(f"{'map':<16}{'seconds':>9}{'vs peer':>9}" + "".join(f"{s:>17}" for s in SCORES))
    for ours, peer in (("dinoscope t-SNE", "openTSNE"), ("dinoscope UMAP", "umap-learn")):
        for label in (ours, peer):
            seconds, m = rows[label]
            ratio = f"{seconds / rows[peer][0]:.2f}x" if label == ours else ""
            print(f"{label:<16}{seconds:>9.2f}{ratio:>9}" + "".join(f"{m[s]:>17.4f}" for s in SCORES))
    ours_total = t_graph + rows["dinoscope t-SNE"][0] + rows["dinoscope UMAP"][0]
    peers_total = rows["openTSNE"][0] + rows["umap-learn"][0]
    print(f"total: graph + dinoscope maps {ours_total:.2f} s vs peers {peers_total:.2f} s "
          f"({ours_total / peers_total:.2f}x); 10-NN accuracy in the input space "
          f"{rows['openTSNE'][1]['knn_accuracy_embedding']:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fashion-mnist", type=Path, help="folder with Fashion-MNIST's idx .gz files")
    parser.add_argument("--n", type=int, default=10000, help="Fashion-MNIST subsample size")
    parser.add_argument("--k", type=int, default=90, help="shared graph neighbours (dinoscope's default)")
    parser.add_argument("--perplexity", type=float, default=30)
    parser.add_argument("--n-iter", type=int, default=750)
    parser.add_argument("--ee-iter", type=int, default=250)
    parser.add_argument("--n-neighbors", type=int, default=15)
    parser.add_argument("--umap-parallel", action="store_true", help="unseeded, multi-threaded UMAP on both sides")
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--n-jobs", type=int, default=-1, help="t-SNE threads on both sides (-1: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    runners = make_runners(args)
    warm_up(runners, args.k)
    print("timings exclude numba JIT compilation (everything ran once on 400 random points first)")
    if not args.skip_digits:
        X, y = load_digits(return_X_y=True)
        bench("scikit-learn digits", X.astype(np.float32), y, runners, args.k)
    if args.fashion_mnist:
        X, y = load_fashion_mnist(args.fashion_mnist, args.n, args.seed)
        bench("Fashion-MNIST subsample", X, y, runners, args.k)


if __name__ == "__main__":
    main()

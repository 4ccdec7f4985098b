"""A whole default `dinoscope run` against the three peers it replaces, each alone in a fresh process.

The peers, with their own kNN search and default settings (cosine input metric, as dinoscope's): openTSNE's
t-SNE, umap-learn's UMAP, and umap-learn's hyperbolic UMAP (`output_metric="hyperboloid"`, shown on the Poincaré
disk). Every side's wall clock is its process's, imports included. The faithfulness table scores every map with
dinoscope's `map_metrics` on the same fixed sample: trustworthiness, continuity, kNN recall, 10-NN accuracy.
The input is "bring your own vectors": Fashion-MNIST's 70,000 images as PCA-50 vectors, or any .npy with labels.

    python benchmarks/run_vs_peers.py --fashion-mnist /usr/share/datasets/fashion-mnist
    python benchmarks/run_vs_peers.py --fashion-mnist DIR --n 20000 --work /tmp/peers
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import add_fashion_mnist, add_seed, load_fashion_mnist, make_parser, print_columns

PEERS = ("openTSNE", "umap-learn", "umap-learn hyperboloid")
REPLACES = {"openTSNE": "tsne", "umap-learn": "umap", "umap-learn hyperboloid": "poincare"}


def fit_peer(name: str, X: np.ndarray, seed: int) -> np.ndarray:
    """The peer's 2-D coordinates of X (Poincaré-disk coordinates for the hyperbolic UMAP)."""
    if name == "openTSNE":
        import openTSNE

        return np.asarray(openTSNE.TSNE(metric="cosine", n_jobs=-1, random_state=seed).fit(X))
    import umap

    if name == "umap-learn":
        return umap.UMAP(metric="cosine").fit_transform(X)
    Y = umap.UMAP(metric="cosine", output_metric="hyperboloid").fit_transform(X)
    z = np.sqrt(1 + (Y ** 2).sum(axis=1, keepdims=True))  # the hyperboloid's third coordinate
    return Y / (1 + z)


def peer_process(name: str, vectors: Path, out: Path, seed: int) -> float:
    """Run one peer in a fresh Python process; its wall-clock seconds, imports included."""
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--peer", name, "--vectors", str(vectors), "--coords", str(out),
                    "--seed", str(seed)], check=True)
    return time.perf_counter() - start


def dinoscope_process(vectors: Path, labels: Path, run: Path, seed: int) -> float:
    """A default `dinoscope run` on the vectors in a fresh process; its wall-clock seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X = np.load(vectors)
    source = run.parent / f"{run.name}-source.parquet"
    flat = pa.array(X.reshape(-1), type=pa.float32())
    pq.write_table(pa.table({"embedding": pa.FixedSizeListArray.from_arrays(flat, X.shape[1]),
                             "label": pa.array([str(v) for v in np.load(labels)])}), source)
    subprocess.run(["rm", "-rf", str(run)], check=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dinoscope", "run", "--source", str(source), "--out", str(run),
                    "--seed", str(seed), "--quiet"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with Fashion-MNIST's idx .gz files")
    parser.add_argument("--n", type=int, default=70000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/dinoscope-peers"))
    parser.add_argument("--peer", choices=PEERS, help=argparse_hidden())
    parser.add_argument("--vectors", type=Path, help=argparse_hidden())
    parser.add_argument("--coords", type=Path, help=argparse_hidden())
    add_seed(parser)
    args = parser.parse_args()
    if args.peer:  # one peer, in its own process
        np.save(args.coords, fit_peer(args.peer, np.load(args.vectors), args.seed).astype(np.float32))
        return
    if args.fashion_mnist is None:
        parser.error("--fashion-mnist DIR is required (Debian: apt-get install dataset-fashion-mnist)")
    from sklearn.decomposition import PCA

    from dinoscope.metrics.faithfulness import map_metrics
    from dinoscope.rundir import artifacts

    args.work.mkdir(parents=True, exist_ok=True)
    pixels, y = load_fashion_mnist(args.fashion_mnist, args.n, args.seed)
    X = PCA(50, random_state=args.seed).fit_transform(pixels / 255).astype(np.float32)
    vectors, labels = args.work / "vectors.npy", args.work / "labels.npy"
    np.save(vectors, X)
    np.save(labels, y)
    run = args.work / "run"
    ours = dinoscope_process(vectors, labels, run, args.seed)
    manifest = json.loads((run / "manifest.json").read_text())["stages"]
    ids, coords = artifacts.read_maps(run / artifacts.MAPS)
    if len(ids) != len(X):
        raise SystemExit(f"maps.parquet has {len(ids)} rows for {len(X)} input vectors")
    seconds = {name: peer_process(name, vectors, args.work / f"{name}.npy", args.seed) for name in PEERS}
    peers = {name: np.load(args.work / f"{name}.npy") for name in PEERS}

    print(f"\nFashion-MNIST {len(X)} x {X.shape[1]} (PCA-50 vectors); wall clock of each fresh process")
    stage_rows = [(f"  {name}", f"{rec['seconds']:.1f}", f"{rec['seconds'] / ours:.0%}")
                  for name, rec in manifest.items()]
    stage_rows += [(f"    map {m}", f"{rec['seconds']:.1f}", f"{rec['seconds'] / ours:.0%}")
                   for m, rec in manifest["maps"]["maps"].items()]
    total = sum(seconds.values())
    print_columns(("side", "seconds", "share"), (26, 10, 8),
                  [("dinoscope run", f"{ours:.1f}", ""), *stage_rows,
                   *[(name, f"{s:.1f}", "") for name, s in seconds.items()],
                   ("peers' sum", f"{total:.1f}", ""), ("dinoscope / peers' sum", f"{ours / total:.2f}", "")])

    rows = []
    for name in PEERS:
        ours_name = REPLACES[name]
        disk = "poincare" if ours_name == "poincare" else "euclidean"
        for side, Y in ((f"dinoscope {ours_name}", coords[ours_name]), (name, peers[name])):
            m = map_metrics(X, Y, y, seed=args.seed, map_distance=disk)
            rows.append((side, *(f"{m[key]:.4f}" for key in ("trustworthiness", "continuity", "knn_recall",
                                                                 "knn_accuracy"))))
    print("\nfaithfulness on a fixed 5,000-point sample (k = 10)")
    print_columns(("map", "trust", "contin", "kNN recall", "10-NN acc"), (28, 9, 9, 11, 10), rows)


def argparse_hidden() -> str:
    """Help of the options the script passes to itself."""
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()

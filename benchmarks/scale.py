"""A default `dinoscope run` at growing n: every stage's seconds and peak memory, and how each grows with n.

The input is "bring your own vectors" made from a real set: Fashion-MNIST's 70,000 images as PCA-50 vectors,
repeated with small noise to n rows and rotated into `--dim` dimensions by a random orthogonal map (plus a little
noise in every dimension), labels kept. By default every size repeats all 70,000 images, so the copies of an
image grow with n (1 at 70k, 14.3 at 1M); `--copies C` repeats n / C images at every size instead, so that the
sizes differ in n only (t-SNE's stopping rule, for one, runs longer on data with more copies). Every stage runs
in its own process (`dinoscope extract`, `neighbors`, `map` (the four default maps, each one's seconds from the
run's manifest), `metrics`, `analyze`, `plot`, `report`), so its peak resident memory is that process's own
(`os.wait4`). The growth exponent between two sizes is log(t2/t1) / log(n2/n1); n log n's is about 1.1, and a
stage that grows faster is marked.

    python benchmarks/scale.py --fashion-mnist /usr/share/datasets/fashion-mnist --sizes 70000,250000,1000000
    python benchmarks/scale.py --fashion-mnist DIR --sizes 20000,70000 --work /tmp/scale
    python benchmarks/scale.py --fashion-mnist DIR --sizes 70000,250000 --copies 3.5714   # the 250k set's copies
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from _common import add_fashion_mnist, add_seed, load_fashion_mnist, make_parser, print_columns

IMAGES = 70000  # Fashion-MNIST's images
CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot")


def make_vectors(folder: Path, n: int, dim: int, seed: int, images: int = IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """n float32 vectors in `dim`-D from Fashion-MNIST: PCA-50, the first `images` of them repeated with noise to n
    rows, rotated into dim-D."""
    from sklearn.decomposition import PCA

    pixels, labels = load_fashion_mnist(folder, 70000, seed)
    base = PCA(50, random_state=seed).fit_transform(pixels / 255).astype(np.float32)
    rng = np.random.default_rng(seed)
    rows = np.arange(n) % min(images, len(base))
    scale = 0.05 * base.std(axis=0)
    rotation = np.linalg.qr(rng.normal(size=(dim, 50)))[0].astype(np.float32)  # orthonormal columns
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50000):  # blockwise: never an (n, 50) float64 temporary
        part = rows[start:start + 50000]
        noisy = base[part] + rng.normal(size=(len(part), 50)).astype(np.float32) * scale
        spread = rng.normal(size=(len(part), dim)).astype(np.float32) * 0.01
        out[start:start + len(part)] = noisy @ rotation.T + spread
    return out, labels[rows]


def write_source(path: Path, vectors: np.ndarray, labels: np.ndarray) -> None:
    """The vectors as a Parquet embeddings source: a fixed-size-list `embedding` column and a `label` column."""
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    table = pa.table({"embedding": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
                      "label": pa.array(np.array(CLASSES)[labels])})
    pq.write_table(table, path)


def run_stage(args: list[str]) -> tuple[float, float, float]:
    """Seconds, CPU seconds (user + system: what a shared machine does not inflate) and peak resident GiB of one
    `dinoscope` command in its own process; stops the script if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dinoscope", *args])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"dinoscope {' '.join(args)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def stages(source: Path, run: Path) -> list[tuple[str, list[str]]]:
    """(stage name, dinoscope arguments) of a default run, one process each."""
    return [("extract", ["extract", "--source", str(source), "--out", str(run), "--quiet"]),
            *[(name, [name, str(run)]) for name in ("neighbors", "map", "metrics", "analyze", "plot", "report")]]


def map_seconds(run: Path) -> dict[str, float]:
    """Each map's own fitting seconds, as the run's manifest records them."""
    import json

    maps = json.loads((run / "manifest.json").read_text())["stages"]["maps"]["maps"]
    return {name: rec["seconds"] for name, rec in maps.items()}


def exponent(t1: float, t2: float, n1: int, n2: int) -> float:
    """The growth exponent of a cost from n1 to n2."""
    return math.log(max(t2, 1e-3) / max(t1, 1e-3)) / math.log(n2 / n1)


def main() -> None:
    parser = make_parser(__doc__)
    add_fashion_mnist(parser, "folder with Fashion-MNIST's idx .gz files (required)")
    parser.add_argument("--sizes", default="70000,250000,1000000", help="comma-separated n")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--copies", type=float, default=None,
                        help="copies of each image at every size (n / C images, at most 70,000); default: all "
                             "70,000 images at every size")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dinoscope-scale"), help="sources and runs")
    add_seed(parser)
    args = parser.parse_args()
    if args.fashion_mnist is None:
        parser.error("--fashion-mnist DIR is required (Debian: apt-get install dataset-fashion-mnist)")
    sizes = [int(s) for s in args.sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    figures: dict[int, dict[str, tuple[float, float, float]]] = {}
    images = {n: IMAGES if args.copies is None else min(IMAGES, round(n / args.copies)) for n in sizes}
    for n in sizes:
        source = args.work / f"vectors-{n}x{args.dim}-{images[n]}.parquet"
        run = args.work / f"run-{n}-{images[n]}"
        if not source.exists():
            write_source(source, *make_vectors(args.fashion_mnist, n, args.dim, args.seed, images[n]))
        subprocess.run(["rm", "-rf", str(run)], check=True)
        figures[n] = {}
        for name, stage_args in stages(source, run):
            figures[n][name] = run_stage(stage_args)
            seconds, cpu, peak = figures[n][name]
            print(f"n={n} {name}: {seconds:.1f}s, CPU {cpu:.1f}s, peak {peak:.2f} GiB", flush=True)
            if name == "map":
                figures[n].update({f"  {m}": (s, math.nan, peak) for m, s in map_seconds(run).items()})
        stage_figures = [f for name, f in figures[n].items() if not name.startswith(" ")]
        figures[n]["whole run"] = (sum(f[0] for f in stage_figures), sum(f[1] for f in stage_figures),
                                   max(f[2] for f in stage_figures))
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    nlogn = [exponent(a * math.log(a), b * math.log(b), a, b) for a, b in pairs]
    header = ["stage", *[f"s @{n // 1000}k" for n in sizes], *[f"CPU s @{n // 1000}k" for n in sizes],
              *[f"GiB @{n // 1000}k" for n in sizes],
              *[f"exp {a // 1000}k-{b // 1000}k" for a, b in pairs]]
    rows = []
    for name in figures[sizes[0]]:
        exps = [exponent(figures[a][name][0], figures[b][name][0], a, b) for a, b in pairs]
        mark = " *" if any(e > limit + 0.1 for e, limit in zip(exps, nlogn, strict=True)) else ""
        rows.append([name + mark, *[f"{figures[n][name][0]:.1f}" for n in sizes],
                     *["" if math.isnan(figures[n][name][1]) else f"{figures[n][name][1]:.1f}" for n in sizes],
                     *[f"{figures[n][name][2]:.2f}" for n in sizes], *[f"{e:.2f}" for e in exps]])
    copies = ", ".join(f"{n // 1000}k: {n / images[n]:.2f}" for n in sizes)
    print(f"\n{args.dim}-D vectors from Fashion-MNIST (copies of an image: {copies}); each stage in its own "
          f"process; * grows faster than n log n + 0.1 (n log n's exponents: {', '.join(f'{e:.2f}' for e in nlogn)})")
    print_columns(header, [16] + [10] * (len(header) - 1), rows)


if __name__ == "__main__":
    main()

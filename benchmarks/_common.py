"""Pieces the benchmark scripts share: data loaders, timers, fixed-width tables and command-line options.

The scripts import them with `from _common import ...`, which works when a script runs as
`python benchmarks/X.py`: Python puts the script's folder first on sys.path. No script imports another.
"""

from __future__ import annotations

import argparse
import gzip
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")


# Command-line options.

def make_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by the first line of a script's docstring."""
    return argparse.ArgumentParser(description=doc.splitlines()[0])


def add_seed(parser: argparse.ArgumentParser) -> None:
    """Add `--seed` (int, default 0)."""
    parser.add_argument("--seed", type=int, default=0)


def add_graph_k(parser: argparse.ArgumentParser) -> None:
    """Add `--k`, the neighbours of the shared kNN graph (default 90, dinoscope's)."""
    parser.add_argument("--k", type=int, default=90, help="shared graph neighbours (dinoscope's default)")


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # where Debian's dataset-fashion-mnist package puts it


def add_fashion_mnist(parser: argparse.ArgumentParser, text: str, default: Path | None = None) -> None:
    """Add `--fashion-mnist`, a folder with Fashion-MNIST's idx .gz files, with help `text`."""
    parser.add_argument("--fashion-mnist", type=Path, default=default, help=text)


# Data.

def load_fashion_mnist(folder: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subsample of Fashion-MNIST (train + test) from the original idx .gz files."""
    names = [f"{split}-{kind}-ubyte.gz" for split in ("train", "t10k") for kind in ("images-idx3", "labels-idx1")]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise SystemExit(f"Fashion-MNIST is not in {folder} (missing {', '.join(missing)}): pass --fashion-mnist DIR, "
                         "or install it (Debian: apt-get install dataset-fashion-mnist)")
    images, labels = [], []
    for split in ("train", "t10k"):
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz") as fh:
            images.append(np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 784))
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz") as fh:
            labels.append(np.frombuffer(fh.read(), np.uint8, offset=8))
    X, y = np.vstack(images), np.concatenate(labels)
    idx = np.sort(np.random.default_rng(seed).choice(len(X), min(n, len(X)), replace=False))
    return X[idx].astype(np.float32), y[idx]


def load_digits_xy() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as float32 (1797, 64) pixels and their labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


def random_points(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """n standard-normal float32 points in dim dimensions: the tiny input of the JIT warm-ups."""
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


# Timing.

def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Result and wall-clock seconds of fn()."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def best_of(fn: Callable[[], T], reps: int, warmup: int = 0) -> tuple[T | None, float]:
    """Result and seconds of the fastest of `reps` timed calls of fn(), after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out, best = None, float("inf")
    for _ in range(reps):
        result, seconds = timed(fn)
        if seconds < best:
            out, best = result, seconds
    return out, best


def interleaved(fns: dict[str, Callable[[], T]], rounds: int = 5, min_seconds: float = 0.2
                ) -> dict[str, tuple[T, float]]:
    """Each fn's result and seconds per call: the best of `rounds` rounds, each timing every fn in turn by
    repeating it until `min_seconds` have passed. Taking turns lets each way meet the machine's quiet and busy
    spells alike (a shared VM's speed drifts by 2x over seconds), so their ratios do not depend on which ran
    first; repeating keeps a call of milliseconds from being timed by the scheduler's noise."""
    out = {name: fn() for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < min_seconds or calls == 0:
                fn()
                calls += 1
            best[name] = min(best[name], elapsed / calls)
    return {name: (out[name], best[name]) for name in fns}


def median_spread(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """The median of repeated measurements and their (min, max) spread."""
    return float(np.median(values)), (min(values), max(values))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Tables.

def fixed_row(cells: Sequence[str], widths: Sequence[int], left: int = 1) -> str:
    """One line of a fixed-width table: the first `left` cells left-aligned, the others right-aligned."""
    return "".join(f"{c:<{w}}" if i < left else f"{c:>{w}}"
                   for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def print_columns(header: Sequence[str], widths: Sequence[int], rows: Iterable[Sequence[str] | str],
                  left: int = 1) -> None:
    """Print a fixed-width table: the header, then each row of formatted cells (a str row is printed as it is)."""
    print(fixed_row(header, widths, left))
    for row in rows:
        print(row if isinstance(row, str) else fixed_row(row, widths, left))

"""The run's embeddings for other tools: NumPy (.npz), CSV or Parquet, with ids, labels, splits and sources.

Each format reads back as a dinoscope source (`--source exported.npz`, `.csv` for people and spreadsheets only),
so vectors made once can be mapped again elsewhere.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..errors import DinoscopeError
from ..rundir import artifacts
from ..rundir.directory import RunDir, atomic_path

FORMATS = ("npy", "csv", "parquet")
SUFFIX = {"npy": ".npz", "csv": ".csv", "parquet": ".parquet"}


def export_embeddings(run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None) -> Path:
    """Write the run's embeddings as `fmt` to `out` (default RUN/export/embeddings.<suffix>); returns the path."""
    if fmt not in FORMATS:
        raise DinoscopeError(f"unknown embeddings format '{fmt}'; choose one of {', '.join(FORMATS)}")
    run = RunDir(run_dir, create=False)
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    path = Path(out) if out is not None else run.file(f"{artifacts.EXPORT}/embeddings{SUFFIX[fmt]}")
    n = len(emb)
    column = lambda values: [v or "" for v in values] if values is not None else [""] * n  # noqa: E731
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            artifacts.write_embeddings(tmp, emb)
        elif fmt == "npy":
            arrays = {"embeddings": emb.vectors, "ids": np.array(emb.ids, dtype=str),
                      "sources": np.array(emb.origins, dtype=str)}
            if emb.labels is not None:
                arrays["labels"] = np.array(column(emb.labels), dtype=str)
            if emb.splits is not None:
                arrays["splits"] = np.array(column(emb.splits), dtype=str)
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        else:
            with open(tmp, "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["id", "label", "split", "source", *(f"e{i}" for i in range(emb.vectors.shape[1]))])
                for row in zip(emb.ids, column(emb.labels), column(emb.splits), emb.origins, emb.vectors.tolist(),
                               strict=True):
                    writer.writerow([*row[:4], *(repr(v) for v in row[4])])
    return path

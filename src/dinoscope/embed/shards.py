"""Extraction's shards: fixed ranges of items, each written whole (atomically) and checked when read back.

A shard holds the embeddings of its readable items, their positions in the dataset, their exact and perceptual
hashes (for duplicates, so the images are read once), and the items it had to skip with their reasons, so a
resumed run reports exactly what an uninterrupted one would have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DinoscopeError
from ..rundir.directory import atomic_path

Failure = tuple[int, str, str]  # (position in the dataset, item id, one-line reason)
Hashes = tuple[str, bytes | None]  # (exact content hash, perceptual hash or None), see `dinoscope.hashing`


def shard_path(shard_dir: Path, shard: int) -> Path:
    """The file of one shard."""
    return Path(shard_dir) / f"shard-{shard:05d}.npz"


def write_shard(path: Path, start: int, stop: int, index: list[int], emb: list[np.ndarray],
                 failures: list[Failure], dim: int, hashes: list[Hashes]) -> None:
    """Write one finished shard atomically (hashes: one per kept item, in `index` order)."""
    width = max((len(p) for _, p in hashes if p is not None), default=0)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            start=np.int64(start),
            stop=np.int64(stop),
            index=np.asarray(index, dtype=np.int64),
            embeddings=np.concatenate(emb) if emb else np.zeros((0, dim), np.float32),
            failure_index=np.asarray([f[0] for f in failures], dtype=np.int64),
            failure_id=np.asarray([f[1] for f in failures], dtype=str),
            failure_reason=np.asarray([f[2] for f in failures], dtype=str),
            pixel_hash=np.asarray([h for h, _ in hashes], dtype=str),
            perceptual_hash=np.array([np.frombuffer(p or bytes(width), np.uint8) for _, p in hashes],
                                     np.uint8).reshape(len(hashes), width),
            perceptual_known=np.asarray([p is not None for _, p in hashes], dtype=bool),
        )


def load_shard(path: Path, start: int, stop: int, dim: int
               ) -> tuple[np.ndarray, np.ndarray, list[Failure], list[Hashes] | None]:
    """Read a finished shard, checking it covers the expected items with the expected width (hashes None when an
    older version wrote it without them)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            got = (int(z["start"]), int(z["stop"]))
            index, emb = z["index"], z["embeddings"]
            failures = list(zip(z["failure_index"].tolist(), z["failure_id"].tolist(),
                                z["failure_reason"].tolist(), strict=True))
            hashes = None
            if "pixel_hash" in z.files:
                known, codes = z["perceptual_known"].tolist(), z["perceptual_hash"]
                hashes = [(h, codes[i].tobytes() if known[i] else None) for i, h in enumerate(z["pixel_hash"].tolist())]
    except (OSError, KeyError, ValueError) as exc:
        raise DinoscopeError(f"shard {path} is unreadable ({exc}); delete it to recompute it") from None
    if got != (start, stop) or emb.shape[1] != dim:
        raise DinoscopeError(
            f"shard {path} was written with other settings (items {got[0]}-{got[1]}, width {emb.shape[1]}; "
            f"expected {start}-{stop}, width {dim}); delete {path.parent} or use the same settings"
        )
    return index, emb, failures, hashes

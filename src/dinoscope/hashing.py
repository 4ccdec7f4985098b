"""Stable short hashes: of settings (stage cache keys) and of content (sources, exact duplicates)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (settings, upstream fingerprints)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=12).hexdigest()


def content_fingerprint(*parts: np.ndarray | list | str | None) -> str:
    """blake2b of arrays' bytes (with dtype and shape) and of JSON-able parts: fast and stable across runs."""
    digest = hashlib.blake2b(digest_size=12)
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(f"array {part.dtype.str} {part.shape}|".encode())
            digest.update(np.ascontiguousarray(part).data)
        else:
            digest.update(f"json {json.dumps(part)}|".encode())
    return digest.hexdigest()


PERCEPTUAL_HASH_SIZE = 16  # 16 x 16 grids: horizontal and vertical dHash gradient signs, and pHash DCT signs
PERCEPTUAL_HASH_BYTES = 3 * PERCEPTUAL_HASH_SIZE**2 // 8  # 768 bits
FLAT_STD = 2.0  # grey levels of a 16 x 16 thumbnail; below, an image's gradients are noise and its hash says nothing


def perceptual_hash(image: np.ndarray) -> bytes | None:
    """768-bit perceptual hash of a decoded image (imagehash's horizontal and vertical dHash and its pHash, 16 x 16
    each), or None for a near-flat image, whose hash would collide with every other flat image's.

    Measured on planted resized / JPEG / shifted / cropped / brightened copies of small grey images (digits,
    Fashion-MNIST; benchmarks/analysis.py): a 64-bit pHash or dHash, or the dHashes alone, separate copies from
    look-alikes worse.
    """
    import imagehash
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L")
    if float(np.asarray(img.resize((16, 16), Image.Resampling.BOX), np.float32).std()) < FLAT_STD:
        return None
    bits = np.concatenate([imagehash.dhash(img, PERCEPTUAL_HASH_SIZE).hash.ravel(),
                           imagehash.dhash_vertical(img, PERCEPTUAL_HASH_SIZE).hash.ravel(),
                           imagehash.phash(img, PERCEPTUAL_HASH_SIZE).hash.ravel()])
    return np.packbits(bits).tobytes()


def image_hashes(image: np.ndarray) -> tuple[str, bytes | None]:
    """(exact content hash, perceptual hash or None) of one decoded image: what extraction keeps for duplicates."""
    return content_fingerprint(np.asarray(image)), perceptual_hash(image)

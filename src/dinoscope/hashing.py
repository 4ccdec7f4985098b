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
PERCEPTUAL_HASH_VERSION = 2  # 2: of the 64 x 64 grey image clipped at CLIP_QUANTILE; 1: of the image as decoded
FLAT_STD = 2.0  # grey levels of a 16 x 16 thumbnail; below, an image's gradients are noise and its hash says nothing
# The grey level, as a quantile of the image's own, that the hashed image is clipped at and stretched from. A copy
# brightened until its highlights saturate loses every gradient inside them; a quantile scales with the brightness,
# so clipped there the image and its copy lose the same ones. benchmarks/analysis.py, planted copies, seeds 0-4, both
# sets, pixel and random-ViT features (min of pair precision and recall over the 20 cells): unclipped 0.890 (brightened
# digits found 9 of 17 on seed 1), 0.85: 0.957 (17 of 17); 0.75 and 0.8 lose 1-pixel shifts of Fashion-MNIST's
# textured clothes (0.933, 0.945 on seed 0), 0.9 brings false digit pairs (0.918 on seed 0).
CLIP_QUANTILE = 0.85
WORK_SIZE = 4 * PERCEPTUAL_HASH_SIZE  # grey levels are hashed at pHash's own working size (imagehash's 4x)


def perceptual_hash(image: np.ndarray) -> bytes | None:
    """768-bit perceptual hash of a decoded image (imagehash's horizontal and vertical dHash and its pHash, 16 x 16
    each, of its grey levels clipped at their CLIP_QUANTILE), or None for a near-flat image, whose hash would collide
    with every other flat image's.

    Measured on planted resized / JPEG / shifted / cropped / brightened copies of small grey images (digits,
    Fashion-MNIST; benchmarks/analysis.py): a 64-bit pHash or dHash, or the dHashes alone, separate copies from
    look-alikes worse.
    """
    import imagehash
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("L")
    if img.size != (WORK_SIZE, WORK_SIZE):  # once, rather than once per hash, and the quantile of 4,096 levels
        img = img.resize((WORK_SIZE, WORK_SIZE), Image.Resampling.LANCZOS)
    if float(np.asarray(img.resize((16, 16), Image.Resampling.BOX), np.float32).std()) < FLAT_STD:
        return None
    grey = np.asarray(img, np.float32)
    top = float(np.quantile(grey, CLIP_QUANTILE))
    if top > 0:  # else most of the image is black: nothing to clip
        img = Image.fromarray(np.round(np.minimum(grey, top) * (255.0 / top)).astype(np.uint8))
    bits = np.concatenate([imagehash.dhash(img, PERCEPTUAL_HASH_SIZE).hash.ravel(),
                           imagehash.dhash_vertical(img, PERCEPTUAL_HASH_SIZE).hash.ravel(),
                           imagehash.phash(img, PERCEPTUAL_HASH_SIZE).hash.ravel()])
    return np.packbits(bits).tobytes()


def image_hashes(image: np.ndarray) -> tuple[str, bytes | None]:
    """(exact content hash, perceptual hash or None) of one decoded image: what extraction keeps for duplicates."""
    return content_fingerprint(np.asarray(image)), perceptual_hash(image)

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

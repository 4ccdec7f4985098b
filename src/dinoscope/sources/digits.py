"""scikit-learn's 1,797 8x8 handwritten digits: ships with scikit-learn, so it works offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset
from .memory import in_memory


def load_digits(split: str, cache_dir: Path) -> Dataset:
    """The digits as (8, 8, 3) uint8 images labelled "0".."9" (no splits; no cache needed)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)  # 0..16 grey levels -> 0..255
    classes = [str(c) for c in bunch.target_names]
    return in_memory("digits", images, [classes[t] for t in bunch.target], None, classes)

"""Shared fixtures: tiny, fast, offline settings (random-weight ViT-S at 32 px on a few hundred digits)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

# Small enough to keep the suite fast, real enough to exercise every stage.
FAST = dict(model="dino-vits16", random_weights=True, resolution=32, batch_size=64, limit=300, shard_size=128)


@pytest.fixture
def fast_flags() -> dict:
    return dict(FAST)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """One full run on 300 digits, shared by the tests that only read it."""
    from dinoscope.config import settings_from_flags
    from dinoscope.pipeline import run_pipeline

    out = tmp_path_factory.mktemp("runs") / "digits"
    run_pipeline(out, settings_from_flags(**FAST), progress=False)
    return out


def write_image_folder(root, n_per_class: int = 3, corrupt: bool = True):
    """A labelled folder of small PNGs (two classes), plus one corrupt file when asked."""
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / label / f"{i}.png")
    if corrupt:
        (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return root

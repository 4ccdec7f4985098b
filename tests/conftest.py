"""Shared fixtures: tiny, fast, offline settings (random-weight ViT-S at 32 px on a few hundred digits)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
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


class TinyLearnedMap(torch.nn.Module):
    """A stand-in learned map (RUN/models/<name>.pt contract): embeddings (N, D) -> points inside the unit disk."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = torch.nn.Linear(dim, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(x)
        return 0.9 * y / (1.0 + (y * y).sum(dim=1, keepdim=True).sqrt())


@pytest.fixture(scope="session")
def mapped_run(tmp_path_factory):
    """An extracted fp32 FAST run of 40 digits with one learned map, `param_test`, listed by its maps stage."""
    from dinoscope.config import settings_from_flags
    from dinoscope.pipeline import run_pipeline
    from dinoscope.rundir import artifacts
    from dinoscope.rundir.access import open_run

    out = tmp_path_factory.mktemp("runs") / "mapped"
    run_pipeline(out, settings_from_flags(**{**FAST, "limit": 40, "precision": "fp32"}), progress=False,
                 stages=("extract",))
    run, _ = open_run(out, create=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tiny = torch.jit.script(TinyLearnedMap(run.stage("extract")["embed_dim"]))
    run.file("models").mkdir(exist_ok=True)
    torch.jit.save(tiny, str(run.file("models/param_test.pt")))
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    with torch.no_grad():  # maps.parquet as the maps stage writes it: the map's coordinates of the run's images
        artifacts.write_maps(run.file(artifacts.MAPS), emb.ids, {"param_test": tiny(torch.from_numpy(emb.vectors))
                                                                 .numpy()})
    run.manifest["stages"]["maps"] = {"key": "test", "maps": {"param_test": {"key": "test", "seconds": 0.0}}}
    run.save()
    return out


def cli_exit_code(argv: list[str]) -> int:
    """The exit status of `dinoscope ARGV`, run in this process."""
    from dinoscope.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return exc.code
    return 0


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

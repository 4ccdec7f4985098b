"""What a notebook reads back from a run directory: embeddings, maps, graph and metrics in one object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import artifacts
from .directory import RunDir


@dataclass
class RunResult:
    """A finished (or partly finished) run, loaded: everything a notebook needs to look further."""

    path: Path
    manifest: dict
    embeddings: artifacts.Embeddings
    maps: dict[str, np.ndarray]
    metrics: dict

    @property
    def random_weights(self) -> bool:
        return bool(self.manifest.get("random_weights"))

    def neighbors(self):
        """The shared kNN graph (loaded on demand)."""
        from ..neighbors import load_graph

        return load_graph(self.path / artifacts.NEIGHBORS)


def load_run(path: str | Path) -> RunResult:
    """Load what a run directory holds; stages that have not run give empty parts."""
    run = RunDir(path, create=False)
    _, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    return RunResult(
        path=run.path,
        manifest=run.manifest,
        embeddings=artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS)),
        maps=coords,
        metrics=artifacts.read_json(run, artifacts.METRICS),
    )

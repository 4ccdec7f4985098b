"""The models a run was made with, rebuilt from its run directory: its backbone and its learned maps.

Search, placing, export and the service all need exactly the network that extracted the run's embeddings
(same weights, resolution and pooling; random weights are redrawn from the run's seed) and the learned maps
saved in `models/`, so they all get them from here.

A learned map is `models/<name>.pt`: a TorchScript module whose forward takes float32 embeddings (N, D) and
returns float32 map coordinates (N, 2) (inside the unit disk for a Poincaré map). It counts as one of the run's
maps only while the maps stage lists `name`, so a file left from an earlier run is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import DinoscopeError
from .directory import RunDir


def run_backbone(run: RunDir, settings: Settings):
    """The backbone that extracted the run's embeddings; refused for runs of precomputed vectors."""
    from ..embed.backbones import build_backbone

    ext = run.require("extract")
    if ext.get("model") is None:
        raise DinoscopeError(f"{run.path} holds precomputed embeddings, so it has no backbone to embed images with")
    mod = settings.model
    return build_backbone(mod.model, weights=mod.weights, random_weights=mod.random_weights, pool=mod.pool,
                          resolution=mod.resolution, seed=settings.seed)


def run_embedder(run: RunDir, settings: Settings,
                 device: str | None = None) -> Callable[[list[np.ndarray]], np.ndarray]:
    """A function embedding decoded uint8 (H, W, 3) images exactly as the run's extraction did."""
    from ..embed.extract import image_embedder

    ext = run.require("extract")
    backbone = run_backbone(run, settings)
    return image_embedder(backbone, device=device or settings.model.device,
                          precision=ext.get("precision") or settings.model.precision)


def learned_map_paths(run: RunDir) -> dict[str, Path]:
    """The run's learned maps, name → TorchScript file, in the order the maps stage lists them."""
    listed = (run.stage("maps") or {}).get("maps", {})
    return {name: run.file(f"models/{name}.pt") for name in listed if run.file(f"models/{name}.pt").is_file()}


def load_learned_maps(run: RunDir, device: str = "cpu") -> dict:
    """The run's learned maps as loaded TorchScript modules (name → module), in eval mode on `device`."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch 2.14 deprecates TorchScript; the learned-map contract still uses it
        warnings.simplefilter("ignore", FutureWarning)
        return {name: torch.jit.load(str(path), map_location=device).eval()
                for name, path in learned_map_paths(run).items()}

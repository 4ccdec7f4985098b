"""The models a run was made with, rebuilt from its run directory: images → embeddings → map coordinates.

Search, placing, export and the service all need exactly the network that extracted the run's embeddings
(same weights, resolution and pooling; random weights are redrawn from the run's seed) and the learned maps
saved in `models/`, so they all get them from one `RunModel`.

A learned map is `models/<name>.pt`: a TorchScript module whose forward takes float32 embeddings (N, D) and
returns float32 map coordinates (N, 2) (inside the unit disk for a Poincaré map). It counts as one of the run's
maps only while the maps stage lists `name`, so a file left from an earlier run is never used.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import DinoscopeError
from . import artifacts
from .directory import RunDir


def learned_map_paths(run: RunDir) -> dict[str, Path]:
    """The run's learned maps, name → TorchScript file, in the order the maps stage lists them."""
    listed = (run.stage("maps") or {}).get("maps", {})
    return {name: run.file(artifacts.model_file(name)) for name in listed
            if run.file(artifacts.model_file(name)).is_file()}


class RunModel:
    """The run's backbone and learned maps, each loaded on first use on one device."""

    def __init__(self, run: RunDir, settings: Settings, device: str | None = None):
        from ..compute import resolve_device

        self.run, self.settings = run, settings
        self.extraction = run.require("extract")
        self.device = resolve_device(device or settings.model.device)
        self.precision = self.extraction.get("precision") or settings.model.precision

    @cached_property
    def backbone(self):
        """The backbone that extracted the run's embeddings; refused for runs of precomputed vectors."""
        from ..embed.backbones import build_backbone

        if self.extraction.get("model") is None:
            raise DinoscopeError(f"{self.run.path} holds precomputed embeddings, so it has no backbone to embed "
                                 "images with")
        mod = self.settings.model
        return build_backbone(mod.model, weights=mod.weights, random_weights=mod.random_weights, pool=mod.pool,
                              resolution=mod.resolution, seed=self.settings.seed)

    @cached_property
    def maps(self) -> dict:
        """The learned maps as TorchScript modules (name → module), in eval mode on the device."""
        import warnings

        import torch

        with warnings.catch_warnings():  # torch 2.14 deprecates TorchScript; the learned-map contract still uses it
            warnings.simplefilter("ignore", FutureWarning)
            return {name: torch.jit.load(str(path), map_location=self.device).eval()
                    for name, path in learned_map_paths(self.run).items()}

    @cached_property
    def _embedder(self):
        from ..embed.extract import image_embedder

        return image_embedder(self.backbone, device=str(self.device), precision=self.precision)

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """Embeddings of decoded uint8 (H, W, 3) images, exactly as the run's extraction made them."""
        return self._embedder(images)

    def coordinates(self, vectors: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Each learned map's (N, 2) float32 coordinates of embeddings (all maps, or those named)."""
        import torch

        with torch.inference_mode():
            X = torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32), device=self.device)
            return {name: self.maps[name](X).float().cpu().numpy() for name in (names or list(self.maps))}

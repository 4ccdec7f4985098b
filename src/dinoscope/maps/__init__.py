"""Maps from the embedding space to 2-D: one module per map, scikit-learn estimator shape."""

from __future__ import annotations

from ..config import MapSettings
from ..errors import DinoscopeError
from .pca import PCAMap
from .tsne import TSNEMap
from .umap import UMAPMap

MAPS = {"pca": PCAMap, "tsne": TSNEMap, "umap": UMAPMap}

__all__ = ["MAPS", "PCAMap", "TSNEMap", "UMAPMap", "build_map"]


def build_map(name: str, settings: MapSettings, seed: int) -> PCAMap | TSNEMap | UMAPMap:
    """A map estimator named `name`, configured from the run's map settings and seeded with `seed`."""
    if name not in MAPS:
        raise DinoscopeError(f"unknown map {name!r}; available maps: {', '.join(MAPS)}")
    return MAPS[name](**getattr(settings, name).model_dump(), random_state=seed)

"""Maps from the embedding space to 2-D: one module per map, scikit-learn estimator shape."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..config import MapSettings
from ..errors import DinoscopeError
from ..geometry import ball
from .parametric import ParametricPoincare, ParametricTSNE, ParametricUMAP
from .pca import PCAMap
from .poincare import PoincareMap
from .tsne import TSNEMap
from .umap import UMAPMap

MAPS = {"pca": PCAMap, "tsne": TSNEMap, "umap": UMAPMap, "poincare": PoincareMap, "param_umap": ParametricUMAP,
        "param_tsne": ParametricTSNE, "param_poincare": ParametricPoincare}
# Maps whose coordinates are not Euclidean: their faithfulness is measured with their own distance.
MAP_DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "poincare": ball.pairwise_distances, "param_poincare": ball.pairwise_distances}

__all__ = ["MAPS", "MAP_DISTANCES", "PCAMap", "ParametricPoincare", "ParametricTSNE", "ParametricUMAP", "PoincareMap",
           "TSNEMap", "UMAPMap", "build_map", "map_distance"]


def map_distance(name: str) -> str | Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The distance a map's coordinates live in: "euclidean", or the map's own pairwise-distance function."""
    return MAP_DISTANCES.get(name, "euclidean")


def build_map(name: str, settings: MapSettings, seed: int):
    """A map estimator named `name`, configured from the run's map settings and seeded with `seed`."""
    if name not in MAPS:
        raise DinoscopeError(f"unknown map {name!r}; available maps: {', '.join(MAPS)}")
    return MAPS[name](**getattr(settings, name).model_dump(), random_state=seed)

"""Maps from the embedding space to 2-D: one module per map, the scikit-learn estimator shape, one registry.

`registry.MAPS` says what exists; the estimator classes load on first use (`from dinoscope.maps import TSNEMap`
imports that module only).
"""

from __future__ import annotations

import importlib

from .registry import DEFAULT_MAPS, MAPS, MapSpec, distance, spec, title, with_teachers

_CLASSES = {s.builder.split(":")[1]: s.builder.split(":")[0] for s in MAPS.values()}


def __getattr__(name: str):
    if name in _CLASSES:
        return getattr(importlib.import_module(f".{_CLASSES[name]}", __name__), name)
    raise AttributeError(f"module 'dinoscope.maps' has no attribute {name!r}")


__all__ = ["DEFAULT_MAPS", "MAPS", "MapSpec", "distance", "spec", "title", "with_teachers", *_CLASSES]

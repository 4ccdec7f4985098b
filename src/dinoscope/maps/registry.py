"""Every map dinoscope can draw, in one table: name → `MapSpec` (builder, title, teacher, distance, flags).

Light on purpose: asking what exists, whether a map lives on the disk or which map a learned one learns from
imports nothing heavy; a map's estimator class is imported when it is first needed. The run's settings
(`config.MapSettings`), the CLI's options, plot titles, the viewer's disk flag and the metrics' distances all
derive from this table. Adding a map = one module with its estimator + one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import DinoscopeError

# Estimator parameters the run fills in from elsewhere, not from the map's own settings.
CONTEXT = ("random_state", "verbose", "metric")


@dataclass(frozen=True)
class MapSpec:
    """One map: where its estimator lives and what the rest of dinoscope needs to know about it."""

    name: str
    builder: str  # "module:Class" inside dinoscope.maps, imported on first use
    title: str
    teacher: str | None = None  # learned maps: the map whose coordinates they learn (fitted first)
    distance: Literal["euclidean", "poincare"] = "euclidean"  # what the map's coordinates' distances are
    default: bool = False  # fitted by `dinoscope run` unless --maps says otherwise
    flags: tuple[str, ...] = ()  # parameters that also get a short CLI flag (--perplexity for --tsne-perplexity)
    sampled: bool = False  # fitted on a sample above `maps.fit_max` points, the rest placed (`maps.sample`)

    @property
    def disk(self) -> bool:
        """Whether the map lives in the Poincaré disk."""
        return self.distance == "poincare"

    @property
    def learned(self) -> bool:
        """Whether the map is a network that places new points in one pass (`models/<name>.pt`)."""
        return self.teacher is not None

    def estimator_class(self) -> type:
        """The estimator class (its module imported now)."""
        module, cls = self.builder.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), cls)

    def build(self, params: dict[str, Any], **context: Any):
        """An unfitted estimator from the map's settings; of `context` (random_state, verbose, metric) it gets
        what it declares."""
        cls = self.estimator_class()
        own = cls._get_param_names()
        return cls(**params, **{k: v for k, v in context.items() if k in own})


MAPS: dict[str, MapSpec] = {spec.name: spec for spec in (
    MapSpec("pca", "pca:PCAMap", "PCA", default=True),
    MapSpec("tsne", "tsne:TSNEMap", "t-SNE", default=True, flags=("perplexity",), sampled=True),
    MapSpec("umap", "umap:UMAPMap", "UMAP", default=True, flags=("n_neighbors", "min_dist"), sampled=True),
    MapSpec("poincare", "poincare:PoincareMap", "Poincaré disk", distance="poincare", default=True,
            flags=("center", "center_class"), sampled=True),
    MapSpec("param_umap", "parametric:ParametricUMAP", "learned UMAP", teacher="umap"),
    MapSpec("param_tsne", "parametric:ParametricTSNE", "learned t-SNE", teacher="tsne"),
    MapSpec("param_poincare", "parametric:ParametricPoincare", "learned Poincaré disk", teacher="poincare",
            distance="poincare"),
)}
DEFAULT_MAPS = tuple(name for name, spec in MAPS.items() if spec.default)


def spec(name: str) -> MapSpec:
    """The registry entry of `name`; a one-line error naming the maps that exist."""
    if name not in MAPS:
        raise DinoscopeError(f"unknown map {name!r}; available maps: {', '.join(MAPS)}")
    return MAPS[name]


def title(name: str) -> str:
    """The map's name for people (plots, report, viewer); unknown names as they are."""
    return MAPS[name].title if name in MAPS else name


def distance(name: str) -> str:
    """The distance the map's coordinates live in: "euclidean" or "poincare"."""
    return MAPS[name].distance if name in MAPS else "euclidean"


def with_teachers(names: list[str]) -> list[str]:
    """Known names, each once, every learned map's teacher added before it."""
    return list(dict.fromkeys(n for m in names for n in (spec(m).teacher, m) if n))

"""Typed settings for every stage; CLI flags and YAML files both map onto `Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import DinoscopeError

MAP_NAMES = ("pca", "tsne", "umap", "poincare", "param_umap", "param_tsne", "param_poincare")
DEFAULT_MAPS = ("pca", "tsne", "umap", "poincare")
# Learned maps and the non-parametric map each learns from (fitted first, in the same maps stage).
TEACHERS = {"param_umap": "umap", "param_tsne": "tsne", "param_poincare": "poincare"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceSettings(_Strict):
    """Where the images come from (see `dinoscope.sources`)."""

    source: str = "digits"
    split: Literal["train", "test", "all"] = "all"
    strict: bool = False
    limit: int | None = Field(None, ge=1, description="use only the first N items")
    cache_dir: Path | None = None


class ModelSettings(_Strict):
    """Which backbone, which weights, and how to run it."""

    model: str = "dinov2-vits14"
    weights: Path | None = None
    random_weights: bool = False
    pool: Literal["cls", "mean", "cls+mean"] = "cls"
    resolution: int | None = Field(None, ge=14)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    batch_size: int = Field(64, ge=1)
    device: str = "auto"
    threads: int | None = Field(None, ge=1)
    shard_size: int = Field(1024, ge=1)


class NeighborSettings(_Strict):
    """The shared kNN graph: computed once, reused by maps, metrics and analyses."""

    k: int = Field(90, ge=2)
    metric: Literal["cosine", "euclidean"] = "cosine"
    method: Literal["auto", "exact", "approx"] = "auto"
    exact_max: int = Field(20000, ge=1, description="largest n searched exactly under method=auto")


class PCASettings(_Strict):
    n_components: int = 2


class TSNESettings(_Strict):
    perplexity: float = Field(30.0, gt=0)
    pca_dims: int = Field(50, ge=2, description="PCA dimensions fed to t-SNE, as in the seeds' recipe")
    n_iter: int = Field(750, ge=50)
    early_exaggeration_iter: int = Field(250, ge=0)
    n_jobs: int = 0


class UMAPSettings(_Strict):
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.1, ge=0)
    n_epochs: int | None = None


class PoincareSettings(_Strict):
    """The hyperbolic map: t-SNE on Poincaré distances (default) or umap-learn's hyperboloid output."""

    method: Literal["tsne", "umap"] = "tsne"
    perplexity: float = Field(15.0, gt=0)
    n_iter: int = Field(250, ge=50)
    early_exaggeration_iter: int = Field(250, ge=0)
    scale: float = Field(0.3, gt=0, description="t-SNE kernel's unit of hyperbolic distance; 1 pushes to the rim")
    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.1, ge=0)
    center: Literal["density", "mean"] | None = Field("mean", description="moved to the centre by an isometry")
    center_class: str | None = Field(None, description="put this class's medoid at the centre instead")

    @field_validator("center", mode="before")
    @classmethod
    def _none(cls, value: object) -> object:
        return None if isinstance(value, str) and value.lower() == "none" else value


class LearnedMapSettings(_Strict):
    """A learned map's network and training (see `maps.parametric`); `device` auto uses the GPU when there is one."""

    hidden: int = Field(256, ge=2, description="units per hidden layer")
    layers: int = Field(2, ge=1, description="hidden layers")
    batch_size: int = Field(512, ge=8)
    learning_rate: float = Field(1e-3, gt=0)
    device: str = "auto"


class StudentSettings(LearnedMapSettings):
    """A learned map that regresses its teacher's coordinates, early-stopped on a held-out share."""

    max_epochs: int = Field(200, ge=1)
    patience: int = Field(12, ge=1)
    validation: float = Field(0.1, gt=0, lt=0.5)


class ParamUMAPSettings(LearnedMapSettings):
    """Parametric UMAP: warm start on the UMAP map, then UMAP's loss on the shared graph plus a pull to the map."""

    n_neighbors: int = Field(15, ge=2)
    min_dist: float = Field(0.1, ge=0)
    n_epochs: int = Field(50, ge=0)
    warm_epochs: int = Field(100, ge=1)
    negative_samples: int = Field(5, ge=1)
    teacher_weight: float = Field(0.1, ge=0)


class MapSettings(_Strict):
    maps: list[str] = Field(default_factory=lambda: list(DEFAULT_MAPS), min_length=1)
    pca: PCASettings = Field(default_factory=PCASettings)
    tsne: TSNESettings = Field(default_factory=TSNESettings)
    umap: UMAPSettings = Field(default_factory=UMAPSettings)
    poincare: PoincareSettings = Field(default_factory=PoincareSettings)
    param_umap: ParamUMAPSettings = Field(default_factory=ParamUMAPSettings)
    param_tsne: StudentSettings = Field(default_factory=StudentSettings)
    param_poincare: StudentSettings = Field(default_factory=StudentSettings)

    @field_validator("maps")
    @classmethod
    def _known(cls, maps: list[str]) -> list[str]:
        """Known names, each once, every learned map's teacher added before it."""
        unknown = [m for m in maps if m not in MAP_NAMES]
        if unknown:
            raise ValueError(f"unknown map {unknown[0]!r}; choose from {', '.join(MAP_NAMES)}")
        return list(dict.fromkeys(name for m in maps for name in (TEACHERS.get(m), m) if name))


class MetricSettings(_Strict):
    k: int = Field(10, ge=1)
    sample: int = Field(5000, ge=10, description="metrics are exact on a seeded subsample of this size")
    superclasses: Path | None = Field(None, description="YAML/JSON mapping class -> superclass (coarse accuracy)")


class AnalysisSettings(_Strict):
    """Clusters, outliers, near-duplicates and label issues on the shared graph (see `dinoscope.analysis`)."""

    n_clusters: int | None = Field(None, ge=2, description="k-means k; default: the number of labels, else 10")
    duplicate_threshold: float = Field(0.997, gt=0, le=1, description="cosine similarity of near-duplicates")
    top: int = Field(24, ge=1, description="how many outliers / label issues the report shows")


class Settings(_Strict):
    """All settings of a run; each stage's cache key is built from the parts it reads."""

    source: SourceSettings = Field(default_factory=SourceSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    neighbors: NeighborSettings = Field(default_factory=NeighborSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    seed: int = 0


# Flat option names (CLI flags and keyword arguments of `dinoscope.run`) → dotted setting paths.
FLAGS = {
    "source": "source.source", "split": "source.split", "strict": "source.strict", "limit": "source.limit",
    "cache_dir": "source.cache_dir", "model": "model.model", "weights": "model.weights",
    "random_weights": "model.random_weights", "pool": "model.pool", "resolution": "model.resolution",
    "precision": "model.precision", "batch_size": "model.batch_size", "device": "model.device",
    "threads": "model.threads", "shard_size": "model.shard_size", "k": "neighbors.k",
    "metric": "neighbors.metric", "method": "neighbors.method", "maps": "maps.maps",
    "perplexity": "maps.tsne.perplexity", "n_neighbors": "maps.umap.n_neighbors",
    "min_dist": "maps.umap.min_dist",
    "poincare_method": "maps.poincare.method", "center": "maps.poincare.center",
    "center_class": "maps.poincare.center_class", "superclasses": "metrics.superclasses",
    "sample": "metrics.sample", "metrics_k": "metrics.k", "seed": "seed",
    "n_clusters": "analysis.n_clusters", "duplicate_threshold": "analysis.duplicate_threshold",
    "top": "analysis.top",
}


def settings_from_flags(config: str | Path | None = None, base: Settings | None = None, **flags: object) -> Settings:
    """Settings from flat option names (see FLAGS); None values mean "not given"."""
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        raise DinoscopeError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}")
    if isinstance(flags.get("maps"), str):
        flags["maps"] = [m.strip() for m in str(flags["maps"]).split(",") if m.strip()]
    return load_settings(config, base=base, **{FLAGS[k]: v for k, v in flags.items()})


def load_settings(path: str | Path | None = None, base: Settings | None = None, **overrides: object) -> Settings:
    """Settings from `base` (or the defaults), then an optional YAML file, then dotted overrides.

    Overrides use dotted names (`model.pool="mean"`); None means "not given" and changes nothing.
    """
    import yaml

    data: dict = base.model_dump(mode="json") if base is not None else {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DinoscopeError(f"cannot read config {path}: {exc}".splitlines()[0]) from None
        if not isinstance(loaded, dict):
            raise DinoscopeError(f"config {path} must be a mapping of sections (source, model, maps, ...)")
        _merge(data, loaded)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise DinoscopeError(f"invalid setting {where}: {err['msg'].removeprefix('Value error, ')}") from None


def _merge(into: dict, new: dict) -> None:
    """Deep-merge `new` into `into` (YAML sections over defaults)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value

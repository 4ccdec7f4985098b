"""Typed settings for every stage; CLI flags and YAML files both map onto `Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import DinoscopeError

MAP_NAMES = ("pca", "tsne", "umap")


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


class MapSettings(_Strict):
    maps: list[str] = Field(default_factory=lambda: list(MAP_NAMES))
    pca: PCASettings = Field(default_factory=PCASettings)
    tsne: TSNESettings = Field(default_factory=TSNESettings)
    umap: UMAPSettings = Field(default_factory=UMAPSettings)


class MetricSettings(_Strict):
    k: int = Field(10, ge=1)
    sample: int = Field(5000, ge=10, description="metrics are exact on a seeded subsample of this size")


class Settings(_Strict):
    """All settings of a run; each stage's cache key is built from the parts it reads."""

    source: SourceSettings = Field(default_factory=SourceSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    neighbors: NeighborSettings = Field(default_factory=NeighborSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    seed: int = 0


def load_settings(path: str | Path | None = None, **overrides: object) -> Settings:
    """Settings from an optional YAML file, then dotted overrides (`model.pool="mean"`)."""
    import yaml

    data: dict = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DinoscopeError(f"cannot read config {path}: {exc}".splitlines()[0])
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
        raise DinoscopeError(f"invalid setting {where}: {err['msg']}")

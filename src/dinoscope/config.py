"""Typed settings for every stage; CLI flags, YAML files and `dinoscope.run(**flags)` all map onto `Settings`.

The maps' settings are not written here: each map's section is derived from its estimator (the defaults of
`__init__`, the rules of `_parameter_constraints`, the help of its docstring's Parameters section), so a map's
defaults and constraints are written once, where the estimator is, and `fit` and the settings check the same
rules. The flat option names (`FLAGS`: the CLI's flags and `dinoscope.run`'s keywords) derive from the sections.
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from .errors import DinoscopeError
from .maps.registry import CONTEXT, DEFAULT_MAPS, MAPS, with_teachers
from .maps.sample import FIT_MAX


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _Derived(_Strict):
    """Settings derived from an estimator: its defaults pass through the same types (30 → 30.0 for a float)."""

    model_config = ConfigDict(validate_default=True)


class SourceSettings(_Strict):
    """Where the images come from (see `dinoscope.sources`)."""

    source: str = Field("digits", description="Dataset name (digits, cifar10), image folder, .txt list of image "
                                              "paths, .npz/.npy images, Parquet of images (path or s3:// URI), or "
                                              ".npy/.npz/.parquet embeddings.")
    split: Literal["train", "test", "all"] = Field("all", description="Which split of the source.")
    strict: bool = Field(False, description="Fail on an unreadable image instead of skipping it.")
    limit: int | None = Field(None, ge=1, description="Use only the first N items.")
    cache_dir: Path | None = Field(None, description="Where datasets are downloaded to / looked for.")
    image_column: str | None = Field(None, description="Parquet source: the column of image bytes or {bytes, path} "
                                                       "structs (the first such column when not given).")
    label_column: str | None = Field(None, description="Parquet source: the label column ('label' when present).")
    id_column: str | None = Field(None, description="Parquet source: the id column ('id' when present).")

    def columns(self):
        """The table columns these settings name (see `sources.tables.Columns`)."""
        from .sources.tables import Columns

        return Columns(self.image_column, self.label_column, self.id_column)


class ModelSettings(_Strict):
    """Which backbone, which weights, and how to run it."""

    model: str = Field("dinov2-vits14", description="Alias (see `dinoscope models`) or any timm name.")
    weights: Path | None = Field(None, description="Local checkpoint (.safetensors/.pth) for offline use.")
    random_weights: bool = Field(False, description="Untrained backbone (tests, offline demos); said on every result.")
    pool: Literal["cls", "mean", "cls+mean"] = Field("cls", description="How tokens become one vector per image.")
    resolution: int | None = Field(None, ge=14, description="Input size in pixels (the model's own when not given).")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 where the hardware has it.")
    batch_size: int = Field(64, ge=1, description="Images per forward pass.")
    compile: bool | None = Field(None, description="torch.compile the backbone (default: on CUDA, where it pays; "
                                                   "--compile on the CPU too, --no-compile never).")
    device: str = Field("auto", description="auto | cpu | cuda[:N].")
    threads: int | None = Field(None, ge=1, description="CPU threads for inference (physical cores when not given).")
    shard_size: int = Field(1024, ge=1, description="Images per resumable shard.")
    engine: Literal["local", "ray"] = Field("local", description="local: this process; ray: Ray Data on a local "
                                            "instance or the cluster at --ray-address (pip install 'dinoscope[ray]').")
    ray_address: str | None = Field(None, description="Ray cluster to join (ray://host:10001, host:6379 or auto); a "
                                                      "local instance is started when not given.")
    ray_workers: int | None = Field(None, ge=1, description="Ray engine: model actors (one per GPU, or as many as "
                                                            "the CPUs allow, when not given).")


class NeighborSettings(_Strict):
    """The shared kNN graph: computed once, reused by maps, metrics and analyses."""

    k: int = Field(90, ge=2, description="Neighbours per point in the shared kNN graph.")
    metric: Literal["cosine", "euclidean"] = Field("cosine", description="Embedding-space distance.")
    method: Literal["auto", "exact", "approx"] = Field(
        "auto", description="auto: exact up to exact_max points, faiss HNSW above.")
    exact_max: int = Field(20000, ge=1, description="Largest n searched exactly under method auto.")


class MetricSettings(_Strict):
    """Faithfulness figures of every map."""

    k: int = Field(10, ge=1, description="Neighbourhood size of the figures.")
    sample: int = Field(5000, ge=10, description="Figures are exact on a seeded subsample of this size.")
    superclasses: Path | None = Field(None, description="YAML/JSON mapping class → superclass; adds the disk's "
                                                        "10-NN superclass accuracy.")


class AnalysisSettings(_Strict):
    """Clusters, outliers, near-duplicates and label issues on the shared graph (see `dinoscope.analysis`)."""

    n_clusters: int | None = Field(None, ge=2, description="k-means k (the number of labels, else 10, when not "
                                                           "given).")
    duplicate_threshold: float | None = Field(None, gt=0, le=1, description="A fixed cosine similarity above which "
                                              "images are semantic duplicates, instead of the test set from the data "
                                              "(a pair far closer than both images' ordinary neighbours).")
    top: int = Field(24, ge=1, description="How many outliers / label issues the report shows.")
    cluster_max: int = Field(FIT_MAX, ge=0, description="Most points the clusters (HDBSCAN, k-means) are fitted on: "
                                                        "above it, on a seeded sample of this many, every other point "
                                                        "taking the cluster of its nearest sampled points (0: all).")


# --------------------------------------------------------------------------- settings derived from an estimator

def _annotation(constraints: list) -> Any:
    """The Python type that a scikit-learn parameter constraint list admits (for pydantic and the CLI)."""
    kinds: list = []
    for c in constraints:
        if c is None:
            kinds.append(type(None))
        elif c == "boolean" or c is bool:
            kinds.append(bool)
        elif hasattr(c, "options"):  # StrOptions
            kinds.append(Literal[tuple(sorted(c.options))])
        elif hasattr(c, "closed"):  # Interval
            kinds.append(int if c.type is Integral else float)
        elif c is Integral or c is int:
            kinds.append(int)
        elif c is Real or c is float:
            kinds.append(float)
        elif c is str:
            kinds.append(str)
        else:
            raise TypeError(f"no settings type for the constraint {c!r}")
    out = kinds[0]
    for kind in kinds[1:]:
        out = out | kind
    return out


def parameter_docs(doc: str | None) -> dict[str, str]:
    """Parameter name → its description, from a numpydoc "Parameters" section."""
    lines = inspect.cleandoc(doc or "").splitlines()
    if "Parameters" not in lines:
        return {}
    out: dict[str, str] = {}
    name = None
    for line in lines[lines.index("Parameters") + 2:]:
        if not line.strip():
            continue
        if not line.startswith(" "):
            if " : " not in line:
                break  # the next section
            name = line.split(" : ")[0].strip()
            out[name] = ""
        elif name is not None:
            out[name] = f"{out[name]} {line.strip()}".strip()
    return out


def _none_from_text(value: object) -> object:
    """"none" (from a flag or YAML) means None for settings that admit it."""
    return None if isinstance(value, str) and value.lower() == "none" else value


def estimator_settings(cls: type) -> type[BaseModel]:
    """A pydantic model of an estimator's settings: every `__init__` parameter but the run's context
    (random_state, verbose, metric), typed and checked by the estimator's own `_parameter_constraints`."""
    from sklearn.utils._param_validation import validate_parameter_constraints

    docs = parameter_docs(cls.__doc__)
    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.name not in CONTEXT]
    constraints = {p.name: cls._parameter_constraints[p.name] for p in params}
    fields = {p.name: (_annotation(constraints[p.name]), Field(p.default, description=docs.get(p.name)))
              for p in params}
    optional = [name for name, cons in constraints.items() if None in cons]

    def check(self):
        validate_parameter_constraints(constraints, dict(self), caller_name=cls.__name__)
        return self

    validators: dict = {"_constraints": model_validator(mode="after")(check)}
    if optional:
        validators["_none"] = field_validator(*optional, mode="before")(lambda value: _none_from_text(value))
    return create_model(f"{cls.__name__}Settings", __base__=_Derived, __validators__=validators,
                        __doc__=inspect.cleandoc(cls.__doc__ or "").splitlines()[0], **fields)


def _known_maps(maps: list[str]) -> list[str]:
    """Known names, each once, every learned map's teacher added before it."""
    try:
        return with_teachers(maps)
    except DinoscopeError as exc:
        raise ValueError(str(exc)) from None


MapSettings = create_model(
    "MapSettings", __base__=_Strict, __doc__="Which maps to fit, and each map's settings (from its estimator).",
    __validators__={"_known": field_validator("maps")(lambda maps: _known_maps(maps))},
    maps=(list[str], Field(default_factory=lambda: list(DEFAULT_MAPS), min_length=1,
                           description=f"Comma-separated maps, of {', '.join(MAPS)} (a learned param_* map "
                                       "brings its teacher).")),
    fit_max=(int, Field(FIT_MAX, ge=0, description="Most points t-SNE, UMAP and the disk are fitted on: above it, "
                                                   "on a seeded sample of this many, the rest placed among their "
                                                   "nearest sampled points (0: fit them all).")),
    **{name: ((model := estimator_settings(spec.estimator_class())), Field(default_factory=model))
       for name, spec in MAPS.items()},
)


class Settings(_Strict):
    """All settings of a run; each stage's cache key is built from the parts it reads."""

    source: SourceSettings = Field(default_factory=SourceSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    neighbors: NeighborSettings = Field(default_factory=NeighborSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
    metrics: MetricSettings = Field(default_factory=MetricSettings)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    seed: int = Field(0, description="Seed for every random choice.")


# --------------------------------------------------------------------------- flat option names

SECTIONS = ("source", "model", "neighbors", "metrics", "analysis")  # sections whose fields get plain names


def _flags() -> dict[str, str]:
    """Flat option names → dotted setting paths: a section's fields by their own names (prefixed with the
    section on a clash: metrics_k), every map parameter as <map>_<param> plus its registry short flags, seed."""
    flags: dict[str, str] = {}
    for section in SECTIONS:
        for field in Settings.model_fields[section].annotation.model_fields:
            flags[field if field not in flags else f"{section}_{field}"] = f"{section}.{field}"
    flags["maps"] = "maps.maps"
    flags["fit_max"] = "maps.fit_max"
    for name, spec in MAPS.items():
        for field in MapSettings.model_fields[name].annotation.model_fields:
            flags[f"{name}_{field}"] = f"maps.{name}.{field}"
        for field in spec.flags:
            if field in flags:
                raise RuntimeError(f"map {name}'s short flag {field} is taken by {flags[field]}")
            flags[field] = f"maps.{name}.{field}"
    flags["seed"] = "seed"
    return flags


FLAGS = _flags()


def field_info(dotted: str):
    """The pydantic field behind a dotted setting path (its type, default and description)."""
    model: type[BaseModel] = Settings
    *parents, leaf = dotted.split(".")
    for part in parents:
        model = model.model_fields[part].annotation
    return model.model_fields[leaf]


def settings_from_flags(config: str | Path | None = None, base: Settings | None = None, **flags: object) -> Settings:
    """Settings from flat option names (see FLAGS); None values mean "not given"."""
    unknown = sorted(set(flags) - set(FLAGS))
    if unknown:
        named = ", ".join(name if name.isprintable() else repr(name) for name in unknown)  # one line, whatever it is
        raise DinoscopeError(f"unknown setting(s) {named}; known: {', '.join(FLAGS)}")
    if isinstance(flags.get("maps"), str):
        flags["maps"] = [m.strip() for m in str(flags["maps"]).split(",") if m.strip()]
    return load_settings(config, base=base, **{FLAGS[k]: v for k, v in flags.items()})


def load_settings(path: str | Path | None = None, base: Settings | None = None, **overrides: object) -> Settings:
    """Settings from `base` (or the defaults), then an optional YAML file, then dotted overrides.

    Overrides use dotted names (`model.pool="mean"`); None means "not given" and changes nothing.
    Whatever the file holds, the result is Settings or a one-line DinoscopeError.
    """
    import yaml

    def where_of(loc) -> str:
        """A dotted setting path for messages: odd names (line breaks, spaces, numbers) quoted, on one line."""
        return ".".join(p if isinstance(p, str) and p.isprintable() and p.strip() == p and p else repr(p)
                        for p in loc)

    data: dict = base.model_dump(mode="json") if base is not None else {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, ValueError, RecursionError) as exc:
            # ValueError: not UTF-8, or a tagged value yaml cannot build (2001-02-30, !!int abc)
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DinoscopeError(f"cannot read config {path}: {reason}; write it as a YAML mapping of sections "
                                 "(source, model, maps, ...)") from None
        if loaded is None:  # an empty file
            loaded = {}
        if not isinstance(loaded, dict):
            raise DinoscopeError(f"config {path} must be a mapping of sections (source, model, maps, ...), "
                                 f"found {type(loaded).__name__}")
        _merge(data, loaded)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):  # a YAML section set to a value (model: 5), or a leaf (seed.x)
                where = where_of(parents[: depth + 1])
                found = "nothing" if node is None else f"{type(node).__name__} {node!r}"[:60]
                raise DinoscopeError(f"invalid setting {where}: expected a mapping of settings, found {found}; "
                                     f"give {where} as a mapping (or leave it out of the config)")
        node[leaf] = value
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = where_of(err["loc"]) or "(all)"
        message = " ".join(err["msg"].removeprefix("Value error, ").split()) or err["type"]
        raise DinoscopeError(f"invalid setting {where}: {message}") from None


def _merge(into: dict, new: dict) -> None:
    """Deep-merge `new` into `into` (YAML sections over defaults)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value

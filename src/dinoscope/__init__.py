"""dinoscope: DINO embeddings of an image collection, faithful maps of them, and the figures to trust them.

A notebook needs only this module::

    import dinoscope
    result = dinoscope.run(source="digits", model="dinov2-vits14", random_weights=True, out="runs/digits")
    result.maps["tsne"], result.metrics["maps"]["tsne"]["trustworthiness"]

Everything is imported on first use (scikit-learn, torch, timm, umap), so `import dinoscope` stays fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .errors import DinoscopeError

__version__ = "0.1.0"

_LAZY = {
    "Settings": "config",
    "load_settings": "config",
    "settings_from_flags": "config",
    "RunResult": "rundir.results",
    "load_run": "rundir.results",
    "load_source": "sources",
    "Dataset": "sources.base",
    "build_backbone": "embed.backbones",
    "list_models": "embed.backbones",
    "extract": "embed.extract",
    "knn_graph": "neighbors",
    "KNNGraph": "neighbors",
    "MAPS": "maps",
    "PCAMap": "maps",
    "TSNEMap": "maps",
    "UMAPMap": "maps",
    "PoincareMap": "maps",
    "ParametricUMAP": "maps",
    "ParametricTSNE": "maps",
    "ParametricPoincare": "maps",
    "map_metrics": "metrics.faithfulness",
    "analyze": "analysis",
    "SimilarityIndex": "analysis",
    "search": "query.search",
    "place": "query.place",
    "export_run": "deploy.export",
    "load_exported": "deploy.export",
    "create_app": "deploy.service",
    "prepare_viewer": "viewer.data",
    "create_viewer_app": "viewer.app",
    "show": "viewer.notebook",
    "open_run": "rundir.access",
    "RunModel": "rundir.model",
    "build_map": "pipeline",
    "run_pipeline": "pipeline",
    "extract_stage": "pipeline",
    "neighbors_stage": "pipeline",
    "maps_stage": "pipeline",
    "metrics_stage": "pipeline",
    "analyze_stage": "pipeline",
    "plot_stage": "pipeline",
    "report_stage": "pipeline",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'dinoscope' has no attribute {name!r}")


def run(out: str | Path = "runs/default", *, config: str | Path | None = None, progress: bool = True,
        **flags: object):
    """Run every stage into `out` and load the result (a `RunResult`); keyword names are the CLI's flags
    (see config.FLAGS)."""
    from .config import settings_from_flags
    from .pipeline import run_pipeline
    from .rundir.results import load_run

    run_pipeline(out, settings_from_flags(config, **flags), progress=progress)
    return load_run(out)


__all__ = ["DinoscopeError", "run", *_LAZY]

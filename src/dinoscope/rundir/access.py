"""Opening a run: its directory with the settings it was made with, and its images by row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import Settings
from ..console import warn
from ..errors import DinoscopeError
from .directory import RunDir


def open_run(out: str | Path, settings: Settings | None = None, *, create: bool = True) -> tuple[RunDir, Settings]:
    """Open (or create) a run directory; `settings` replace the stored ones, else the stored ones are used."""
    run = RunDir(out, create=create)
    if settings is None:
        stored = run.manifest.get("settings")
        settings = Settings.model_validate(stored) if stored else Settings()
    run.manifest["settings"] = settings.model_dump(mode="json")
    return run, settings


def image_reader(run: RunDir, settings: Settings, ids: list[str]) -> Callable[[int], np.ndarray] | None:
    """A reader of the run's images by row of embeddings.parquet, or None when the images cannot be had
    (precomputed vectors, or a source that moved): what needs pixels is then skipped."""
    from ..sources import load_source

    extracted = run.stage("extract") or {}
    if "model" in extracted and extracted["model"] is None:
        return None  # precomputed vectors (the extract stage says so): no images, and no source to load for it
    src = settings.source
    try:
        dataset = load_source(src.source, split=src.split, cache_dir=src.cache_dir, columns=src.columns())
    except DinoscopeError as exc:
        warn(f"images unavailable ({exc}); analyses that need pixels are skipped")
        return None
    if dataset.read is None:
        return None
    position = {ident: i for i, ident in enumerate(dataset.ids)}
    if any(i not in position for i in ids):
        warn(f"the source {src.source} no longer holds every embedded image; analyses that need pixels are skipped")
        return None
    rows = [position[i] for i in ids]
    return lambda row: dataset.read(rows[row])

"""The image grids of the analyses for the report: outliers, near-duplicates, label issues, cluster medoids."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..rundir import artifacts
from ..rundir.artifacts import Embeddings
from ..rundir.directory import RunDir
from .grids import image_grid

MAX_CELLS = 48


def _grid(run: RunDir, name: str, rows: list[int], captions: list[str], read: Callable[[int], np.ndarray]) -> str:
    """One grid PNG under plots/analysis/; returns its path relative to the run directory."""
    rel = artifacts.plot_file(f"analysis/{name}")
    image_grid([read(r) for r in rows[:MAX_CELLS]], captions[:MAX_CELLS], run.file(rel), cols=8)
    return rel


def write_grids(run: RunDir, summary: dict, emb: Embeddings, read: Callable[[int], np.ndarray]) -> dict[str, str]:
    """Draw every grid the summary calls for; {analysis: relative path}."""
    row = {ident: i for i, ident in enumerate(emb.ids)}
    label = (lambda i: emb.labels[i] or "") if emb.labels else (lambda i: "")
    grids: dict[str, str] = {}
    top = summary["outliers"]["top"]
    if top:
        grids["outliers"] = _grid(run, "outliers", [row[i] for i in top], [f"{i} {label(row[i])}" for i in top], read)
    members = [ident for group in summary["duplicates"]["groups"] for ident in group]
    if members:
        grids["duplicates"] = _grid(run, "duplicates", [row[i] for i in members], members, read)
    issues = (summary.get("label_issues") or {}).get("top", [])
    if issues:
        grids["label_issues"] = _grid(run, "label_issues", [row[x["id"]] for x in issues],
                                      [f"{x['label']}→{x['suggested']}" for x in issues], read)
    medoids = [(c, ids[0]) for c, ids in summary["hdbscan"]["medoids"].items() if ids]
    if medoids:
        grids["clusters"] = _grid(run, "clusters", [row[i] for _, i in medoids],
                                  [f"cluster {c}" for c, _ in medoids], read)
    return grids

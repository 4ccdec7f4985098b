"""Similarity search over a run's embeddings: by image file, by id or by vector, with the run's own backbone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Settings
from ..errors import DinoscopeError
from ..rundir import artifacts
from ..rundir.access import image_reader, open_run
from ..rundir.directory import RunDir
from ..rundir.model import RunModel


@dataclass
class Hit:
    """One search result."""

    rank: int
    id: str
    similarity: float
    label: str | None
    source: str


def search(run_dir: str | Path, *, image: str | Path | np.ndarray | None = None, id: str | None = None,
           vector: np.ndarray | None = None, k: int = 12, grid: str | Path | None = None) -> list[Hit]:
    """The k most similar images of a run to one query (exactly one of image, id, vector).

    `image` is a file or an already decoded (H, W, 3) uint8 array. With `grid`, a grid image of the hits (the
    query image first) is written there too, when the run's images can still be read.
    """
    from ..analysis import SimilarityIndex, read_image

    if sum(q is not None for q in (image, id, vector)) != 1:
        raise DinoscopeError("give exactly one query: an image file, an id or a vector")
    run, settings = open_run(run_dir, create=False)
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    index = SimilarityIndex(emb.vectors, emb.ids, seed=settings.seed)
    picture = None
    if id is not None:
        rows, sims = index.search_ids(id, k)
    elif vector is not None:
        rows, sims = index.search(np.asarray(vector, np.float32), k)
    else:
        picture = image if isinstance(image, np.ndarray) else read_image(image)
        rows, sims = index.search_images([picture], RunModel(run, settings).embed, k)
    hits = to_hits(emb, rows[0], sims[0])
    if grid is not None:
        _write_grid(run, settings, emb.ids, rows[0].tolist(), hits, grid, picture)
    return hits


def to_hits(emb: artifacts.Embeddings, rows: np.ndarray, sims: np.ndarray) -> list[Hit]:
    """One query's result rows and similarities (best first) as Hits."""
    return [Hit(rank + 1, emb.ids[r], float(s), emb.labels[r] if emb.labels else None, emb.origins[r])
            for rank, (r, s) in enumerate(zip(rows.tolist(), sims.tolist(), strict=True))]


def _write_grid(run: RunDir, settings: Settings, ids: list[str], rows: list[int], hits: list[Hit], path: str | Path,
                query: np.ndarray | None) -> None:
    """The hits as a grid image (query first when it is an image); skipped when the images cannot be read."""
    from ..render.grids import image_grid

    read = image_reader(run, settings, ids)
    if read is None:
        return
    images = ([query] if query is not None else []) + [read(r) for r in rows]
    captions = (["query"] if query is not None else []) + [f"{h.similarity:.3f} {h.label or ''}" for h in hits]
    image_grid(images, captions, path, cols=min(len(images), 7))

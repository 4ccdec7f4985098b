"""Thumbnail atlases for the viewer: every image of a run as a small square, packed into PNGs of at most 4096 px a side.

Cell i of the run lives in atlas i // per_atlas, at column (i % per_atlas) % cols and row (i % per_atlas) // cols;
the viewer loads an atlas only when it first shows one of its images.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..console import progress_bar
from ..errors import DinoscopeError
from ..render.grids import thumbnail
from ..rundir.directory import atomic_path, write_json

MAX_SIDE = 4096
INDEX = "index.json"


def atlas_layout(n: int, size: int, max_side: int = MAX_SIDE) -> dict:
    """Cells per atlas row, cells per atlas and the number of atlases for n thumbnails of size x size pixels."""
    if not 8 <= size <= max_side:
        raise DinoscopeError(f"thumbnail size must be 8..{max_side} pixels, got {size}")
    cols = max_side // size
    per_atlas = cols * cols
    return {"size": size, "cols": cols, "per_atlas": per_atlas, "count": n, "atlases": -(-n // per_atlas)}


def _cell(image: np.ndarray, size: int) -> Image.Image:
    """The image fitted and centred in a size x size cell on a neutral background."""
    small = thumbnail(image, size)
    cell = Image.new("RGB", (size, size), (32, 32, 32))
    cell.paste(small, ((size - small.width) // 2, (size - small.height) // 2))
    return cell


def write_atlases(out: Path, read: Callable[[int], np.ndarray], n: int, size: int, key: str,
                  progress: bool = True) -> dict:
    """Draw n thumbnails (read(row) -> uint8 image) into out/atlas_NNN.png and out/index.json; returns the index."""
    layout = atlas_layout(n, size)
    cols, per_atlas = layout["cols"], layout["per_atlas"]
    files = []
    bar = progress_bar("thumbnails", enabled=progress)
    with bar:
        task = bar.add_task("thumbs", total=n)
        for a in range(layout["atlases"]):
            rows = range(a * per_atlas, min(n, (a + 1) * per_atlas))
            height = -(-len(rows) // cols) * size
            atlas = Image.new("RGB", (min(len(rows), cols) * size, height), (32, 32, 32))
            for j, row in enumerate(rows):
                atlas.paste(_cell(read(row), size), ((j % cols) * size, (j // cols) * size))
                bar.advance(task)
            name = f"atlas_{a:03d}.png"
            with atomic_path(out / name) as tmp:
                atlas.save(tmp, format="PNG", optimize=False)
            files.append(name)
    index = {"key": key, **layout, "files": files}
    write_json(out / INDEX, index)
    return index


def read_index(out: Path) -> dict | None:
    """The atlases' index when it is whole and every atlas it names exists, else None."""
    try:
        index = json.loads((out / INDEX).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return index if all((out / f).is_file() for f in index.get("files", [])) else None

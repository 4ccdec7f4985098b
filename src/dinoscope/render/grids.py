"""Captioned image grids (PNG) for the report's findings and `dinoscope search` output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import DinoscopeError
from ..rundir.directory import atomic_path
from ..sources.pixels import to_rgb

_PAD = 4


def short_caption(text: object, max_chars: int = 18) -> str:
    """A caption that the bitmap font can draw on one line: printable ASCII only (others escaped), ellipsised."""
    flat = str(text).encode("ascii", "backslashreplace").decode("ascii")
    flat = "".join(ch if ch.isprintable() else " " for ch in flat)
    return flat if len(flat) <= max_chars else flat[:max_chars - 3] + "..."


def thumbnail(image: np.ndarray, size: int) -> Image.Image:
    """The image fitted into a size x size square (nearest-neighbour when enlarging, so tiny images stay crisp)."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise DinoscopeError(f"grid images must be uint8 (H, W) or (H, W, C) arrays, got {pixels.dtype} {pixels.shape}")
    img = Image.fromarray(to_rgb(pixels))
    scale = size / max(img.size)
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), resample)


def image_grid(images: list[np.ndarray], captions: list[str], path: str | os.PathLike, cols: int = 8,
               thumb: int = 96) -> Path:
    """Write the images as a grid of captioned thumbnails to a PNG at `path`, atomically; returns the path."""
    if not images:
        raise DinoscopeError("an image grid needs at least one image")
    if len(captions) != len(images):
        raise DinoscopeError(f"got {len(captions)} captions for {len(images)} images")
    if cols < 1 or thumb < 8:
        raise DinoscopeError(f"need cols >= 1 and thumb >= 8 pixels, got cols={cols}, thumb={thumb}")
    font = ImageFont.load_default()
    line = 12
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    cell_w, cell_h = thumb + 2 * _PAD, thumb + 2 * _PAD + line
    canvas = Image.new("RGB", (cols * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, caption) in enumerate(zip(images, captions, strict=True)):
        x, y = (i % cols) * cell_w + _PAD, (i // cols) * cell_h + _PAD
        small = thumbnail(image, thumb)
        canvas.paste(small, (x + (thumb - small.width) // 2, y + (thumb - small.height) // 2))
        draw.text((x, y + thumb + 1), short_caption(caption, max_chars=max(4, thumb // 6)), fill="black", font=font)
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path

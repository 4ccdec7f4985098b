"""A folder of image files (searched recursively), labelled by first-level sub-folder when there are any."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import DinoscopeError
from ..hashing import fingerprint
from .base import Dataset, UnreadableImage
from .pixels import to_rgb
from .reasons import one_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def load_folder(root: Path) -> Dataset:
    """Every image under `root` in sorted relative-path order; ids are those relative POSIX paths."""
    rels = list_images(root)
    if not rels:
        raise DinoscopeError(
            f"{root} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)} in it and its sub-folders); "
            "point the source at a folder of images"
        )
    labels = [rel.split("/", 1)[0] for rel in rels] if all("/" in rel for rel in rels) else None
    # Names, sizes and modification times: changes when a file does, without reading any pixel.
    stamps = [[rel, st.st_size, st.st_mtime_ns] for rel in rels for st in [(root / rel).stat()]]
    base = root.absolute()
    return Dataset(
        name=base.name,
        ids=rels,
        origins=[str(base / rel) for rel in rels],
        labels=labels,
        splits=None,
        fingerprint=fingerprint(["folder", stamps]),
        read=lambda i: decode(root / rels[i], rels[i]),
        classes=sorted(set(labels)) if labels else None,
    )


def list_images(root: Path) -> list[str]:
    """Relative POSIX paths of the image files under `root`, sorted; hidden files and folders are skipped."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [
            Path(folder, f).relative_to(root).as_posix()
            for f in files
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found)


def decode(path: Path, rel: str) -> np.ndarray:
    """An image file as upright (H, W, 3) uint8 RGB; any decoding failure becomes `UnreadableImage`."""
    try:
        with Image.open(path) as img:
            return to_rgb(_eight_bit(ImageOps.exif_transpose(img)))
    except Exception as exc:  # PIL raises many types on bad files (OSError, SyntaxError, bomb errors, ...)
        raise UnreadableImage(f"{rel}: {one_line(exc)}") from exc


def _eight_bit(img: Image.Image) -> np.ndarray:
    """Pixels as uint8 grey, RGB or RGBA: 16-bit scaled down, palettes and CMYK converted, alpha kept."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        values = np.asarray(img, dtype=np.float32)
        if img.mode != "F":
            values = values / 257  # the 16-bit range 0..65535 onto 0..255
        return np.clip(np.round(values), 0, 255).astype(np.uint8)
    if img.has_transparency_data:
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img if img.mode in ("L", "RGB") else img.convert("RGB"))

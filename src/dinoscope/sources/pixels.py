"""uint8 pixels to the backbone's (H, W, 3) RGB: grey repeated, alpha composited on white."""

from __future__ import annotations

import numpy as np


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 -> fresh (H, W, 3) uint8: every source alike.

    Always a new array: a caller may write into it without touching the source (or a read-only memory map).
    """
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = pixels.shape[-1]
    if channels == 1:
        return np.repeat(pixels, 3, axis=-1)
    if channels == 4:
        # Transparent pixels show the white page they would be seen on, not whatever colour they hide.
        alpha = pixels[..., 3:].astype(np.uint16)
        blended = pixels[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127
        return (blended // 255).astype(np.uint8)
    return np.array(pixels, order="C")

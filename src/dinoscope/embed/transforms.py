"""Decoded images -> the backbone's input: one float resize shared by extraction and the exported model."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .backbones import Backbone


def resize(batch: Tensor, resolution: int) -> Tensor:
    """(B, 3, H, W) uint8 -> (B, 3, R, R) float in 0..255: antialiased bicubic, width then height, each pass
    clamped to 0..255 like PIL's 8-bit passes (within one grey level of PIL, which also rounds).

    Plain float operations with no shape-dependent branch, so eager extraction, TorchScript and ONNX Runtime
    (export.py) compute the same pixels; rounding between passes would turn their last-bit float differences
    into whole grey levels.
    """
    x = F.interpolate(batch.float(), size=(batch.shape[-2], resolution), mode="bicubic", antialias=True,
                      align_corners=False).clamp(0, 255)
    x = F.interpolate(x, size=(resolution, resolution), mode="bicubic", antialias=True, align_corners=False)
    return x.clamp(0, 255)


def preprocess(batch_uint8: Tensor, backbone: Backbone) -> Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, R, R) float normalised: `resize` to the backbone's resolution, then mean/std."""
    x = resize(batch_uint8.permute(0, 3, 1, 2), backbone.resolution)
    mean = torch.tensor(backbone.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def preprocess_images(images: list[np.ndarray], backbone: Backbone) -> Tensor:
    """Preprocess decoded images: one batched resize when shapes agree, else per image then stack."""
    if all(im.shape == images[0].shape for im in images):
        return preprocess(torch.from_numpy(np.stack(images)), backbone)
    return torch.cat([preprocess(torch.from_numpy(im)[None], backbone) for im in images])

"""The deployable feature extractor: uint8 images in, the run's embeddings and learned-map coordinates out.

One nn.Module holds the whole path a production caller needs (resize and normalise exactly as extraction does,
the backbone, its pooling, then each learned map), so TorchScript, ONNX and the Triton repository are all
exports of this one module and compute what the run computed, in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import Settings
from ..embed.backbones import Backbone
from ..embed.transforms import preprocess
from ..rundir.directory import RunDir

INPUT = "images"
EMBEDDINGS = "embeddings"


class ExportModel(nn.Module):
    """uint8 images (N, H, W, 3), any H and W → (embeddings (N, D), one (N, 2) tensor per learned map), fp32."""

    def __init__(self, backbone: Backbone, maps: dict[str, nn.Module]):
        super().__init__()
        self.net = backbone.model  # registered here so that export sees its weights
        self.backbone = backbone
        self.maps = nn.ModuleDict(maps)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        emb = self.backbone.embed(preprocess(images, self.backbone))
        return (emb, *(m.forward(emb) for m in self.maps.values()))


@dataclass(frozen=True)
class Signature:
    """What the exported model takes and returns: names in output order, the embedding width, run facts."""

    outputs: tuple[str, ...]
    embed_dim: int
    resolution: int
    model: str
    random_weights: bool

    @property
    def maps(self) -> tuple[str, ...]:
        """The learned maps among the outputs."""
        return self.outputs[1:]

    def output_dims(self) -> dict[str, int]:
        """Width of each output (embeddings: D, maps: 2), batch dimension left out."""
        return {name: self.embed_dim if name == EMBEDDINGS else 2 for name in self.outputs}


def build_export_model(run: RunDir, settings: Settings) -> tuple[ExportModel, Signature]:
    """The run's backbone and learned maps as one fp32 CPU module in eval mode, and its signature."""
    from ..rundir.model import RunModel

    rebuilt = RunModel(run, settings, device="cpu")
    backbone, maps = rebuilt.backbone, rebuilt.maps
    model = ExportModel(backbone, maps).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    sig = Signature((EMBEDDINGS, *maps), backbone.embed_dim, backbone.resolution, backbone.name,
                    backbone.random_weights)
    return model, sig


def example_images(sig: Signature, n: int = 2, seed: int = 0) -> Tensor:
    """Random uint8 images of a size other than the model's resolution, to trace and to check exports with."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, sig.resolution + 13, sig.resolution + 7, 3), dtype=torch.uint8, generator=g)

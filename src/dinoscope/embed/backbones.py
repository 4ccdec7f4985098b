"""Backbones: short aliases to timm models, built with hub, local-file or random weights.

A `Backbone` holds the model in eval mode plus what preprocessing and pooling need
(resolution, mean/std, pool), and `embed` turns a normalised batch into one vector per image.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import timm
import torch
from torch import Tensor, nn

from ..errors import DinoscopeError

Pool = Literal["cls", "mean", "cls+mean"]
POOLS = ("cls", "mean", "cls+mean")
DEFAULT_RESOLUTION = 224

ALIASES: dict[str, str] = {
    "dino-vits16": "vit_small_patch16_224.dino",
    "dino-vitb16": "vit_base_patch16_224.dino",
    "dino-vits8": "vit_small_patch8_224.dino",
    "dino-vitb8": "vit_base_patch8_224.dino",
    "dinov2-vits14": "vit_small_patch14_dinov2.lvd142m",
    "dinov2-vitb14": "vit_base_patch14_dinov2.lvd142m",
    "dinov2-vitl14": "vit_large_patch14_dinov2.lvd142m",
    "dinov2-vitg14": "vit_giant_patch14_dinov2.lvd142m",
    "dinov2-vits14-reg": "vit_small_patch14_reg4_dinov2.lvd142m",
    "dinov2-vitb14-reg": "vit_base_patch14_reg4_dinov2.lvd142m",
    "dinov2-vitl14-reg": "vit_large_patch14_reg4_dinov2.lvd142m",
    "dinov2-vitg14-reg": "vit_giant_patch14_reg4_dinov2.lvd142m",
    "dinov3-vits16": "vit_small_patch16_dinov3.lvd1689m",
    "dinov3-vits16plus": "vit_small_plus_patch16_dinov3.lvd1689m",
    "dinov3-vitb16": "vit_base_patch16_dinov3.lvd1689m",
    "dinov3-vitl16": "vit_large_patch16_dinov3.lvd1689m",
    "dinov3-vith16plus": "vit_huge_plus_patch16_dinov3.lvd1689m",
    "dinov3-vit7b16": "vit_7b_patch16_dinov3.lvd1689m",
}



@dataclass
class Backbone:
    """A ready-to-run feature extractor and the settings its inputs and outputs follow."""

    name: str
    alias: str
    model: nn.Module
    embed_dim: int
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    pool: Pool
    weights: str
    random_weights: bool

    def embed(self, x: Tensor) -> Tensor:
        """Pooled features of a normalised (B, 3, R, R) batch: cls token, mean patch token, or both."""
        tokens = self.model.forward_features(x)
        return pool_tokens(tokens, self.pool, self.model.num_prefix_tokens)


def pool_tokens(tokens: Tensor, pool: Pool, num_prefix: int) -> Tensor:
    """Pool (B, T, D) tokens; 'mean' averages patch tokens only (no cls, no registers)."""
    if pool == "cls":
        return tokens[:, 0]
    patch_mean = tokens[:, num_prefix:].mean(dim=1)
    if pool == "mean":
        return patch_mean
    return torch.cat([tokens[:, 0], patch_mean], dim=1)


def list_models() -> list[tuple[str, str]]:
    """(alias, timm name) for every alias, for `dinoscope models`."""
    return list(ALIASES.items())


def resolve(name: str) -> tuple[str, str]:
    """(alias, timm name) for an alias or a timm name; a DinoscopeError with suggestions otherwise."""
    if name in ALIASES:
        return name, ALIASES[name]
    known = name in timm.list_pretrained() if "." in name else timm.is_model(name)
    if known:
        return "", name
    close = difflib.get_close_matches(name, [*ALIASES, *timm.list_pretrained()], n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DinoscopeError(
        f"unknown model '{name}'; {hint}aliases: {', '.join(ALIASES)} (or any timm model name)"
    )


def build_backbone(
    name: str,
    *,
    weights: Path | str | None = None,
    random_weights: bool = False,
    pool: Pool = "cls",
    resolution: int | None = None,
    seed: int = 0,
) -> Backbone:
    """Build a backbone in eval mode from an alias or timm name, with hub, local or random weights.

    Random weights are drawn from `seed` alone (the global RNG is left untouched), so a random-weights run is
    reproducible and search or placing later rebuilds the very same network.
    """
    if pool not in POOLS:
        raise DinoscopeError(f"unknown pool '{pool}'; choose one of {', '.join(POOLS)}")
    if weights is not None and random_weights:
        raise DinoscopeError("--weights and --random-weights exclude each other; pass only one")
    alias, timm_name = resolve(name)
    res = resolution or DEFAULT_RESOLUTION
    if weights is not None:
        model = _from_file(timm_name, res, Path(weights))
        source = str(weights)
    elif random_weights:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _create(timm_name, res, pretrained=False)
        source = "random"
    else:
        model = _create_from_hub(timm_name, res)
        source = "hub"
    _check_vit(model, timm_name, res, pool)
    cfg = model.pretrained_cfg
    width = model.num_features * (2 if pool == "cls+mean" else 1)
    return Backbone(
        name=timm_name,
        alias=alias,
        model=model.eval(),
        embed_dim=width,
        resolution=res,
        mean=tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225))),
        pool=pool,
        weights=source,
        random_weights=random_weights,
    )


def _create(timm_name: str, res: int, *, pretrained: bool) -> nn.Module:
    """A timm model at `res` px with no classifier head."""
    return timm.create_model(timm_name, pretrained=pretrained, num_classes=0, img_size=res)


def _from_file(timm_name: str, res: int, weights: Path) -> nn.Module:
    """The model with a local checkpoint in any layout `checkpoints` reads (read first, so a bad file fails fast)."""
    from .checkpoints import (
        check_transformers_config,
        checkpoint_file,
        drop_zero_qkv_bias,
        layout,
        read_checkpoint,
        transformers_to_meta,
    )

    path, config = checkpoint_file(weights)
    state = read_checkpoint(path)
    kind = layout(state)
    model = _create(timm_name, res, pretrained=False)
    if kind == "transformers":
        check_transformers_config(config, model, path)
        state = transformers_to_meta(state)
    load_weights(model, drop_zero_qkv_bias(state, model, path), path)
    return model


def _create_from_hub(timm_name: str, res: int) -> nn.Module:
    """Download (or take from the local cache) pretrained weights; a clear error when offline."""
    try:
        return _create(timm_name, res, pretrained=True)
    except OSError as exc:  # huggingface_hub's download and connection errors are all OSErrors
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise DinoscopeError(
            f"cannot get pretrained weights for {timm_name}: the model hub cannot be reached ({reason}); "
            "pass --weights PATH to load a local checkpoint, or --random-weights for untrained weights"
        ) from None


HUB = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the model hub answers a connection within `timeout` seconds (never when HF_HUB_OFFLINE is set):
    asked first, so an offline machine does not spend the hub client's retries on a download that cannot come."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(HUB, timeout=timeout):
            return True
    except OSError:
        return False


def _check_vit(model: nn.Module, timm_name: str, res: int, pool: Pool) -> None:
    """Reject models that cannot be pooled as asked or cannot take `res` px inputs."""
    if not hasattr(model, "num_prefix_tokens") or not hasattr(model, "patch_embed"):
        raise DinoscopeError(f"{timm_name} is not a ViT-style model (no patch tokens); choose a DINO ViT")
    if pool != "mean" and getattr(model, "cls_token", None) is None:
        raise DinoscopeError(f"{timm_name} has no cls token; use --pool mean")
    patch = model.patch_embed.patch_size[0]
    if res % patch:
        raise DinoscopeError(f"resolution {res} is not a multiple of {timm_name}'s patch size {patch}")


def load_weights(model: nn.Module, state: dict[str, Tensor], path: Path) -> None:
    """Load a checkpoint read from `path` into `model`, resizing position embeddings via timm's filter."""
    filter_fn = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if filter_fn is not None:
        state = filter_fn(state, model)
    expected = model.state_dict().keys()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise DinoscopeError(f"{path} does not match the model: {'; '.join(parts)}; is it the right model?")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc)[:160])
        raise DinoscopeError(f"{path} does not fit {type(model).__name__}: {detail}") from None

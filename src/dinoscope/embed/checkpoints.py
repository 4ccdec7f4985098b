"""Checkpoint files `--weights` accepts, read into the layout timm's own checkpoint filter loads.

Layouts, detected from the keys (a folder is read as its model.safetensors / pytorch_model.bin, with the
config.json beside it):

* timm's (`blocks.0.attn.qkv.weight`, no `mask_token`), and DINO v1 training checkpoints (`teacher` / `backbone.`);
* Meta's original DINOv2 (`dinov2_vits14_pretrain.pth`: `mask_token`, `blocks.0.ls1.gamma`, `register_tokens`),
  which timm's `checkpoint_filter_fn` converts itself;
* Meta's original DINOv3 (`storage_tokens`, `blocks.0.attn.qkv.bias_mask`), also converted by timm's filter;
* Hugging Face transformers' DINOv2 and DINOv2-with-registers (`embeddings.patch_embeddings.projection.weight`,
  `encoder.layer.N.attention…`, in the hub's names or transformers 5's `q_proj`/`o_proj`) and DINOv3
  (`embeddings.patch_embeddings.weight`, `layer.N.attention.q_proj…`), converted here to Meta's names by
  an explicit key map, after its config.json is checked against the chosen model.

Anything else is refused with one line naming what was found.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import DinoscopeError

_WRAPPER_KEYS = ("teacher", "model", "state_dict")
_FOLDER_FILES = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")
TRANSFORMERS_TYPES = ("dinov2", "dinov2_with_registers", "dinov3_vit")

# transformers DINOv2 → Meta's original names; per block, {i} is the block index. Both the hub's names and
# transformers 5's renamed attention projections are listed.
_EMBEDDINGS = {
    "embeddings.cls_token": "cls_token",
    "embeddings.mask_token": "mask_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.register_tokens": "register_tokens",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
_BLOCK = {
    "norm1": "norm1", "norm2": "norm2", "layer_scale1": "ls1", "layer_scale2": "ls2",
    "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",
    "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "mlp.weights_in": "mlp.w12", "mlp.weights_out": "mlp.w3",
}
_QKV = (("attention.attention.query", "attention.attention.key", "attention.attention.value"),
        ("attention.q_proj", "attention.k_proj", "attention.v_proj"))
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$")

# transformers DINOv3 → Meta's original DINOv3 names (which timm's Eva filter reads); the separate q, k, v
# projections are joined into one qkv, a missing key bias filled with Meta's fixed zeros.
_EMBEDDINGS_V3 = {
    "embeddings.cls_token": "cls_token",
    "embeddings.mask_token": "mask_token",
    "embeddings.register_tokens": "storage_tokens",
    "embeddings.patch_embeddings.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.bias": "patch_embed.proj.bias",
    "norm.weight": "norm.weight",
    "norm.bias": "norm.bias",
}
_BLOCK_V3 = {
    "norm1": "norm1", "norm2": "norm2", "layer_scale1": "ls1", "layer_scale2": "ls2", "attention.o_proj": "attn.proj",
    "mlp.up_proj": "mlp.fc1", "mlp.down_proj": "mlp.fc2",
}
# The gated (SwiGLU) MLP of the large DINOv3s: gate, up, down are Meta's w1, w2, w3.
_GATED_V3 = {"mlp.gate_proj": "mlp.w1", "mlp.up_proj": "mlp.w2", "mlp.down_proj": "mlp.w3"}
_QKV_V3 = (("attention.q_proj", "attention.k_proj", "attention.v_proj"),)
_LAYER_V3 = re.compile(r"^(?:model\.)?layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$")


def checkpoint_file(path: Path) -> tuple[Path, dict | None]:
    """The weights file of `path` (itself, or the one inside a folder) and the config.json beside it, if any."""
    path = Path(path).expanduser()
    if path.is_dir():
        found = next((path / name for name in _FOLDER_FILES if (path / name).is_file()), None)
        if found is None:
            raise DinoscopeError(f"{path} is a folder without weights (looked for {', '.join(_FOLDER_FILES)})")
        path = found
    if not path.is_file():
        raise DinoscopeError(f"weights file {path} does not exist")
    config_path = path.parent / "config.json"
    try:
        config = json.loads(config_path.read_text()) if config_path.is_file() else None
    except (OSError, ValueError) as exc:
        raise DinoscopeError(f"cannot read {config_path}: {exc}".splitlines()[0]) from None
    return path, config if isinstance(config, dict) else None


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """A flat state dict from a .safetensors or .pth/.pt/.bin file, unwrapped and with prefixes stripped."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any decoding failure means the file is not a checkpoint we can read
        msg = (str(exc).splitlines() or [""])[0][:160]
        raise DinoscopeError(f"cannot read weights file {path}: {type(exc).__name__}: {msg}") from None
    for key in _WRAPPER_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DinoscopeError(f"{path} holds no state dict of tensors (looked under {', '.join(_WRAPPER_KEYS)})")
    return _strip_prefixes(state)


def _strip_prefixes(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop 'module.' and keep only the 'backbone.' part of DINO training checkpoints."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    return state


def layout(state: dict[str, Tensor]) -> str:
    """Which layout a state dict is in: "transformers", "meta", "timm"; or a DinoscopeError naming its keys."""
    if "embeddings.patch_embeddings.projection.weight" in state or "embeddings.patch_embeddings.weight" in state:
        return "transformers"
    if "patch_embed.proj.weight" in state:
        return "meta" if "mask_token" in state or any(k.endswith("ls1.gamma") for k in state) else "timm"
    keys = ", ".join(sorted(state)[:3])
    raise DinoscopeError(f"the weights are in no layout dinoscope reads (keys like {keys}); give a timm, Meta "
                         "(dinov2_vits14_pretrain.pth, a DINOv3 .pth) or transformers (facebook/dinov2-small "
                         "folder) checkpoint")


def check_transformers_config(config: dict | None, model: nn.Module, path: Path) -> None:
    """Refuse a transformers checkpoint whose config.json describes another architecture than the timm model."""
    if config is None:
        return
    kind = config.get("model_type")
    if kind not in TRANSFORMERS_TYPES:
        raise DinoscopeError(f"{path}: config.json is a transformers {kind!r} model; dinoscope reads "
                             f"{' and '.join(TRANSFORMERS_TYPES)} checkpoints")
    want = {"hidden_size": model.embed_dim, "num_hidden_layers": len(model.blocks),
            "patch_size": model.patch_embed.patch_size[0], "num_register_tokens": _registers(model)}
    found = {"hidden_size": config.get("hidden_size"), "num_hidden_layers": config.get("num_hidden_layers"),
             "patch_size": config.get("patch_size"), "num_register_tokens": config.get("num_register_tokens", 0)}
    wrong = [f"{k} {found[k]} (the model has {want[k]})" for k in want if found[k] != want[k]]
    if wrong:
        raise DinoscopeError(f"{path}: the checkpoint's config.json does not fit the model: {'; '.join(wrong)}; "
                             "pick the --model it was trained as (see `dinoscope models`)")


def _registers(model: nn.Module) -> int:
    """How many register tokens a timm ViT or Eva has: its prefix tokens less the class token."""
    return model.num_prefix_tokens - int(getattr(model, "cls_token", None) is not None)


def transformers_to_meta(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """transformers' DINOv2 or DINOv3 keys renamed to Meta's original ones (whichever the keys say it is)."""
    if "embeddings.patch_embeddings.weight" in state:
        gated = any(".mlp.gate_proj." in k for k in state)
        return _to_meta(state, "DINOv3", _EMBEDDINGS_V3, _LAYER_V3, _QKV_V3,
                        {**_BLOCK_V3, **(_GATED_V3 if gated else {})}, zero_biases=True)
    return _to_meta(state, "DINOv2", _EMBEDDINGS, _LAYER, _QKV, _BLOCK, zero_biases=False)


def _to_meta(state: dict[str, Tensor], family: str, embeddings: dict[str, str], layer: re.Pattern,
             qkv_names: tuple[tuple[str, str, str], ...], blocks: dict[str, str],
             zero_biases: bool) -> dict[str, Tensor]:
    """transformers' keys renamed by one family's key map, the separate q, k, v projections joined into one qkv
    (with `zero_biases`, a missing bias among them is Meta's fixed zeros, as its bias_mask has it)."""
    out: dict[str, Tensor] = {}
    parts: dict[tuple[str, str], dict[str, Tensor]] = {}
    unexpected = f"in a transformers {family} checkpoint; is it a {family}?"
    for key, value in state.items():
        if key in embeddings:
            out[embeddings[key]] = value
            continue
        match = layer.match(key)
        if match is None:
            raise DinoscopeError(f"unexpected key {key!r} {unexpected}")
        block, name, kind = match.groups()
        qkv = next((names.index(name) for names in qkv_names if name in names), None)
        if qkv is not None:
            parts.setdefault((block, kind), {})["qkv"[qkv]] = value
        elif name in blocks:
            out[f"blocks.{block}.{blocks[name]}.{'gamma' if kind == 'lambda1' else kind}"] = value
        else:
            raise DinoscopeError(f"unexpected key {key!r} {unexpected}")
    for (block, kind), qkv in parts.items():
        if zero_biases and kind == "bias":
            size = next(iter(qkv.values())).shape[0]
            qkv = {c: qkv.get(c, torch.zeros(size)) for c in "qkv"}
        if set(qkv) != set("qkv"):
            raise DinoscopeError(f"block {block} of the transformers checkpoint lacks its {kind} query, key or value")
        out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat([qkv["q"], qkv["k"], qkv["v"]])
    return out


def drop_zero_qkv_bias(state: dict[str, Tensor], model: nn.Module, path: Path) -> dict[str, Tensor]:
    """A Meta-layout DINOv3 state fitted to a timm model without q/v biases: all-zero qkv biases (as Meta's
    distilled models have) are dropped; non-zero ones would be lost, so they are refused."""
    if "storage_tokens" not in state or any(name.endswith("attn.q_bias") for name, _ in model.named_parameters()):
        return state
    biases = [k for k in state if k.endswith("attn.qkv.bias")]
    if any(bool(state[k].any()) for k in biases):
        raise DinoscopeError(f"{path} has non-zero query/value biases, which the chosen model has no place for "
                             "(its attention has no biases); is it the right --model?")
    return {k: v for k, v in state.items() if k not in biases}

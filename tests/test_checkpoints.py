"""--weights in every layout dinoscope reads, checked against the reference implementations.

transformers' own DINOv2 code is the reference for its layout: a random-weight `Dinov2Model` (and the
with-registers variant) is saved with `save_pretrained`, loaded through dinoscope into the timm model, and both
embed the same pixels. Meta's original layout is made from the same weights by the inverse key map.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.checkpoints import layout, transformers_to_meta
from dinoscope.embed.transforms import preprocess
from dinoscope.errors import DinoscopeError

# The ViT-S/14 of the timm models they are loaded into (12 blocks: a checkpoint must match the model's depth).
SMALL = dict(hidden_size=384, num_attention_heads=6, intermediate_size=1536, patch_size=14, layerscale_value=0.5)


def _hf_model(registers: int, image_size: int):
    """A random-weight transformers DINOv2 (with registers when asked), seeded, at `image_size`."""
    torch.manual_seed(0)
    if registers:
        config = transformers.Dinov2WithRegistersConfig(num_hidden_layers=12, image_size=image_size,
                                                        num_register_tokens=registers, **SMALL)
        return transformers.Dinov2WithRegistersModel(config).eval()
    config = transformers.Dinov2Config(num_hidden_layers=12, image_size=image_size, **SMALL)
    return transformers.Dinov2Model(config).eval()


def _pixels(resolution: int) -> torch.Tensor:
    rng = np.random.default_rng(1)
    return torch.from_numpy(rng.integers(0, 256, (3, resolution + 10, resolution + 3, 3), dtype=np.uint8))


def _min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=1).min())


@pytest.mark.slow
@pytest.mark.parametrize("registers, model_name", [(0, "dinov2-vits14"), (4, "dinov2-vits14-reg")])
def test_transformers_checkpoint_gives_transformers_embeddings(tmp_path, registers, model_name):
    hf = _hf_model(registers, image_size=224)
    hf.save_pretrained(tmp_path / "hf")
    backbone = build_backbone(model_name, weights=tmp_path / "hf", resolution=224)
    x = preprocess(_pixels(224), backbone)  # the very pixels extraction feeds the model
    with torch.inference_mode():
        ours = backbone.embed(x)
        theirs = hf(pixel_values=x).pooler_output  # transformers' CLS embedding after the final LayerNorm
    # fp32 throughout, the same operations in the same order (measured: identical to the last bit here); allowed
    # float32 rounding of a fused against three separate projections on another BLAS: 1e-4 on values ~1.
    assert _min_cosine(ours, theirs) >= 0.9999
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_meta_original_layout_loads_the_same_network(tmp_path):
    hf = _hf_model(0, image_size=224)
    meta = transformers_to_meta(hf.state_dict())  # Meta's dinov2_vits14_pretrain.pth names
    assert layout(meta) == "meta"
    torch.save(meta, tmp_path / "dinov2_vits14_pretrain.pth")
    hf.save_pretrained(tmp_path / "hf")
    from_meta = build_backbone("dinov2-vits14", weights=tmp_path / "dinov2_vits14_pretrain.pth", resolution=224)
    from_hf = build_backbone("dinov2-vits14", weights=tmp_path / "hf" / "model.safetensors", resolution=224)
    for a, b in zip(from_meta.model.state_dict().values(), from_hf.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # the same tensors, only renamed


@pytest.mark.slow
def test_other_resolution_interpolates_the_position_embeddings(tmp_path):
    hf = _hf_model(0, image_size=518)  # the hub checkpoints' size; dinoscope runs at 224 by default
    hf.save_pretrained(tmp_path / "hf")
    backbone = build_backbone("dinov2-vits14", weights=tmp_path / "hf", resolution=224)
    x = preprocess(_pixels(224), backbone)
    with torch.inference_mode():
        ours = backbone.embed(x)
        theirs = hf(pixel_values=x).pooler_output  # transformers interpolates its 37x37 grid to 16x16 itself
    # Both resample the 37x37 grid bicubically but not identically (timm: antialiased, once at load; transformers:
    # at each call, without antialias), so they are close, not equal: measured 0.99998 here; the issue asks 0.9999.
    assert _min_cosine(ours, theirs) >= 0.9999


def _hf_dinov3(**biases: bool):
    """A random-weight transformers DINOv3 ViT-S/16 with 4 registers (timm's dinov3-vits16 shape), seeded."""
    torch.manual_seed(0)
    config = transformers.DINOv3ViTConfig(num_hidden_layers=12, hidden_size=384, num_attention_heads=6,
                                          intermediate_size=1536, num_register_tokens=4, image_size=224,
                                          layerscale_value=0.5, **{"query_bias": False, "value_bias": False, **biases})
    return transformers.DINOv3ViTModel(config).eval()


@pytest.mark.slow
def test_transformers_dinov3_checkpoint_gives_transformers_embeddings(tmp_path):
    hf = _hf_dinov3()
    hf.save_pretrained(tmp_path / "hf")
    backbone = build_backbone("dinov3-vits16", weights=tmp_path / "hf", resolution=224)
    x = preprocess(_pixels(224), backbone)
    with torch.inference_mode():
        ours = backbone.embed(x)
        theirs = hf(pixel_values=x).pooler_output
    # RoPE computed by two codes (timm's Eva, transformers' DINOv3ViT) in fp32: measured 3e-6 apart here.
    assert _min_cosine(ours, theirs) >= 0.9999
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
    # Meta's original DINOv3 names (storage_tokens, ls1.gamma, one qkv) load the very same tensors.
    torch.save(transformers_to_meta(hf.state_dict()), tmp_path / "dinov3_vits16_pretrain.pth")
    from_meta = build_backbone("dinov3-vits16", weights=tmp_path / "dinov3_vits16_pretrain.pth", resolution=224)
    for a, b in zip(from_meta.model.state_dict().values(), backbone.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.slow
def test_dinov3_biases_the_model_cannot_hold_are_refused_not_dropped(tmp_path):
    hf = _hf_dinov3(query_bias=True, value_bias=True)  # timm's dinov3-vits16 has no q/v bias
    biases = [v for k, v in hf.named_parameters() if k.endswith(("q_proj.bias", "v_proj.bias"))]
    hf.save_pretrained(tmp_path / "zero")  # zero biases (transformers' init, Meta's distilled models) load
    build_backbone("dinov3-vits16", weights=tmp_path / "zero", resolution=224)
    with torch.no_grad():
        biases[5].normal_()
    hf.save_pretrained(tmp_path / "hf")
    with pytest.raises(DinoscopeError, match="non-zero query/value biases"):
        build_backbone("dinov3-vits16", weights=tmp_path / "hf", resolution=224)


def test_a_config_of_another_architecture_is_refused(tmp_path):
    hf = _hf_model(0, image_size=224)
    hf.save_pretrained(tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "hidden_size": 768}))
    with pytest.raises(DinoscopeError, match="hidden_size 768 \\(the model has 384\\)") as err:
        build_backbone("dinov2-vits14", weights=tmp_path / "hf", resolution=224)
    assert "\n" not in str(err.value)
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**config, "model_type": "vit"}))
    with pytest.raises(DinoscopeError, match="transformers 'vit' model"):
        build_backbone("dinov2-vits14", weights=tmp_path / "hf", resolution=224)


def test_an_unknown_layout_is_refused_naming_its_keys(tmp_path):
    torch.save({"encoder.weight": torch.zeros(2), "decoder.bias": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(DinoscopeError, match="no layout dinoscope reads \\(keys like decoder.bias, encoder.weight"):
        build_backbone("dinov2-vits14", weights=tmp_path / "other.pth")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DinoscopeError, match="a folder without weights"):
        build_backbone("dinov2-vits14", weights=tmp_path / "empty")

"""Backbone registry: aliases, errors, pooling widths, local weights and the offline hub message."""

from __future__ import annotations

import pytest
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import save_file

from dinoscope.backbones import ALIASES, build_backbone, list_models, resolve
from dinoscope.errors import DinoscopeError


def test_every_alias_names_a_pretrained_timm_model():
    known = set(timm.list_pretrained())
    assert list_models() and all(alias in ALIASES for alias, _ in list_models())
    for alias, name in list_models():
        assert name in known, alias
        assert resolve(alias) == (alias, name)


def test_plain_timm_names_are_accepted():
    assert resolve("vit_small_patch16_224.dino") == ("", "vit_small_patch16_224.dino")


def test_unknown_name_lists_aliases_and_suggests():
    with pytest.raises(DinoscopeError) as err:
        resolve("dinov2-vits15")
    msg = str(err.value)
    assert "\n" not in msg
    assert "did you mean dinov2-vits14" in msg
    assert "dinov3-vitl16" in msg


def test_unknown_pretrained_tag_is_rejected():
    with pytest.raises(DinoscopeError, match="unknown model"):
        resolve("vit_small_patch16_224.nosuchtag")


@pytest.mark.parametrize(("pool", "width"), [("cls", 384), ("mean", 384), ("cls+mean", 768)])
def test_random_weights_embed_with_pool_width(pool, width):
    bb = build_backbone("dinov2-vits14-reg", random_weights=True, pool=pool, resolution=28)
    assert bb.random_weights and bb.weights == "random" and bb.embed_dim == width
    assert bb.resolution == 28 and bb.mean == pytest.approx((0.485, 0.456, 0.406))
    assert not bb.model.training
    x = torch.randn(3, 3, 28, 28)
    with torch.inference_mode():
        out = bb.embed(x)
        tokens = bb.model.forward_features(x)
    assert out.shape == (3, width)
    assert bb.model.num_prefix_tokens == 5
    patch_mean = tokens[:, 5:].mean(1)  # cls and the 4 registers are excluded
    if pool == "mean":
        torch.testing.assert_close(out, patch_mean)
    if pool == "cls+mean":
        torch.testing.assert_close(out, torch.cat([tokens[:, 0], patch_mean], 1))


def test_default_resolution_is_224():
    assert build_backbone("dinov2-vits14", random_weights=True).resolution == 224


def test_resolution_must_fit_patch_size():
    with pytest.raises(DinoscopeError, match="patch size 16"):
        build_backbone("dinov3-vits16", random_weights=True, resolution=40)


def _embed(bb, res, seed=0):
    x = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return bb.embed(x)


def test_local_safetensors_reproduces_embeddings(tmp_path):
    src = build_backbone("dinov3-vits16", random_weights=True, resolution=32, pool="cls+mean")
    path = tmp_path / "w.safetensors"
    save_file(src.model.state_dict(), str(path))
    loaded = build_backbone("dinov3-vits16", weights=path, resolution=32, pool="cls+mean")
    assert loaded.weights == str(path) and not loaded.random_weights
    torch.testing.assert_close(_embed(loaded, 32), _embed(src, 32), rtol=0, atol=0)


def test_local_pth_wrapped_and_prefixed_reproduces_embeddings(tmp_path):
    src = build_backbone("dino-vits16", random_weights=True, resolution=32)
    state = {f"module.backbone.{k}": v for k, v in src.model.state_dict().items()}
    state["module.head.mlp.0.weight"] = torch.zeros(4, 4)  # DINO training head: ignored
    path = tmp_path / "checkpoint.pth"
    torch.save({"teacher": state, "epoch": 3}, path)
    loaded = build_backbone("dino-vits16", weights=path, resolution=32)
    torch.testing.assert_close(_embed(loaded, 32), _embed(src, 32), rtol=0, atol=0)


def test_local_weights_resize_position_embeddings(tmp_path):
    src = build_backbone("dinov2-vits14", random_weights=True, resolution=56)
    path = tmp_path / "w.pt"
    torch.save(src.model.state_dict(), path)
    loaded = build_backbone("dinov2-vits14", weights=path, resolution=28)
    assert loaded.model.pos_embed.shape[1] == 1 + 2 * 2
    assert _embed(loaded, 28).shape == (2, 384)


def test_garbage_checkpoint_errors_clearly(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DinoscopeError, match="cannot read weights file"):
        build_backbone("dino-vits16", weights=path, resolution=32)
    with pytest.raises(DinoscopeError, match="does not exist"):
        build_backbone("dino-vits16", weights=tmp_path / "missing.pt", resolution=32)


def test_checkpoint_of_another_model_names_missing_keys(tmp_path):
    src = build_backbone("dino-vits16", random_weights=True, resolution=32)
    path = tmp_path / "w.pth"
    torch.save({"model": src.model.state_dict()}, path)
    with pytest.raises(DinoscopeError) as err:
        build_backbone("dinov2-vits14-reg", weights=path, resolution=28)
    assert "missing keys" in str(err.value) and "reg_token" in str(err.value)
    assert "\n" not in str(err.value)


def test_unreachable_hub_names_both_flags(monkeypatch):
    def offline(*args, **kwargs):
        assert kwargs["pretrained"] is True
        raise LocalEntryNotFoundError("An error happened while trying to locate the file on the Hub.")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(DinoscopeError) as err:
        build_backbone("dinov2-vits14")
    msg = str(err.value)
    assert "cannot be reached" in msg and "--weights PATH" in msg and "--random-weights" in msg
    assert "\n" not in msg

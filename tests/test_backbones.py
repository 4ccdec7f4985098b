"""Backbone registry: aliases, errors, pooling widths, local weights and the offline hub message."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import save_file

from dinoscope.embed.backbones import ALIASES, build_backbone, list_models, resolve
from dinoscope.errors import DinoscopeError


@pytest.fixture(scope="module")
def vits16():
    return build_backbone("dino-vits16", random_weights=True, resolution=32)


@pytest.fixture(scope="module")
def reg():
    return build_backbone("dinov2-vits14-reg", random_weights=True, resolution=28, pool="cls+mean")


def _embed(bb, res, seed=0):
    x = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return bb.embed(x)


def test_every_alias_names_a_pretrained_timm_model():
    known = set(timm.list_pretrained())
    assert len(list_models()) == len(ALIASES) >= 14
    for alias, name in list_models():
        assert name in known, alias
        assert resolve(alias) == (alias, name)


def test_plain_timm_names_are_accepted():
    assert resolve("vit_small_patch16_224.dino") == ("", "vit_small_patch16_224.dino")


def test_unknown_name_lists_aliases_and_suggests():
    with pytest.raises(DinoscopeError) as err:
        build_backbone("dinov2-vits15", random_weights=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert "did you mean dinov2-vits14" in msg
    assert "dinov3-vitl16" in msg


def test_unknown_pretrained_tag_is_rejected():
    with pytest.raises(DinoscopeError, match="unknown model"):
        resolve("vit_small_patch16_224.nosuchtag")


def test_random_weights_build(reg):
    assert reg.random_weights and reg.weights == "random"
    assert reg.name == "vit_small_patch14_reg4_dinov2.lvd142m" and reg.alias == "dinov2-vits14-reg"
    assert reg.embed_dim == 768 and reg.resolution == 28 and not reg.model.training
    assert reg.mean == pytest.approx((0.485, 0.456, 0.406)) and reg.std == pytest.approx((0.229, 0.224, 0.225))


@pytest.mark.parametrize(("pool", "width"), [("cls", 384), ("mean", 384), ("cls+mean", 768)])
def test_pooling_widths_and_register_exclusion(reg, pool, width):
    bb = dataclasses.replace(reg, pool=pool)
    x = torch.randn(3, 3, 28, 28)
    with torch.inference_mode():
        out = bb.embed(x)
        tokens = bb.model.forward_features(x)
    assert out.shape == (3, width)
    assert bb.model.num_prefix_tokens == 5
    cls, patch_mean = tokens[:, 0], tokens[:, 5:].mean(1)  # cls and the 4 registers are excluded
    expected = {"cls": cls, "mean": patch_mean, "cls+mean": torch.cat([cls, patch_mean], 1)}[pool]
    torch.testing.assert_close(out, expected)


def test_default_resolution_is_224():
    bb = build_backbone("dinov2-vits14", random_weights=True, pool="mean")
    assert bb.resolution == 224 and bb.embed_dim == 384
    assert bb.model.pos_embed.shape[1] == 1 + 16 * 16


def test_resolution_must_fit_patch_size():
    with pytest.raises(DinoscopeError, match="patch size 16"):
        build_backbone("dinov3-vits16", random_weights=True, resolution=40)


def test_local_safetensors_reproduces_embeddings(tmp_path):
    src = build_backbone("dinov3-vits16", random_weights=True, resolution=32, pool="cls+mean")
    path = tmp_path / "w.safetensors"
    save_file(src.model.state_dict(), str(path))
    loaded = build_backbone("dinov3-vits16", weights=path, resolution=32, pool="cls+mean")
    assert loaded.weights == str(path) and not loaded.random_weights
    torch.testing.assert_close(_embed(loaded, 32), _embed(src, 32), rtol=0, atol=0)


def test_local_pth_wrapped_and_prefixed_reproduces_embeddings(tmp_path, vits16):
    state = {f"module.backbone.{k}": v for k, v in vits16.model.state_dict().items()}
    state["module.head.mlp.0.weight"] = torch.zeros(4, 4)  # the DINO training head is left out
    path = tmp_path / "checkpoint.pth"
    torch.save({"teacher": state, "epoch": 3}, path)
    loaded = build_backbone("dino-vits16", weights=path, resolution=32)
    torch.testing.assert_close(_embed(loaded, 32), _embed(vits16, 32), rtol=0, atol=0)


def test_local_weights_resize_position_embeddings(tmp_path, vits16):
    path = tmp_path / "w.pt"
    torch.save(vits16.model.state_dict(), path)
    loaded = build_backbone("dino-vits16", weights=path, resolution=48)
    assert loaded.model.pos_embed.shape[1] == 1 + 3 * 3
    assert _embed(loaded, 48).shape == (2, 384)


def test_unreadable_checkpoint_errors_clearly(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DinoscopeError, match="cannot read weights file"):
        build_backbone("dino-vits16", weights=path)
    with pytest.raises(DinoscopeError, match="does not exist"):
        build_backbone("dino-vits16", weights=tmp_path / "missing.pt")
    torch.save({"config": {"lr": 0.1}}, tmp_path / "cfg.pt")
    with pytest.raises(DinoscopeError, match="no state dict"):
        build_backbone("dino-vits16", weights=tmp_path / "cfg.pt")


def test_checkpoint_of_another_model_names_the_keys(tmp_path, reg):
    path = tmp_path / "w.pth"
    torch.save({"model": reg.model.state_dict()}, path)
    with pytest.raises(DinoscopeError) as err:
        build_backbone("dino-vits16", weights=path, resolution=32)
    msg = str(err.value)
    assert "unexpected" in msg and "reg_token" in msg and "\n" not in msg


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


def test_random_weights_are_reproducible_from_the_seed():
    import torch

    state = torch.random.get_rng_state()
    a = build_backbone("dino-vits16", random_weights=True, resolution=32, seed=1)
    b = build_backbone("dino-vits16", random_weights=True, resolution=32, seed=1)
    c = build_backbone("dino-vits16", random_weights=True, resolution=32, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    wa, wb, wc = (m.model.patch_embed.proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)

"""Weights from the hub through the real code path (timm → huggingface_hub), offline: a temporary Hugging Face
cache holds a random-weight checkpoint under the model's real repository name, and HF_HUB_OFFLINE=1 makes the
hub client answer from it, exactly as it does for a user whose cache already holds the download."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import save_file

TIMM_NAME = "vit_small_patch14_dinov2.lvd142m"
REPO = f"timm/{TIMM_NAME}"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"  # any commit hash: refs/main names it

CHILD = """
from dinoscope.embed.backbones import build_backbone
b = build_backbone("dinov2-vits14")
print(b.weights, b.random_weights, float(b.model.blocks[0].attn.qkv.weight.double().sum()))
"""


def _fill_cache(cache) -> float:
    """A random-weight checkpoint in the hub cache under the real repository name; its fingerprint."""
    repo = cache / f"models--{REPO.replace('/', '--')}"
    (repo / "snapshots" / SNAPSHOT).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SNAPSHOT)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        model = timm.create_model(TIMM_NAME, pretrained=False)
    save_file(model.state_dict(), str(repo / "snapshots" / SNAPSHOT / "model.safetensors"))
    return float(model.blocks[0].attn.qkv.weight.detach().double().sum())


def _child(cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(cache.parent)}
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_pretrained_weights_load_from_the_hub_cache_offline(tmp_path):
    expected = _fill_cache(tmp_path / "hub")
    proc = _child(tmp_path / "hub")
    assert proc.returncode == 0, proc.stderr[-2000:]
    source, random, checksum = proc.stdout.split()
    assert (source, random) == ("hub", "False")
    assert float(checksum) == expected  # the very tensors in the cache, through timm's own loading


def test_an_empty_cache_offline_is_a_one_line_error_naming_the_way_out(tmp_path):
    (tmp_path / "hub").mkdir()
    proc = _child(tmp_path / "hub")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "DinoscopeError" in last and "cannot get pretrained weights" in last and "--weights PATH" in last


def test_the_demo_uses_trained_weights_when_the_hub_answers_and_says_so_when_not(monkeypatch, capsys):
    import dinoscope.embed.backbones as backbones
    from dinoscope.cli import _demo_model
    from dinoscope.errors import DinoscopeError

    monkeypatch.setattr(backbones, "hub_reachable", lambda: False)
    assert _demo_model() == {"model": "dino-vits16", "random_weights": True}
    assert "RANDOM weights" in capsys.readouterr().err
    monkeypatch.setattr(backbones, "hub_reachable", lambda: True)
    monkeypatch.setattr(backbones, "build_backbone", lambda name: None)
    assert _demo_model() == {"model": "dinov2-vits14"}
    assert "trained DINOv2" in capsys.readouterr().err

    def unreachable(name):
        raise DinoscopeError("cannot get pretrained weights for vit_small_patch14_dinov2.lvd142m")

    monkeypatch.setattr(backbones, "build_backbone", unreachable)
    assert _demo_model()["random_weights"] is True
    assert "cannot get pretrained weights" in capsys.readouterr().err


def test_offline_mode_is_never_reachable(monkeypatch):
    from dinoscope.embed.backbones import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False

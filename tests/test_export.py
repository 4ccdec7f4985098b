"""Export: TorchScript, ONNX and Triton repositories load in a fresh process and reproduce the eager model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dinoscope.deploy.export import TOLERANCE, export_run, load_exported
from dinoscope.deploy.model import build_export_model
from dinoscope.errors import DinoscopeError
from dinoscope.rundir.access import open_run


@pytest.fixture(scope="module")
def eager(mapped_run):
    model, sig = build_export_model(*open_run(mapped_run, create=False))
    return model, sig


def _images(n: int, h: int, w: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _eager_outputs(model, images: np.ndarray) -> list[np.ndarray]:
    with torch.inference_mode():
        return [t.numpy() for t in model(torch.from_numpy(images))]


def _check_parity(run_model, model, sizes=((1, 32, 32), (7, 32, 32), (1, 48, 40), (7, 48, 40))) -> None:
    for n, h, w in sizes:
        images = _images(n, h, w)
        got, want = run_model(images), _eager_outputs(model, images)
        assert [g.shape for g in got] == [(n, 384), (n, 2)]
        for g, e in zip(got, want, strict=True):
            assert g.dtype == np.float32
            assert np.abs(g - e).max() <= TOLERANCE


@pytest.mark.slow
def test_torchscript_and_onnx_match_eager_and_reload_in_a_fresh_process(mapped_run, eager, tmp_path):
    model, sig = eager
    assert sig.outputs == ("embeddings", "param_test")
    ts = export_run(mapped_run, "torchscript", tmp_path / "ts")
    ox = export_run(mapped_run, "onnx", tmp_path / "onnx")
    assert ts.path == tmp_path / "ts" / "model.pt" and ox.path == tmp_path / "onnx" / "model.onnx"
    meta = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert [o["name"] for o in meta["outputs"]] == ["embeddings", "param_test"] and meta["random_weights"] is True
    for exported in (ts, ox):
        _check_parity(load_exported(exported.path), model)
    # A fresh interpreter (no dinoscope model code imported) gives the same numbers.
    images = _images(7, 48, 40)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, torch, onnxruntime as ort\n"
        "x = np.load(sys.argv[1])\n"
        "m = torch.jit.load(sys.argv[2])\n"
        "a = [t.numpy() for t in m(torch.from_numpy(x))]\n"
        "b = ort.InferenceSession(sys.argv[3]).run(None, {'images': x})\n"
        "np.savez(sys.argv[4], ts0=a[0], ts1=a[1], ox0=b[0], ox1=b[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, tmp_path / "images.npy", ts.path, ox.path, tmp_path / "o.npz"],
                   check=True, timeout=120)
    fresh = np.load(tmp_path / "o.npz")
    want = _eager_outputs(model, images)
    for key in ("ts", "ox"):
        for i in (0, 1):
            assert np.abs(fresh[f"{key}{i}"] - want[i]).max() <= TOLERANCE


@pytest.mark.slow
def test_export_reproduces_the_runs_stored_embeddings(mapped_run, tmp_path):
    """In fp32 the exported model gives the embeddings extraction stored (same preprocessing, same backbone)."""
    from dinoscope.rundir.artifacts import read_embeddings
    from dinoscope.sources import load_source

    ts = export_run(mapped_run, "torchscript", tmp_path / "ts")
    stored = read_embeddings(mapped_run / "embeddings.parquet").vectors
    digits = load_source("digits")
    images = np.stack([digits.read(i) for i in range(len(stored))])
    # float32 on both sides, the same 40 images in one batch: the export's own parity bound (float32 reordering
    # across the 12 blocks, as in test_extract's BATCHING_DRIFT, of embeddings with rms 1)
    assert np.abs(load_exported(ts.path)(images)[0] - stored).max() <= TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["triton", "triton-onnx"])
def test_triton_repository_config_is_valid_and_model_matches(mapped_run, eager, tmp_path, fmt):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    model, _ = eager
    result = export_run(mapped_run, fmt, tmp_path / "repo", name="digits", max_batch_size=16)
    model_dir = tmp_path / "repo" / "digits"
    assert result.path == model_dir
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["digits"]  # no staging folder left
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    onnx = fmt == "triton-onnx"
    assert config.name == "digits"
    assert config.platform == ("onnxruntime_onnx" if onnx else "pytorch_libtorch")
    assert config.max_batch_size == 16 and config.HasField("dynamic_batching")
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [
        ("images" if onnx else "images__0", mc.TYPE_UINT8, [-1, -1, 3])]
    names = ["embeddings", "param_test"] if onnx else ["embeddings__0", "param_test__1"]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        (names[0], mc.TYPE_FP32, [384]), (names[1], mc.TYPE_FP32, [2])]
    assert config.parameters["random_weights"].string_value == "true"
    weights = model_dir / "1" / ("model.onnx" if onnx else "model.pt")
    _check_parity(load_exported(weights), model, sizes=((1, 32, 32), (7, 48, 40)))


def test_triton_config_check_rejects_a_config_that_does_not_match(mapped_run, eager, tmp_path):
    from dinoscope.deploy.export import save_torchscript
    from dinoscope.deploy.triton import check_config, config_text

    model, sig = eager
    model_dir = tmp_path / "m"
    (model_dir / "1").mkdir(parents=True)
    save_torchscript(model, sig, model_dir / "1" / "model.pt")
    (model_dir / "config.pbtxt").write_text(config_text("m", sig, "torchscript", 8))
    check_config(model_dir, sig, "torchscript", 8)
    with pytest.raises(DinoscopeError, match="max_batch_size"):
        check_config(model_dir, sig, "torchscript", 4)
    (model_dir / "config.pbtxt").write_text(config_text("m", sig, "torchscript", 8).replace("TYPE_FP32", "TYPE_FP16"))
    with pytest.raises(DinoscopeError, match="outputs"):
        check_config(model_dir, sig, "torchscript", 8)
    (model_dir / "config.pbtxt").write_text("name: 'm'\nno_such_field: 3\n")
    with pytest.raises(DinoscopeError, match="not a valid Triton model configuration"):
        check_config(model_dir, sig, "torchscript", 8)


def test_export_refuses_bad_requests_and_leaves_nothing(mapped_run, tmp_path):
    with pytest.raises(DinoscopeError, match="unknown export format"):
        export_run(mapped_run, "tflite", tmp_path / "x")
    with pytest.raises(DinoscopeError, match="model name"):
        export_run(mapped_run, "triton", tmp_path / "x", name="../evil")
    with pytest.raises(DinoscopeError, match="not a dinoscope run directory"):
        export_run(tmp_path / "nothing", "onnx", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_export_refuses_runs_of_precomputed_vectors(tmp_path):
    from dinoscope.config import settings_from_flags
    from dinoscope.pipeline import run_pipeline

    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32))
    run_pipeline(tmp_path / "run", settings_from_flags(source=str(tmp_path / "v.npy")), progress=False,
                 stages=("extract",))
    with pytest.raises(DinoscopeError, match="precomputed embeddings"):
        export_run(tmp_path / "run", "torchscript", tmp_path / "out")


@pytest.mark.slow
def test_cli_export_and_serve_help(mapped_run, tmp_path, capsys):
    from dinoscope.cli import main

    main(["export", str(mapped_run), "--format", "torchscript", "--out", str(tmp_path / "ts")])
    err = capsys.readouterr().err
    assert "RANDOM weights" in err and "embeddings, param_test" in err
    assert (tmp_path / "ts" / "model.pt").is_file() and (tmp_path / "ts" / "model.json").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["export", str(mapped_run), "--format", "tflite", "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2 and "unknown export format" in capsys.readouterr().err
    for cmd in ("export", "serve"):
        proc = subprocess.run([sys.executable, "-m", "dinoscope", cmd, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Example" in proc.stdout, proc.stderr

"""Export a run's feature extractor for deployment: TorchScript, ONNX, or a Triton model repository of either.

Every format is written from `export_model.ExportModel` (uint8 images in; the run's preprocessing, backbone and
pooling inside; embeddings and learned-map coordinates out, fp32, dynamic batch, height and width), reloaded from
disk and checked against the eager module before it is moved into place, so a failed or unfaithful export never
leaves a file behind.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DinoscopeError
from ..rundir import artifacts
from ..rundir.directory import atomic_path, write_json
from .model import EMBEDDINGS, INPUT, ExportModel, Signature, build_export_model, example_images

FORMATS = ("torchscript", "onnx", "triton", "triton-onnx")
TOLERANCE = 1e-4  # max abs difference allowed between the exported model and the eager module (fp32)
ONNX_OPSET = 18  # the first opset whose Resize has antialias
_PROTO_LIMIT = 2_000_000_000  # protobuf's 2 GB: larger ONNX weights go to an external data file


@dataclass
class Exported:
    """What an export wrote and how closely the reloaded file reproduces the eager module."""

    path: Path
    signature: Signature
    max_abs_diff: float


def export_run(run_dir: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *,
           name: str = "dinoscope", max_batch_size: int = 64) -> Exported:
    """Export the run's extractor as `fmt` into `out` (default RUN/export/<fmt>); see FORMATS.

    torchscript / onnx write `out/model.pt` or `out/model.onnx` plus `out/model.json` (inputs, outputs, run facts);
    triton / triton-onnx write the model folder `out/<name>/` (config.pbtxt and 1/model.pt or 1/model.onnx).
    """
    from ..rundir.access import open_run

    if fmt not in FORMATS:
        raise DinoscopeError(f"unknown export format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if max_batch_size < 1:
        raise DinoscopeError(f"max_batch_size must be at least 1, got {max_batch_size}")
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise DinoscopeError(f"model name {name!r} must be letters, digits, '-', '_' or '.'")
    run, settings = open_run(run_dir, create=False)
    with run.writing():  # the run's models must not change while they are exported
        model, sig = build_export_model(run, settings)
        out = Path(out) if out is not None else run.file(f"{artifacts.EXPORT}/{fmt}")
        flavour = "onnx" if fmt.endswith("onnx") else "torchscript"
        if fmt.startswith("triton"):
            return _export_triton(model, sig, flavour, out, name, max_batch_size)
        path = out / ("model.onnx" if flavour == "onnx" else "model.pt")
        with atomic_path(path) as tmp:
            diff = _write_checked(model, sig, flavour, tmp)
        write_json(out / "model.json", describe(sig, flavour))
        return Exported(path, sig, diff)


def describe(sig: Signature, flavour: str) -> dict:
    """The exported model's interface and provenance, for model.json."""
    return {
        "format": flavour,
        "input": {"name": INPUT, "dtype": "uint8", "shape": ["batch", "height", "width", 3]},
        "outputs": [{"name": n, "dtype": "float32", "shape": ["batch", d], "index": i}
                    for i, (n, d) in enumerate(sig.output_dims().items())],
        "preprocessing": f"antialiased bicubic resize to {sig.resolution}x{sig.resolution}, then mean/std",
        "model": sig.model,
        "random_weights": sig.random_weights,
    }


def _export_triton(model: ExportModel, sig: Signature, flavour: str, out: Path, name: str,
                   max_batch_size: int) -> Exported:
    """Build `out/<name>/` in a temporary folder beside it, check config and model, then swap it into place."""
    from .triton import PLATFORMS, check_config, config_text

    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=out))
    try:
        model_dir = stage / name
        (model_dir / "1").mkdir(parents=True)
        diff = _write_checked(model, sig, flavour, model_dir / "1" / PLATFORMS[flavour][1])
        (model_dir / "config.pbtxt").write_text(config_text(name, sig, flavour, max_batch_size))
        check_config(model_dir, sig, flavour, max_batch_size)
        target = out / name
        old = stage / "previous"
        if target.exists():
            os.replace(target, old)
        os.replace(model_dir, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Exported(target, sig, diff)


def _write_checked(model: ExportModel, sig: Signature, flavour: str, path: Path) -> float:
    """Write the model to `path`, reload it, and return its max abs difference from the eager module."""
    (save_onnx if flavour == "onnx" else save_torchscript)(model, sig, path)
    images = example_images(sig)
    with torch.inference_mode():
        want = [t.numpy() for t in model(images)]
    got = load_exported(path, flavour)(images.numpy())
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
    if not diff <= TOLERANCE:
        raise DinoscopeError(f"the exported {flavour} model differs from the run's model by {diff:.2e} "
                             f"(more than {TOLERANCE:.0e}); nothing was written")
    return diff


def save_torchscript(model: ExportModel, sig: Signature, path: Path) -> None:
    """Trace the module (batch, height and width stay dynamic: no shape-dependent branch) and save it."""
    with torch.no_grad():
        traced = _quiet(lambda: torch.jit.trace(model, example_images(sig), check_trace=False))
    torch.jit.save(traced, str(path))


def save_onnx(model: ExportModel, sig: Signature, path: Path) -> None:
    """Export the backbone with torch.export (dynamic batch, height, width) and join each learned map to it.

    torch.export cannot trace TorchScript modules, so each learned map is exported on its own by the TorchScript
    exporter and joined to the backbone's graph on the `embeddings` tensor.
    """
    import onnx
    from onnx import compose

    batch, height, width = (torch.export.Dim(n) for n in ("batch", "height", "width"))
    core = ExportModel(model.backbone, {}).eval()
    program = _quiet(lambda: torch.onnx.export(
        core, (example_images(sig),), None, input_names=[INPUT], output_names=[EMBEDDINGS],
        opset_version=ONNX_OPSET, dynamic_shapes={INPUT: {0: batch, 1: height, 2: width}}, verbose=False))
    graph = program.model_proto
    for name, learned in model.maps.items():
        buf = io.BytesIO()
        emb = torch.zeros(2, sig.embed_dim)
        _quiet(lambda learned=learned, name=name, buf=buf, emb=emb: torch.onnx.export(
            learned, (emb,), buf, dynamo=False, input_names=[EMBEDDINGS], output_names=[name],
            dynamic_axes={EMBEDDINGS: {0: "batch"}, name: {0: "batch"}}, opset_version=ONNX_OPSET))
        part = onnx.load_from_string(buf.getvalue())
        part.ir_version = graph.ir_version
        part = compose.add_prefix(part, f"{name}/", rename_inputs=False, rename_outputs=False)
        outputs = [o.name for o in graph.graph.output] + [name]
        graph = compose.merge_models(graph, part, io_map=[(EMBEDDINGS, EMBEDDINGS)], outputs=outputs)
    onnx.checker.check_model(graph)
    big = graph.ByteSize() > _PROTO_LIMIT
    onnx.save(graph, str(path), save_as_external_data=big, location=f"{path.name}.data" if big else None)


def _quiet(fn: Callable):
    """Run an exporter with its progress lines and tracer warnings silenced (they are not the user's business)."""
    import contextlib
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return fn()


def load_exported(path: str | os.PathLike, flavour: str | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A function running an exported model.pt / model.onnx on (N, H, W, 3) uint8 images → list of outputs.

    `flavour` (torchscript | onnx) defaults to what the file name's suffix says.
    """
    path = Path(path)
    if not path.is_file():
        raise DinoscopeError(f"{path} does not exist; export a model first (dinoscope export RUN)")
    if (flavour or ("onnx" if path.suffix == ".onnx" else "torchscript")) == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: session.run(None, {INPUT: np.ascontiguousarray(images, dtype=np.uint8)})
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(images: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            return [t.numpy() for t in module(torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)))]

    return run

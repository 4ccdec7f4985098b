"""Triton Inference Server model configurations: written from an export's signature, and checked against
Triton's own schema (the ModelConfig protobuf that tritonclient ships) before a repository is left on disk."""

from __future__ import annotations

from pathlib import Path

from ..errors import DinoscopeError
from .model import INPUT, Signature

# Triton flavour -> (platform, model file in the version folder)
PLATFORMS = {"torchscript": ("pytorch_libtorch", "model.pt"), "onnx": ("onnxruntime_onnx", "model.onnx")}


def tensor_names(sig: Signature, flavour: str) -> tuple[str, list[str]]:
    """(input name, output names) as the backend binds them: LibTorch by `<name>__<index>`, ONNX by graph names."""
    if flavour == "torchscript":
        return f"{INPUT}__0", [f"{name}__{i}" for i, name in enumerate(sig.outputs)]
    return INPUT, list(sig.outputs)


def config_text(name: str, sig: Signature, flavour: str, max_batch_size: int, queue_delay_us: int = 2000) -> str:
    """config.pbtxt for the exported model: uint8 (-1, -1, 3) images in, fp32 embeddings and map coordinates out."""
    platform, _ = PLATFORMS[flavour]
    inp, outs = tensor_names(sig, flavour)
    outputs = ",\n".join(f'  {{ name: "{o}" data_type: TYPE_FP32 dims: [ {dim} ] }}'
                         for o, dim in zip(outs, sig.output_dims().values(), strict=True))
    params = {"dinoscope_model": sig.model, "resolution": str(sig.resolution),
              "random_weights": str(sig.random_weights).lower(), "learned_maps": ",".join(sig.maps)}
    parameters = "\n".join(f'parameters {{ key: "{k}" value {{ string_value: "{v}" }} }}' for k, v in params.items())
    return (f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch_size}\n'
            f'input [\n  {{ name: "{inp}" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }}\n]\n'
            f"output [\n{outputs}\n]\n"
            f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}\n"
            f"{parameters}\n")


def check_config(model_dir: Path, sig: Signature, flavour: str, max_batch_size: int):
    """Parse `model_dir/config.pbtxt` with Triton's schema and check it describes the exported model; returns it.

    Raises a DinoscopeError naming the first field that does not match (or the parse error).
    """
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    try:
        config = text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())
    except (OSError, text_format.ParseError) as exc:
        raise DinoscopeError(f"{model_dir}/config.pbtxt is not a valid Triton model configuration: {exc}") from None
    platform, filename = PLATFORMS[flavour]
    inp, outs = tensor_names(sig, flavour)
    want = {
        "name": (config.name, model_dir.name),
        "platform": (config.platform, platform),
        "max_batch_size": (config.max_batch_size, max_batch_size),
        "dynamic_batching": (config.HasField("dynamic_batching"), True),
        "inputs": ([(i.name, i.data_type, list(i.dims)) for i in config.input],
                   [(inp, mc.TYPE_UINT8, [-1, -1, 3])]),
        "outputs": ([(o.name, o.data_type, list(o.dims)) for o in config.output],
                    [(o, mc.TYPE_FP32, [d]) for o, d in zip(outs, sig.output_dims().values(), strict=True)]),
        "model file": ((model_dir / "1" / filename).is_file(), True),
    }
    for field, (got, expected) in want.items():
        if got != expected:
            raise DinoscopeError(f"{model_dir}: Triton config field {field} is {got}, expected {expected}")
    return config

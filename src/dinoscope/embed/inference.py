"""How batches go through the backbone: weights cast once to the chosen precision, compiled where it pays.

bf16 runs a bf16 copy of the model (its LayerNorms and softmax included) rather than fp32 weights under
autocast, which casts every weight again in every batch: on the 2-core AVX512-BF16 VM (no AMX) that was 5-20 %
faster at mean cosine 0.9999 to fp32, and the casts were 18 % of an autocast forward on an AMX machine (issue
#13). `torch.compile` is used where it was measured to pay: on CUDA by default; on the CPU only when asked
(`--compile`), since there it gained at most 10 % in one batch on 2 threads and nothing with extraction's two
batches side by side, after 40 s of compiling. A compile that fails falls back to eager with one warning.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..console import warn
from ..sources.reasons import first_line
from .backbones import Backbone

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def use_compile(requested: bool | None, device: torch.device) -> bool:
    """Whether to compile: as requested, else (None) on CUDA only, where compiling was measured to pay."""
    return device.type == "cuda" if requested is None else requested


def cast_backbone(backbone: Backbone, device: torch.device, precision: str) -> Backbone:
    """The backbone on `device` with its weights in `precision`: the model itself in fp32, a cast copy in bf16
    (the fp32 weights stay as they are for export and parity)."""
    model = backbone.model if precision == "fp32" else copy.deepcopy(backbone.model).to(DTYPES[precision])
    return dataclasses.replace(backbone, model=model.to(device).eval())


def forward_function(backbone: Backbone, device: torch.device, precision: str,
                     compile: bool | None = None) -> Callable[[Tensor], np.ndarray]:
    """A function from normalised float32 (B, 3, R, R) batches to pooled float32 embeddings (B, D), run in
    `precision` on `device` (compiled per `use_compile`); safe to call from several threads at once."""
    cast = cast_backbone(backbone, device, precision)
    dtype = DTYPES[precision]

    def eager(pixels: Tensor) -> Tensor:
        return cast.embed(pixels.to(device, dtype, non_blocking=True))

    run = _compiled(eager, device) if use_compile(compile, device) else eager

    def forward(pixels: Tensor) -> np.ndarray:
        with torch.inference_mode():
            return run(pixels).float().cpu().numpy()

    return forward


def _compiled(eager: Callable[[Tensor], Tensor], device: torch.device) -> Callable[[Tensor], Tensor]:
    """`eager` under torch.compile (frozen weights), compiled for the first batch's size: smaller batches (a
    shard's last) are padded to it rather than compiled again. Falls back to `eager` if compiling fails."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime is found" on CPUs
    compiled = torch.compile(eager, dynamic=False, options={"freezing": True} if device.type == "cpu" else None)
    lock = threading.Lock()
    state: dict = {"run": None, "size": None}

    def first(pixels: Tensor) -> Tensor:
        with lock:  # one compile, whichever thread comes first; the others wait for it
            if state["run"] is None:
                try:
                    out = compiled(pixels)
                    state["run"], state["size"] = compiled, len(pixels)
                    return out
                except Exception as exc:  # inductor raises many kinds (no compiler, unsupported op, ...)
                    warn(f"torch.compile failed ({first_line(str(exc), type(exc).__name__)}); running eager")
                    state["run"] = eager
        return run(pixels)

    def run(pixels: Tensor) -> Tensor:
        fn, size = state["run"], state["size"]
        if fn is None:
            return first(pixels)
        if size is None or len(pixels) == size:
            return fn(pixels)
        if len(pixels) > size:
            return torch.cat([run(pixels[i:i + size]) for i in range(0, len(pixels), size)])
        pad = pixels.new_zeros((size - len(pixels), *pixels.shape[1:]))
        return fn(torch.cat([pixels, pad]))[:len(pixels)]

    return run

"""Where and how torch computes: the device, the precision, the number of threads."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .errors import DinoscopeError


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as torch spells it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise DinoscopeError(f"unknown device '{device}' ({exc}); use auto, cpu or cuda") from None


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 where the hardware computes it natively and faster: Ampere+ GPUs; CPUs with AMX, or with
    AVX512-BF16 where a quick measurement finds bf16 matmuls clearly faster than fp32 (`bf16_pays`)."""
    if precision in ("bf16", "fp32"):
        return precision
    if precision != "auto":
        raise DinoscopeError(f"unknown precision '{precision}'; use auto, bf16 or fp32")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        if torch.cpu._is_amx_tile_supported():
            return "bf16"
        return "bf16" if torch.cpu._is_avx512_bf16_supported() and bf16_pays() else "fp32"
    return "fp32"


@functools.cache
def bf16_pays(margin: float = 1.25) -> bool:
    """Whether bf16 matmuls of a ViT's shape run at least `margin` times as fast as fp32 here (best of 5 each,
    ~0.1 s, once per process). AVX512-BF16 without AMX is no sure gain: the 2-vCPU Emerald Rapids VM of
    2026-12-01 ran 2048^3 bf16 matmuls at 116 GFLOP/s against fp32's 229, where an earlier VM of the kind gave 402
    against ~200. The margin keeps a machine near parity on fp32, the exact and steadier choice."""
    def rate(dtype: torch.dtype) -> float:
        a, b = torch.randn(1024, 384, dtype=dtype), torch.randn(384, 1536, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        return 1.0 / best

    return rate(torch.bfloat16) >= margin * rate(torch.float32)


def physical_cores() -> int:
    """Cores this process may use, counting each physical core once (SMT siblings share units)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    smt = Path("/sys/devices/system/cpu/smt/active")
    if smt.exists() and smt.read_text().strip() == "1":
        n //= 2
    return max(1, n)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread for a while: elementwise work on a few (n, 2) arrays only loses by threading,
    and on a busy machine its threads wait for each other (ten times slower on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

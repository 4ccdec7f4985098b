"""Where and how torch computes: the device, the precision, the number of threads."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from .cachedir import default_cache_dir
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
    """Whether bf16 matmuls of a ViT's shape run at least `margin` times as fast as fp32 here. AVX512-BF16 without
    AMX is no sure gain: the 2-vCPU Emerald Rapids VM of 2026-12-01 ran 2048^3 bf16 matmuls at 116 GFLOP/s against
    fp32's 229, where an earlier VM of the kind gave 402 against ~200. The margin keeps a machine near parity on
    fp32, the exact and steadier choice. Measured once per machine and kept (`machine_rates`): on a busy machine
    two measurements can fall on either side of the margin, and a resumed run would then extract again in the
    other precision, or two runs of the same images would differ."""
    rates = machine_rates()
    return rates["bf16"] >= margin * rates["fp32"]


def machine_rates() -> dict[str, float]:
    """Matmuls per second in bf16 and fp32 on this machine (best of 5, ~0.1 s), measured by the first process to
    ask and kept in the cache folder as machine/matmul-<key>.json, the key naming the CPU, the cores this process
    may use and torch's version; delete the file to measure again. Where the folder is not writable the
    measurement serves this process only."""
    identity = {"cpu": _cpu_model(), "cores": usable_cores(), "torch": torch.__version__}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    path = default_cache_dir() / "machine" / f"matmul-{key}.json"
    kept = _read_rates(path)
    if kept is not None:
        return kept
    rates = {"bf16": _matmul_rate(torch.bfloat16), "fp32": _matmul_rate(torch.float32)}
    try:
        _write_first(path, json.dumps({"machine": identity, "rates": rates,
                                       "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
    except OSError:
        return rates
    return _read_rates(path) or rates  # a racing process that finished first: its figures, for all to agree


def _read_rates(path: Path) -> dict[str, float] | None:
    """The rates a record keeps, or None where there is none or it is unreadable."""
    try:
        rates = json.loads(path.read_text())["rates"]
        return {"bf16": float(rates["bf16"]), "fp32": float(rates["fp32"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_first(path: Path, text: str) -> None:
    """Write `text` to `path` whole (a temp file linked into place) unless a readable record is there already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".matmul-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(temp, path)
        except FileExistsError:
            if _read_rates(path) is None:
                os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _matmul_rate(dtype: torch.dtype) -> float:
    a, b = torch.randn(1024, 384, dtype=dtype), torch.randn(384, 1536, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 1.0 / best


def _cpu_model() -> str:
    """The CPU's model name as Linux reports it, else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def physical_cores() -> int:
    """Cores this process may use, counting each physical core once (SMT siblings share units)."""
    n = usable_cores()
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

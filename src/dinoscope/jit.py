"""Kernels compiled by numba on first use: importing numba costs a CLI start ~0.5 s, and a kernel written as plain
Python stays readable (and runs, slowly, without the compiler)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache


@cache
def compiled(kernel: Callable) -> Callable:
    """`kernel` compiled by numba (cached on disk, so a later process loads it), running without the GIL: a thread
    that calls it leaves the others free."""
    from numba import njit

    return njit(cache=True, nogil=True)(kernel)

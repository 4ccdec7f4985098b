"""How the process holds freed memory: glibc's malloc keeps it for the next allocation instead of handing it back.

glibc returns the freed top of its heap to the system once it exceeds a few MB, and serves blocks over its (adaptive)
mmap threshold with fresh pages; either way the next allocation of that size faults every page in again. Placing
10,000 points with a learned map frees ~25 MB of temporaries a call, and on the 2-vCPU VM of 2026-12-04 each call
took ~5,500 page faults (getrusage over 50 calls of Fashion-MNIST's split) and 14-16 ms instead of 6.8-8.7: with this
setting, 0 faults. PyTorch's CPU tuning guide
advises jemalloc or tcmalloc for the same reason; this is the in-process equivalent, set by the `dinoscope`
command (and so by the service) and by the benchmarks, never on import: a program that imports dinoscope keeps
its own allocator settings.
"""

from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
KEEP = 256 << 20  # freed bytes kept at the heap's top before any is returned
MMAP_ABOVE = 32 << 20  # blocks under this come from the heap, reused; larger ones are mapped (glibc's adaptive cap)


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc keep up to KEEP freed bytes and serve blocks under MMAP_ABOVE from its heap (once per process).
    Returns whether it applied: False off Linux or on a C library without glibc's `mallopt` (musl)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version"):  # glibc alone has it; musl's mallopt is a stub
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_ABOVE)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP))

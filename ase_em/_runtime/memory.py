"""Keep freed memory in the process for the next allocation (glibc's malloc), once per process.

Why: a forward pass of the network allocates and frees tens of tensors of 1-25 MB per
batch. glibc serves every block above its mmap threshold (128 kB, growing to at most
32 MiB as it adapts) with a fresh ``mmap`` and gives it back to the kernel on ``free``,
so every such tensor is written into freshly zeroed pages: on the 2-core development
machine a batch of 32 TRAIN bands took about a million page faults per member, and the
forward 1.2-1.6x the CPU time it takes with the blocks kept
(``benchmarks/throughput.py``; docs/benchmarks.md). Raising the mmap threshold to its
maximum and the trim threshold to 1 GiB makes glibc reuse the freed blocks instead. The
barriers are bit for bit the same; the cost is that the process keeps up to 1 GiB of freed
memory instead of returning it to the system.

Set ``ASE_EM_KEEP_MEMORY=0`` to leave malloc as it is. Elsewhere than glibc (macOS,
musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

KEEP_MEMORY_ENV = "ASE_EM_KEEP_MEMORY"
M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 1024 * 1024 * 1024

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc as the module docstring says (once; later calls return the first answer).

    Returns:
        Whether malloc was tuned (False: disabled by ``ASE_EM_KEEP_MEMORY=0``, or not glibc).
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get(KEEP_MEMORY_ENV, "").strip() in ("0", "no", "false"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        getattr(libc, "gnu_get_libc_version")  # noqa: B009  glibc only: musl's mallopt is a no-op stub
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    logger.debug("malloc keeps freed blocks: %s", ok)
    _done = ok
    return ok

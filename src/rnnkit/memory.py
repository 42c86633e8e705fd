"""Reuse large blocks of memory instead of asking the kernel for fresh pages every step.

glibc's malloc serves every block above a threshold (at most 32 MiB by default) with a fresh
``mmap`` and gives it back on ``free``; the next step's block of the same size then page-faults
anew. A training step allocates several such blocks (activations kept for the backward pass:
at B=64, T=128, H=512 the GRU's gates alone are 50 MB), and touching fresh pages is slow
beside reusing them (docs/performance.md's peak-memory section has the figures). Raising the
mmap threshold and the trim threshold keeps freed blocks in the heap for the next step; the
cost is that the process keeps its peak memory until it exits.

``rnnkit``'s commands call :func:`reuse_large_allocations` at start; code that uses the library
may call it too. It does nothing outside glibc. What it guarantees is that large blocks come
from the heap instead of a fresh mapping each (tests/test_cli.py checks this). Whether a freed
block's pages then serve the next block of the same size is not guaranteed: torch asks for
64-byte-aligned blocks (``posix_memalign``), and glibc serves an aligned request from a free
chunk only if it is larger than the block by the alignment, so a freed block is reused when it
merges with free memory beside it (the heap's top) and not when a small allocation has landed
after it; then the heap grows and the new pages fault as before.
"""

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
THRESHOLD = 1 << 30  # 1 GiB: blocks below it come from the heap and are kept for reuse


@functools.cache
def reuse_large_allocations() -> bool:
    """Set glibc's mmap and trim thresholds to 1 GiB; True when it took effect."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS, Windows): leave the allocator alone
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))

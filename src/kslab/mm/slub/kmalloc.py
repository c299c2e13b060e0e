"""The kmalloc caches of Linux 6.12 (mm/slab_common.c, include/linux/slab.h, mm/slab.h).

Size classes kmalloc-8 ... kmalloc-8k (KMALLOC_SHIFT_HIGH is PAGE_SHIFT + 1 for SLUB) plus the 96 and 192
byte classes, in the normal, reclaimable (``kmalloc-rcl-``) and DMA (``dma-kmalloc-``) types; the memcg,
random and no-objext types are off in the captured kernels.
"""

from __future__ import annotations

from typing import Final

from .flags import SLAB_CACHE_DMA, SLAB_KMALLOC, SLAB_RECLAIM_ACCOUNT
from .geometry import __GFP_DMA, __GFP_RECLAIMABLE, fls
from .slab_common import create_boot_cache
from .slub_def import (
    ARCH_KMALLOC_MINALIGN,
    ARCH_SLAB_MINALIGN,
    KMALLOC_MIN_SIZE,
    KMALLOC_SHIFT_HIGH,
    KMALLOC_SHIFT_LOW,
    KmallocCacheType,
    KmemCache,
    SlabState,
    Slub,
)

KERNEL_SYMBOLS_612 = ("kmalloc_info", "kmalloc_size_index", "size_index_elem", "__kmalloc_index", "kmalloc_type",
                      "kmalloc_slab", "setup_kmalloc_cache_index_table", "__kmalloc_minalign",
                      "create_kmalloc_cache", "new_kmalloc_cache", "create_kmalloc_caches")

KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA = KmallocCacheType

_SHORT = {1024: "1k", 2048: "2k", 4096: "4k", 8192: "8k", 16384: "16k", 32768: "32k", 65536: "64k",
          131072: "128k", 262144: "256k", 524288: "512k", 1048576: "1M", 2097152: "2M"}
_PREFIX = {KMALLOC_NORMAL: "kmalloc-", KMALLOC_RECLAIM: "kmalloc-rcl-", KMALLOC_DMA: "dma-kmalloc-"}


def _info(size: int) -> tuple[int, tuple[str, ...]]:
    short = _SHORT.get(size, str(size))
    return size, tuple(_PREFIX[t] + short for t in KmallocCacheType)


#: kmalloc_info[]: (size, name per kmalloc type) by index; index 1 and 2 are the 96 and 192 byte classes
kmalloc_info: Final[tuple[tuple[int, tuple[str, ...]], ...]] = tuple(
    _info(size) for size in (0, 96, 192, *(1 << i for i in range(3, 22))))

#: the boot value of kmalloc_size_index[]: the index serving sizes up to 8 * (i + 1)
kmalloc_size_index: Final[tuple[int, ...]] = (3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7,
                                              2, 2, 2, 2, 2, 2, 2, 2)


def size_index_elem(nbytes: int) -> int:
    return (nbytes - 1) // 8


def __kmalloc_index(size: int) -> int:
    """The kmalloc_info index of a size: 0 for 0, 1 for 65..96, 2 for 129..192, else ceil(log2(size))."""
    if not size:
        return 0
    if size <= KMALLOC_MIN_SIZE:
        return KMALLOC_SHIFT_LOW
    if KMALLOC_MIN_SIZE <= 32 and 64 < size <= 96:
        return 1
    if KMALLOC_MIN_SIZE <= 64 and 128 < size <= 192:
        return 2
    return fls(size - 1)


def kmalloc_type(flags: int) -> KmallocCacheType:
    """The kmalloc type a gfp mask selects: __GFP_DMA first, then __GFP_RECLAIMABLE (no memcg)."""
    if not flags & (__GFP_RECLAIMABLE | __GFP_DMA):
        return KMALLOC_NORMAL
    if flags & __GFP_DMA:
        return KMALLOC_DMA
    return KMALLOC_RECLAIM


def kmalloc_slab(sl: Slub, size: int, flags: int) -> KmemCache | None:
    """The kmalloc cache serving ``size`` bytes with gfp ``flags`` (size at most KMALLOC_MAX_CACHE_SIZE)."""
    if size <= 192:
        index = sl.kmalloc_size_index[size_index_elem(size)]
    else:
        index = fls(size - 1)
    return sl.kmalloc_caches[kmalloc_type(flags)][index]


def setup_kmalloc_cache_index_table(sl: Slub) -> None:
    """Start from the boot kmalloc_size_index[]; with KMALLOC_MIN_SIZE 8 (x86_64) nothing is patched."""
    table = list(kmalloc_size_index)
    for i in range(8, KMALLOC_MIN_SIZE, 8):
        if size_index_elem(i) >= len(table):
            break
        table[size_index_elem(i)] = KMALLOC_SHIFT_LOW
    if KMALLOC_MIN_SIZE >= 64:
        for i in range(72, 97, 8):
            table[size_index_elem(i)] = 7
    if KMALLOC_MIN_SIZE >= 128:
        for i in range(136, 193, 8):
            table[size_index_elem(i)] = 8
    sl.kmalloc_size_index = table


def __kmalloc_minalign() -> int:
    """dma_get_cache_alignment() is 1 on x86_64, so the slab minimum alignment rules."""
    return max(1, ARCH_SLAB_MINALIGN)


def create_kmalloc_cache(sl: Slub, name: str, size: int, flags: int) -> KmemCache:
    """Create one kmalloc cache (refcount 1: mergeable from now on)."""
    s = KmemCache(name)
    create_boot_cache(sl, s, name, size, flags | SLAB_KMALLOC, 0, size)
    sl.slab_caches.insert(0, s)
    s.refcount = 1
    return s


def new_kmalloc_cache(sl: Slub, idx: int, kind: KmallocCacheType) -> None:
    """Create the cache of kmalloc_info[idx] for a kmalloc type, unless it exists."""
    flags = 0
    if kind == KMALLOC_RECLAIM:
        flags |= SLAB_RECLAIM_ACCOUNT
    elif kind == KMALLOC_DMA:
        flags |= SLAB_CACHE_DMA
    minalign = __kmalloc_minalign()
    aligned_size, names = kmalloc_info[idx]
    aligned_idx = idx
    if minalign > ARCH_KMALLOC_MINALIGN:
        aligned_size = (aligned_size + minalign - 1) & ~(minalign - 1)
        aligned_idx = __kmalloc_index(aligned_size)
        names = kmalloc_info[aligned_idx][1]
    row = sl.kmalloc_caches[kind]
    if row[aligned_idx] is None:
        row[aligned_idx] = create_kmalloc_cache(sl, names[kind], aligned_size, flags)
    if idx != aligned_idx:
        row[idx] = row[aligned_idx]


def create_kmalloc_caches(sl: Slub) -> None:
    """Every kmalloc cache, type by type: the 96 and 192 byte classes, then 8 ... 8k; then slab_state is UP."""
    for kind in KmallocCacheType:
        if KMALLOC_MIN_SIZE <= 32:
            new_kmalloc_cache(sl, 1, kind)
        if KMALLOC_MIN_SIZE <= 64:
            new_kmalloc_cache(sl, 2, kind)
        for i in range(KMALLOC_SHIFT_LOW, KMALLOC_SHIFT_HIGH + 1):
            new_kmalloc_cache(sl, i, kind)
    sl.slab_state = SlabState.UP

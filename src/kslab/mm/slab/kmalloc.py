"""kmalloc: size classes, the kmalloc caches, and the kmalloc family of entry points.

Mirrors include/linux/slab.h (``kmalloc_index``, ``kmalloc_type``), mm/slab_common.c
(``kmalloc_info``, ``size_index``, ``kmalloc_slab``, ``setup_kmalloc_cache_index_table``,
``new_kmalloc_cache``, ``create_kmalloc_caches``, ``krealloc``, ``ksize``) and mm/slab.c
(``__do_kmalloc``, ``__do_kmalloc_node``, ``__ksize``, ``kfree``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..gfp import __GFP_DMA, __GFP_RECLAIMABLE, __GFP_ZERO
from ..slab_def import (
    KMALLOC_DMA,
    KMALLOC_MAX_CACHE_SIZE,
    KMALLOC_NORMAL,
    KMALLOC_RECLAIM,
    KMALLOC_SHIFT_HIGH,
    KMALLOC_SHIFT_LOW,
    SLAB_CACHE_DMA,
    SLAB_RECLAIM_ACCOUNT,
    ZERO_SIZE_PTR,
    KmemCache,
)
from . import alloc, free

if TYPE_CHECKING:
    from ..kernel import Kernel

KERNEL_SYMBOLS = ("kmalloc_info", "kmalloc_index", "kmalloc_type", "kmalloc_slab", "size_index_elem",
                  "setup_kmalloc_cache_index_table", "kmalloc_cache_name", "__do_kmalloc", "__do_kmalloc_node",
                  "kmalloc", "kmalloc_node", "kzalloc", "kcalloc", "kmalloc_array", "krealloc", "ksize", "__ksize",
                  "kfree", "kfree_sensitive")

_SIZE_NAMES = {1: "96", 2: "192"}
for _i in range(3, 23):
    _v = 1 << _i
    _SIZE_NAMES[_i] = f"{_v >> 20}M" if _v >= 1 << 20 else (f"{_v >> 10}k" if _v >= 1 << 10 else str(_v))


def kmalloc_info(index: int) -> tuple[str, int]:
    """(size name, size) of kmalloc index 1..22 (index 1 is 96 bytes, 2 is 192)."""
    size = {1: 96, 2: 192}.get(index, 1 << index)
    return _SIZE_NAMES[index], size


def kmalloc_cache_name(kind: int, index: int) -> str:
    prefix = ("kmalloc-", "kmalloc-rcl-", "dma-kmalloc-")[kind]
    return prefix + _SIZE_NAMES[index]


def kmalloc_index(size: int) -> int:
    """The compile-time size class: 0 for size 0, -1 beyond 4 MiB."""
    if not size:
        return 0
    if size <= 32:
        return KMALLOC_SHIFT_LOW  # KMALLOC_MIN_SIZE is 32 on SLAB: 8 and 16 go to kmalloc-32
    if 64 < size <= 96:
        return 1
    if 128 < size <= 192:
        return 2
    if size > KMALLOC_MAX_CACHE_SIZE:
        return -1
    return max((size - 1).bit_length(), KMALLOC_SHIFT_LOW)


def kmalloc_type(flags: int) -> int:
    if not flags & (__GFP_DMA | __GFP_RECLAIMABLE):
        return KMALLOC_NORMAL
    return KMALLOC_DMA if flags & __GFP_DMA else KMALLOC_RECLAIM


def size_index_elem(nbytes: int) -> int:
    return (nbytes - 1) // 8


def setup_kmalloc_cache_index_table(k: Kernel) -> None:
    """size_index[] maps sizes 1..192 in steps of 8; entries below KMALLOC_MIN_SIZE point at kmalloc-32."""
    table = [3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2]
    for i in range(8, 32, 8):  # KMALLOC_MIN_SIZE = 32 > 8
        table[size_index_elem(i)] = KMALLOC_SHIFT_LOW
    k.size_index = table


def kmalloc_slab(k: Kernel, size: int, flags: int) -> KmemCache | int | None:
    """The cache for a kmalloc of ``size``: None if too large, ZERO_SIZE_PTR (16) for size 0."""
    if size <= 192:
        if not size:
            if k.explain is not None:
                k.explain.step("kmalloc_slab", "zero", size=size)
            return ZERO_SIZE_PTR
        if size < 0:  # a size_t: larger than KMALLOC_MAX_CACHE_SIZE
            return None
        index = k.size_index[(size - 1) // 8]  # size_index_elem() inlined
        if k.explain is not None:
            c = k.kmalloc_caches[kmalloc_type(flags)][index]
            k.explain.step("kmalloc_slab", "size_index", size=size, elem=size_index_elem(size), index=index,
                           kind=kmalloc_type(flags), cache=c.name if c is not None else None)
    else:
        if size > KMALLOC_MAX_CACHE_SIZE:
            return None
        index = (size - 1).bit_length()
        if k.explain is not None:
            c = k.kmalloc_caches[kmalloc_type(flags)][index]
            k.explain.step("kmalloc_slab", "fls", size=size, index=index, kind=kmalloc_type(flags),
                           cache=c.name if c is not None else None)
    if not flags & (__GFP_DMA | __GFP_RECLAIMABLE):  # kmalloc_type() inlined: KMALLOC_NORMAL
        return k.kmalloc_caches[KMALLOC_NORMAL][index]
    return k.kmalloc_caches[kmalloc_type(flags)][index]


def new_kmalloc_cache(k: Kernel, idx: int, kind: int, flags: int) -> None:
    if kind == KMALLOC_RECLAIM:
        flags |= SLAB_RECLAIM_ACCOUNT
    name = kmalloc_cache_name(kind, idx)
    size = kmalloc_info(idx)[1]
    from ..slab_common import create_kmalloc_cache  # noqa: PLC0415
    k.kmalloc_caches[kind][idx] = create_kmalloc_cache(k, name, size, flags, 0, size)


def create_kmalloc_caches(k: Kernel, flags: int) -> None:
    from ..slab_def import UP  # noqa: PLC0415
    for kind in (KMALLOC_NORMAL, KMALLOC_RECLAIM):
        for i in range(KMALLOC_SHIFT_LOW, KMALLOC_SHIFT_HIGH + 1):
            if k.kmalloc_caches[kind][i] is None:
                new_kmalloc_cache(k, i, kind, flags)
            if k.kmalloc_caches[kind][1] is None and i == 6:
                new_kmalloc_cache(k, 1, kind, flags)
            if k.kmalloc_caches[kind][2] is None and i == 7:
                new_kmalloc_cache(k, 2, kind, flags)
    k.slab_state = UP
    for i in range(KMALLOC_SHIFT_HIGH + 1):
        s = k.kmalloc_caches[KMALLOC_NORMAL][i]
        if s is not None:
            size = kmalloc_info(i)[1]
            from ..slab_common import create_kmalloc_cache  # noqa: PLC0415
            k.kmalloc_caches[KMALLOC_DMA][i] = create_kmalloc_cache(
                k, kmalloc_cache_name(KMALLOC_DMA, i), size, SLAB_CACHE_DMA | flags, 0, size)


def __do_kmalloc(k: Kernel, size: int, flags: int, caller: int = 0, internal: str = "") -> int:
    if k.explain is not None:
        k.explain.step("__do_kmalloc", "entry", size=size, flags=flags, cpu=k.cpu, node=k.numa_node)
    if size > KMALLOC_MAX_CACHE_SIZE:
        if k.explain is not None:
            k.explain.step("__do_kmalloc", "too_large", size=size, max=KMALLOC_MAX_CACHE_SIZE)
        return 0
    cachep = kmalloc_slab(k, size, flags)
    if cachep is None or isinstance(cachep, int):
        return cachep or 0
    ret = alloc.slab_alloc(cachep, flags, caller)
    if k.event_hook is not None:
        k.event_hook("kmalloc", cachep, ret, size, flags, -1, internal)
    return ret


def __do_kmalloc_node(k: Kernel, size: int, flags: int, node: int, caller: int = 0, internal: str = "") -> int:
    if k.explain is not None:
        k.explain.step("__do_kmalloc_node", "entry", size=size, flags=flags, cpu=k.cpu, node=node)
    if size > KMALLOC_MAX_CACHE_SIZE:
        if k.explain is not None:
            k.explain.step("__do_kmalloc_node", "too_large", size=size, max=KMALLOC_MAX_CACHE_SIZE)
        return 0
    cachep = kmalloc_slab(k, size, flags)
    if cachep is None or isinstance(cachep, int):
        return cachep or 0
    ret = alloc.slab_alloc_node(cachep, flags, node, caller)
    if k.event_hook is not None:
        k.event_hook("kmalloc_node", cachep, ret, size, flags, node, internal)
    return ret


def kmalloc(k: Kernel, size: int, flags: int, caller: int = 0, internal: str = "") -> int:
    """Allocate ``size`` bytes: a pointer, ZERO_SIZE_PTR (16) for size 0, or 0 (NULL)."""
    if size < 0:
        return 0
    return __do_kmalloc(k, size, flags, caller, internal)


def kmalloc_node(k: Kernel, size: int, flags: int, node: int, caller: int = 0, internal: str = "") -> int:
    if size < 0:
        return 0
    return __do_kmalloc_node(k, size, flags, node, caller, internal)


def kzalloc(k: Kernel, size: int, flags: int, caller: int = 0) -> int:
    return kmalloc(k, size, flags | __GFP_ZERO, caller)


def kmalloc_array(k: Kernel, n: int, size: int, flags: int, caller: int = 0) -> int:
    if size and n > (2**64 - 1) // size:
        return 0
    return __do_kmalloc(k, n * size, flags, caller)


def kcalloc(k: Kernel, n: int, size: int, flags: int, caller: int = 0) -> int:
    return kmalloc_array(k, n, size, flags | __GFP_ZERO, caller)


def __ksize(k: Kernel, objp: int) -> int:
    c = free.virt_to_cache(k, objp)
    return c.object_size if c is not None else 0


def ksize(k: Kernel, objp: int) -> int:
    if objp <= ZERO_SIZE_PTR:
        return 0
    return __ksize(k, objp)


def kfree(k: Kernel, objp: int, caller: int = 0, internal: str = "") -> None:
    free.kfree(k, objp, caller, internal)


def krealloc(k: Kernel, p: int, new_size: int, flags: int, caller: int = 0) -> int:
    if not new_size:
        kfree(k, p, caller)
        return ZERO_SIZE_PTR
    ks = ksize(k, p) if p > ZERO_SIZE_PTR else 0
    if ks >= new_size:
        if flags & __GFP_ZERO or k.config.init_on_alloc:
            k.memory.memset(p + new_size, 0, ks - new_size)
        return p
    ret = __do_kmalloc(k, new_size, flags, caller)
    if ret and p > ZERO_SIZE_PTR:
        k.memory.memcpy(ret, p, ks)
        kfree(k, p, caller)
    return ret


def kfree_sensitive(k: Kernel, p: int, caller: int = 0) -> None:
    ks = ksize(k, p)
    if ks:
        k.memory.memset(p, 0, ks)
    kfree(k, p, caller)

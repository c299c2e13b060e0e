"""Cache geometry: alignment, objects per slab, order and freelist placement.

Mirrors mm/slab.c (``cache_estimate``, ``calculate_slab_order``, ``set_objfreelist_slab_cache``,
``set_off_slab_cache``, ``set_on_slab_cache``, ``__kmem_cache_create``), mm/slab_common.c
(``calculate_alignment``) and lib/math/reciprocal_div.c (``reciprocal_value``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import PAGE_SIZE
from ..gfp import __GFP_COMP, __GFP_RECLAIMABLE, GFP_DMA, GFP_DMA32
from ..slab_def import (
    ARCH_SLAB_MINALIGN,
    BYTES_PER_WORD,
    CFLGS_OBJFREELIST_SLAB,
    CFLGS_OFF_SLAB,
    KMALLOC_MAX_ORDER,
    REDZONE_ALIGN,
    SLAB_CACHE_DMA,
    SLAB_CACHE_DMA32,
    SLAB_HWCACHE_ALIGN,
    SLAB_NOLEAKTRACE,
    SLAB_OBJ_MAX_NUM,
    SLAB_OBJ_MIN_SIZE,
    SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TYPESAFE_BY_RCU,
    KmemCache,
)

if TYPE_CHECKING:
    from ..kernel import Kernel

KERNEL_SYMBOLS = ("fls", "ALIGN", "reciprocal_value", "reciprocal_divide", "calculate_alignment", "cache_estimate",
                  "calculate_slab_order", "set_objfreelist_slab_cache", "set_off_slab_cache",
                  "set_on_slab_cache", "slab_want_init_on_free", "compute_geometry")

E2BIG = 7


def fls(x: int) -> int:
    """Position of the most significant set bit, 1-based; fls(0) = 0."""
    return x.bit_length()


def ALIGN(x: int, a: int) -> int:  # kernel macro
    # __ALIGN_KERNEL is a mask operation even when a caller passes a non-power-of-two alignment
    # (kmem_cache_create(.., align=24, ..)): ALIGN(40, 24) is 40 and ALIGN(48, 24) is 64 there.
    return (x + a - 1) & ~(a - 1)


def reciprocal_value(d: int) -> tuple[int, int, int]:
    """lib/math/reciprocal_div.c: the (m, sh1, sh2) triple that replaces a division by ``d``."""
    l = fls(d - 1)  # noqa: E741 - the kernel's name
    m = ((1 << 32) * ((1 << l) - d)) // d + 1
    m &= 0xFFFFFFFF
    sh1 = min(l, 1)
    sh2 = max(l - 1, 0)
    return (m, sh1, sh2)


def reciprocal_divide(a: int, r: tuple[int, int, int]) -> int:
    m, sh1, sh2 = r
    t = (a * m) >> 32
    return (t + ((a - t) >> sh1)) >> sh2


def calculate_alignment(flags: int, align: int, size: int, cache_line_size: int = 64) -> int:
    """mm/slab_common.c:calculate_alignment()."""
    if flags & SLAB_HWCACHE_ALIGN:
        ralign = cache_line_size
        while size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    if align < ARCH_SLAB_MINALIGN:
        align = ARCH_SLAB_MINALIGN
    return ALIGN(align, BYTES_PER_WORD)


def cache_estimate(gfporder: int, buffer_size: int, flags: int) -> tuple[int, int]:
    """mm/slab.c:cache_estimate(): (objects per slab, bytes left over)."""
    slab_size = PAGE_SIZE << gfporder
    if flags & (CFLGS_OBJFREELIST_SLAB | CFLGS_OFF_SLAB):
        return slab_size // buffer_size, slab_size % buffer_size
    return slab_size // (buffer_size + 1), slab_size % (buffer_size + 1)


def calculate_slab_order(k: Kernel, cachep: KmemCache, size: int, flags: int) -> int:
    """mm/slab.c:calculate_slab_order(): sets cachep.num/gfporder, returns the left-over bytes."""
    left_over = 0
    slab_max_order = k.boot_params.slab_max_order
    for gfporder in range(KMALLOC_MAX_ORDER + 1):
        num, remainder = cache_estimate(gfporder, size, flags)
        if not num:
            continue
        if num > SLAB_OBJ_MAX_NUM:
            break
        if flags & CFLGS_OFF_SLAB:
            freelist_cache = k.kmalloc_slab(num, 0)
            if freelist_cache is None:
                continue
            if freelist_cache.flags & CFLGS_OFF_SLAB:
                continue
            # cachep.size still holds the creator's size here
            if freelist_cache.size > cachep.size // 2:
                continue
        cachep.num = num
        cachep.gfporder = gfporder
        left_over = remainder
        if flags & SLAB_RECLAIM_ACCOUNT:
            break
        if gfporder >= slab_max_order:
            break
        if left_over * 8 <= (PAGE_SIZE << gfporder):
            break
    return left_over


def slab_want_init_on_free(k: Kernel, cachep: KmemCache) -> bool:
    """mm/slab.h:slab_want_init_on_free()."""
    if k.config.init_on_free:
        return not (cachep.ctor or cachep.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON))
    return False


def set_objfreelist_slab_cache(k: Kernel, cachep: KmemCache, size: int, flags: int) -> bool:
    cachep.num = 0
    # evaluated while cachep.flags is still 0: see the spec's init_on_free quirk
    if slab_want_init_on_free(k, cachep):
        return False
    if cachep.ctor or flags & SLAB_TYPESAFE_BY_RCU:
        return False
    left = calculate_slab_order(k, cachep, size, flags | CFLGS_OBJFREELIST_SLAB)
    if not cachep.num:
        return False
    if cachep.num > cachep.object_size:
        return False
    cachep.colour = left // cachep.colour_off
    return True


def set_off_slab_cache(k: Kernel, cachep: KmemCache, size: int, flags: int) -> bool:
    cachep.num = 0
    if flags & SLAB_NOLEAKTRACE:
        return False
    left = calculate_slab_order(k, cachep, size, flags | CFLGS_OFF_SLAB)
    if not cachep.num:
        return False
    if left >= cachep.num:
        return False
    cachep.colour = left // cachep.colour_off
    return True


def set_on_slab_cache(k: Kernel, cachep: KmemCache, size: int, flags: int) -> bool:
    cachep.num = 0
    left = calculate_slab_order(k, cachep, size, flags)
    if not cachep.num:
        return False
    cachep.colour = left // cachep.colour_off
    return True


def compute_geometry(k: Kernel, cachep: KmemCache, flags: int) -> int:
    """The geometry half of mm/slab.c:__kmem_cache_create(): 0 or -E2BIG.

    On entry ``cachep.size == cachep.object_size`` (the creator's size) and ``cachep.align`` is the
    result of calculate_alignment().  On success every geometry field is set; the tunables are
    the caller's business (setup_cpu_cache).
    """
    ralign = BYTES_PER_WORD
    size = cachep.size
    debug = k.config.CONFIG_DEBUG_SLAB
    cachep.flags = 0  # kmem_cache_zalloc(): the flags are stored only at the end
    if debug:  # FORCED_DEBUG
        if size < 4096 or fls(size - 1) == fls(size - 1 + REDZONE_ALIGN + 16):
            flags |= SLAB_RED_ZONE | SLAB_STORE_USER
        if not flags & SLAB_TYPESAFE_BY_RCU:
            flags |= SLAB_POISON
    size = ALIGN(size, BYTES_PER_WORD)
    if flags & SLAB_RED_ZONE:
        ralign = REDZONE_ALIGN
        size = ALIGN(size, REDZONE_ALIGN)
    if ralign < cachep.align:
        ralign = cachep.align
    if ralign > 8:  # __alignof__(unsigned long long)
        flags &= ~(SLAB_RED_ZONE | SLAB_STORE_USER)
    cachep.align = ralign
    cachep.colour_off = max(k.config.cache_line_size, cachep.align)
    cachep.obj_offset = 0
    if debug:
        if flags & SLAB_RED_ZONE:
            cachep.obj_offset += 8
            size += 16
        if flags & SLAB_STORE_USER:
            size += REDZONE_ALIGN if flags & SLAB_RED_ZONE else BYTES_PER_WORD
    size = ALIGN(size, cachep.align)
    if size < SLAB_OBJ_MIN_SIZE:
        size = ALIGN(SLAB_OBJ_MIN_SIZE, cachep.align)
    if set_objfreelist_slab_cache(k, cachep, size, flags):
        flags |= CFLGS_OBJFREELIST_SLAB
    elif set_off_slab_cache(k, cachep, size, flags):
        flags |= CFLGS_OFF_SLAB
    elif not set_on_slab_cache(k, cachep, size, flags):
        return -E2BIG
    cachep.freelist_size = cachep.num
    cachep.flags = flags
    allocflags = __GFP_COMP
    if flags & SLAB_CACHE_DMA:
        allocflags |= GFP_DMA
    if flags & SLAB_CACHE_DMA32:
        allocflags |= GFP_DMA32
    if flags & SLAB_RECLAIM_ACCOUNT:
        allocflags |= __GFP_RECLAIMABLE
    cachep.allocflags = allocflags
    cachep.size = size
    cachep.reciprocal_buffer_size = reciprocal_value(size)
    if flags & CFLGS_OFF_SLAB:
        cachep.freelist_cache = k.kmalloc_slab(cachep.freelist_size, 0)
    return 0

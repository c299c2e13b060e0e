"""A SLUB cache's geometry: object layout, slab order, objects per slab, partial-list limits (mm/slub.c, 6.12).

``calculate_sizes`` lays the object out (red zones, the free pointer inside the object or after it, the
tracking records) and picks the order with ``calculate_order``; ``do_kmem_cache_create`` adds
``min_partial`` and ``cpu_partial``.  All of it is arithmetic on the cache and the :class:`SlubConfig`.
"""

from __future__ import annotations

from ..config import PAGE_SHIFT, PAGE_SIZE
from .debug import SlubDebug, kmem_cache_flags
from .flags import (
    __CMPXCHG_DOUBLE,
    __OBJECT_POISON,
    DEBUG_METADATA_FLAGS,
    SLAB_CACHE_DMA,
    SLAB_CACHE_DMA32,
    SLAB_DEBUG_FLAGS,
    SLAB_KMALLOC,
    SLAB_NO_CMPXCHG,
    SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TYPESAFE_BY_RCU,
)
from .slub_def import (
    MAX_OBJS_PER_PAGE,
    MAX_PAGE_ORDER,
    MAX_PARTIAL,
    MIN_PARTIAL,
    OO_MASK,
    OO_SHIFT,
    SIZEOF_TRACK,
    SIZEOF_VOID_P,
    KmemCache,
    KmemCacheArgs,
    SlubConfig,
)

KERNEL_SYMBOLS_612 = ("ALIGN", "ALIGN_DOWN", "fls", "ilog2", "get_order", "order_objects", "oo_make", "oo_order",
                      "oo_objects", "kmem_cache_debug", "kmem_cache_has_cpu_partial", "slub_debug_orig_size",
                      "freeptr_outside_object", "get_info_end", "calc_slab_order", "calculate_order",
                      "calculate_sizes", "set_min_partial", "slub_set_cpu_partial", "set_cpu_partial",
                      "do_kmem_cache_create")

EINVAL = 22
ENOSYS = 38
# include/linux/gfp_types.h bits SLUB puts into allocflags (the same in 5.10 and 6.12)
__GFP_DMA = 0x01
__GFP_DMA32 = 0x04
__GFP_RECLAIMABLE = 0x10
__GFP_COMP = 0x40000


def ALIGN(x: int, a: int) -> int:
    """Round ``x`` up to a multiple of ``a`` (a power of two)."""
    return (x + a - 1) & ~(a - 1)


def ALIGN_DOWN(x: int, a: int) -> int:
    """Round ``x`` down to a multiple of ``a`` (a power of two)."""
    return x & ~(a - 1)


def fls(x: int) -> int:
    """Find last set bit, 1-based (0 for 0)."""
    return x.bit_length()


def ilog2(x: int) -> int:
    """Floor of log2 (x > 0)."""
    return x.bit_length() - 1


def get_order(size: int) -> int:
    """The smallest order whose pages hold ``size`` bytes (include/asm-generic/getorder.h)."""
    return max(0, (size - 1) >> PAGE_SHIFT).bit_length()


def order_objects(order: int, size: int) -> int:
    """Objects of ``size`` bytes in a slab of ``order``."""
    return (PAGE_SIZE << order) // size


def oo_make(order: int, size: int) -> int:
    """struct kmem_cache_order_objects for ``order`` and ``size``, packed."""
    return (order << OO_SHIFT) + order_objects(order, size)


def oo_order(x: int) -> int:
    return x >> OO_SHIFT


def oo_objects(x: int) -> int:
    return x & OO_MASK


def kmem_cache_debug(s: KmemCache) -> bool:
    """Whether any SLAB_DEBUG_FLAGS is on for the cache (kmem_cache_debug_flags with all of them).

    The static key slub_debug_enabled is on whenever any cache has such a flag (slab_debug= or a creation
    that asks for one), so the flag test alone decides.
    """
    return bool(s.flags & SLAB_DEBUG_FLAGS)


def kmem_cache_has_cpu_partial(cfg: SlubConfig, s: KmemCache) -> bool:
    """Per-CPU partial slabs: with CONFIG_SLUB_CPU_PARTIAL, for caches without debugging."""
    return cfg.CONFIG_SLUB_CPU_PARTIAL and not kmem_cache_debug(s)


def slub_debug_orig_size(s: KmemCache) -> bool:
    """A kmalloc cache that stores users also keeps the requested size."""
    return bool(s.flags & SLAB_STORE_USER) and bool(s.flags & SLAB_KMALLOC)


def freeptr_outside_object(s: KmemCache) -> bool:
    """The free pointer sits after the object (offset at or past inuse)."""
    return s.offset >= s.inuse


def get_info_end(s: KmemCache) -> int:
    """End of the object and its free pointer, where the tracking records begin."""
    return s.inuse + SIZEOF_VOID_P if freeptr_outside_object(s) else s.inuse


def calc_slab_order(size: int, min_order: int, max_order: int, fract_leftover: int) -> int:
    """The lowest order from ``min_order`` up to ``max_order`` that wastes at most 1/``fract_leftover``
    of the slab; ``max_order + 1`` if none does (the loop runs off its end)."""
    order = min_order
    while order <= max_order:
        slab_size = PAGE_SIZE << order
        if slab_size % size <= slab_size // fract_leftover:
            break
        order += 1
    return order


def calculate_order(cfg: SlubConfig, size: int) -> int:
    """The slab order of a cache of stride ``size``: enough objects for the CPUs (slub_min_objects, else
    4 * (fls(CPUs) + 1)), waste of 1/16 then 1/8 then 1/4 accepted within slub_max_order, then the order
    of a single object; -ENOSYS beyond MAX_PAGE_ORDER."""
    min_objects = cfg.slub_min_objects
    if not min_objects:
        nr_cpus = cfg.num_present_cpus
        if nr_cpus <= 1:
            nr_cpus = cfg.nr_cpu_ids
        min_objects = 4 * (fls(nr_cpus) + 1)
    max_order = slub_max_order(cfg)
    max_objects = max(order_objects(max_order, size), 1)
    min_objects = min(min_objects, max_objects)
    min_order = max(cfg.slub_min_order, get_order(min_objects * size))
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE:
        return get_order(size * MAX_OBJS_PER_PAGE) - 1
    fraction = 16
    while fraction > 1:
        order = calc_slab_order(size, min_order, max_order, fraction)
        if order <= max_order:
            return order
        fraction //= 2
    order = get_order(size)
    if order <= MAX_PAGE_ORDER:
        return order
    return -ENOSYS


def slub_max_order(cfg: SlubConfig) -> int:
    """slub_max_order as kmem_cache_init() leaves it: 0 when debug_guardpage_minorder is set."""
    return 0 if cfg.debug_guardpage_minorder else cfg.slub_max_order


def calculate_sizes(cfg: SlubConfig, args: KmemCacheArgs, s: KmemCache) -> bool:
    """Lay the object out and choose the order; False if no object fits.

    Mirrors mm/slub.c:calculate_sizes() (v6.12) with CONFIG_SLUB_DEBUG and without KASAN.
    """
    flags = s.flags
    size = ALIGN(s.object_size, SIZEOF_VOID_P)
    if flags & SLAB_POISON and not flags & SLAB_TYPESAFE_BY_RCU and not s.ctor:
        s.flags |= __OBJECT_POISON
    else:
        s.flags &= ~__OBJECT_POISON
    if flags & SLAB_RED_ZONE and size == s.object_size:
        size += SIZEOF_VOID_P  # room for a red zone after the object
    s.inuse = size
    if ((flags & SLAB_TYPESAFE_BY_RCU and not args.use_freeptr_offset) or flags & SLAB_POISON or s.ctor
            or (flags & SLAB_RED_ZONE and (s.object_size < SIZEOF_VOID_P or slub_debug_orig_size(s)))):
        # the first word may not be overwritten on free: the free pointer goes after the object
        s.offset = size
        size += SIZEOF_VOID_P
    elif flags & SLAB_TYPESAFE_BY_RCU and args.use_freeptr_offset:
        s.offset = args.freeptr_offset
    else:
        s.offset = ALIGN_DOWN(s.object_size // 2, SIZEOF_VOID_P)  # mid-object, away from both edges
    if flags & SLAB_STORE_USER:
        size += 2 * SIZEOF_TRACK
        if flags & SLAB_KMALLOC:
            size += SIZEOF_VOID_P  # the original kmalloc size
    if flags & SLAB_RED_ZONE:
        size += SIZEOF_VOID_P
        s.red_left_pad = ALIGN(SIZEOF_VOID_P, s.align)
        size += s.red_left_pad
    size = ALIGN(size, s.align)
    s.size = size
    order = calculate_order(cfg, size)
    if order < 0:
        return False
    s.allocflags = __GFP_COMP
    if s.flags & SLAB_CACHE_DMA:
        s.allocflags |= __GFP_DMA
    if s.flags & SLAB_CACHE_DMA32:
        s.allocflags |= __GFP_DMA32
    if s.flags & SLAB_RECLAIM_ACCOUNT:
        s.allocflags |= __GFP_RECLAIMABLE
    s.oo = oo_make(order, size)
    s.min = oo_make(get_order(size), size)
    return bool(oo_objects(s.oo))


def set_min_partial(s: KmemCache) -> None:
    """min_partial from the stride: ilog2(size) / 2 within MIN_PARTIAL..MAX_PARTIAL (the two lines of
    do_kmem_cache_create(); a function of this name in kernels before 6.9)."""
    s.min_partial = max(MIN_PARTIAL, min(MAX_PARTIAL, ilog2(s.size) // 2))


def slub_set_cpu_partial(cfg: SlubConfig, s: KmemCache, nr_objects: int) -> None:
    """cpu_partial as objects, cpu_partial_slabs as the slabs that many objects fill when half full."""
    if not cfg.CONFIG_SLUB_CPU_PARTIAL:
        return
    s.cpu_partial = nr_objects
    s.cpu_partial_slabs = -(-(nr_objects * 2) // oo_objects(s.oo))


def set_cpu_partial(cfg: SlubConfig, s: KmemCache) -> None:
    """Per-CPU partial limit by stride: 6 objects from a page up, 24 from 1K, 52 from 256 bytes, else 120;
    0 for debugged caches."""
    if not cfg.CONFIG_SLUB_CPU_PARTIAL:
        return
    if not kmem_cache_has_cpu_partial(cfg, s):
        nr_objects = 0
    elif s.size >= PAGE_SIZE:
        nr_objects = 6
    elif s.size >= 1024:
        nr_objects = 24
    elif s.size >= 256:
        nr_objects = 52
    else:
        nr_objects = 120
    slub_set_cpu_partial(cfg, s, nr_objects)


def do_kmem_cache_create(cfg: SlubConfig, dbg: SlubDebug, s: KmemCache, name: str, size: int,
                         args: KmemCacheArgs, flags: int) -> int:
    """Fill in a new cache's geometry: 0, or -EINVAL when no layout fits.

    Mirrors the geometry part of mm/slub.c:do_kmem_cache_create() (v6.12); the per-node and per-CPU
    structures come with the allocation paths.
    """
    s.name = name
    s.size = s.object_size = size
    s.flags = kmem_cache_flags(dbg, flags, name)
    s.align = args.align
    s.ctor = args.ctor
    if cfg.CONFIG_HARDENED_USERCOPY:
        s.useroffset, s.usersize = args.useroffset, args.usersize
    if not calculate_sizes(cfg, args, s):
        return -EINVAL
    if dbg.disable_higher_order_debug and get_order(s.size) > get_order(s.object_size):
        # 'O': drop the metadata that raised the minimum order
        s.flags &= ~DEBUG_METADATA_FLAGS
        s.offset = 0
        if not calculate_sizes(cfg, args, s):
            return -EINVAL
    if cfg.system_has_freelist_aba and not s.flags & SLAB_NO_CMPXCHG:
        s.flags |= __CMPXCHG_DOUBLE
    set_min_partial(s)
    set_cpu_partial(cfg, s)
    s.remote_node_defrag_ratio = 1000
    return 0

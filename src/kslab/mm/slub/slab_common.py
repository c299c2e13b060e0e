"""Cache creation and merging as Linux 6.12 does them for SLUB (mm/slab_common.c, 6.12).

``__kmem_cache_create_args`` checks and masks the flags, tries ``__kmem_cache_alias`` (``find_mergeable``:
the oldest compatible cache whose stride is at most a word larger) and otherwise creates the cache
(``create_cache`` -> ``do_kmem_cache_create``).  Every request, geometry and merge is recorded in
``Slub.log`` as the oracle patch prints them.
"""

from __future__ import annotations

from enum import Enum

from ..errors import KernelBug
from .debug import kmem_cache_flags
from .flags import (
    CACHE_CREATE_MASK,
    SLAB_FLAGS_PERMITTED,
    SLAB_HWCACHE_ALIGN,
    SLAB_KMALLOC,
    SLAB_MERGE_SAME,
    SLAB_NEVER_MERGE,
    SLAB_TYPESAFE_BY_RCU,
)
from .geometry import ALIGN, EINVAL, do_kmem_cache_create, oo_objects, oo_order
from .slub_def import (
    ARCH_KMALLOC_MINALIGN,
    ARCH_SLAB_MINALIGN,
    SIZEOF_VOID_P,
    AliasRecord,
    CreateRecord,
    GeometryRecord,
    KmemCache,
    KmemCacheArgs,
    Slub,
)

KERNEL_SYMBOLS_612 = ("calculate_alignment", "slab_unmergeable", "find_mergeable", "create_cache",
                      "__kmem_cache_alias", "__kmem_cache_create_args", "kmem_cache_create", "create_boot_cache")


class Unmergeable(Enum):
    """Why slab_unmergeable() refuses a cache as a merge target (None: it does not)."""

    SLAB_NOMERGE = "slab_nomerge"
    NEVER_MERGE_FLAGS = "a SLAB_NEVER_MERGE flag"
    CTOR = "a constructor"
    USERCOPY = "a usercopy window (CONFIG_HARDENED_USERCOPY)"
    BOOT = "a boot cache (refcount < 0)"


def calculate_alignment(sl: Slub, flags: int, align: int, size: int) -> int:
    """The objects' alignment: a cache line (halved while the object fits in half) for SLAB_HWCACHE_ALIGN,
    at least ARCH_SLAB_MINALIGN, a multiple of a word."""
    if flags & SLAB_HWCACHE_ALIGN:
        ralign = sl.cfg.cache_line_size
        while size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    align = max(align, ARCH_SLAB_MINALIGN)
    return ALIGN(align, SIZEOF_VOID_P)


def slab_unmergeable(sl: Slub, s: KmemCache) -> Unmergeable | None:
    """Why ``s`` cannot take aliases, or None if it can (the kernel's int, with the reason kept)."""
    if sl.cfg.slab_nomerge:
        return Unmergeable.SLAB_NOMERGE
    if s.flags & SLAB_NEVER_MERGE:
        return Unmergeable.NEVER_MERGE_FLAGS
    if s.ctor:
        return Unmergeable.CTOR
    if sl.cfg.CONFIG_HARDENED_USERCOPY and s.usersize:
        return Unmergeable.USERCOPY
    if s.refcount < 0:
        return Unmergeable.BOOT
    return None


def find_mergeable(sl: Slub, size: int, flags: int, name: str, args: KmemCacheArgs) -> KmemCache | None:
    """The oldest cache a new one can be an alias of, or None.

    A candidate must be mergeable, at least as large as the aligned request and less than a word larger,
    agree on SLAB_MERGE_SAME and have a stride that is a multiple of the request's alignment.
    """
    if sl.cfg.slab_nomerge or args.ctor:
        return None
    if sl.cfg.CONFIG_HARDENED_USERCOPY and args.usersize:
        return None
    flags = kmem_cache_flags(sl.dbg, flags, name)
    if flags & SLAB_NEVER_MERGE:
        return None
    size = ALIGN(size, SIZEOF_VOID_P)
    align = calculate_alignment(sl, flags, args.align, size)
    size = ALIGN(size, align)
    for s in reversed(sl.slab_caches):
        if slab_unmergeable(sl, s) is not None:
            continue
        if size > s.size:
            continue
        if (flags & SLAB_MERGE_SAME) != (s.flags & SLAB_MERGE_SAME):
            continue
        if s.size & ~(align - 1) != s.size:
            continue
        if s.size - size >= SIZEOF_VOID_P:
            continue
        return s
    return None


def __kmem_cache_alias(sl: Slub, name: str, size: int, flags: int, args: KmemCacheArgs) -> KmemCache | None:
    """Merge a new cache into an existing one: the target's refcount, object_size and inuse grow."""
    s = find_mergeable(sl, size, flags, name, args)
    if s is not None:
        s.refcount += 1
        s.object_size = max(s.object_size, size)
        s.inuse = max(s.inuse, ALIGN(size, SIZEOF_VOID_P))
        s.aliases.append(name)
        sl.log.append(AliasRecord(name, s.name, s.size, s.object_size, s.inuse, s.refcount))
    return s


def log_geometry(sl: Slub, s: KmemCache) -> None:
    """The oracle patch's ``geometry`` line for a cache just created, as a record."""
    sl.log.append(GeometryRecord(s.name, s.object_size, s.size, s.align, s.flags, oo_order(s.oo),
                                 oo_objects(s.oo), oo_order(s.min), oo_objects(s.min), s.offset, s.inuse,
                                 s.red_left_pad, s.min_partial, s.cpu_partial, s.cpu_partial_slabs))


def create_cache(sl: Slub, name: str, object_size: int, args: KmemCacheArgs, flags: int) -> KmemCache | int:
    """A new cache on the list head, or a negative errno (a bad custom free pointer: -EINVAL)."""
    if args.useroffset + args.usersize > object_size:
        args = KmemCacheArgs(args.align, 0, 0, args.freeptr_offset, args.use_freeptr_offset, args.ctor)
    if args.use_freeptr_offset and (args.freeptr_offset >= object_size or not flags & SLAB_TYPESAFE_BY_RCU
                                    or args.freeptr_offset % SIZEOF_VOID_P):
        return -EINVAL
    s = KmemCache(name)
    err = do_kmem_cache_create(sl.cfg, sl.dbg, s, name, object_size, args, flags)
    if err:
        return err
    s.refcount = 1
    sl.slab_caches.insert(0, s)
    log_geometry(sl, s)
    return s


def __kmem_cache_create_args(sl: Slub, name: str, object_size: int, args: KmemCacheArgs,
                             flags: int) -> KmemCache | None:
    """Create a cache or find one to merge it into; None on failure (with the kernel's warning in dmesg)."""
    sl.log.append(CreateRecord(name, object_size, args.align, flags, args.ctor, args.useroffset, args.usersize,
                               args.freeptr_offset if args.use_freeptr_offset else -1, "create"))
    err = 0
    s: KmemCache | int | None = None
    if flags & ~SLAB_FLAGS_PERMITTED:
        err = -EINVAL
    else:
        flags &= CACHE_CREATE_MASK
        if (not sl.cfg.CONFIG_HARDENED_USERCOPY or (not args.usersize and args.useroffset)
                or object_size < args.usersize or object_size - args.usersize < args.useroffset):
            args = KmemCacheArgs(args.align, 0, 0, args.freeptr_offset, args.use_freeptr_offset, args.ctor)
        s = __kmem_cache_alias(sl, name, object_size, flags, args)
        if s is None:
            align = calculate_alignment(sl, flags, args.align, object_size)
            args = KmemCacheArgs(align, args.useroffset, args.usersize, args.freeptr_offset,
                                 args.use_freeptr_offset, args.ctor)
            s = create_cache(sl, name, object_size, args, flags)
            if isinstance(s, int):
                err = s
    if err or not isinstance(s, KmemCache):
        sl.dmesg.append(f"__kmem_cache_create_args({name}) failed with error {err}")
        return None
    return s


def kmem_cache_create(sl: Slub, name: str, size: int, align: int, flags: int, ctor: bool = False,
                      useroffset: int = 0, usersize: int = 0, freeptr_offset: int = -1) -> KmemCache | None:
    """kmem_cache_create()/kmem_cache_create_usercopy() with a kmem_cache_args (``freeptr_offset`` -1:
    no custom free pointer)."""
    args = KmemCacheArgs(align, useroffset, usersize, max(freeptr_offset, 0), freeptr_offset >= 0, ctor)
    return __kmem_cache_create_args(sl, name, size, args, flags)


def create_boot_cache(sl: Slub, s: KmemCache, name: str, size: int, flags: int, useroffset: int,
                      usersize: int) -> None:
    """Create a cache before slab allocations work: kmalloc caches are aligned to the largest power of two
    dividing their size; refcount -1 keeps it out of merging until the caller says otherwise."""
    align = ARCH_KMALLOC_MINALIGN
    if flags & SLAB_KMALLOC:
        align = max(align, size & -size)
    sl.log.append(CreateRecord(name, size, align, flags, False, useroffset, usersize, -1,
                               "kmalloc" if flags & SLAB_KMALLOC else "boot"))
    args = KmemCacheArgs(calculate_alignment(sl, flags, align, size),
                         *((useroffset, usersize) if sl.cfg.CONFIG_HARDENED_USERCOPY else (0, 0)))
    err = do_kmem_cache_create(sl.cfg, sl.dbg, s, name, size, args, flags)
    if err:  # the kernel panics
        raise KernelBug(f"Creation of kmalloc slab {name} size={size} failed. Reason {err}",
                        function="create_boot_cache", cache=name)
    s.refcount = -1
    log_geometry(sl, s)

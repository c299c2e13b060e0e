"""SLAB's structures and flags (include/linux/slab_def.h, mm/slab.h, mm/slab.c, include/linux/slab.h).

Structs hold data only; the algorithms live in the ``kslab.mm.slab`` modules, named after the
kernel functions they mirror.  Field names are the kernel's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from .list import ListHead

if TYPE_CHECKING:
    from .kernel import Kernel

# ---- public cache flags (include/linux/slab.h) ------------------------------------------------
SLAB_CONSISTENCY_CHECKS: Final = 0x00000100
SLAB_RED_ZONE: Final = 0x00000400
SLAB_POISON: Final = 0x00000800
SLAB_HWCACHE_ALIGN: Final = 0x00002000
SLAB_CACHE_DMA: Final = 0x00004000
SLAB_CACHE_DMA32: Final = 0x00008000
SLAB_STORE_USER: Final = 0x00010000
SLAB_PANIC: Final = 0x00040000
SLAB_TYPESAFE_BY_RCU: Final = 0x00080000
SLAB_MEM_SPREAD: Final = 0x00100000
SLAB_TRACE: Final = 0x00200000
SLAB_DEBUG_OBJECTS: Final = 0x00400000
SLAB_NOLEAKTRACE: Final = 0x00800000
SLAB_FAILSLAB: Final = 0x02000000
SLAB_ACCOUNT: Final = 0x04000000
SLAB_KASAN: Final = 0x08000000
SLAB_RECLAIM_ACCOUNT: Final = 0x00020000
SLAB_TEMPORARY: Final = SLAB_RECLAIM_ACCOUNT
SLAB_DEACTIVATED: Final = 0x10000000
# internal (mm/slab.c)
CFLGS_OBJFREELIST_SLAB: Final = 0x40000000
CFLGS_OFF_SLAB: Final = 0x80000000

SLAB_FLAG_NAMES: Final[dict[str, int]] = {
    "SLAB_CONSISTENCY_CHECKS": SLAB_CONSISTENCY_CHECKS, "SLAB_RED_ZONE": SLAB_RED_ZONE,
    "SLAB_POISON": SLAB_POISON, "SLAB_HWCACHE_ALIGN": SLAB_HWCACHE_ALIGN,
    "SLAB_CACHE_DMA": SLAB_CACHE_DMA, "SLAB_CACHE_DMA32": SLAB_CACHE_DMA32,
    "SLAB_STORE_USER": SLAB_STORE_USER, "SLAB_PANIC": SLAB_PANIC,
    "SLAB_TYPESAFE_BY_RCU": SLAB_TYPESAFE_BY_RCU, "SLAB_DESTROY_BY_RCU": SLAB_TYPESAFE_BY_RCU,
    "SLAB_MEM_SPREAD": SLAB_MEM_SPREAD, "SLAB_TRACE": SLAB_TRACE,
    "SLAB_DEBUG_OBJECTS": SLAB_DEBUG_OBJECTS, "SLAB_NOLEAKTRACE": SLAB_NOLEAKTRACE,
    "SLAB_FAILSLAB": SLAB_FAILSLAB, "SLAB_ACCOUNT": SLAB_ACCOUNT, "SLAB_KASAN": SLAB_KASAN,
    "SLAB_RECLAIM_ACCOUNT": SLAB_RECLAIM_ACCOUNT, "SLAB_TEMPORARY": SLAB_TEMPORARY,
    "CFLGS_OBJFREELIST_SLAB": CFLGS_OBJFREELIST_SLAB, "CFLGS_OFF_SLAB": CFLGS_OFF_SLAB,
}


def parse_flag_text(text: str, names: Mapping[str, int], example: str) -> int:
    """A cache's flags as a manifest or the command line writes them: hex (``0x2010``), decimal, or names
    joined by ``|`` looked up in ``names`` (SLAB's or SLUB's table); ValueError naming an unknown flag,
    with ``example`` as the hex to suggest."""
    if text.lower().startswith("0x"):
        return int(text, 16)
    if text.isdigit():
        return int(text)
    value = 0
    for part in text.split("|"):
        part = part.strip()
        if part in names:
            value |= names[part]
        elif part not in ("", "0"):
            raise ValueError(f"unknown flag {part!r} (use hex like {example} or names like SLAB_HWCACHE_ALIGN)")
    return value

# Options of the oracle/Debian-like build: DEBUG_OBJECTS, FAILSLAB and KASAN are not configured, so
# those flags are 0 for the purpose of masks (as the kernel's #ifdefs make them).
SLAB_CORE_FLAGS: Final = (SLAB_HWCACHE_ALIGN | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_PANIC
                          | SLAB_TYPESAFE_BY_RCU)
SLAB_DEBUG_FLAGS: Final = SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER
SLAB_CACHE_FLAGS: Final = SLAB_MEM_SPREAD | SLAB_NOLEAKTRACE | SLAB_RECLAIM_ACCOUNT | SLAB_TEMPORARY | SLAB_ACCOUNT
SLAB_FLAGS_PERMITTED: Final = (SLAB_CORE_FLAGS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE
                               | SLAB_CONSISTENCY_CHECKS | SLAB_MEM_SPREAD | SLAB_NOLEAKTRACE
                               | SLAB_RECLAIM_ACCOUNT | SLAB_TEMPORARY | SLAB_ACCOUNT)
SLAB_NEVER_MERGE: Final = (SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE | SLAB_TYPESAFE_BY_RCU
                           | SLAB_NOLEAKTRACE)
SLAB_MERGE_SAME: Final = SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_ACCOUNT

# ---- constants of mm/slab.c on x86_64 -----------------------------------------------------------
BYTES_PER_WORD: Final = 8
REDZONE_ALIGN: Final = 8
ARCH_KMALLOC_MINALIGN: Final = 8
ARCH_SLAB_MINALIGN: Final = 8
SLAB_OBJ_MIN_SIZE: Final = 16
SLAB_OBJ_MAX_NUM: Final = 255
KMALLOC_SHIFT_LOW: Final = 5
KMALLOC_SHIFT_HIGH: Final = 22
KMALLOC_MAX_SIZE: Final = 1 << KMALLOC_SHIFT_HIGH
KMALLOC_MAX_CACHE_SIZE: Final = KMALLOC_MAX_SIZE
KMALLOC_MAX_ORDER: Final = KMALLOC_SHIFT_HIGH - 12
KMALLOC_MIN_SIZE: Final = 1 << KMALLOC_SHIFT_LOW
BOOT_CPUCACHE_ENTRIES: Final = 1
BATCHREFILL_LIMIT: Final = 16
SLAB_LIMIT_BAADF00D: Final = 0xBAADF00D
ZERO_SIZE_PTR: Final = 16
SIZEOF_KMEM_CACHE_NODE: Final = 120
SIZEOF_ARRAY_CACHE: Final = 16
SIZEOF_ALIEN_CACHE: Final = 24

# slab_state (mm/slab.h)
DOWN, PARTIAL, PARTIAL_NODE, UP, FULL = range(5)

# kmalloc types
KMALLOC_NORMAL, KMALLOC_RECLAIM, KMALLOC_DMA = range(3)


class ArrayCache:
    """struct array_cache: a LIFO of object pointers.

    ``entry`` is a Python list used as the C array's live part, so ``avail == len(entry)``;
    ``entry[-1]`` is the hottest object.  ``addr`` is the model address of the array when it was
    kmalloc'd (shared and alien arrays), 0 for per-CPU arrays (percpu allocator).
    """

    __slots__ = ("limit", "batchcount", "touched", "entry", "addr", "node")

    def __init__(self, limit: int, batchcount: int, addr: int = 0, node: int = -1) -> None:
        self.limit = limit
        self.batchcount = batchcount
        self.touched = 0
        self.entry: list[int] = []
        self.addr = addr
        self.node = node  # for alien arrays: the node whose objects they stage

    @property
    def avail(self) -> int:
        return len(self.entry)

    def __repr__(self) -> str:
        return (f"<ArrayCache avail={len(self.entry)} limit={self.limit} batchcount={self.batchcount}"
                f" touched={self.touched}>")


class KmemCacheNode:
    """struct kmem_cache_node: the per-node slab lists and counters."""

    __slots__ = (
        "slabs_partial", "slabs_full", "slabs_free", "total_slabs", "free_slabs", "free_objects",
        "free_limit", "colour_next", "shared", "alien", "alien_addr", "next_reap", "free_touched", "addr", "nid",
    )

    def __init__(self, nid: int, addr: int = 0) -> None:
        self.slabs_partial = ListHead()
        self.slabs_full = ListHead()
        self.slabs_free = ListHead()
        self.total_slabs = 0
        self.free_slabs = 0
        self.free_objects = 0
        self.free_limit = 0
        self.colour_next = 0
        self.shared: ArrayCache | None = None
        self.alien: list[ArrayCache | None] | None = None
        self.alien_addr = 0  # the kcalloc'd pointer array holding the alien arrays
        self.next_reap = 0
        self.free_touched = 0
        self.addr = addr
        self.nid = nid

    def __repr__(self) -> str:
        return (f"<KmemCacheNode {self.nid} partial={len(self.slabs_partial)} full={len(self.slabs_full)}"
                f" free={len(self.slabs_free)} free_objects={self.free_objects} free_limit={self.free_limit}>")


class SlabStats:
    """CONFIG_DEBUG_SLAB's STATS counters (mm/slab.c STATS_* macros), always kept by the model."""

    __slots__ = ("num_active", "num_allocations", "high_mark", "grown", "reaped", "errors", "max_freeable",
                 "node_allocs", "node_frees", "node_overflow", "allochit", "allocmiss", "freehit", "freemiss")
    # Declared for type checkers only (no class values, so __slots__ still makes the fields).
    num_active: int
    num_allocations: int
    high_mark: int
    grown: int
    reaped: int
    errors: int
    max_freeable: int
    node_allocs: int
    node_frees: int
    node_overflow: int
    allochit: int
    allocmiss: int
    freehit: int
    freemiss: int

    def __init__(self) -> None:
        for f in self.__slots__:
            setattr(self, f, 0)

    def as_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in self.__slots__}


class PathCounters:
    """kslab's own per-cache counters of every path taken (no kernel equivalent; always on)."""

    __slots__ = ("alloc", "free", "alloc_hit", "alloc_miss", "refill_shared", "refill_slab", "refill_objects",
                 "grow", "grow_failed", "node_alloc", "fallback_alloc", "alternate_node_alloc", "free_hit",
                 "free_miss", "flush_shared", "flush_shared_objects", "flush_free_block",
                 "flush_free_block_objects", "free_block_calls", "slabs_destroyed", "slabs_trimmed",
                 "alien_free", "alien_overflow", "alien_direct", "alien_drained_objects", "hardened_drop",
                 "pfmemalloc_free", "reap_ac_objects", "reap_shared_objects", "reap_slabs", "alloc_failed")
    alloc: int
    free: int
    alloc_hit: int
    alloc_miss: int
    refill_shared: int
    refill_slab: int
    refill_objects: int
    grow: int
    grow_failed: int
    node_alloc: int
    fallback_alloc: int
    alternate_node_alloc: int
    free_hit: int
    free_miss: int
    flush_shared: int
    flush_shared_objects: int
    flush_free_block: int
    flush_free_block_objects: int
    free_block_calls: int
    slabs_destroyed: int
    slabs_trimmed: int
    alien_free: int
    alien_overflow: int
    alien_direct: int
    alien_drained_objects: int
    hardened_drop: int
    pfmemalloc_free: int
    reap_ac_objects: int
    reap_shared_objects: int
    reap_slabs: int
    alloc_failed: int

    def __init__(self) -> None:
        for f in self.__slots__:
            setattr(self, f, 0)

    def as_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in self.__slots__}


class KmemCache:
    """struct kmem_cache (SLAB variant).  ``k`` points back to the machine (the kernel's globals)."""

    __slots__ = (
        "k", "addr", "name",
        # 1) per-cpu data, touched during every alloc/free
        "cpu_cache",
        # 2) cache tunables, protected by slab_mutex
        "batchcount", "limit", "shared", "size", "reciprocal_buffer_size",
        # 3) touched by every alloc & free from the backend
        "flags", "num",
        # 4) cache_grow/shrink
        "gfporder", "allocflags", "colour", "colour_off", "freelist_cache", "freelist_size", "ctor",
        # 5) cache creation/removal
        "refcount", "object_size", "align", "useroffset", "usersize",
        # CONFIG_SLAB_FREELIST_RANDOM: the pre-computed order and the address of its kcalloc'd array
        "random_seq", "random_seq_addr",
        # DEBUG
        "obj_offset", "stats", "paths", "aliases", "node", "destroyed", "boot",
    )

    def __init__(self, k: Kernel, name: str, object_size: int, align: int, ctor: Callable[[int], Any] | bool | None,
                 useroffset: int = 0, usersize: int = 0) -> None:
        self.k = k
        self.addr = 0
        self.name = name
        self.cpu_cache: list[ArrayCache] = []
        self.batchcount = 0
        self.limit = 0
        self.shared = 0
        self.size = object_size
        self.reciprocal_buffer_size = (0, 0, 0)
        self.flags = 0
        self.num = 0
        self.gfporder = 0
        self.allocflags = 0
        self.colour = 0
        self.colour_off = 0
        self.freelist_cache: KmemCache | None = None
        self.freelist_size = 0
        self.ctor = ctor or None
        self.refcount = 1
        self.object_size = object_size
        self.align = align
        self.useroffset = useroffset
        self.usersize = usersize
        self.random_seq: list[int] | None = None
        self.random_seq_addr = 0
        self.obj_offset = 0
        self.stats = SlabStats()
        self.paths = PathCounters()
        self.aliases: list[str] = []
        self.node: list[KmemCacheNode | None] = []
        self.destroyed = False
        self.boot = False

    def __repr__(self) -> str:
        return (f"<KmemCache {self.name!r} object_size={self.object_size} size={self.size} num={self.num}"
                f" order={self.gfporder} limit={self.limit} batchcount={self.batchcount} shared={self.shared}>")

    @property
    def OFF_SLAB(self) -> bool:  # kernel macro name
        return bool(self.flags & CFLGS_OFF_SLAB)

    @property
    def OBJFREELIST_SLAB(self) -> bool:
        return bool(self.flags & CFLGS_OBJFREELIST_SLAB)

    @property
    def placement(self) -> str:
        """'objfreelist', 'off-slab' or 'on-slab': where this cache keeps its freelists."""
        if self.flags & CFLGS_OBJFREELIST_SLAB:
            return "objfreelist"
        if self.flags & CFLGS_OFF_SLAB:
            return "off-slab"
        return "on-slab"

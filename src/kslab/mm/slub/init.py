"""SLUB's boot (mm/slub.c:kmem_cache_init, 6.12) and the names of the caches in /sys/kernel/slab.

``kmem_cache_init`` creates kmem_cache_node and kmem_cache as boot caches, then the kmalloc caches.
``sysfs_slab_name`` says where a cache appears in /sys/kernel/slab: mergeable caches live in a directory
named by ``create_unique_id`` (``:0000256``, ``:a-0000192``) with their names, and their aliases' names,
as links to it; an unmergeable cache has a directory of its own name.
"""

from __future__ import annotations

from .debug import SlubDebug, setup_slub_debug
from .flags import (
    DEBUG_METADATA_FLAGS,
    SLAB_ACCOUNT,
    SLAB_CACHE_DMA,
    SLAB_CACHE_DMA32,
    SLAB_CONSISTENCY_CHECKS,
    SLAB_HWCACHE_ALIGN,
    SLAB_NO_OBJ_EXT,
    SLAB_RECLAIM_ACCOUNT,
)
from .geometry import slub_max_order
from .kmalloc import create_kmalloc_caches, setup_kmalloc_cache_index_table
from .slab_common import create_boot_cache, slab_unmergeable
from .slub_def import (
    OFFSETOF_KMEM_CACHE_NODE,
    SIZEOF_KMEM_CACHE_NODE,
    SIZEOF_VOID_P,
    KmemCache,
    SlabState,
    Slub,
    SlubConfig,
)

KERNEL_SYMBOLS_612 = ("bootstrap", "kmem_cache_init", "slab_late_init", "create_unique_id",
                      "sysfs_slab_name")


def bootstrap(sl: Slub, static_cache: KmemCache) -> KmemCache:
    """Move a boot cache onto the cache list (the kernel copies it into a kmem_cache object)."""
    sl.slab_caches.insert(0, static_cache)
    return static_cache


def kmem_cache_init(cfg: SlubConfig, dbg: SlubDebug | None = None) -> Slub:
    """Boot SLUB: the two boot caches (slab_state PARTIAL between them), then every kmalloc cache (UP).

    Mirrors mm/slub.c:kmem_cache_init() (v6.12) (its per-node bootstrap comes with the allocation paths).
    """
    sl = Slub(cfg, dbg if dbg is not None else setup_slub_debug(cfg.slab_debug))
    node_cache = KmemCache("kmem_cache_node")
    sl.kmem_cache_node = node_cache
    create_boot_cache(sl, node_cache, "kmem_cache_node", SIZEOF_KMEM_CACHE_NODE,
                      SLAB_HWCACHE_ALIGN | SLAB_NO_OBJ_EXT, 0, 0)
    sl.slab_state = SlabState.PARTIAL
    kmem_cache = KmemCache("kmem_cache")
    sl.kmem_cache = kmem_cache
    create_boot_cache(sl, kmem_cache, "kmem_cache", OFFSETOF_KMEM_CACHE_NODE + cfg.nr_node_ids * SIZEOF_VOID_P,
                      SLAB_HWCACHE_ALIGN | SLAB_NO_OBJ_EXT, 0, 0)
    bootstrap(sl, kmem_cache)
    bootstrap(sl, node_cache)
    setup_kmalloc_cache_index_table(sl)
    create_kmalloc_caches(sl)
    sl.dmesg.append(f"SLUB: HWalign={cfg.cache_line_size}, Order={cfg.slub_min_order}-{slub_max_order(cfg)}, "
                    f"MinObjects={cfg.slub_min_objects}, CPUs={cfg.nr_cpu_ids}, Nodes={cfg.nr_node_ids}")
    return sl


def slab_late_init(sl: Slub) -> None:
    """The late initcall that sets up /sys/kernel/slab (slab_kset_init) and makes slab_state FULL; no geometry
    changes."""
    sl.slab_state = SlabState.FULL


def create_unique_id(s: KmemCache) -> str:
    """The directory name of a mergeable cache: ``:`` then d D a F A for its merge-relevant flags, a ``-``
    if there were any, then the stride in 7 digits."""
    tags = ""
    if s.flags & SLAB_CACHE_DMA:
        tags += "d"
    if s.flags & SLAB_CACHE_DMA32:
        tags += "D"
    if s.flags & SLAB_RECLAIM_ACCOUNT:
        tags += "a"
    if s.flags & SLAB_CONSISTENCY_CHECKS:
        tags += "F"
    if s.flags & SLAB_ACCOUNT:
        tags += "A"
    return ":" + (tags + "-" if tags else "") + f"{s.size:07d}"


def sysfs_slab_name(sl: Slub, s: KmemCache) -> str:
    """The /sys/kernel/slab directory of a cache (sysfs_slab_add's choice between its name and its id)."""
    unmergeable = slab_unmergeable(sl, s) is not None
    if not unmergeable and sl.dbg.disable_higher_order_debug and sl.dbg.slub_debug & DEBUG_METADATA_FLAGS:
        unmergeable = True
    return s.name if unmergeable else create_unique_id(s)

"""Per-CPU arrays, shared and alien arrays, node structures and tunables.

Mirrors mm/slab.c: ``kmem_cache_node_init``, ``init_arraycache``, ``alloc_arraycache``,
``alloc_kmem_cache_cpus``, ``alloc_alien_cache``, ``__alloc_alien_cache``, ``free_alien_cache``,
``init_cache_node``, ``init_cache_node_node``, ``setup_kmem_cache_node``, ``setup_kmem_cache_nodes``,
``setup_cpu_cache``, ``enable_cpucache``, ``do_tune_cpucache``, ``set_up_node``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..gfp import GFP_KERNEL
from ..page import Page
from ..slab_def import (
    BOOT_CPUCACHE_ENTRIES,
    FULL,
    SIZEOF_ALIEN_CACHE,
    SIZEOF_ARRAY_CACHE,
    SIZEOF_KMEM_CACHE_NODE,
    SLAB_LIMIT_BAADF00D,
    ArrayCache,
    KmemCache,
    KmemCacheNode,
)
from .freelist_random import cache_random_seq_create
from .grow import slabs_destroy
from .node import free_block

if TYPE_CHECKING:
    from ..kernel import Kernel

KERNEL_SYMBOLS = ("kmem_cache_node_init", "alloc_arraycache", "alloc_kmem_cache_cpus", "alloc_alien_cache",
                  "free_alien_cache", "init_cache_node", "init_cache_node_node", "setup_kmem_cache_node",
                  "setup_kmem_cache_nodes", "setup_cpu_cache", "enable_cpucache", "do_tune_cpucache",
                  "REAPTIMEOUT_NODE")

ENOMEM = 12


def REAPTIMEOUT_NODE(k: Kernel) -> int:
    return 4 * k.config.HZ


def kmem_cache_node_init(n: KmemCacheNode) -> None:
    n.total_slabs = n.free_slabs = n.free_objects = 0
    n.shared = None
    n.alien = None
    n.colour_next = 0
    n.free_touched = 0


def alloc_arraycache(cachep: KmemCache, node: int, entries: int, batchcount: int, gfp: int) -> ArrayCache | None:
    """A shared array: kmalloc_node(16 + 8 * entries)."""
    from .kmalloc import kmalloc_node  # noqa: PLC0415
    k = cachep.k
    addr = kmalloc_node(k, SIZEOF_ARRAY_CACHE + 8 * entries, gfp, node, internal="alloc_arraycache")
    if not addr:
        return None
    return ArrayCache(entries, batchcount, addr, node)


def alloc_kmem_cache_cpus(cachep: KmemCache, entries: int, batchcount: int) -> list[ArrayCache] | None:
    """Per-CPU arrays come from the percpu allocator (no slab object); limit > 4094 does not fit."""
    if SIZEOF_ARRAY_CACHE + 8 * entries > 32768:
        return None
    return [ArrayCache(entries, batchcount) for _ in range(cachep.k.nr_cpu_ids)]


def alloc_alien_cache(cachep: KmemCache, node: int, limit: int, gfp: int) -> tuple[int, list[ArrayCache | None]] | None:
    """The alien arrays of ``node``: a pointer array kcalloc'd on the node, then one array per other node."""
    from .kmalloc import kfree, kmalloc_node  # noqa: PLC0415
    k = cachep.k
    if limit > 1:
        limit = 12
    ptr = kmalloc_node(k, 8 * k.nr_node_ids, gfp, node, internal="alloc_alien_cache")
    if not ptr:
        return None
    arrays: list[ArrayCache | None] = [None] * k.nr_node_ids
    for i in k.topo.online_nodes:
        if i == node:
            continue
        a = kmalloc_node(k, SIZEOF_ALIEN_CACHE + 8 * limit, gfp, node, internal="__alloc_alien_cache")
        if not a:
            for arr in arrays:
                if arr is not None:
                    kfree(k, arr.addr, internal="alloc_alien_cache")
            kfree(k, ptr, internal="alloc_alien_cache")
            return None
        arrays[i] = ArrayCache(limit, SLAB_LIMIT_BAADF00D, a, i)
    return ptr, arrays


def free_alien_cache(k: Kernel, alc: tuple[int, list[ArrayCache | None]] | None) -> None:
    from .kmalloc import kfree  # noqa: PLC0415
    if alc is None:
        return
    ptr, arrays = alc
    for arr in arrays:  # for_each_node(): the node's own slot is NULL, and kfree(NULL) is still called
        kfree(k, arr.addr if arr is not None else 0, internal="free_alien_cache")
    kfree(k, ptr, internal="free_alien_cache")


def _free_limit(cachep: KmemCache, node: int) -> int:
    k = cachep.k
    return (1 + k.nr_cpus_node(node)) * cachep.batchcount + cachep.num


def init_cache_node(cachep: KmemCache, node: int, gfp: int) -> int:
    """Recompute free_limit, or create the node structure (kmalloc-128) if it does not exist yet."""
    from .kmalloc import kmalloc_node  # noqa: PLC0415
    k = cachep.k
    n = cachep.node[node]
    if n is not None:
        n.free_limit = _free_limit(cachep, node)
        k.log_free_limit(cachep, node, "init_cache_node")
        return 0
    addr = kmalloc_node(k, SIZEOF_KMEM_CACHE_NODE, gfp, node, internal="init_cache_node")
    if not addr:
        return -ENOMEM
    n = KmemCacheNode(node, addr)
    kmem_cache_node_init(n)
    n.next_reap = k.jiffies + REAPTIMEOUT_NODE(k) + k.reap_offset(cachep)
    n.free_limit = _free_limit(cachep, node)
    cachep.node[node] = n
    k.log_free_limit(cachep, node, "init_cache_node")
    return 0


def init_cache_node_node(k: Kernel, node: int) -> int:
    for cachep in k.slab_caches:
        ret = init_cache_node(cachep, node, GFP_KERNEL)
        if ret:
            return ret
    return 0


def setup_kmem_cache_node(cachep: KmemCache, node: int, gfp: int, force_change: bool) -> int:
    """Give ``node`` its shared array (new, empty) and alien arrays (only where missing)."""
    from .kmalloc import kfree  # noqa: PLC0415
    k = cachep.k
    new_alien = None
    new_shared: ArrayCache | None = None
    old_shared: ArrayCache | None = None
    ret = -ENOMEM
    lst: list[Page] = []
    if k.boot_params.use_alien_caches:
        new_alien = alloc_alien_cache(cachep, node, cachep.limit, gfp)
        if new_alien is None:
            return ret
    if cachep.shared:
        new_shared = alloc_arraycache(cachep, node, cachep.shared * cachep.batchcount, SLAB_LIMIT_BAADF00D, gfp)
        if new_shared is None:
            free_alien_cache(k, new_alien)
            return ret
    ret = init_cache_node(cachep, node, gfp)
    if ret:
        if new_shared is not None:
            kfree(k, new_shared.addr, internal="setup_kmem_cache_node")
        free_alien_cache(k, new_alien)
        return ret
    n = cachep.node[node]
    assert n is not None
    if n.shared is not None and force_change:
        free_block(cachep, n.shared.entry, len(n.shared.entry), node, lst)
        n.shared.entry.clear()
    if n.shared is None or force_change:
        old_shared = n.shared
        n.shared = new_shared
        new_shared = None
    if n.alien is None and new_alien is not None:
        n.alien_addr = new_alien[0]
        n.alien = new_alien[1]
        new_alien = None
    slabs_destroy(cachep, lst)
    kfree(k, old_shared.addr if old_shared is not None else 0, internal="setup_kmem_cache_node")
    kfree(k, new_shared.addr if new_shared is not None else 0, internal="setup_kmem_cache_node")
    free_alien_cache(k, new_alien)
    return 0


def setup_kmem_cache_nodes(cachep: KmemCache, gfp: int) -> int:
    for node in cachep.k.topo.online_nodes:
        ret = setup_kmem_cache_node(cachep, node, gfp, True)
        if ret:
            return -ENOMEM
    return 0


def do_tune_cpucache(cachep: KmemCache, limit: int, batchcount: int, shared: int, gfp: int) -> int:
    """Install new per-CPU arrays and tunables; empty the old arrays into the slabs."""
    k = cachep.k
    cpu_cache = alloc_kmem_cache_cpus(cachep, limit, batchcount)
    if cpu_cache is None:
        return -ENOMEM
    prev = cachep.cpu_cache
    cachep.cpu_cache = cpu_cache
    cachep.batchcount = batchcount
    cachep.limit = limit
    cachep.shared = shared
    k.log_tune(cachep)
    if k.explain is not None:
        k.explain.step("do_tune_cpucache", "tune", cache=cachep.name, limit=limit, batchcount=batchcount,
                       shared=shared)
    if prev:
        for cpu in sorted(k.topo.online_cpus):
            ac = prev[cpu]
            node = k.topo.cpu_to_node[cpu]
            lst: list[Page] = []
            free_block(cachep, ac.entry, len(ac.entry), node, lst)
            ac.entry.clear()
            slabs_destroy(cachep, lst)
    return setup_kmem_cache_nodes(cachep, gfp)


def enable_cpucache(cachep: KmemCache, gfp: int) -> int:
    """The cache's random_seq (CONFIG_SLAB_FREELIST_RANDOM), then default tunables from the object size
    (and CONFIG_DEBUG_SLAB's cap of 32)."""
    k = cachep.k
    err = cache_random_seq_create(cachep, cachep.num, gfp)
    if err:
        k.printk(f"enable_cpucache failed for {cachep.name}, error {-err}")
        return err
    size = cachep.size
    if size > 131072:
        limit = 1
    elif size > 4096:
        limit = 8
    elif size > 1024:
        limit = 24
    elif size > 256:
        limit = 54
    else:
        limit = 120
    shared = 8 if size <= 4096 and k.nr_cpu_ids > 1 else 0
    if k.debug and limit > 32:
        limit = 32
    batchcount = (limit + 1) // 2
    err = do_tune_cpucache(cachep, limit, batchcount, shared, gfp)
    if err:
        k.printk(f"enable_cpucache failed for {cachep.name}, error {-err}")
    return err


def setup_cpu_cache(cachep: KmemCache, gfp: int) -> int:
    """Boot-time arrays of one entry (and node structures) until kmem_cache_init_late tunes them."""
    from ..slab_def import PARTIAL  # noqa: PLC0415
    from .kmalloc import kmalloc_node  # noqa: PLC0415
    k = cachep.k
    if k.slab_state >= FULL:
        return enable_cpucache(cachep, gfp)
    cachep.cpu_cache = [ArrayCache(BOOT_CPUCACHE_ENTRIES, 1) for _ in range(k.nr_cpu_ids)]
    if k.slab_state <= PARTIAL:
        # kmem_cache and the INDEX_NODE cache start on static node structures (set_up_node), whose
        # node timers are all set, on every node
        for node in k.topo.online_nodes:
            n = KmemCacheNode(node, 0)
            kmem_cache_node_init(n)
            n.free_limit = 0
            n.next_reap = k.jiffies + REAPTIMEOUT_NODE(k) + k.reap_offset(cachep)
            cachep.node[node] = n
            k.log_free_limit(cachep, node, "setup_cpu_cache")
    else:
        for node in k.topo.online_nodes:
            addr = kmalloc_node(k, SIZEOF_KMEM_CACHE_NODE, gfp, node, internal="setup_cpu_cache")
            if not addr:
                k.bug("kernel BUG at mm/slab.c: setup_cpu_cache: no memory for kmem_cache_node", "setup_cpu_cache")
            n = KmemCacheNode(node, addr)
            kmem_cache_node_init(n)
            # kmalloc'd, not zeroed: a debug kernel leaves POISON_INUSE in the fields it does not set
            n.free_limit = 0x5A5A5A5A if k.debug else 0
            n.next_reap = 0x5A5A5A5A5A5A5A5A if k.debug else 0
            cachep.node[node] = n
            k.log_free_limit(cachep, node, "setup_cpu_cache")
    n0 = cachep.node[k.numa_node]
    assert n0 is not None
    n0.next_reap = k.jiffies + REAPTIMEOUT_NODE(k) + k.reap_offset(cachep)
    cachep.batchcount = 1
    cachep.limit = BOOT_CPUCACHE_ENTRIES
    return 0

"""Periodic reaping, draining, shrinking and CPU hotplug.

Mirrors mm/slab.c: ``cache_reap``, ``reap_alien``, ``next_reap_node``, ``init_reap_node``,
``drain_array``, ``drain_array_locked``, ``drain_alien_cache``, ``do_drain``, ``drain_cpu_caches``,
``__kmem_cache_shrink``, ``__kmem_cache_shutdown``, ``cpuup_prepare``, ``cpuup_canceled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..gfp import GFP_KERNEL
from ..page import Page
from ..slab_def import ArrayCache, KmemCache, KmemCacheNode
from .free import __drain_alien_cache
from .grow import slabs_destroy
from .node import drain_freelist, free_block
from .tune import REAPTIMEOUT_NODE, init_cache_node_node, setup_kmem_cache_node

if TYPE_CHECKING:
    from ..kernel import Kernel

KERNEL_SYMBOLS = ("drain_array_locked", "drain_array", "reap_alien", "next_reap_node", "init_reap_node",
                  "cache_reap", "drain_alien_cache", "do_drain", "drain_cpu_caches", "__kmem_cache_shrink",
                  "__kmem_cache_shutdown", "cpuup_prepare", "cpuup_canceled")

INT_MAX = 2**31 - 1


def drain_array_tofree(ac: ArrayCache, free_all: bool) -> int:
    """How many of the oldest entries drain_array_locked frees: all, or a fifth of the array's limit
    (at most half, rounded up, of what is there)."""
    avail = len(ac.entry)
    tofree = avail if free_all else (ac.limit + 4) // 5
    if tofree > avail:
        tofree = (avail + 1) // 2
    return tofree


def drain_array_locked(cachep: KmemCache, ac: ArrayCache | None, node: int, free_all: bool, lst: list[Page]) -> int:
    """Free the oldest entries of ``ac`` (see drain_array_tofree)."""
    if ac is None or not ac.entry:
        return 0
    tofree = drain_array_tofree(ac, free_all)
    free_block(cachep, ac.entry, tofree, node, lst)
    del ac.entry[:tofree]
    return tofree


def drain_array(cachep: KmemCache, n: KmemCacheNode, ac: ArrayCache | None, node: int) -> int:
    """Reap's gentle drain: an array used since the last reap is only marked untouched."""
    if ac is None or not ac.entry:
        return 0
    ex = cachep.k.explain
    if ac.touched:
        ac.touched = 0
        if ex is not None:
            ex.step("drain_array", "touched", cache=cachep.name, avail=len(ac.entry))
        return 0
    lst: list[Page] = []
    nr = drain_array_locked(cachep, ac, node, False, lst)
    if ex is not None:
        ex.step("drain_array", "drained", cache=cachep.name, nr=nr, avail=len(ac.entry))
    slabs_destroy(cachep, lst)
    return nr


def init_reap_node(k: Kernel, cpu: int) -> None:
    k.reap_work.slab_reap_node[cpu] = k.next_node_in(k.topo.cpu_to_node[cpu])


def next_reap_node(k: Kernel) -> None:
    reap_node = k.reap_work.slab_reap_node
    reap_node[k.cpu] = k.next_node_in(reap_node[k.cpu])


def reap_alien(cachep: KmemCache, n: KmemCacheNode) -> None:
    k = cachep.k
    if n.alien is None:
        return
    node = k.reap_work.slab_reap_node[k.cpu]
    ac = n.alien[node] if node < len(n.alien) else None
    if ac is not None and ac.entry:
        lst: list[Page] = []
        __drain_alien_cache(cachep, ac, node, lst)
        slabs_destroy(cachep, lst)


def cache_reap(k: Kernel) -> None:
    """One run of the per-CPU reap work on the current CPU (k.cpu) at k.jiffies."""
    node = k.numa_node
    jiffies = k.jiffies
    ex = k.explain
    if ex is not None:
        ex.step("cache_reap", "reap", cpu=k.cpu, node=node, jiffies=jiffies)
    k.reap_work.runs += 1
    for searchp in list(k.slab_caches):
        n = searchp.node[node] if node < len(searchp.node) else None
        if n is None:
            continue
        reap_alien(searchp, n)
        searchp.paths.reap_ac_objects += drain_array(searchp, n, searchp.cpu_cache[k.cpu], node)
        if n.next_reap > jiffies:  # time_after(next_reap, jiffies)
            continue
        n.next_reap = jiffies + REAPTIMEOUT_NODE(k)
        searchp.paths.reap_shared_objects += drain_array(searchp, n, n.shared, node)
        if n.free_touched:
            n.free_touched = 0
        else:
            freed = drain_freelist(searchp, n, (n.free_limit + 5 * searchp.num - 1) // (5 * searchp.num))
            searchp.stats.reaped += freed
            searchp.paths.reap_slabs += freed
            if ex is not None and freed:
                ex.step("cache_reap", "reaped", cache=searchp.name, nr=freed)
    next_reap_node(k)


def drain_alien_cache(cachep: KmemCache, alien: list[ArrayCache | None]) -> None:
    for i, ac in enumerate(alien):
        if ac is not None and ac.entry:
            lst: list[Page] = []
            __drain_alien_cache(cachep, ac, i, lst)
            slabs_destroy(cachep, lst)


def do_drain(cachep: KmemCache, cpu: int) -> None:
    """Empty one CPU's array into its node."""
    k = cachep.k
    ac = cachep.cpu_cache[cpu]
    node = k.topo.cpu_to_node[cpu]
    lst: list[Page] = []
    free_block(cachep, ac.entry, len(ac.entry), node, lst)
    ac.entry.clear()
    slabs_destroy(cachep, lst)


def drain_cpu_caches(cachep: KmemCache) -> None:
    k = cachep.k
    for cpu in sorted(k.topo.online_cpus):
        saved = k.set_cpu(cpu)
        do_drain(cachep, cpu)
        k.set_cpu(saved)
    for n in cachep.node:
        if n is not None and n.alien is not None:
            drain_alien_cache(cachep, n.alien)
    for node, n in enumerate(cachep.node):
        if n is not None:
            lst: list[Page] = []
            drain_array_locked(cachep, n.shared, node, True, lst)
            slabs_destroy(cachep, lst)


def __kmem_cache_shrink(cachep: KmemCache) -> int:
    """Drain every array, destroy every free slab; 1 if objects remain."""
    ret = 0
    drain_cpu_caches(cachep)
    for n in cachep.node:
        if n is None:
            continue
        drain_freelist(cachep, n, INT_MAX)
        ret += bool(n.slabs_full) or bool(n.slabs_partial)
    return 1 if ret else 0


def __kmem_cache_shutdown(cachep: KmemCache) -> int:
    return __kmem_cache_shrink(cachep)


def cpuup_prepare(k: Kernel, cpu: int) -> int:
    """Before CPU ``cpu`` runs: node structures (free_limit without it) and missing shared/alien arrays."""
    node = k.topo.cpu_to_node[cpu]
    err = init_cache_node_node(k, node)
    if err < 0:
        cpuup_canceled(k, cpu)
        return err
    for cachep in list(k.slab_caches):
        err = setup_kmem_cache_node(cachep, node, GFP_KERNEL, False)
        if err:
            cpuup_canceled(k, cpu)
            return -12
    return 0


def cpuup_canceled(k: Kernel, cpu: int) -> None:
    """CPU ``cpu`` is dead: free its arrays; if its node has no CPU left, its shared/alien arrays."""
    from .kmalloc import kfree  # noqa: PLC0415
    from .tune import free_alien_cache  # noqa: PLC0415
    node = k.topo.cpu_to_node[cpu]
    node_empty = not k.topo.node_cpus[node]
    for cachep in list(k.slab_caches):
        n = cachep.node[node]
        if n is None:
            continue
        n.free_limit -= cachep.batchcount
        lst: list[Page] = []
        ac = cachep.cpu_cache[cpu]
        free_block(cachep, ac.entry, len(ac.entry), node, lst)
        ac.entry.clear()
        if node_empty:
            shared = n.shared
            if shared is not None:
                free_block(cachep, shared.entry, len(shared.entry), node, lst)
                n.shared = None
            alien = n.alien
            alien_addr = n.alien_addr
            n.alien = None
            n.alien_addr = 0
            if shared is not None:
                kfree(k, shared.addr, internal="cpuup_canceled")
            if alien is not None:
                drain_alien_cache(cachep, alien)
                free_alien_cache(k, (alien_addr, alien))
        slabs_destroy(cachep, lst)
    for cachep in list(k.slab_caches):
        n = cachep.node[node]
        if n is not None:
            drain_freelist(cachep, n, INT_MAX)

"""SLUB's per-node structure and /proc/slabinfo (mm/slub.c struct kmem_cache_node, get_slabinfo; mm/slab_common.c
cache_show, 6.12).

``KmemCacheNode.partial`` is the node's partial list, head first.  The counters ``nr_slabs`` and
``total_objects`` exist with CONFIG_SLUB_DEBUG (the captured kernel has it) and count every slab of the node,
wherever it is (cpu slab, per-CPU partial, node partial, full and on no list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from .geometry import oo_objects, oo_order
from .slab import KmemCacheCpu, Slab, StatItem
from .slub_def import KmemCache

KERNEL_SYMBOLS_612 = ("add_partial", "remove_partial", "inc_slabs_node", "dec_slabs_node", "node_nr_slabs",
                      "node_nr_objs", "count_partial_free_approx", "get_slabinfo", "print_slabinfo_header",
                      "cache_show", "slab_set_node_partial", "slab_clear_node_partial", "init_kmem_cache_nodes",
                      "init_kmem_cache_cpus")

MAX_PARTIAL_TO_SCAN: Final = 10000
DEACTIVATE_TO_HEAD: Final = StatItem.DEACTIVATE_TO_HEAD
DEACTIVATE_TO_TAIL: Final = StatItem.DEACTIVATE_TO_TAIL
SLABINFO_HEADER: Final = ("slabinfo - version: 2.1\n"
                          "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
                          " : tunables <limit> <batchcount> <sharedfactor>"
                          " : slabdata <active_slabs> <num_slabs> <sharedavail>")


@dataclass(slots=True, eq=False)
class KmemCacheNode:
    """struct kmem_cache_node: the node's partial slabs (head first) and its slab and object counts."""

    nr_partial: int = 0
    partial: list[Slab] = field(default_factory=list)
    nr_slabs: int = 0
    total_objects: int = 0


@dataclass(frozen=True, slots=True)
class SlabInfo:
    """struct slabinfo as SLUB fills it (limit, batchcount, shared and shared_avail stay 0)."""

    active_objs: int
    num_objs: int
    active_slabs: int
    num_slabs: int
    objects_per_slab: int
    cache_order: int


def init_kmem_cache_nodes(s: KmemCache, nr_node_ids: int) -> None:
    """One empty kmem_cache_node per node (the model does not allocate them from kmem_cache_node)."""
    s.node = [KmemCacheNode() for _ in range(nr_node_ids)]


def init_kmem_cache_cpus(s: KmemCache, nr_cpu_ids: int) -> None:
    """Every CPU's kmem_cache_cpu, its tid starting at the CPU's number (init_tid)."""
    s.cpu_slab = [KmemCacheCpu(tid=cpu) for cpu in range(nr_cpu_ids)]


def slab_set_node_partial(slab: Slab) -> None:
    slab.node_partial = True


def slab_clear_node_partial(slab: Slab) -> None:
    slab.node_partial = False


def add_partial(n: KmemCacheNode, slab: Slab, tail: StatItem) -> None:
    """__add_partial: onto the node's partial list, at the tail for DEACTIVATE_TO_TAIL, else at the head."""
    n.nr_partial += 1
    if tail == DEACTIVATE_TO_TAIL:
        n.partial.append(slab)
    else:
        n.partial.insert(0, slab)
    slab_set_node_partial(slab)


def remove_partial(n: KmemCacheNode, slab: Slab) -> None:
    """Off the node's partial list."""
    n.partial.remove(slab)
    slab_clear_node_partial(slab)
    n.nr_partial -= 1


def inc_slabs_node(s: KmemCache, node: int, objects: int) -> None:
    n = s.node[node]
    n.nr_slabs += 1
    n.total_objects += objects


def dec_slabs_node(s: KmemCache, node: int, objects: int) -> None:
    n = s.node[node]
    n.nr_slabs -= 1
    n.total_objects -= objects


def node_nr_slabs(n: KmemCacheNode) -> int:
    return n.nr_slabs


def node_nr_objs(n: KmemCacheNode) -> int:
    return n.total_objects


def count_partial_free_approx(n: KmemCacheNode) -> int:
    """Free objects on the node's partial list; beyond MAX_PARTIAL_TO_SCAN slabs, scaled up from the first
    and last MAX_PARTIAL_TO_SCAN/2 of them (mult_frac)."""
    if n.nr_partial <= MAX_PARTIAL_TO_SCAN:
        return sum(slab.objects - slab.inuse for slab in n.partial)
    half = MAX_PARTIAL_TO_SCAN // 2
    x = sum(slab.objects - slab.inuse for slab in n.partial[:half])
    x += sum(slab.objects - slab.inuse for slab in n.partial[::-1][:MAX_PARTIAL_TO_SCAN - half])
    scanned = MAX_PARTIAL_TO_SCAN
    q, r = divmod(x, scanned)
    return q * n.nr_partial + r * n.nr_partial // scanned


def get_slabinfo(s: KmemCache) -> SlabInfo:
    """The /proc/slabinfo figures of a cache: every slab counts as active, and every object except the free
    ones on node partial lists (free objects of cpu slabs and per-CPU partial slabs count as active)."""
    nr_slabs = nr_objs = nr_free = 0
    for n in s.node:
        nr_slabs += node_nr_slabs(n)
        nr_objs += node_nr_objs(n)
        nr_free += count_partial_free_approx(n)
    return SlabInfo(nr_objs - nr_free, nr_objs, nr_slabs, nr_slabs, oo_objects(s.oo), oo_order(s.oo))


def cache_show(s: KmemCache) -> str:
    """A cache's /proc/slabinfo line, as mm/slab_common.c:cache_show() prints it."""
    si = get_slabinfo(s)
    return (f"{s.name:<17} {si.active_objs:6d} {si.num_objs:6d} {s.size:6d} {si.objects_per_slab:4d} "
            f"{1 << si.cache_order:4d} : tunables {0:4d} {0:4d} {0:4d} : slabdata {si.active_slabs:6d} "
            f"{si.num_slabs:6d} {0:6d}")


def print_slabinfo_header() -> str:
    """The two header lines of /proc/slabinfo (version 2.1)."""
    return SLABINFO_HEADER

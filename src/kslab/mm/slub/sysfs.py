"""/sys/kernel/slab as 6.12 prints it (mm/slub.c: show_slab_objects, the ``*_show`` attributes, show_stat,
sysfs_slab_add and sysfs_slab_alias).

Every cache directory holds one file per attribute; :data:`SLAB_ATTRS` lists those of the captured build
(CONFIG_SLUB_DEBUG, CONFIG_SLUB_STATS, CONFIG_NUMA, CONFIG_ZONE_DMA; no HARDENED_USERCOPY, KFENCE or
FAILSLAB).  ``ctor`` prints the constructor's symbol (``init_once+0x0/0x20``), which the model does not know:
it is left out.  ``validate`` and ``shrink`` print nothing.  The values are what the ``show`` functions
write, without the trailing newline.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntFlag
from typing import Final

from .flags import (
    SLAB_CACHE_DMA,
    SLAB_CONSISTENCY_CHECKS,
    SLAB_HWCACHE_ALIGN,
    SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TRACE,
    SLAB_TYPESAFE_BY_RCU,
)
from .geometry import oo_objects, oo_order
from .init import sysfs_slab_name
from .node import KmemCacheNode, node_nr_objs, node_nr_slabs
from .slab import StatItem
from .slub_def import KmemCache, Slub

KERNEL_SYMBOLS_612 = ("show_slab_objects", "count_partial", "count_free", "count_inuse", "count_total",
                      "slabs_cpu_partial_show", "show_stat", "aliases_show")


class SO(IntFlag):
    """show_slab_objects()'s selectors (enum slab_stat_type as bits)."""

    ALL = 1 << 0
    PARTIAL = 1 << 1
    CPU = 1 << 2
    OBJECTS = 1 << 3
    TOTAL = 1 << 4


def count_free(slab_objects: int, slab_inuse: int) -> int:
    return slab_objects - slab_inuse


def count_partial(n: KmemCacheNode, get_count: Callable[[int, int], int]) -> int:
    """The sum of ``get_count(objects, inuse)`` over the node's partial slabs."""
    return sum(get_count(slab.objects, slab.inuse) for slab in n.partial)


def count_inuse(slab_objects: int, slab_inuse: int) -> int:
    return slab_inuse


def count_total(slab_objects: int, slab_inuse: int) -> int:
    return slab_objects


def _per_node(total: int, nodes: list[int]) -> str:
    """``total`` then `` N<node>=<count>`` for every node with a non-zero count (CONFIG_NUMA)."""
    return f"{total}" + "".join(f" N{node}={x}" for node, x in enumerate(nodes) if x)


def show_slab_objects(s: KmemCache, flags: SO) -> str:
    """Counts of slabs or objects: of the cpu slabs (and per-CPU partial slabs, as the head's ``slabs``),
    of every slab of a node (SO_ALL, from the node's counters), or of the node partial lists."""
    nodes = [0] * len(s.node)
    total = 0
    if flags & SO.CPU:
        for c in s.cpu_slab:
            slab = c.slab
            if slab is None:
                continue
            x = slab.objects if flags & SO.TOTAL else slab.inuse if flags & SO.OBJECTS else 1
            total += x
            nodes[slab.nid] += x
            part = c.partial
            if part is not None and not flags & (SO.TOTAL | SO.OBJECTS):
                total += part.slabs
                nodes[part.nid] += part.slabs
    if flags & SO.ALL:
        for node, n in enumerate(s.node):
            if flags & SO.TOTAL:
                x = node_nr_objs(n)
            elif flags & SO.OBJECTS:
                x = node_nr_objs(n) - count_partial(n, count_free)
            else:
                x = node_nr_slabs(n)
            total += x
            nodes[node] += x
    elif flags & SO.PARTIAL:
        for node, n in enumerate(s.node):
            if flags & SO.TOTAL:
                x = count_partial(n, count_total)
            elif flags & SO.OBJECTS:
                x = count_partial(n, count_inuse)
            else:
                x = n.nr_partial
            total += x
            nodes[node] += x
    return _per_node(total, nodes)


def slabs_cpu_partial_show(s: KmemCache) -> str:
    """The per-CPU partial slabs, each CPU's as its head's ``slabs``, with objects estimated as half of
    those slabs' capacity: ``objects(slabs)`` then `` C<cpu>=objects(slabs)``."""
    per_cpu = [(cpu, c.partial.slabs) for cpu, c in enumerate(s.cpu_slab) if c.partial is not None]
    slabs = sum(n for _, n in per_cpu)
    text = f"{slabs * oo_objects(s.oo) // 2}({slabs})"
    return text + "".join(f" C{cpu}={n * oo_objects(s.oo) // 2}({n})" for cpu, n in per_cpu)


def show_stat(s: KmemCache, si: StatItem) -> str:
    """A SLUB_STATS counter: the sum over the CPUs, then `` C<cpu>=n`` for each CPU where it is not 0."""
    data = [c.stat[si] for c in s.cpu_slab]
    return f"{sum(data)}" + "".join(f" C{cpu}={x}" for cpu, x in enumerate(data) if x)


def aliases_show(s: KmemCache) -> str:
    return str(0 if s.refcount < 0 else s.refcount - 1)


def _flag(flag: int) -> Callable[[KmemCache], str]:
    return lambda s: str(int(bool(s.flags & flag)))


def _stat(si: StatItem) -> Callable[[KmemCache], str]:
    return lambda s: show_stat(s, si)


def _objects(flags: SO) -> Callable[[KmemCache], str]:
    return lambda s: show_slab_objects(s, flags)


#: The attribute files of a cache directory and how each is shown (the kernel's slab_attrs order, without
#: ctor, validate and shrink)
SLAB_ATTRS: Final[dict[str, Callable[[KmemCache], str]]] = {
    "slab_size": lambda s: str(s.size),
    "object_size": lambda s: str(s.object_size),
    "objs_per_slab": lambda s: str(oo_objects(s.oo)),
    "order": lambda s: str(oo_order(s.oo)),
    "min_partial": lambda s: str(s.min_partial),
    "cpu_partial": lambda s: str(s.cpu_partial),
    "objects_partial": _objects(SO.PARTIAL | SO.OBJECTS),
    "partial": _objects(SO.PARTIAL),
    "cpu_slabs": _objects(SO.CPU),
    "aliases": aliases_show,
    "align": lambda s: str(s.align),
    "hwcache_align": _flag(SLAB_HWCACHE_ALIGN),
    "reclaim_account": _flag(SLAB_RECLAIM_ACCOUNT),
    "destroy_by_rcu": _flag(SLAB_TYPESAFE_BY_RCU),
    "slabs_cpu_partial": slabs_cpu_partial_show,
    "total_objects": _objects(SO.ALL | SO.TOTAL),
    "objects": _objects(SO.ALL | SO.OBJECTS),
    "slabs": _objects(SO.ALL),
    "sanity_checks": _flag(SLAB_CONSISTENCY_CHECKS),
    "trace": _flag(SLAB_TRACE),
    "red_zone": _flag(SLAB_RED_ZONE),
    "poison": _flag(SLAB_POISON),
    "store_user": _flag(SLAB_STORE_USER),
    "cache_dma": _flag(SLAB_CACHE_DMA),
    "remote_node_defrag_ratio": lambda s: str(s.remote_node_defrag_ratio // 10),
    **{si.name.lower(): _stat(si) for si in StatItem},
}
#: The files that depend on the cache's slabs and counters, not only on its geometry
COUNT_ATTRS: Final = frozenset({"objects_partial", "partial", "cpu_slabs", "slabs_cpu_partial", "total_objects",
                                "objects", "slabs"})
STAT_ATTRS: Final = frozenset(si.name.lower() for si in StatItem)


def sysfs_dirs(sl: Slub) -> dict[str, KmemCache]:
    """The cache directories of /sys/kernel/slab: directory name -> cache (sysfs_slab_add)."""
    return {sysfs_slab_name(sl, s): s for s in reversed(sl.slab_caches)}


def sysfs_links(sl: Slub) -> dict[str, str]:
    """The links of /sys/kernel/slab: a mergeable cache's name and its aliases' names -> its directory
    (sysfs_slab_add and sysfs_slab_alias); an unmergeable cache's directory has its own name."""
    links: dict[str, str] = {}
    for s in reversed(sl.slab_caches):
        d = sysfs_slab_name(sl, s)
        for name in (s.name, *s.aliases):
            if name != d:
                links[name] = d
    return links


def sysfs_lookup(sl: Slub, name: str) -> tuple[str, KmemCache] | None:
    """A directory or link name -> (directory, cache); None if /sys/kernel/slab has no such entry."""
    dirs = sysfs_dirs(sl)
    d = name if name in dirs else sysfs_links(sl).get(name)
    return None if d is None else (d, dirs[d])


def sysfs_show(s: KmemCache, attr: str) -> str:
    """The text of one attribute file (without its newline); KeyError for a file the directory lacks."""
    return SLAB_ATTRS[attr](s)


def sysfs_dump(sl: Slub) -> list[str]:
    """Every file of every cache directory as ``/sys/kernel/slab/DIR/FILE:VALUE`` lines (the captures'
    ``sysslab`` format), directories in creation order, files in :data:`SLAB_ATTRS` order."""
    return [f"/sys/kernel/slab/{d}/{attr}:{show(s)}" for d, s in sysfs_dirs(sl).items()
            for attr, show in SLAB_ATTRS.items()]

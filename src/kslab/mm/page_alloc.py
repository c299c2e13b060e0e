"""The page (buddy) allocator: zones, free areas, per-CPU page lists (mm/page_alloc.c, v5.10).

:class:`PageAllocator` models, per NUMA node and zone, the ``free_area[0..10]`` lists of every
migrate type, the order-0 per-CPU page lists (pcp), pageblock migrate types with fallback
stealing, and the min/low/high watermarks.  Methods keep the kernel's function names
(``__rmqueue_smallest``, ``expand``, ``__free_one_page``, ``free_pcppages_bulk`` ...); inside the
class Python mangles the ``__`` names, which is harmless because only the class calls them.

The module keeps the allocation side; the rest lives beside it and is re-exported here: the free
side and the per-CPU page lists (:mod:`kslab.mm.page_free`), fallback stealing (:mod:`kslab.mm.page_fallback`),
the zones' boot, the watermarks and zonelists (:mod:`kslab.mm.page_zones`) and the counters
and reports (:mod:`kslab.mm.page_counters`) (base classes of
:class:`PageAllocator`), the mmzone.h structures and constants (:mod:`kslab.mm.mmzone`), qemu's e820
memory map (:mod:`kslab.mm.e820`) and the consistency check (:mod:`kslab.mm.page_alloc_check`).

The physical layout of the qemu machine is described in :mod:`kslab.mm.e820`.

Memory cost is proportional to the number of free *blocks* (order-10 blocks at boot: 16 Ki for
64 GiB), never to the number of pages.

Simplifications (the kernel's behaviour is otherwise followed step by step):

* No reclaim, compaction, OOM killer or ``__GFP_NOFAIL`` looping.  The slow path tries the MIN
  watermark (with ALLOC_HIGH/ALLOC_HARDER reductions), then ALLOC_NO_WATERMARKS for
  ``__GFP_MEMALLOC``, and, for requests that may direct-reclaim, acts as if reclaim made progress
  without freeing anything: it unreserves a HIGHATOMIC pageblock, drains all pcp lists and tries
  once more (what ``__alloc_pages_direct_reclaim`` does), then gives up and returns None.
* Watermark boosting (``boost_watermark``), kswapd, CMA, page isolation, page reporting, page
  shuffling, memory hotplug and debug guard pages are not modelled; no cpusets.
* In ``move_freepages`` the kernel counts LRU/movable pages of a pageblock; the model counts the
  pages of blocks that were allocated with a MOVABLE migrate type.
* Node distances are qemu's defaults (10 local, 20 remote).
* ``percpu_pagelist_fraction`` and the vmstat-driven remote pcp expiry are not automatic;
  :meth:`PageAllocator.drain_zone_pages` is there for a caller that wants to model the latter.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from .config import PAGE_SHIFT, MachineConfig
from .e820 import (
    E820_LOW_HOLES,
    FIRMWARE_TOP_RESERVED_PAGES,
    QEMU_BELOW_4G_GIGALIGNED,
    QEMU_LOWMEM_LIMIT,
    qemu_node_ranges,
)
from .gfp import (
    __GFP_ATOMIC,
    __GFP_COMP,
    __GFP_DIRECT_RECLAIM,
    __GFP_DMA,
    __GFP_DMA32,
    __GFP_HIGH,
    __GFP_KSWAPD_RECLAIM,
    __GFP_MEMALLOC,
    __GFP_NOMEMALLOC,
    __GFP_NOWARN,
    __GFP_THISNODE,
    GFP_MOVABLE_MASK,
    GFP_MOVABLE_SHIFT,
    show_gfp_flags,
)
from .mmzone import (
    ALLOC_CMA,
    ALLOC_CPUSET,
    ALLOC_HARDER,
    ALLOC_KSWAPD,
    ALLOC_NO_WATERMARKS,
    ALLOC_NOFRAGMENT,
    ALLOC_WMARK_HIGH,
    ALLOC_WMARK_LOW,
    ALLOC_WMARK_MASK,
    ALLOC_WMARK_MIN,
    FPI_NONE,
    FPI_SKIP_REPORT_NOTIFY,
    LOCAL_DISTANCE,
    MAX_NUMNODES,
    MAX_ORDER,
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    NR_SLAB_RECLAIMABLE_B,
    NR_SLAB_UNRECLAIMABLE_B,
    NUMA_FOREIGN,
    NUMA_HIT,
    NUMA_INTERLEAVE_HIT,
    NUMA_LOCAL,
    NUMA_MISS,
    NUMA_OTHER,
    REMOTE_DISTANCE,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    ZONE_DMA,
    ZONE_DMA32,
    ZONE_MOVABLE,
    ZONE_NORMAL,
    PerCpuPages,
    Zone,
    fallbacks,
    migratetype_names,
    numa_stat_names,
    pageblock_nr_pages,
    pageblock_order,
    sysctl_lowmem_reserve_ratio,
    watermark_scale_factor,
    zone_names,
)
from .page import MemMap, Page
from .page_alloc_check import check_page_allocator
from .page_counters import PageCounters, VmStat
from .page_fallback import PageFallback
from .page_free import PageAllocHook, PageFreeHook, PageFreeing, PageHooks
from .page_zones import ZoneSetup

KERNEL_SYMBOLS: Final = (
    "__alloc_pages_node",
    "__alloc_pages_slowpath",
    "get_page_from_freelist",
    "rmqueue",
    "rmqueue_bulk",
    "__rmqueue",
    "__rmqueue_smallest",
    "expand",
    "__free_pages",
    "zone_batchsize",
)

# MAX_ORDER, the migrate types, zones and the watermark/ALLOC_* flags are in mmzone.py, the qemu memory
# map in e820.py, the consistency check in page_alloc_check.py (all re-exported here).


# Python mangles ``__names`` inside class bodies, so the class uses these single-underscore aliases.
_GFP_ATOMIC: Final = __GFP_ATOMIC
_GFP_COMP: Final = __GFP_COMP
_GFP_DIRECT_RECLAIM: Final = __GFP_DIRECT_RECLAIM
_GFP_DMA: Final = __GFP_DMA
_GFP_DMA32: Final = __GFP_DMA32
_GFP_HIGH: Final = __GFP_HIGH
_GFP_KSWAPD_RECLAIM: Final = __GFP_KSWAPD_RECLAIM
_GFP_MEMALLOC: Final = __GFP_MEMALLOC
_GFP_NOMEMALLOC: Final = __GFP_NOMEMALLOC
_GFP_NOWARN: Final = __GFP_NOWARN
_GFP_THISNODE: Final = __GFP_THISNODE


def zone_batchsize(managed_pages: int) -> int:
    """The pcp batch for a zone: about a thousandth of it, at most 1 MiB, clamped to 2^n - 1."""
    batch = managed_pages // 1024
    if batch * (1 << PAGE_SHIFT) > 1024 * 1024:
        batch = (1024 * 1024) >> PAGE_SHIFT
    batch //= 4
    if batch < 1:
        batch = 1
    b = batch + batch // 2
    return (1 << (b.bit_length() - 1)) - 1


class PageAllocator(ZoneSetup, PageFreeing, PageFallback, PageCounters):
    """The buddy allocator of one machine: every node's zones, free areas and pcp lists.

    :param config: the machine (CPUs, NUMA topology, memory).
    :param mem_map: where allocated pages get their ``struct page`` (prep_new_block/release_block).

    Hooks (``hooks``, a :class:`~kslab.mm.page_free.PageHooks`; None by default), for trace events:

    * ``hooks.on_page_alloc(page, order, migratetype, gfp)``: after every attempt of order <= 10, as
      trace_mm_page_alloc is; ``page`` is None when the allocation failed.
    * ``hooks.on_page_free(page, order)``: before a block is given back (trace_mm_page_free).
    * ``hooks.on_warn(message)``: warn_alloc() failure lines and one-time warnings.

    The vmstat counters (node_stat items, PGALLOC, PGFREE) are in ``vmstat``
    (a :class:`~kslab.mm.page_counters.VmStat`).

    ``zones`` lists the populated zones in for_each_populated_zone() order; ``node_zones[nid][zone]``
    is a Zone or None.  ``comm`` is the task name printed in "Bad page state" messages.
    """

    def __init__(self, config: MachineConfig, mem_map: MemMap) -> None:
        self.config = config
        self.mem_map = mem_map
        self.comm = "kslab"  # current->comm in messages
        self.nr_nodes = config.nr_nodes
        self._cpu_node = [config.cpu_to_node(c) for c in range(config.cpus)]
        self.hooks = PageHooks()
        self.last_alloc_pfmemalloc = False
        # allocated blocks: head pfn -> order | migratetype << 4 | pfmemalloc << 6 | zone key << 8
        self._alloc: dict[int, int] = {}
        self.nr_allocated_pages = 0
        self.vmstat = VmStat(self.nr_nodes)
        self._pb_mt: dict[int, int] = {}  # pageblock index -> migratetype, where not MOVABLE
        self._warned: set[str] = set()

        self.free_area_init(config)
        self.min_free_kbytes = 0
        self.init_per_zone_wmark_min()
        for zone in self.zones:
            batch = zone_batchsize(zone.managed_pages)
            zone.pageset = [PerCpuPages(6 * batch, max(1, batch)) for _ in range(config.cpus)]
        self.node_order = self._build_all_zonelists()
        self._zonelist_cache: dict[tuple[int, int, bool], tuple[tuple[Zone, ...], int]] = {}

    # ---- pageblocks ------------------------------------------------------------------------------

    # (get_pageblock_migratetype: PageFreeing, page_free.py)

    def set_pageblock_migratetype(self, pfn: int, mt: int) -> None:
        if mt == MIGRATE_MOVABLE:
            self._pb_mt.pop(pfn >> pageblock_order, None)
        else:
            self._pb_mt[pfn >> pageblock_order] = mt

    # ---- allocation ------------------------------------------------------------------------------

    def alloc_pages_node(self, nid: int, gfp: int, order: int = 0, cpu: int = 0) -> Page | None:
        """Allocate 2^order pages preferring node ``nid`` (-1: the CPU's node); None on failure.

        Mirrors __alloc_pages_node() / __alloc_pages_nodemask() (v5.10).
        """
        if order >= MAX_ORDER:
            if not gfp & _GFP_NOWARN:
                self.__warn_once("WARNING: __alloc_pages_nodemask: order >= MAX_ORDER")
            return None
        if nid < 0:
            nid = self._cpu_node[cpu]
        highest = 0 if gfp & _GFP_DMA else (1 if gfp & _GFP_DMA32 else 2)
        zl, nofrag = self._zonelist(nid, highest, bool(gfp & _GFP_THISNODE))
        mt = (gfp & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT
        if mt == MIGRATE_HIGHATOMIC:  # both mobility bits: invalid, the kernel warns
            mt = MIGRATE_MOVABLE
        self.last_alloc_pfmemalloc = False
        page = self.get_page_from_freelist(gfp, order, ALLOC_WMARK_LOW | nofrag | (gfp & _GFP_KSWAPD_RECLAIM),
                                           zl, highest, mt, cpu)
        if page is None:
            page = self.__alloc_pages_slowpath(gfp, order, zl, highest, mt, cpu)
        on_page_alloc = self.hooks.on_page_alloc
        if on_page_alloc is not None:
            on_page_alloc(page, order, mt, gfp)
        return page

    def alloc_pages(self, gfp: int, order: int = 0, cpu: int = 0) -> Page | None:
        """alloc_pages(): allocate on the node of ``cpu``."""
        return self.alloc_pages_node(self._cpu_node[cpu], gfp, order, cpu)

    def __alloc_pages_slowpath(self, gfp: int, order: int, zl: tuple[Zone, ...], highest: int, mt: int,
                               cpu: int) -> Page | None:
        if gfp & (_GFP_ATOMIC | _GFP_DIRECT_RECLAIM) == _GFP_ATOMIC | _GFP_DIRECT_RECLAIM:
            self.__warn_once("WARNING: __alloc_pages_slowpath: __GFP_ATOMIC with __GFP_DIRECT_RECLAIM")
            gfp &= ~_GFP_ATOMIC
        if zl:
            # gfp_to_alloc_flags()
            alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET | (gfp & (_GFP_HIGH | _GFP_KSWAPD_RECLAIM))
            if gfp & _GFP_ATOMIC:
                if not gfp & _GFP_NOMEMALLOC:
                    alloc_flags |= ALLOC_HARDER
                alloc_flags &= ~ALLOC_CPUSET
            page = self.get_page_from_freelist(gfp, order, alloc_flags, zl, highest, mt, cpu)
            if page is not None:
                return page
            # __gfp_pfmemalloc_flags(): only __GFP_MEMALLOC applies (no PF_MEMALLOC tasks here)
            if gfp & _GFP_MEMALLOC and not gfp & _GFP_NOMEMALLOC:
                alloc_flags = ALLOC_NO_WATERMARKS
                page = self.get_page_from_freelist(gfp, order, alloc_flags, zl, highest, mt, cpu)
                if page is not None:
                    return page
            if gfp & _GFP_DIRECT_RECLAIM:
                # direct reclaim frees nothing here; its retry drains reserves and pcp lists
                self.unreserve_highatomic_pageblock(zl, mt, False)
                self.drain_all_pages()
                page = self.get_page_from_freelist(gfp, order, alloc_flags, zl, highest, mt, cpu)
                if page is not None:
                    return page
        on_warn = self.hooks.on_warn
        if not gfp & _GFP_NOWARN and on_warn is not None:
            on_warn(f"{self.comm}: page allocation failure: order:{order}, "
                         f"mode:{gfp:#x}({show_gfp_flags(gfp)}), nodemask=(null)")
        return None

    def get_page_from_freelist(self, gfp: int, order: int, alloc_flags: int, zl: tuple[Zone, ...],
                               highest: int, mt: int, cpu: int) -> Page | None:
        """Walk the zonelist; take from the first zone that passes its watermark."""
        multi = self.nr_nodes > 1
        while True:
            no_fallback = alloc_flags & ALLOC_NOFRAGMENT
            restart = False
            preferred = zl[0] if zl else None
            for zone in zl:
                if no_fallback and multi and zone is not preferred and preferred is not None \
                        and zone.nid != preferred.nid:
                    # leaving the local node: locality beats fragmentation avoidance
                    alloc_flags &= ~ALLOC_NOFRAGMENT
                    restart = True
                    break
                mark = zone.watermark[alloc_flags & ALLOC_WMARK_MASK]
                if not self.zone_watermark_fast(zone, order, mark, highest, alloc_flags) \
                        and not alloc_flags & ALLOC_NO_WATERMARKS:
                    continue  # node_reclaim_mode == 0: no node reclaim
                assert preferred is not None
                pfn = self.rmqueue(preferred, zone, order, alloc_flags, mt, cpu)
                if pfn >= 0:
                    page = self.mem_map.prep_new_block(pfn, order, zone.nid, zone.idx, bool(gfp & _GFP_COMP))
                    pfmemalloc = bool(alloc_flags & ALLOC_NO_WATERMARKS)
                    self._alloc[pfn] = order | mt << 4 | pfmemalloc << 6 | zone.key << 8
                    self.nr_allocated_pages += 1 << order
                    self.last_alloc_pfmemalloc = pfmemalloc
                    if order and alloc_flags & ALLOC_HARDER:
                        self.reserve_highatomic_pageblock(pfn, zone)
                    return page
            if restart:
                continue
            if no_fallback:
                alloc_flags &= ~ALLOC_NOFRAGMENT
                continue
            return None

    def rmqueue(self, preferred: Zone, zone: Zone, order: int, alloc_flags: int, mt: int, cpu: int) -> int:
        """Take a block from ``zone``: order 0 through the CPU's pcp list.  Returns a pfn or -1."""
        if order == 0:
            pcp = zone.pageset[cpu]
            lst = pcp.lists[mt]
            if not lst:
                pcp.count += self.rmqueue_bulk(zone, 0, pcp.batch, lst, mt, alloc_flags)
                if not lst:
                    return -1
            pfn = lst.popleft()
            pcp.count -= 1
            if zone.pcp_mt:
                zone.pcp_mt.pop(pfn, None)
            self.vmstat.pgalloc[zone.idx] += 1
        else:
            pfn = -1
            if alloc_flags & ALLOC_HARDER:
                pfn = self.__rmqueue_smallest(zone, order, MIGRATE_HIGHATOMIC)
            if pfn < 0:
                pfn = self.__rmqueue(zone, order, mt, alloc_flags)
                if pfn < 0:
                    return -1
            zone.free_pages -= 1 << order
            self.vmstat.pgalloc[zone.idx] += 1 << order
        # zone_statistics()
        st = zone.numa_stat
        if zone.nid == preferred.nid:
            st[NUMA_HIT] += 1
        else:
            st[NUMA_MISS] += 1
            preferred.numa_stat[NUMA_FOREIGN] += 1
        st[NUMA_LOCAL if zone.nid == self._cpu_node[cpu] else NUMA_OTHER] += 1
        return pfn

    def rmqueue_bulk(self, zone: Zone, order: int, count: int, lst: deque[int], mt: int, alloc_flags: int) -> int:
        """Move ``count`` blocks from the buddy lists to the tail of a pcp list."""
        n = 0
        rmqueue = self.__rmqueue
        while n < count:
            pfn = rmqueue(zone, order, mt, alloc_flags)
            if pfn < 0:
                break
            lst.append(pfn)
            n += 1
        zone.free_pages -= n << order
        return n

    def __rmqueue(self, zone: Zone, order: int, mt: int, alloc_flags: int) -> int:
        while True:
            pfn = self.__rmqueue_smallest(zone, order, mt)
            if pfn >= 0 or not self._rmqueue_fallback(zone, order, mt, alloc_flags):
                return pfn

    def __rmqueue_smallest(self, zone: Zone, order: int, mt: int) -> int:
        fl = zone.free_list
        for o in range(order, MAX_ORDER):
            lst = fl[o * MIGRATE_TYPES + mt]
            if lst:
                pfn = lst.popitem(last=False)[0]
                del zone.buddy[pfn]
                zone.nr_free[o] -= 1
                if o > order:
                    self.expand(zone, pfn, order, o, mt)
                return pfn
        return -1

    def expand(self, zone: Zone, pfn: int, low: int, high: int, mt: int) -> None:
        """Split a block of order ``high`` down to ``low``: upper halves go to list heads."""
        fl, buddy, nr_free = zone.free_list, zone.buddy, zone.nr_free
        size = 1 << high
        while high > low:
            high -= 1
            size >>= 1
            half = pfn + size
            li = high * MIGRATE_TYPES + mt
            lst = fl[li]
            lst[half] = None
            lst.move_to_end(half, last=False)
            buddy[half] = li
            nr_free[high] += 1

    # ---- warnings (the counters and reports: PageCounters, page_counters.py) -------------------

    def __warn_once(self, msg: str) -> None:
        if msg not in self._warned:
            self._warned.add(msg)
            on_warn = self.hooks.on_warn
            if on_warn is not None:
                on_warn(msg)

    # ---- consistency ---------------------------------------------------------------------------

    def check(self) -> None:
        """Verify the free areas, pcp lists and allocations; raise SlabCorruptionError if broken.

        Checks list/marker agreement, nr_free and NR_FREE_PAGES, alignment, that every block lies
        in its zone's managed memory, that no two blocks (free, pcp or allocated) overlap, and
        that free + pcp + allocated pages equal the managed pages of every zone.
        """
        check_page_allocator(self)


def __alloc_pages_node(pa: PageAllocator, nid: int, gfp: int, order: int, cpu: int = 0) -> Page | None:
    """Module-level mirror of __alloc_pages_node(); see :meth:`PageAllocator.alloc_pages_node`."""
    return pa.alloc_pages_node(nid, gfp, order, cpu)


def __free_pages(pa: PageAllocator, page: Page, order: int, cpu: int = 0) -> None:
    """Module-level mirror of __free_pages(); see :meth:`PageAllocator.free_pages`."""
    pa.free_pages(page, order, cpu)


# (some of these are defined in mmzone.py, e820.py or page_free.py and not used here: listed for
# ``from kslab.mm.page_alloc import ...``)
__all__ = [
    "ALLOC_CMA",
    "ALLOC_KSWAPD",
    "ALLOC_WMARK_HIGH",
    "E820_LOW_HOLES",
    "FIRMWARE_TOP_RESERVED_PAGES",
    "FPI_NONE",
    "FPI_SKIP_REPORT_NOTIFY",
    "LOCAL_DISTANCE",
    "MAX_NUMNODES",
    "MAX_ORDER",
    "MIGRATE_HIGHATOMIC",
    "MIGRATE_MOVABLE",
    "MIGRATE_PCPTYPES",
    "MIGRATE_RECLAIMABLE",
    "MIGRATE_UNMOVABLE",
    "NR_SLAB_RECLAIMABLE_B",
    "NR_SLAB_UNRECLAIMABLE_B",
    "NUMA_INTERLEAVE_HIT",
    "QEMU_BELOW_4G_GIGALIGNED",
    "QEMU_LOWMEM_LIMIT",
    "REMOTE_DISTANCE",
    "WMARK_HIGH",
    "WMARK_LOW",
    "WMARK_MIN",
    "ZONE_DMA",
    "ZONE_DMA32",
    "ZONE_MOVABLE",
    "ZONE_NORMAL",
    "PageAllocHook",
    "PageAllocator",
    "PageFreeHook",
    "PageHooks",
    "PerCpuPages",
    "VmStat",
    "Zone",
    "__alloc_pages_node",
    "__free_pages",
    "fallbacks",
    "migratetype_names",
    "numa_stat_names",
    "pageblock_nr_pages",
    "pageblock_order",
    "qemu_node_ranges",
    "sysctl_lowmem_reserve_ratio",
    "watermark_scale_factor",
    "zone_batchsize",
    "zone_names",
]

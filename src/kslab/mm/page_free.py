"""The free side of the buddy allocator (mm/page_alloc.c, v5.10): ``__free_pages`` with its bad-page
checks, the order-0 per-CPU page lists (``free_unref_page``, ``free_pcppages_bulk`` and the drains) and
the buddy merging of ``__free_one_page``.

:class:`PageFreeing` is a base class of :class:`~kslab.mm.page_alloc.PageAllocator`, which owns the
state it works on (declared below); the class is not used on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NoReturn

from .config import MachineConfig
from .errors import KernelBug
from .mmzone import (
    FPI_NONE,
    FPI_TO_TAIL,
    MAX_ORDER,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_TYPES,
    PerCpuPages,
    Zone,
    pageblock_order,
)
from .page import MemMap, Page, PG_slab
from .page_counters import VmStat

KERNEL_SYMBOLS: Final = (
    "free_unref_page", "__free_pages_ok", "__free_one_page", "buddy_merge_likely",
    "free_pcppages_bulk", "drain_all_pages", "drain_local_pages", "drain_zone_pages",
)

PageFreeHook = Callable[[Page, int], None]
PageAllocHook = Callable[[Page | None, int, int, int], None]


class PageHooks:
    """The page allocator's tracepoint-like hooks, None by default (see :class:`~kslab.mm.page_alloc.PageAllocator`):
    ``on_page_alloc(page, order, migratetype, gfp)`` (trace_mm_page_alloc), ``on_page_free(page, order)``
    (trace_mm_page_free) and ``on_warn(message)`` (warn_alloc() and one-time warnings)."""

    __slots__ = ("on_page_alloc", "on_page_free", "on_warn")

    def __init__(self) -> None:
        self.on_page_alloc: PageAllocHook | None = None
        self.on_page_free: PageFreeHook | None = None
        self.on_warn: Callable[[str], None] | None = None


def _mapping_text(mapping: object) -> str:
    if mapping is None:
        return "0000000000000000"
    return f"{mapping:016x}" if isinstance(mapping, int) else repr(mapping)


def _bad_page_message(comm: str, page: Page | None, pfn: int, reason: str) -> str:
    if page is None:
        desc = f"page:(not allocated) pfn:{pfn:#x}"
    else:
        desc = (f"page:{page.vmemmap:016x} refcount:{page._refcount} mapcount:{page.active + 1} "
                f"mapping:{_mapping_text(page.mapping)} index:0x0 pfn:{pfn:#x}\n"
                f"flags: {page.flags:#x}")
    return (f"BUG: Bad page state in process {comm}  pfn:{pfn:05x}\n{desc}\n"
            f"page dumped because: {reason}")


class PageFreeing:
    """The freeing methods of :class:`~kslab.mm.page_alloc.PageAllocator` (see there for the fields)."""

    config: MachineConfig
    mem_map: MemMap
    comm: str
    hooks: PageHooks
    _alloc: dict[int, int]
    nr_allocated_pages: int
    vmstat: VmStat
    _pb_mt: dict[int, int]
    node_zones: list[list[Zone | None]]
    zones: list[Zone]

    def get_pageblock_migratetype(self, pfn: int) -> int:
        """The migrate type of ``pfn``'s pageblock (get_pageblock_migratetype)."""
        return self._pb_mt.get(pfn >> pageblock_order, MIGRATE_MOVABLE)

    def free_pages(self, page: Page, order: int = 0, cpu: int = 0) -> None:
        """Give back a block from :meth:`alloc_pages_node`.  Mirrors __free_pages() (v5.10).

        Raises KernelBug ("BUG: Bad page state ...") for a block that is not allocated (double
        free), a wrong order, a tail page, or a page still marked as a slab / mapped.
        """
        pfn = page.pfn
        code = self._alloc.get(pfn)
        if code is None or self.mem_map.pages.get(pfn) is not page:
            self.__bad_page(None, pfn, "page is not allocated (double free?)")
        if code & 15 != order:
            self.__bad_page(page, pfn, f"freed as order {order} but allocated as order {code & 15}")
        if page.compound_head & 1:
            self.__bad_page(page, pfn, "freeing a tail page")
        if page.active != -1:
            self.__bad_page(page, pfn, "nonzero mapcount")
        if page.mapping is not None:
            self.__bad_page(page, pfn, "non-NULL mapping")
        if page.flags & (1 << PG_slab):
            self.__bad_page(page, pfn, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set")
        on_page_free = self.hooks.on_page_free
        if on_page_free is not None:
            on_page_free(page, order)
        del self._alloc[pfn]
        self.nr_allocated_pages -= 1 << order
        self.mem_map.release_block(pfn, order)
        zone = self.zones[code >> 8]
        if order == 0:
            self.free_unref_page(zone, pfn, cpu)
        else:
            self.__free_pages_ok(zone, pfn, order, FPI_NONE)

    def __bad_page(self, page: Page | None, pfn: int, reason: str) -> NoReturn:
        raise KernelBug(_bad_page_message(self.comm, page, pfn, reason), function="bad_page")

    def free_unref_page(self, zone: Zone, pfn: int, cpu: int) -> None:
        """Queue an order-0 page at the head of the CPU's pcp list; drain a batch at ``high``."""
        mt = self._pb_mt.get(pfn >> pageblock_order, MIGRATE_MOVABLE)
        self.vmstat.pgfree += 1
        if mt >= MIGRATE_PCPTYPES:
            zone.pcp_mt[pfn] = mt
            mt = MIGRATE_MOVABLE
        pcp = zone.pageset[cpu]
        pcp.lists[mt].appendleft(pfn)
        pcp.count += 1
        if pcp.count >= pcp.high:
            self.free_pcppages_bulk(zone, pcp.batch, pcp)

    def __free_pages_ok(self, zone: Zone, pfn: int, order: int, fpi_flags: int) -> None:
        self.vmstat.pgfree += 1 << order
        self.__free_one_page(zone, pfn, order, self.get_pageblock_migratetype(pfn), fpi_flags)

    def __free_one_page(self, zone: Zone, pfn: int, order: int, mt: int, fpi_flags: int) -> None:
        buddy, fl, nr_free = zone.buddy, zone.free_list, zone.nr_free
        zone.free_pages += 1 << order
        max_order = min(MAX_ORDER - 1, pageblock_order)
        buddy_pfn = pfn
        while True:
            merged_all = True
            while order < max_order:
                buddy_pfn = pfn ^ (1 << order)
                li = buddy.get(buddy_pfn)
                if li is None or li // MIGRATE_TYPES != order:
                    merged_all = False
                    break
                del fl[li][buddy_pfn]
                del buddy[buddy_pfn]
                nr_free[order] -= 1
                pfn &= buddy_pfn
                order += 1
            if merged_all and order < MAX_ORDER - 1:
                # past pageblock_order: one more level at a time (no isolated pageblocks here)
                max_order = order + 1
                continue
            break
        if fpi_flags & FPI_TO_TAIL:
            to_tail = True
        else:
            to_tail = self.buddy_merge_likely(zone, pfn, buddy_pfn, order)
        li = order * MIGRATE_TYPES + mt
        lst = fl[li]
        lst[pfn] = None
        if not to_tail:
            lst.move_to_end(pfn, last=False)
        buddy[pfn] = li
        nr_free[order] += 1

    @staticmethod
    def buddy_merge_likely(zone: Zone, pfn: int, buddy_pfn: int, order: int) -> bool:
        """True when the buddy of the next-higher block is free: queue at the tail then."""
        if order >= MAX_ORDER - 2:
            return False
        combined = buddy_pfn & pfn
        li = zone.buddy.get(combined ^ (1 << (order + 1)))
        return li is not None and li // MIGRATE_TYPES == order + 1

    def free_pcppages_bulk(self, zone: Zone, count: int, pcp: PerCpuPages) -> None:
        """Give ``count`` pcp pages back to the buddy lists, round-robin from the list tails."""
        count = min(pcp.count, count)
        migratetype = 0
        batch_free = 0
        todo: list[int] = []
        lists = pcp.lists
        override = zone.pcp_mt
        while count:
            while True:
                batch_free += 1
                migratetype += 1
                if migratetype == MIGRATE_PCPTYPES:
                    migratetype = 0
                lst = lists[migratetype]
                if lst:
                    break
            if batch_free == MIGRATE_PCPTYPES:
                batch_free = count
            while True:
                pfn = lst.pop()
                pcp.count -= 1
                todo.append(override.pop(pfn, migratetype) if override else migratetype)
                todo.append(pfn)
                count -= 1
                if not count:
                    break
                batch_free -= 1
                if not batch_free or not lst:
                    break
        free_one = self.__free_one_page
        for i in range(0, len(todo), 2):
            free_one(zone, todo[i + 1], 0, todo[i], FPI_NONE)

    def drain_zone_pages(self, nid: int, zone_idx: int, cpu: int) -> None:
        """drain_zone_pages(): give back up to one batch of a CPU's pcp pages in one zone."""
        zone = self.node_zones[nid][zone_idx]
        if zone is None:
            return
        pcp = zone.pageset[cpu]
        to_drain = min(pcp.count, pcp.batch)
        if to_drain > 0:
            self.free_pcppages_bulk(zone, to_drain, pcp)

    def drain_local_pages(self, cpu: int) -> None:
        """Empty one CPU's pcp lists in every zone."""
        for zone in self.zones:
            pcp = zone.pageset[cpu]
            if pcp.count:
                self.free_pcppages_bulk(zone, pcp.count, pcp)

    def drain_all_pages(self) -> None:
        """Empty every CPU's pcp lists (CPUs in ascending order)."""
        for cpu in range(self.config.cpus):
            self.drain_local_pages(cpu)

    # the boot-time freeing (PageAllocator.__free_boot_memory) gives its blocks to __free_one_page, whose
    # name Python mangles with this class's name
    _free_one_page_at_boot = __free_one_page

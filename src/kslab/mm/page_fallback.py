"""Fallback stealing of the buddy allocator (mm/page_alloc.c, v5.10): when a migrate type's free lists are
empty, ``__rmqueue_fallback`` takes a block of another type (``find_suitable_fallback``,
``steal_suitable_fallback``, moving whole pageblocks with ``move_freepages_block``), and the
HIGHATOMIC reserve is made and given back (``reserve_highatomic_pageblock``,
``unreserve_highatomic_pageblock``).

:class:`PageFallback` is a base class of :class:`~kslab.mm.page_alloc.PageAllocator`, which owns the
state it works on (declared below); the class is not used on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from .mmzone import (
    ALLOC_NOFRAGMENT,
    MAX_ORDER,
    MIGRATE_HIGHATOMIC,
    MIGRATE_MOVABLE,
    MIGRATE_RECLAIMABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    Zone,
    fallbacks,
    pageblock_nr_pages,
    pageblock_order,
)

KERNEL_SYMBOLS: Final = (
    "__rmqueue_fallback",
    "find_suitable_fallback",
    "can_steal_fallback",
    "steal_suitable_fallback",
    "move_freepages_block",
    "move_freepages",
    "change_pageblock_range",
    "reserve_highatomic_pageblock",
    "unreserve_highatomic_pageblock",
)


class PageFallback:
    """The fallback methods of :class:`~kslab.mm.page_alloc.PageAllocator` (see there for the fields)."""

    _alloc: dict[int, int]
    get_pageblock_migratetype: Callable[[int], int]
    set_pageblock_migratetype: Callable[[int, int], None]

    def __rmqueue_fallback(self, zone: Zone, order: int, start_mt: int, alloc_flags: int) -> bool:
        min_order = pageblock_order if alloc_flags & ALLOC_NOFRAGMENT else order
        fallback_mt, can_steal, current_order = -1, False, -1
        found = False
        for current_order in range(MAX_ORDER - 1, min_order - 1, -1):
            fallback_mt, can_steal = self.find_suitable_fallback(zone, current_order, start_mt, False)
            if fallback_mt == -1:
                continue
            found = True
            if not can_steal and start_mt == MIGRATE_MOVABLE and current_order > order:
                # a movable request that cannot claim the block takes the smallest one instead
                for current_order in range(order, MAX_ORDER):
                    fallback_mt, can_steal = self.find_suitable_fallback(zone, current_order, start_mt, False)
                    if fallback_mt != -1:
                        break
            break
        if not found:
            return False
        pfn = next(iter(zone.free_list[current_order * MIGRATE_TYPES + fallback_mt]))
        self.steal_suitable_fallback(zone, pfn, alloc_flags, start_mt, can_steal)
        return True

    def find_suitable_fallback(self, zone: Zone, order: int, mt: int, only_stealable: bool) -> tuple[int, bool]:
        if not zone.nr_free[order]:
            return -1, False
        can_steal = False
        base = order * MIGRATE_TYPES
        for fallback_mt in fallbacks[mt]:
            if not zone.free_list[base + fallback_mt]:
                continue
            if self.can_steal_fallback(order, mt):
                can_steal = True
            if not only_stealable or can_steal:
                return fallback_mt, can_steal
        return -1, can_steal

    @staticmethod
    def can_steal_fallback(order: int, start_mt: int) -> bool:
        if order >= pageblock_order:
            return True
        return order >= pageblock_order // 2 or start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)

    def steal_suitable_fallback(self, zone: Zone, pfn: int, alloc_flags: int, start_type: int,
                                whole_block: bool) -> None:
        current_order = zone.buddy[pfn] // MIGRATE_TYPES
        old_block_type = self.get_pageblock_migratetype(pfn)
        if old_block_type != MIGRATE_HIGHATOMIC:
            if current_order >= pageblock_order:
                self.change_pageblock_range(pfn, current_order, start_type)
            elif whole_block:
                free_pages, movable_pages = self.move_freepages_block(zone, pfn, start_type)
                if start_type == MIGRATE_MOVABLE:
                    alike_pages = movable_pages
                elif old_block_type == MIGRATE_MOVABLE:
                    alike_pages = pageblock_nr_pages - (free_pages + movable_pages)
                else:
                    alike_pages = 0
                if free_pages:
                    if free_pages + alike_pages >= 1 << (pageblock_order - 1):
                        self.set_pageblock_migratetype(pfn, start_type)
                    return
        self.move_to_free_list(zone, pfn, current_order, start_type)

    def change_pageblock_range(self, pfn: int, start_order: int, mt: int) -> None:
        for i in range(1 << (start_order - pageblock_order)):
            self.set_pageblock_migratetype(pfn + i * pageblock_nr_pages, mt)

    def move_to_free_list(self, zone: Zone, pfn: int, order: int, mt: int) -> None:
        """list_move_tail() of a free block onto another migrate type's list."""
        old = zone.buddy[pfn]
        del zone.free_list[old][pfn]
        li = order * MIGRATE_TYPES + mt
        zone.free_list[li][pfn] = None
        zone.buddy[pfn] = li

    def move_freepages_block(self, zone: Zone, pfn: int, mt: int) -> tuple[int, int]:
        """Move the free blocks of ``pfn``'s pageblock to ``mt``; returns (pages moved, movable pages)."""
        start = pfn & ~(pageblock_nr_pages - 1)
        end = start + pageblock_nr_pages - 1
        if not zone.zone_spans_pfn(start):
            start = pfn
        if not zone.zone_spans_pfn(end):
            return 0, 0
        return self.move_freepages(zone, start, end, mt)

    def move_freepages(self, zone: Zone, start: int, end: int, mt: int) -> tuple[int, int]:
        moved = movable = 0
        buddy, alloc = zone.buddy, self._alloc
        p = start
        while p <= end:
            li = buddy.get(p)
            if li is None:
                code = alloc.get(p)
                if code is None:
                    p += 1
                    continue
                n = 1 << (code & 15)
                if (code >> 4) & 3 == MIGRATE_MOVABLE:
                    movable += n
                p += n
                continue
            order = li // MIGRATE_TYPES
            self.move_to_free_list(zone, p, order, mt)
            p += 1 << order
            moved += 1 << order
        return moved, movable

    def reserve_highatomic_pageblock(self, pfn: int, zone: Zone) -> None:
        max_managed = zone.managed_pages // 100 + pageblock_nr_pages
        if zone.nr_reserved_highatomic >= max_managed:
            return
        if self.get_pageblock_migratetype(pfn) != MIGRATE_HIGHATOMIC:
            zone.nr_reserved_highatomic += pageblock_nr_pages
            self.set_pageblock_migratetype(pfn, MIGRATE_HIGHATOMIC)
            self.move_freepages_block(zone, pfn, MIGRATE_HIGHATOMIC)

    def unreserve_highatomic_pageblock(self, zl: Iterable[Zone], mt: int, force: bool) -> bool:
        for zone in zl:
            if not force and zone.nr_reserved_highatomic <= pageblock_nr_pages:
                continue
            for order in range(MAX_ORDER):
                lst = zone.free_list[order * MIGRATE_TYPES + MIGRATE_HIGHATOMIC]
                if not lst:
                    continue
                pfn = next(iter(lst))
                if self.get_pageblock_migratetype(pfn) == MIGRATE_HIGHATOMIC:
                    zone.nr_reserved_highatomic -= min(pageblock_nr_pages, zone.nr_reserved_highatomic)
                self.set_pageblock_migratetype(pfn, mt)
                if self.move_freepages_block(zone, pfn, mt)[0]:
                    return True
        return False

    # PageAllocator.__rmqueue falls back through this name (Python mangles __rmqueue_fallback with this
    # class's name)
    _rmqueue_fallback = __rmqueue_fallback

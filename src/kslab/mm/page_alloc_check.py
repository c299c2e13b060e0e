"""The consistency check of the buddy allocator model (:meth:`kslab.mm.page_alloc.PageAllocator.check`).

No kernel function: the invariants that mm/page_alloc.c keeps (and ``CONFIG_DEBUG_VM`` checks in
places), verified over a whole :class:`~kslab.mm.page_alloc.PageAllocator` at once.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from .errors import SlabCorruptionError
from .mmzone import MAX_ORDER, MIGRATE_TYPES, Zone

if TYPE_CHECKING:
    from .page_alloc import PageAllocator

__all__ = ["check_page_allocator"]


def check_page_allocator(self: PageAllocator) -> None:
    """Verify the free areas, pcp lists and allocations; raise SlabCorruptionError if broken.

    Checks list/marker agreement, nr_free and NR_FREE_PAGES, alignment, that every block lies
    in its zone's managed memory, that no two blocks (free, pcp or allocated) overlap, and
    that free + pcp + allocated pages equal the managed pages of every zone.
    """
    def fail(msg: str) -> None:
        raise SlabCorruptionError(f"page allocator: {msg}")

    spans: list[tuple[int, int, str]] = []
    used = [0] * len(self.zones)

    def in_zone(zone: Zone, pfn: int, n: int) -> bool:
        return any(s <= pfn and pfn + n <= e for s, e in zone.free_ranges)

    for zone in self.zones:
        counts = [0] * MAX_ORDER
        pages = 0
        entries = 0
        for li, lst in enumerate(zone.free_list):
            order = li // MIGRATE_TYPES
            for pfn in lst:
                entries += 1
                if zone.buddy.get(pfn) != li:
                    fail(f"{zone}: block {pfn:#x} on list {li} but marked {zone.buddy.get(pfn)}")
                if pfn & ((1 << order) - 1):
                    fail(f"{zone}: order-{order} block {pfn:#x} is misaligned")
                if not in_zone(zone, pfn, 1 << order):
                    fail(f"{zone}: free block {pfn:#x} order {order} outside managed memory")
                counts[order] += 1
                pages += 1 << order
                spans.append((pfn, pfn + (1 << order), f"free order-{order} block in {zone}"))
        if entries != len(zone.buddy):
            fail(f"{zone}: {len(zone.buddy)} PageBuddy markers for {entries} listed blocks")
        if counts != zone.nr_free:
            fail(f"{zone}: nr_free {zone.nr_free} but lists hold {counts}")
        if pages != zone.free_pages:
            fail(f"{zone}: NR_FREE_PAGES {zone.free_pages} but lists hold {pages} pages")
        pcp_pages = 0
        pcp_pfns: set[int] = set()
        for cpu, pcp in enumerate(zone.pageset):
            n = sum(len(pl) for pl in pcp.lists)
            if n != pcp.count:
                fail(f"{zone}: cpu {cpu} pcp count {pcp.count} but lists hold {n}")
            for pl in pcp.lists:
                for pfn in pl:
                    if not in_zone(zone, pfn, 1):
                        fail(f"{zone}: pcp page {pfn:#x} outside managed memory")
                    pcp_pfns.add(pfn)
                    spans.append((pfn, pfn + 1, f"pcp page of cpu {cpu} in {zone}"))
            pcp_pages += n
        if not set(zone.pcp_mt) <= pcp_pfns:
            fail(f"{zone}: migratetype records for pages not on pcp lists")
        used[zone.key] = pages + pcp_pages
    total = 0
    for pfn, code in self._alloc.items():
        order = code & 15
        zone = self.zones[code >> 8]
        if pfn & ((1 << order) - 1) or not in_zone(zone, pfn, 1 << order):
            fail(f"allocated order-{order} block {pfn:#x} misplaced in {zone}")
        if self.mem_map.pages.get(pfn) is None:
            fail(f"allocated block {pfn:#x} has no struct page")
        used[zone.key] += 1 << order
        total += 1 << order
        spans.append((pfn, pfn + (1 << order), f"allocated order-{order} block in {zone}"))
    if total != self.nr_allocated_pages:
        fail(f"{self.nr_allocated_pages} pages counted as allocated, blocks hold {total}")
    for zone in self.zones:
        if used[zone.key] != zone.managed_pages:
            fail(f"{zone}: free + pcp + allocated = {used[zone.key]} pages, managed {zone.managed_pages}")
    spans.sort()
    for (s1, e1, w1), (s2, e2, w2) in itertools.pairwise(spans):
        if s2 < e1:
            fail(f"{w1} [{s1:#x}, {e1:#x}) overlaps {w2} [{s2:#x}, {e2:#x})")

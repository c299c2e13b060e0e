"""The counters and reports of the buddy allocator: node vmstat items (``mod_node_page_state``), the
global page counts, /proc/buddyinfo (``frag_show_print``) and a summary of /proc/zoneinfo and
/proc/pagetypeinfo.

:class:`PageCounters` is a base class of :class:`~kslab.mm.page_alloc.PageAllocator`, which owns the
state it reads (declared below); the class is not used on its own.
"""

from __future__ import annotations

from typing import Any, Final

from .mmzone import (
    MAX_NR_ZONES,
    MAX_ORDER,
    MIGRATE_TYPES,
    NR_SLAB_RECLAIMABLE_B,
    NR_SLAB_UNRECLAIMABLE_B,
    WMARK_HIGH,
    WMARK_LOW,
    WMARK_MIN,
    Zone,
    migratetype_names,
    numa_stat_names,
    zone_names,
)
from .page import Page

KERNEL_SYMBOLS: Final = ("mod_node_page_state",)

# the pfmemalloc bit of PageAllocator._alloc's codes (order | migratetype << 4 | pfmemalloc << 6 | zone << 8)
ALLOC_PFMEMALLOC_BIT: Final = 1 << 6


class VmStat:
    """The page allocator's vmstat (include/linux/vmstat.h): per node, the node_stat items kept
    (``node_stat[nid][item]``, vm_node_stat); the PGALLOC_<zone> events (``pgalloc[zone]``) and PGFREE
    (``pgfree``) of vm_event_states."""

    __slots__ = ("node_stat", "pgalloc", "pgfree")

    def __init__(self, nr_nodes: int) -> None:
        self.node_stat: list[dict[str, int]] = [
            {NR_SLAB_RECLAIMABLE_B: 0, NR_SLAB_UNRECLAIMABLE_B: 0} for _ in range(nr_nodes)]
        self.pgalloc = [0] * MAX_NR_ZONES
        self.pgfree = 0


class PageCounters:
    """The counting and reporting methods of :class:`~kslab.mm.page_alloc.PageAllocator`."""

    _alloc: dict[int, int]
    vmstat: VmStat
    zones: list[Zone]
    node_zones: list[list[Zone | None]]
    node_order: list[list[int]]
    nr_nodes: int
    min_free_kbytes: int
    nr_allocated_pages: int

    def mod_node_page_state(self, nid: int, item: str, delta: int) -> None:
        """Add ``delta`` to node vmstat ``item`` ("NR_SLAB_UNRECLAIMABLE_B" ...: bytes for *_B items)."""
        st = self.vmstat.node_stat[nid]
        st[item] = st.get(item, 0) + delta

    def node_page_state(self, nid: int, item: str) -> int:
        return self.vmstat.node_stat[nid].get(item, 0)

    def page_is_pfmemalloc(self, page: Page) -> bool:
        """True if the block was handed out from the reserves (ALLOC_NO_WATERMARKS)."""
        return bool(self._alloc.get(page.pfn, 0) & ALLOC_PFMEMALLOC_BIT)

    def totalram_pages(self) -> int:
        return sum(z.managed_pages for z in self.zones)

    def nr_free_pages(self) -> int:
        """Global NR_FREE_PAGES (MemFree): buddy pages, not pcp pages."""
        return sum(z.free_pages for z in self.zones)

    def nr_pcp_pages(self) -> int:
        return sum(z.pcp_count() for z in self.zones)

    def page_zone(self, pfn: int) -> Zone | None:
        """The zone whose managed memory holds ``pfn``, or None (hole, reserved, beyond RAM)."""
        for zone in self.zones:
            if zone.zone_spans_pfn(pfn):
                for s, e in zone.free_ranges:
                    if s <= pfn < e:
                        return zone
        return None

    def buddyinfo(self) -> str:
        """/proc/buddyinfo, byte for byte (frag_show_print)."""
        out = []
        for zone in self.zones:
            # "Node %d, zone %8s " then "%6lu " per order, then a newline
            out.append(f"Node {zone.nid}, zone {zone.name:>8} " + "".join(f"{n:6d} " for n in zone.nr_free) + "\n")
        return "".join(out)

    def zoneinfo_summary(self) -> dict[str, Any]:
        """Per node and zone numbers for reports (the /proc/zoneinfo and pagetypeinfo quantities)."""
        nodes: list[dict[str, Any]] = []
        for nid in range(self.nr_nodes):
            zones: list[dict[str, Any]] = []
            for zone in self.node_zones[nid]:
                if zone is None:
                    continue
                per_type = [[len(zone.free_list[o * MIGRATE_TYPES + mt]) for o in range(MAX_ORDER)]
                            for mt in range(MIGRATE_TYPES)]
                zones.append({
                    "name": zone.name,
                    "start_pfn": zone.zone_start_pfn,
                    "spanned": zone.spanned_pages,
                    "present": zone.present_pages,
                    "managed": zone.managed_pages,
                    "free": zone.free_pages,
                    "min": zone.watermark[WMARK_MIN],
                    "low": zone.watermark[WMARK_LOW],
                    "high": zone.watermark[WMARK_HIGH],
                    "protection": list(zone.lowmem_reserve),
                    "nr_free": list(zone.nr_free),
                    "free_by_migratetype": dict(zip(migratetype_names, per_type, strict=True)),
                    "nr_reserved_highatomic": zone.nr_reserved_highatomic,
                    "pcp": [{"cpu": c, "count": p.count, "high": p.high, "batch": p.batch}
                            for c, p in enumerate(zone.pageset)],
                    "pcp_pages": zone.pcp_count(),
                    "numa": dict(zip(numa_stat_names, zone.numa_stat, strict=True)),
                })
            nodes.append({
                "node": nid,
                "zones": zones,
                "stats": dict(self.vmstat.node_stat[nid]),
                "zonelist": list(self.node_order[nid]),
            })
        return {
            "min_free_kbytes": self.min_free_kbytes,
            "totalram_pages": self.totalram_pages(),
            "nr_free_pages": self.nr_free_pages(),
            "nr_pcp_pages": self.nr_pcp_pages(),
            "nr_allocated_pages": self.nr_allocated_pages,
            "pgalloc": dict(zip(zone_names, self.vmstat.pgalloc, strict=True)),
            "pgfree": self.vmstat.pgfree,
            "nodes": nodes,
        }

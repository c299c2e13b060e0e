"""Zones, free areas and per-CPU page lists: the structures and constants of include/linux/mmzone.h (v5.10)
that the buddy allocator (:mod:`kslab.mm.page_alloc`) works on.

``MAX_ORDER``, the migrate types and their fallbacks, the zone types, the watermark and ``ALLOC_*``
flags, ``struct per_cpu_pages`` (:class:`PerCpuPages`) and ``struct zone`` (:class:`Zone`).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Final

MAX_ORDER: Final = 11
pageblock_order: Final = 9
pageblock_nr_pages: Final = 1 << pageblock_order

# enum migratetype (no CMA, no ISOLATE)
MIGRATE_UNMOVABLE: Final = 0
MIGRATE_MOVABLE: Final = 1
MIGRATE_RECLAIMABLE: Final = 2
MIGRATE_PCPTYPES: Final = 3
MIGRATE_HIGHATOMIC: Final = 3
MIGRATE_TYPES: Final = 4
migratetype_names: Final = ("Unmovable", "Movable", "Reclaimable", "HighAtomic")
# fallbacks[]: which other lists a migrate type may steal from, in order
fallbacks: Final[tuple[tuple[int, ...], ...]] = (
    (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),    # UNMOVABLE
    (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),  # MOVABLE
    (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),      # RECLAIMABLE
)

# enum zone_type
ZONE_DMA: Final = 0
ZONE_DMA32: Final = 1
ZONE_NORMAL: Final = 2
ZONE_MOVABLE: Final = 3
MAX_NR_ZONES: Final = 4
zone_names: Final = ("DMA", "DMA32", "Normal", "Movable")
sysctl_lowmem_reserve_ratio: Final = (256, 256, 32, 0)
watermark_scale_factor: Final = 10

# enum zone_watermarks and the ALLOC_* flags (mm/internal.h)
WMARK_MIN: Final = 0
WMARK_LOW: Final = 1
WMARK_HIGH: Final = 2
ALLOC_WMARK_MIN: Final = WMARK_MIN
ALLOC_WMARK_LOW: Final = WMARK_LOW
ALLOC_WMARK_HIGH: Final = WMARK_HIGH
ALLOC_NO_WATERMARKS: Final = 0x04
ALLOC_WMARK_MASK: Final = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM: Final = 0x08
ALLOC_HARDER: Final = 0x10
ALLOC_HIGH: Final = 0x20
ALLOC_CPUSET: Final = 0x40
ALLOC_CMA: Final = 0x80
ALLOC_NOFRAGMENT: Final = 0x100
ALLOC_KSWAPD: Final = 0x800

# fpi_t
FPI_NONE: Final = 0
FPI_SKIP_REPORT_NOTIFY: Final = 0x1
FPI_TO_TAIL: Final = 0x2

# node_stat_item, named by its enum constant (the slab items are kept in bytes, as the *_B items are)
NR_SLAB_RECLAIMABLE_B: Final = "NR_SLAB_RECLAIMABLE_B"
NR_SLAB_UNRECLAIMABLE_B: Final = "NR_SLAB_UNRECLAIMABLE_B"

# numa_stat_item
NUMA_HIT: Final = 0
NUMA_MISS: Final = 1
NUMA_FOREIGN: Final = 2
NUMA_INTERLEAVE_HIT: Final = 3
NUMA_LOCAL: Final = 4
NUMA_OTHER: Final = 5
numa_stat_names: Final = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other")

LOCAL_DISTANCE: Final = 10
REMOTE_DISTANCE: Final = 20
MAX_NUMNODES: Final = 64


class PerCpuPages:
    """``struct per_cpu_pages``: order-0 pages kept per CPU and zone, one list per pcp type.

    Lists hold pfns; the left end is the list head (``list_add``), the right end the tail.
    """

    __slots__ = ("batch", "count", "high", "lists")

    def __init__(self, high: int, batch: int) -> None:
        self.count = 0
        self.high = high
        self.batch = batch
        self.lists: list[deque[int]] = [deque() for _ in range(MIGRATE_PCPTYPES)]


class Zone:
    """``struct zone`` with its ``free_area[]``.

    ``free_list[order * MIGRATE_TYPES + mt]`` is an insertion-ordered set of block pfns (first key
    = list head); ``buddy[pfn]`` is that list index for every free block head (PageBuddy with its
    order in ``page->private``).
    """

    __slots__ = (
        "buddy",
        "free_list",
        "free_pages",
        "free_ranges",
        "idx",
        "key",
        "lowmem_reserve",
        "managed_pages",
        "name",
        "nid",
        "nr_free",
        "nr_reserved_highatomic",
        "numa_stat",
        "pageset",
        "pcp_mt",
        "present_pages",
        "present_ranges",
        "spanned_pages",
        "watermark",
        "zone_start_pfn",
    )

    def __init__(self, nid: int, idx: int, start: int, end: int, present: list[tuple[int, int]],
                 free: list[tuple[int, int]], key: int) -> None:
        self.nid = nid
        self.idx = idx
        self.name = zone_names[idx]
        self.key = key
        self.zone_start_pfn = start
        self.spanned_pages = end - start
        self.present_ranges = tuple(present)
        self.free_ranges = tuple(free)
        self.present_pages = sum(e - s for s, e in present)
        self.managed_pages = sum(e - s for s, e in free)
        self.free_pages = 0  # NR_FREE_PAGES: buddy pages only, pcp pages excluded
        self.free_list: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(MAX_ORDER * MIGRATE_TYPES)]
        self.nr_free = [0] * MAX_ORDER
        self.buddy: dict[int, int] = {}
        self.watermark = [0, 0, 0]
        self.lowmem_reserve = [0] * MAX_NR_ZONES
        self.nr_reserved_highatomic = 0
        self.pageset: list[PerCpuPages] = []
        # pcp pages whose recorded migrate type differs from their list (HIGHATOMIC filed as MOVABLE)
        self.pcp_mt: dict[int, int] = {}
        self.numa_stat = [0] * len(numa_stat_names)

    def __repr__(self) -> str:
        return f"<Zone node {self.nid} {self.name} start={self.zone_start_pfn} managed={self.managed_pages}>"

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    def zone_spans_pfn(self, pfn: int) -> bool:
        return self.zone_start_pfn <= pfn < self.zone_start_pfn + self.spanned_pages

    def free_area_empty(self, order: int, mt: int) -> bool:
        return not self.free_list[order * MIGRATE_TYPES + mt]

    def pcp_count(self) -> int:
        return sum(p.count for p in self.pageset)

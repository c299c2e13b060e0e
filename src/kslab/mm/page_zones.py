"""Zone setup of the buddy allocator (mm/page_alloc.c, v5.10): the zones built from the e820 map at boot
(``free_area_init``, ``memmap_init_zone``, ``memblock_free_all``), the watermarks and their checks
(``zone_watermark_ok``, ``zone_watermark_fast``), the watermark setup (``init_per_zone_wmark_min``,
``__setup_per_zone_wmarks``), the lowmem reserves, and the zonelists (the node order of
``build_zonelists``, ``find_next_best_node``) with the zones an allocation may use.

:class:`ZoneSetup` is a base class of :class:`~kslab.mm.page_alloc.PageAllocator`, which owns the
state it works on (declared below); the class is not used on its own.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from .config import PAGE_SHIFT, MachineConfig
from .e820 import BOOT_RESERVED, ZONE_BOUNDS, clip_ranges, qemu_node_ranges, subtract_ranges
from .errors import KernelBug
from .gfp import __GFP_DMA, __GFP_DMA32, __GFP_THISNODE
from .mmzone import (
    ALLOC_HARDER,
    ALLOC_HIGH,
    ALLOC_NOFRAGMENT,
    ALLOC_OOM,
    FPI_TO_TAIL,
    LOCAL_DISTANCE,
    MAX_NR_ZONES,
    MAX_NUMNODES,
    MAX_ORDER,
    MIGRATE_HIGHATOMIC,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    REMOTE_DISTANCE,
    ZONE_DMA32,
    ZONE_NORMAL,
    Zone,
    pageblock_nr_pages,
    pageblock_order,
    sysctl_lowmem_reserve_ratio,
    watermark_scale_factor,
)

KERNEL_SYMBOLS: Final = ("__setup_per_zone_wmarks", "init_per_zone_wmark_min", "__zone_watermark_ok",
                         "zone_watermark_fast", "zone_watermark_ok", "free_area_init")

# Python mangles ``__names`` inside class bodies, so the class uses these single-underscore aliases.
_GFP_DMA: Final = __GFP_DMA
_GFP_DMA32: Final = __GFP_DMA32
_GFP_THISNODE: Final = __GFP_THISNODE


class ZoneSetup:
    """The watermark and zonelist methods of :class:`~kslab.mm.page_alloc.PageAllocator`."""

    zones: list[Zone]
    node_zones: list[list[Zone | None]]
    nr_nodes: int
    min_free_kbytes: int
    node_order: list[list[int]]
    _zonelist_cache: dict[tuple[int, int, bool], tuple[tuple[Zone, ...], int]]
    node_ranges: list[list[tuple[int, int]]]
    max_pfn: int
    _pb_mt: dict[int, int]

    if TYPE_CHECKING:
        def get_pageblock_migratetype(self, pfn: int) -> int: ...
        def _free_one_page_at_boot(self, zone: Zone, pfn: int, order: int, mt: int, fpi_flags: int) -> None: ...

    def free_area_init(self, config: MachineConfig) -> None:
        """free_area_init(): every node's zones from its e820 ranges (a zone where the node has memory),
        their pageblocks' migrate types (memmap_init_zone), then memblock_free_all() of the free memory."""
        # node_zones: every node has MAX_NR_ZONES slots, None where the zone is not populated
        self.node_zones: list[list[Zone | None]] = []
        self.zones: list[Zone] = []  # for_each_populated_zone order
        self.node_ranges = qemu_node_ranges(config)
        for nid, ranges in enumerate(self.node_ranges):
            slots: list[Zone | None] = [None] * MAX_NR_ZONES
            if ranges:
                node_start, node_end = ranges[0][0], ranges[-1][1]
                for zi, (lo, hi) in enumerate(ZONE_BOUNDS):
                    zs, ze = max(node_start, lo), min(node_end, hi)
                    present = clip_ranges(ranges, zs, ze)
                    if zs >= ze or not present:
                        continue
                    free = subtract_ranges(present, BOOT_RESERVED) if nid == 0 else present
                    zone = Zone(nid, zi, zs, ze, present, free, len(self.zones))
                    slots[zi] = zone
                    self.zones.append(zone)
                    self.__memmap_init_zone(zone)
            self.node_zones.append(slots)
        self.max_pfn = max(z.zone_end_pfn for z in self.zones)
        for zone in self.zones:
            self.__free_boot_memory(zone)

    def __memmap_init_zone(self, zone: Zone) -> None:
        # Every pageblock whose first pfn is present starts MOVABLE; the others keep the zeroed
        # bitmap value, UNMOVABLE (the DMA zone's first pageblock: pfn 0 is not RAM).
        # Only a pageblock in which a present range starts can have a missing first pfn.
        for start, _ in zone.present_ranges:
            pb_start = start & ~(pageblock_nr_pages - 1)
            if pb_start >= zone.zone_start_pfn and any(s <= pb_start < e for s, e in zone.present_ranges):
                continue
            self._pb_mt.setdefault(pb_start >> pageblock_order, MIGRATE_UNMOVABLE)

    def __free_boot_memory(self, zone: Zone) -> None:
        # memblock_free_all: maximal aligned blocks in ascending order, each queued at the tail
        for start, end in zone.free_ranges:
            pfn = start
            while pfn < end:
                order = min(MAX_ORDER - 1, (pfn & -pfn).bit_length() - 1 if pfn else MAX_ORDER - 1)
                while pfn + (1 << order) > end:
                    order -= 1
                self._free_one_page_at_boot(zone, pfn, order, self.get_pageblock_migratetype(pfn), FPI_TO_TAIL)
                pfn += 1 << order

    def init_per_zone_wmark_min(self) -> None:
        """min_free_kbytes = sqrt(16 * lowmem kB) clamped to [128, 262144], then the watermarks."""
        lowmem_kbytes = sum(z.managed_pages for z in self.zones) * ((1 << PAGE_SHIFT) >> 10)
        self.min_free_kbytes = min(max(math.isqrt(lowmem_kbytes * 16), 128), 262144)
        self.__setup_per_zone_wmarks()
        self.__setup_per_zone_lowmem_reserve()

    def __setup_per_zone_wmarks(self) -> None:
        pages_min = self.min_free_kbytes >> (PAGE_SHIFT - 10)
        lowmem_pages = sum(z.managed_pages for z in self.zones)
        for zone in self.zones:
            tmp = pages_min * zone.managed_pages // lowmem_pages
            zmin = tmp
            tmp = max(tmp >> 2, zone.managed_pages * watermark_scale_factor // 10000)
            zone.watermark = [zmin, zmin + tmp, zmin + 2 * tmp]

    def __setup_per_zone_lowmem_reserve(self) -> None:
        for slots in self.node_zones:
            for i in range(MAX_NR_ZONES - 1):
                zone = slots[i]
                if zone is None:
                    continue
                ratio = sysctl_lowmem_reserve_ratio[i]
                clear = not ratio or not zone.managed_pages
                managed = 0
                for j in range(i + 1, MAX_NR_ZONES):
                    upper = slots[j]
                    managed += upper.managed_pages if upper is not None else 0
                    zone.lowmem_reserve[j] = 0 if clear else managed // ratio

    def node_distance(self, a: int, b: int) -> int:
        return LOCAL_DISTANCE if a == b else REMOTE_DISTANCE

    def __find_next_best_node(self, node: int, used: set[int], node_load: list[int]) -> int:
        if node not in used:
            used.add(node)
            return node
        best, min_val = -1, 1 << 62
        for n in range(self.nr_nodes):
            if n in used:
                continue
            val = self.node_distance(node, n)
            val += n < node            # prefer the nodes after us
            val += 1                   # PENALTY_FOR_NODE_WITH_CPUS: every modelled node has CPUs
            val *= self.nr_nodes * MAX_NUMNODES
            val += node_load[n]
            if val < min_val:
                min_val, best = val, n
        if best >= 0:
            used.add(best)
        return best

    def __build_all_zonelists(self) -> list[list[int]]:
        node_load = [0] * self.nr_nodes
        orders: list[list[int]] = []
        for local in range(self.nr_nodes):
            used: set[int] = set()
            load = self.nr_nodes
            prev = local
            order: list[int] = []
            while (node := self.__find_next_best_node(local, used, node_load)) >= 0:
                if self.node_distance(local, node) != self.node_distance(local, prev):
                    node_load[node] = load
                order.append(node)
                prev = node
                load -= 1
            orders.append(order)
        return orders

    def zonelist(self, nid: int, highest_zoneidx: int, thisnode: bool = False) -> tuple[Zone, ...]:
        """The zones an allocation on ``nid`` may use, in the order they are tried."""
        return self.__zonelist(nid, highest_zoneidx, thisnode)[0]

    def zonelist_nodes(self, nid: int, gfp: int) -> tuple[int, ...]:
        """zone_to_nid() of every zone of node_zonelist(nid, gfp) up to gfp_zone(gfp), in order.

        A node appears once per usable zone, as for_each_zone_zonelist() visits it.
        """
        highest = 0 if gfp & _GFP_DMA else (1 if gfp & _GFP_DMA32 else 2)
        return tuple(z.nid for z in self.__zonelist(nid, highest, bool(gfp & _GFP_THISNODE))[0])

    def __zonelist(self, nid: int, highest_zoneidx: int, thisnode: bool) -> tuple[tuple[Zone, ...], int]:
        key = (nid, highest_zoneidx, thisnode)
        hit = self._zonelist_cache.get(key)
        if hit is not None:
            return hit
        if not 0 <= nid < self.nr_nodes:
            raise KernelBug(f"VM_BUG_ON(nid < 0 || nid >= MAX_NUMNODES): nid {nid}", function="__alloc_pages_node")
        zl: list[Zone] = []
        for n in ([nid] if thisnode else self.node_order[nid]):
            for zi in range(MAX_NR_ZONES - 1, -1, -1):
                z = self.node_zones[n][zi]
                if z is not None and zi <= highest_zoneidx:
                    zl.append(z)
        # alloc_flags_nofragment(): only when the preferred zone is Normal and DMA32 is usable
        nofrag = 0
        if zl and zl[0].idx == ZONE_NORMAL and not (
                self.nr_nodes > 1 and self.node_zones[zl[0].nid][ZONE_DMA32] is None):
            nofrag = ALLOC_NOFRAGMENT
        res = (tuple(zl), nofrag)
        self._zonelist_cache[key] = res
        return res

    def zone_watermark_fast(self, z: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int) -> bool:
        free_pages = z.free_pages
        if not order:
            reserved = 0 if alloc_flags & (ALLOC_HARDER | ALLOC_OOM) else z.nr_reserved_highatomic
            usable = free_pages - min(free_pages, reserved)
            if usable > mark + z.lowmem_reserve[highest_zoneidx]:
                return True
        return self.__zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, free_pages)

    def zone_watermark_ok(self, z: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int) -> bool:
        return self.__zone_watermark_ok(z, order, mark, highest_zoneidx, alloc_flags, z.free_pages)

    def __zone_watermark_ok(self, z: Zone, order: int, mark: int, highest_zoneidx: int, alloc_flags: int,
                            free_pages: int) -> bool:
        harder = alloc_flags & (ALLOC_HARDER | ALLOC_OOM)
        free_pages -= (1 << order) - 1
        if not harder:
            free_pages -= z.nr_reserved_highatomic
        mn = mark
        if alloc_flags & ALLOC_HIGH:
            mn -= mn // 2
        if harder:
            mn -= mn // 2 if alloc_flags & ALLOC_OOM else mn // 4
        if free_pages <= mn + z.lowmem_reserve[highest_zoneidx]:
            return False
        if not order:
            return True
        fl = z.free_list
        for o in range(order, MAX_ORDER):
            if not z.nr_free[o]:
                continue
            base = o * MIGRATE_TYPES
            if fl[base] or fl[base + 1] or fl[base + 2]:
                return True
            if harder and fl[base + MIGRATE_HIGHATOMIC]:
                return True
        return False

    # PageAllocator builds the zonelists at boot and allocates through these names (Python mangles the
    # __ names with this class's name)
    _build_all_zonelists = __build_all_zonelists
    _zonelist = __zonelist

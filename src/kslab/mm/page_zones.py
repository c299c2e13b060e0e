"""Zone setup of the buddy allocator (mm/page_alloc.c, v5.10): the watermarks (``init_per_zone_wmark_min``,
``__setup_per_zone_wmarks``), the lowmem reserves, and the zonelists (the node order of
``build_zonelists``, ``find_next_best_node``) with the zones an allocation may use.

:class:`ZoneSetup` is a base class of :class:`~kslab.mm.page_alloc.PageAllocator`, which owns the
state it works on (declared below); the class is not used on its own.
"""

from __future__ import annotations

import math
from typing import Final

from .config import PAGE_SHIFT
from .errors import KernelBug
from .gfp import __GFP_DMA, __GFP_DMA32, __GFP_THISNODE
from .mmzone import (
    ALLOC_NOFRAGMENT,
    LOCAL_DISTANCE,
    MAX_NR_ZONES,
    MAX_NUMNODES,
    REMOTE_DISTANCE,
    ZONE_DMA32,
    ZONE_NORMAL,
    Zone,
    sysctl_lowmem_reserve_ratio,
    watermark_scale_factor,
)

KERNEL_SYMBOLS: Final = ("__setup_per_zone_wmarks", "init_per_zone_wmark_min")

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

    # PageAllocator builds the zonelists at boot and allocates through these names (Python mangles the
    # __ names with this class's name)
    _build_all_zonelists = __build_all_zonelists
    _zonelist = __zonelist

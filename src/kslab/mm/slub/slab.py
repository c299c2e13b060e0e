"""SLUB's per-slab and per-CPU structures (mm/slab.h struct slab, mm/slub.c struct kmem_cache_cpu, 6.12).

Structs hold data only.  An object's free pointer lives in the object's memory at ``s.offset``; the model
keeps that memory as :class:`ObjectMemory`, a map from the pointer's address to its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from ..page import Page
from .slub_def import KmemCache

#: CONFIG_PREEMPTION with CONFIG_NR_CPUS 64: transaction ids step by roundup_pow_of_two(64)
TID_STEP: Final = 64
NUMA_NO_NODE: Final = -1


class StatItem(IntEnum):
    """enum stat_item (CONFIG_SLUB_STATS counters), in the kernel's order."""

    ALLOC_FASTPATH = 0
    ALLOC_SLOWPATH = 1
    FREE_FASTPATH = 2
    FREE_SLOWPATH = 3
    FREE_FROZEN = 4
    FREE_ADD_PARTIAL = 5
    FREE_REMOVE_PARTIAL = 6
    ALLOC_FROM_PARTIAL = 7
    ALLOC_SLAB = 8
    ALLOC_REFILL = 9
    ALLOC_NODE_MISMATCH = 10
    FREE_SLAB = 11
    CPUSLAB_FLUSH = 12
    DEACTIVATE_FULL = 13
    DEACTIVATE_EMPTY = 14
    DEACTIVATE_TO_HEAD = 15
    DEACTIVATE_TO_TAIL = 16
    DEACTIVATE_REMOTE_FREES = 17
    DEACTIVATE_BYPASS = 18
    ORDER_FALLBACK = 19
    CMPXCHG_DOUBLE_CPU_FAIL = 20
    CMPXCHG_DOUBLE_FAIL = 21
    CPU_PARTIAL_ALLOC = 22
    CPU_PARTIAL_FREE = 23
    CPU_PARTIAL_NODE = 24
    CPU_PARTIAL_DRAIN = 25


NR_SLUB_STAT_ITEMS: Final = len(StatItem)


@dataclass(slots=True, eq=False)
class Slab:
    """struct slab: a slab's pages seen as SLUB sees them.

    ``freelist`` is the first free object (0: NULL); ``next`` chains per-CPU partial slabs;
    ``order`` is the order it was allocated with (oo or, after a fallback, min); ``node_partial`` is the
    PG_workingset bit SLUB uses to say the slab is on its node's partial list.
    """

    slab_cache: KmemCache
    page: Page
    order: int
    objects: int
    freelist: int = 0
    inuse: int = 0
    frozen: bool = False
    next: Slab | None = None
    slabs: int = 0
    node_partial: bool = False

    @property
    def address(self) -> int:
        """slab_address(): the first byte of the slab."""
        return self.page.address

    @property
    def nid(self) -> int:
        """slab_nid()."""
        return self.page.nid


@dataclass(slots=True, eq=False)
class KmemCacheCpu:
    """struct kmem_cache_cpu: the CPU's lockless freelist, its transaction id, cpu slab and partial slabs."""

    freelist: int = 0
    tid: int = 0
    slab: Slab | None = None
    partial: Slab | None = None
    stat: list[int] = field(default_factory=lambda: [0] * NR_SLUB_STAT_ITEMS)


@dataclass(slots=True, eq=False)
class ObjectMemory:
    """The words of object memory SLUB writes: free pointers, by address (absent: never written)."""

    words: dict[int, int] = field(default_factory=dict)

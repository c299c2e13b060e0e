"""SLUB's structures and build constants (include/linux/slub_def.h, mm/slab.h, include/linux/slab.h, 6.12).

Structs hold data only; the algorithms live in the ``kslab.mm.slub`` modules named after the kernel's
functions.  Field names are the kernel's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Final

from ..config import PAGE_SHIFT, MachineConfig
from ..errors import ConfigError
from .debug import SlubDebug

if TYPE_CHECKING:
    from .node import KmemCacheNode
    from .slab import KmemCacheCpu

# ---- constants of the captured x86_64 build -------------------------------------------------------
PAGE_ALLOC_COSTLY_ORDER: Final = 3
MAX_PAGE_ORDER: Final = 10
MIN_PARTIAL: Final = 5
MAX_PARTIAL: Final = 10
OO_SHIFT: Final = 16
OO_MASK: Final = (1 << OO_SHIFT) - 1
MAX_OBJS_PER_PAGE: Final = 32767
ARCH_KMALLOC_MINALIGN: Final = 8
ARCH_SLAB_MINALIGN: Final = 8
SIZEOF_VOID_P: Final = 8
#: struct track with CONFIG_STACKDEPOT: addr, handle, cpu, pid, when (padded)
SIZEOF_TRACK: Final = 32
#: struct kmem_cache_node with CONFIG_SLUB_DEBUG (what kmem_cache_init asks for)
SIZEOF_KMEM_CACHE_NODE: Final = 64
#: offsetof(struct kmem_cache, node) for the captured build (no KASAN, memcg or FREELIST_HARDENED)
OFFSETOF_KMEM_CACHE_NODE: Final = 192
KMALLOC_SHIFT_LOW: Final = 3
KMALLOC_SHIFT_HIGH: Final = PAGE_SHIFT + 1
KMALLOC_MIN_SIZE: Final = 1 << KMALLOC_SHIFT_LOW
KMALLOC_MAX_CACHE_SIZE: Final = 1 << KMALLOC_SHIFT_HIGH
ZERO_SIZE_PTR: Final = 16


class KmallocCacheType(IntEnum):
    """enum kmalloc_cache_type with CONFIG_ZONE_DMA, without memcg, random caches or obj_ext."""

    KMALLOC_NORMAL = 0
    KMALLOC_RECLAIM = 1
    KMALLOC_DMA = 2


NR_KMALLOC_TYPES: Final = len(KmallocCacheType)


class SlabState(IntEnum):
    """enum slab_state (mm/slab.h)."""

    DOWN = 0
    PARTIAL = 1
    UP = 2
    FULL = 3


@dataclass(frozen=True, slots=True)
class SlubConfig:
    """The boot options and machine facts SLUB's geometry depends on.

    ``slab_debug`` is the ``slab_debug=`` option as given after the ``=`` (``None``: not given,
    ``""``: given bare, full debugging); the ``CONFIG_*`` fields are the captured kernel's.
    """

    nr_cpu_ids: int = 1
    num_present_cpus: int = 1
    nr_node_ids: int = 1
    slub_min_order: int = 0
    slub_max_order: int = PAGE_ALLOC_COSTLY_ORDER
    slub_min_objects: int = 0
    slab_debug: str | None = None
    slab_nomerge: bool = False
    debug_guardpage_minorder: int = 0
    cache_line_size: int = 64
    system_has_freelist_aba: bool = True
    CONFIG_SLUB_CPU_PARTIAL: bool = True
    CONFIG_HARDENED_USERCOPY: bool = False

    def __post_init__(self) -> None:
        # setup_slub_max_order() clamps to MAX_PAGE_ORDER; a larger slab_min_order= raises the maximum
        # (setup_slub_min_order())
        top = min(max(self.slub_max_order, 0), MAX_PAGE_ORDER)
        object.__setattr__(self, "slub_max_order", max(top, min(self.slub_min_order, MAX_PAGE_ORDER)))
        if self.nr_cpu_ids < 1 or self.num_present_cpus < 0 or self.nr_node_ids < 1:
            raise ConfigError(f"SLUB needs at least one CPU and one node, not nr_cpu_ids={self.nr_cpu_ids} "
                              f"nr_node_ids={self.nr_node_ids}")

    @classmethod
    def from_machine(cls, machine: MachineConfig, **options: object) -> SlubConfig:
        """The SLUB view of a kslab machine: every CPU present and possible, one node id per node."""
        return cls(nr_cpu_ids=machine.cpus, num_present_cpus=machine.cpus, nr_node_ids=machine.nr_nodes,
                   slab_nomerge=machine.slab_nomerge or not machine.CONFIG_SLAB_MERGE_DEFAULT,
                   cache_line_size=machine.cache_line_size, **options)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class KmemCacheArgs:
    """struct kmem_cache_args (``ctor`` is whether there is one: the model never runs it)."""

    align: int = 0
    useroffset: int = 0
    usersize: int = 0
    freeptr_offset: int = 0
    use_freeptr_offset: bool = False
    ctor: bool = False


@dataclass(slots=True, eq=False)
class KmemCache:
    """struct kmem_cache (include/linux/slub_def.h).

    ``oo`` and ``min`` are struct kmem_cache_order_objects as their packed word (order << OO_SHIFT | objects).
    ``cpu_slab`` and ``node`` stay empty until the allocation paths set the cache up (init_kmem_cache_cpus,
    init_kmem_cache_nodes).
    """

    name: str
    flags: int = 0
    min_partial: int = 0
    size: int = 0
    object_size: int = 0
    offset: int = 0
    cpu_partial: int = 0
    cpu_partial_slabs: int = 0
    oo: int = 0
    min: int = 0
    allocflags: int = 0
    refcount: int = 0
    ctor: bool = False
    inuse: int = 0
    align: int = 0
    red_left_pad: int = 0
    useroffset: int = 0
    usersize: int = 0
    remote_node_defrag_ratio: int = 0
    #: names merged into this cache by __kmem_cache_alias, in order
    aliases: list[str] = field(default_factory=list)
    cpu_slab: list[KmemCacheCpu] = field(default_factory=list)
    node: list[KmemCacheNode] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """A cache creation request, as the oracle's ``create`` line gives it (``freeptr_offset`` -1: none)."""

    name: str
    size: int
    align: int
    flags: int
    ctor: bool
    useroffset: int
    usersize: int
    freeptr_offset: int
    via: str


@dataclass(frozen=True, slots=True)
class GeometryRecord:
    """A created cache's geometry, the fields of the oracle's ``geometry`` line."""

    name: str
    object_size: int
    size: int
    align: int
    flags: int
    order: int
    objects: int
    min_order: int
    min_objects: int
    offset: int
    inuse: int
    red_left_pad: int
    min_partial: int
    cpu_partial: int
    cpu_partial_slabs: int


@dataclass(frozen=True, slots=True)
class AliasRecord:
    """A merge, the fields of the oracle's ``alias`` line (the target's values after the merge)."""

    name: str
    target: str
    target_size: int
    object_size: int
    inuse: int
    refcount: int


@dataclass(slots=True, eq=False)
class Slub:
    """What SLUB and slab_common keep globally: the cache list, the kmalloc tables, the boot state, and the
    model's record of every creation, geometry and merge (the oracle's cache log, as records).

    ``slab_caches[0]`` is the list head's first entry (list_add puts new caches there), so the kernel's
    list_for_each_entry_reverse walks it from the end: oldest cache first.
    """

    cfg: SlubConfig
    dbg: SlubDebug
    slab_state: SlabState = SlabState.DOWN
    slab_caches: list[KmemCache] = field(default_factory=list)
    kmalloc_caches: list[list[KmemCache | None]] = field(
        default_factory=lambda: [[None] * (KMALLOC_SHIFT_HIGH + 1) for _ in range(NR_KMALLOC_TYPES)])
    kmalloc_size_index: list[int] = field(default_factory=list)
    kmem_cache: KmemCache | None = None
    kmem_cache_node: KmemCache | None = None
    log: list[CreateRecord | GeometryRecord | AliasRecord] = field(default_factory=list)
    dmesg: list[str] = field(default_factory=list)

"""A booted 6.12 SLUB machine with the entry points of :class:`kslab.mm.kernel.Kernel` (kmalloc, kfree,
kmem_cache_alloc/free/create/shrink, the bulk calls, /proc/slabinfo, /proc/buddyinfo, /sys/kernel/slab).

The machine (CPUs, nodes, memory) is a :class:`MachineConfig`, as for SLAB; the buddy allocator is the same.
Boot is mm/slub.c:kmem_cache_init() then the manifest's creations (the kernel's cache log) in order.
Every CPU is online from the start (SLUB keeps a kmem_cache_cpu for every possible CPU).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..config import MachineConfig
from ..errors import ConfigError
from ..explain import Explain
from ..gfp import GFP_KERNEL
from ..page import MemMap
from ..page_alloc import PageAllocator
from . import bulk
from .allocator import SlubAllocator
from .check import check_slub
from .geometry import oo_objects, oo_order
from .init import kmem_cache_init, slab_late_init
from .node import get_slabinfo
from .partial import Interleave
from .slab import NUMA_NO_NODE
from .slab_common import kmem_cache_create
from .slub_def import CreateRecord, KmemCache, Slub, SlubConfig
from .sysfs import sysfs_dump, sysfs_links, sysfs_lookup, sysfs_show

#: SLAB-only options a SLUB machine refuses, with the MachineConfig field that holds each
SLAB_ONLY = (("CONFIG_DEBUG_SLAB", "--debug-slab (SLUB debugging is slab_debug=)"),
             ("noaliencache", "--noaliencache"), ("CONFIG_SLAB_FREELIST_HARDENED", "--freelist-hardened"),
             ("CONFIG_SLAB_FREELIST_RANDOM", "--freelist-random"), ("init_on_alloc", "--init-on-alloc"),
             ("init_on_free", "--init-on-free"))


def slub_config(config: MachineConfig, cmdline: str = "") -> SlubConfig:
    """The SlubConfig of a kslab machine: its CPUs and nodes, slab_nomerge, ``slab_max_order`` as
    slab_max_order=; options of the SLAB model that SLUB lacks are a ConfigError."""
    from .options import apply_cmdline  # noqa: PLC0415
    given = [opt for field_name, opt in SLAB_ONLY if getattr(config, field_name)]
    if given:
        raise ConfigError(f"{', '.join(given)}: options of the SLAB model, not of SLUB (--allocator slub)")
    if not config.CONFIG_NUMA and config.nr_nodes > 1:
        raise ConfigError("a SLUB machine without CONFIG_NUMA has one node")
    cfg = SlubConfig.from_machine(config)
    if config.slab_max_order is not None:
        cfg = apply_cmdline(cfg, f"slab_max_order={config.slab_max_order}")
    return apply_cmdline(cfg, cmdline) if cmdline else cfg


class SlubKernel:
    """A booted 6.12 SLUB machine: ``sl`` holds the caches, ``a`` the allocation paths over ``page_alloc``.

    The entry points take the CPU they run on, like :class:`kslab.mm.kernel.Kernel`'s; ``caller`` is
    accepted for the same signatures and not recorded (SLUB keeps no caller without SLAB_STORE_USER).
    """

    allocator_name = "slub"

    def __init__(self, config: MachineConfig | None = None, manifest: Iterable[CreateRecord] = (),
                 cmdline: str = "") -> None:
        self.config = config = config or MachineConfig()
        self.nr_cpu_ids = config.cpus
        self.nr_node_ids = config.nr_nodes
        self.mem_map = MemMap()
        self.page_alloc = PageAllocator(config, self.mem_map)
        self.sl: Slub = kmem_cache_init(slub_config(config, cmdline))
        self.a = SlubAllocator(self.sl, self.page_alloc)
        for c in manifest:
            self.kmem_cache_create(c.name, c.size, c.align, c.flags, c.ctor, c.useroffset, c.usersize,
                                   c.freeptr_offset)
        slab_late_init(self.sl)

    @property
    def explain(self) -> Explain | None:
        """The decision recorder of ``kslab explain`` (None: off), as ``Kernel.explain``."""
        return self.a.mm.explain

    @explain.setter
    def explain(self, ex: Explain | None) -> None:
        self.a.mm.explain = ex

    # ---- the caches -------------------------------------------------------------------------------
    @property
    def slab_caches(self) -> list[KmemCache]:
        """The cache list, newest first (as SLAB's ``Kernel.slab_caches``)."""
        return self.sl.slab_caches

    @property
    def online_nodes(self) -> list[int]:
        """Every node (each has memory and CPUs)."""
        return list(range(self.nr_node_ids))

    def set_policy(self, cpu: int, pol: Interleave | None) -> None:
        """The memory policy of the task running on ``cpu`` (None: the default, local one); new slabs of an
        allocation without a node take their pages where an interleave policy says."""
        if pol is None:
            self.a.mm.policies.pop(cpu, None)
        else:
            self.a.mm.policies[cpu] = pol

    def clear_policies(self) -> None:
        """Every task back to the default (local) policy."""
        self.a.mm.policies.clear()

    @property
    def dmesg(self) -> list[str]:
        return self.sl.dmesg

    def find_cache(self, name: str) -> KmemCache | None:
        """The cache of a name: its own or one merged into it (an alias)."""
        for s in self.sl.slab_caches:
            if s.name == name or name in s.aliases:
                return s
        return None

    def kmem_cache_create(self, name: str, size: int, align: int = 0, flags: int = 0, ctor: bool = False,
                          useroffset: int = 0, usersize: int = 0, freeptr_offset: int = -1) -> KmemCache | None:
        """kmem_cache_create(): a new cache (given its per-node and per-CPU structures) or the one it merged
        into; None when creation fails (dmesg says why)."""
        s = kmem_cache_create(self.sl, name, size, align, flags, ctor, useroffset, usersize, freeptr_offset)
        if s is not None:
            self.a.kmem_cache_open(s)
        return s

    def kmem_cache_shrink(self, cachep: KmemCache, cpu: int = 0) -> int:
        return self.a.kmem_cache_shrink(cachep, cpu)

    # ---- allocation and free -------------------------------------------------------------------------
    def kmem_cache_alloc(self, cachep: KmemCache, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        """kmem_cache_alloc_noprof(): slab_alloc_node on the CPU's node (0: out of memory)."""
        self.a.mm.dbg.caller = caller
        return self.a.kmem_cache_alloc(cachep, cpu, NUMA_NO_NODE, flags)

    def kmem_cache_alloc_node(self, cachep: KmemCache, flags: int = GFP_KERNEL, node: int = -1, cpu: int = 0,
                              caller: int = 0) -> int:
        """kmem_cache_alloc_node_noprof()."""
        self.a.mm.dbg.caller = caller
        return self.a.kmem_cache_alloc(cachep, cpu, node, flags)

    def kmem_cache_free(self, cachep: KmemCache, objp: int, cpu: int = 0, caller: int = 0) -> None:
        self.a.mm.dbg.caller = caller
        self.a.kmem_cache_free(cachep, objp, cpu)

    def kmem_cache_alloc_bulk(self, cachep: KmemCache, nr: int, flags: int = GFP_KERNEL, cpu: int = 0,
                              caller: int = 0) -> list[int]:
        return bulk.kmem_cache_alloc_bulk(self.a, cachep, flags, nr, cpu)

    def kmem_cache_free_bulk(self, cachep: KmemCache | None, objs: list[int], cpu: int = 0, caller: int = 0) -> None:
        bulk.kmem_cache_free_bulk(self.a, cachep, list(objs), cpu)

    def kfree_bulk(self, objs: list[int], cpu: int = 0, caller: int = 0) -> None:
        bulk.kfree_bulk(self.a, list(objs), cpu)

    def kmalloc(self, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        """__kmalloc_noprof(): the kmalloc cache's object, or pages above KMALLOC_MAX_CACHE_SIZE."""
        self.a.mm.dbg.caller = caller
        return self.a.kmalloc(size, cpu, flags)

    def kmalloc_node(self, size: int, flags: int = GFP_KERNEL, node: int = -1, cpu: int = 0, caller: int = 0) -> int:
        self.a.mm.dbg.caller = caller
        return self.a.kmalloc(size, cpu, flags, node)

    def kfree(self, objp: int, cpu: int = 0, caller: int = 0) -> None:
        self.a.mm.dbg.caller = caller
        self.a.kfree(objp, cpu)

    # ---- the bytes of debug caches ---------------------------------------------------------------------
    def write(self, addr: int, data: bytes) -> None:
        """Another part of the kernel stores ``data`` at ``addr`` (a buggy driver writing past its object, or
        into a freed one): the bytes SLUB_DEBUG's red zone, poison and padding checks read.  Only the slabs of
        caches with debugging keep their bytes; elsewhere this is a ConfigError."""
        from .debug_check import write_bytes  # noqa: PLC0415
        slab, end = self.a.virt_to_slab(addr), addr + len(data)
        if slab is None or slab.page.pfn not in self.a.mm.dbg.slabs:
            raise ConfigError(f"write at {addr:#x}: not in a slab of a cache with debugging (slab_debug=)")
        if end > slab.address + (4096 << slab.order):
            raise ConfigError(f"write at {addr:#x}: {len(data)} bytes run past the slab's end")
        write_bytes(self.a.mm.dbg, slab, addr, data)

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` of a debug cache's slab (see :meth:`write`)."""
        from .debug_check import read_bytes  # noqa: PLC0415
        slab = self.a.virt_to_slab(addr)
        if slab is None or slab.page.pfn not in self.a.mm.dbg.slabs:
            raise ConfigError(f"read at {addr:#x}: not in a slab of a cache with debugging (slab_debug=)")
        return read_bytes(self.a.mm.dbg, slab, addr, n)

    def virt_to_cache(self, objp: int) -> KmemCache | None:
        slab = self.a.virt_to_slab(objp)
        return None if slab is None else slab.slab_cache

    # ---- /proc and /sys --------------------------------------------------------------------------------
    def slabinfo(self) -> str:
        """/proc/slabinfo as 6.12 prints it: the header, then the caches newest first."""
        return "\n".join(self.a.slabinfo()) + "\n"

    def buddyinfo(self) -> str:
        return self.page_alloc.buddyinfo()

    def sysfs(self, name: str, attr: str | None = None) -> str:
        """The files of /sys/kernel/slab/NAME (a directory or a link), ``FILE:VALUE`` lines, or one file's
        value; ConfigError for an entry or file the directory lacks."""
        found = sysfs_lookup(self.sl, name)
        if found is None:
            raise ConfigError(f"/sys/kernel/slab/{name}: no such cache directory or link")
        directory, s = found
        if attr is not None:
            try:
                return sysfs_show(s, attr) + "\n"
            except KeyError:
                raise ConfigError(f"/sys/kernel/slab/{directory}/{attr}: no such file") from None
        prefix = f"/sys/kernel/slab/{directory}/"
        return "".join(line[len(prefix):] + "\n" for line in sysfs_dump(self.sl) if line.startswith(prefix))

    def sysfs_dump(self) -> list[str]:
        return sysfs_dump(self.sl)

    def sysfs_links(self) -> dict[str, str]:
        return sysfs_links(self.sl)

    def snapshot(self) -> dict[str, Any]:
        """The machine's state as plain data: one record per /proc/slabinfo line with the geometry, the per-node
        slab counts and the SLUB_STATS counters summed over the CPUs."""
        from .slab import StatItem  # noqa: PLC0415
        caches = []
        for s in reversed(self.sl.slab_caches):
            si = get_slabinfo(s)
            caches.append({
                "name": s.name, "active_objs": si.active_objs, "num_objs": si.num_objs, "active_slabs": si.active_slabs,
                "num_slabs": si.num_slabs, "objsize": s.size, "object_size": s.object_size,
                "objperslab": oo_objects(s.oo), "order": oo_order(s.oo), "aliases": list(s.aliases),
                "nodes": [{"node": nid, "slabs": n.nr_slabs, "partial": n.nr_partial} for nid, n in enumerate(s.node)],
                "stats": {si_.name.lower(): sum(c.stat[si_] for c in s.cpu_slab) for si_ in StatItem}})
        return {"machine": {"allocator": "slub", "cpus": self.nr_cpu_ids, "nodes": self.nr_node_ids,
                            "topology": self.config.topology_text(), "mem": self.config.mem},
                "caches": caches, "buddy": self.page_alloc.zoneinfo_summary(), "dmesg": list(self.dmesg)}

    def check(self) -> None:
        """Every invariant of the SLUB model and of the buddy allocator; raises SlabCorruptionError."""
        check_slub(self.a)
        self.page_alloc.check()

    def __repr__(self) -> str:
        return f"<SlubKernel cpus={self.nr_cpu_ids} nodes={self.nr_node_ids} caches={len(self.sl.slab_caches)}>"

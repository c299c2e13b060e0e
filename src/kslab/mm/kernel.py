"""The machine: what the kernel keeps in globals, plus the entry points a caller uses.

A :class:`Kernel` owns the page allocator, ``slab_caches``, ``kmalloc_caches``, ``slab_state``,
CPU and node masks, ``jiffies``, dmesg and the reap timers.  Every entry point takes the CPU it
runs on; internal functions read the current CPU from ``k.cpu`` as the kernel reads
``smp_processor_id()``.

The module keeps the state, boot, lookups and entry points; the rest is in base classes of
:class:`Kernel` beside it: CPUs and hotplug (:mod:`kslab.mm.topology`), memory policies
(:mod:`kslab.mm.mempolicy`), dmesg, WARN/BUG, taint and misuse records (:mod:`kslab.mm.printk`), and the
clock, reap timers and RCU (:mod:`kslab.mm.timer`).  ``MemPolicy``, ``Misuse``, ``TAINT_FLAGS`` and
``KERNEL_TEXT_START`` are re-exported here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .config import MachineConfig
from .errors import ConfigError
from .gfp import GFP_KERNEL
from .memory import Memory
from .mempolicy import KernelMemPolicy, MemPolicy
from .page import MemMap, Page
from .page_alloc import PageAllocator
from .printk import KERNEL_TEXT_START, TAINT_FLAGS, Diagnostics, KernelDiagnostics, Misuse
from .replay_hooks import ReplayHooks
from .slab import alloc as _alloc
from .slab import free as _free
from .slab import kmalloc as _km
from .slab import reap as _reap
from .slab_def import DOWN, FULL, KmemCache
from .timer import KernelTime, ReapWork
from .topology import KernelTopology, Topology

__all__ = ["EARLY_INIT_CACHES", "KERNEL_TEXT_START", "TAINT_FLAGS", "BootParams", "ExplainSink", "FindMemo", "Kernel",
           "MemPolicy", "Misuse"]

ExplainSink = Any  # an object with .step(func, key, **values)


class BootParams:
    """The slab allocator's kernel command-line parameters (``Kernel.boot_params``), set from the
    MachineConfig at boot: ``slab_nomerge`` (mm/slab_common.c's, also on when CONFIG_SLAB_MERGE_DEFAULT is
    off), ``slab_max_order`` (mm/slab.c's ``slab_max_order=``, as it stands after boot) and
    ``use_alien_caches`` (off with ``noaliencache``)."""

    __slots__ = ("slab_max_order", "slab_nomerge", "use_alien_caches")

    def __init__(self, config: MachineConfig) -> None:
        self.slab_nomerge = config.slab_nomerge or not config.CONFIG_SLAB_MERGE_DEFAULT
        self.slab_max_order = config.effective_slab_max_order
        self.use_alien_caches = config.use_alien_caches


class FindMemo:
    """What find_cache() remembers (``Kernel.find_memo``): the caches found by name (``by_name``), valid
    while ``slab_caches`` has ``length`` entries and ``head`` first (no kernel structure: a lookup cache)."""

    __slots__ = ("by_name", "head", "length")

    def __init__(self) -> None:
        self.by_name: dict[str, KmemCache] = {}
        self.length = 0
        self.head: KmemCache | None = None


class Kernel(KernelTopology, KernelMemPolicy, KernelDiagnostics, KernelTime):
    """A booted 5.10 SLAB machine.  ``Kernel(config)`` boots it completely unless ``boot=False``."""

    def __init__(self, config: MachineConfig | None = None, *, boot: bool = True) -> None:
        self.config = config = config or MachineConfig()
        self.debug = config.CONFIG_DEBUG_SLAB
        self.nr_cpu_ids = config.cpus
        self.nr_node_ids = config.nr_nodes
        self.topo = Topology(config)  # cpu_to_node, the online CPU and node masks, node_cpus
        self.numa_multi = len(self.topo.online_nodes) > 1
        self.boot_params = BootParams(config)  # slab_nomerge, slab_max_order, use_alien_caches
        self.mem_map = MemMap()
        self.page_alloc = PageAllocator(config, self.mem_map)
        self.memory = Memory(self.mem_map)
        self.slab_caches: list[KmemCache] = []
        self.kmalloc_caches: list[list[KmemCache | None]] = [[None] * 23 for _ in range(3)]
        # mm/slab_common.c's static size_index[] until setup_kmalloc_cache_index_table() rewrites it:
        # kmalloc_slab() consults it while kmalloc-128 (INDEX_NODE) is being created
        self.size_index: list[int] = [3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2]
        self.slab_state = DOWN
        self.kmem_cache: KmemCache | None = None
        self.cache_by_addr: dict[int, KmemCache] = {}
        self.find_memo = FindMemo()
        self.cpu = 0
        self.numa_node = self.topo.cpu_to_node[0]
        self.jiffies = 0
        self.reap_work = ReapWork(config.cpus)  # the per-CPU reap timers, slab_reap_node, reap runs
        self.explain: ExplainSink | None = None
        self.event_hook: Callable[..., None] | None = None
        self.sk_memalloc_socks = False
        self.in_interrupt = False
        self.cpuset_slab_spread = False
        self._spread_rotor = -1
        self.policies: dict[int, MemPolicy] = {}
        self.diag = Diagnostics()  # dmesg, misuse records, taint, WARN_ONCE keys, symbols, creation log
        self.rcu_callbacks: list[Callable[[], None]] = []
        #: what a replay of a real trace tells the model (race_grow, the kernel's cache addresses...)
        self.replay_hooks = ReplayHooks(self)
        self.init_late_done = False
        #: kmem_cache_init_late()'s caches not reached yet, while a replay steps through it (else None)
        self.init_late_pending: list[KmemCache] | None = None
        # get_random_int/get_random_long: one seeded stream per machine (a real kernel's cannot be predicted)
        self.crng = random.Random(config.random_seed)
        if boot:
            self.boot_early()
            self.boot_complete()

    # ---- boot ----------------------------------------------------------------------------------
    def boot_early(self) -> None:
        """start_kernel() up to kmem_cache_init(): only the boot CPU is online."""
        from .slab_common import kmem_cache_init  # noqa: PLC0415
        topo = self.topo
        topo.online_cpus = {0}
        if not topo.numa:
            topo.node_cpus[0] = topo.online_cpus
        self.set_cpu(0)
        kmem_cache_init(self)

    def init_late(self) -> None:
        """kmem_cache_init_late(): every existing cache gets its real tunables."""
        from .slab_common import kmem_cache_init_late  # noqa: PLC0415
        if self.init_late_done:
            return
        saved = self.set_cpu(0)
        kmem_cache_init_late(self)
        self.init_late_done = True
        _reap.init_reap_node(self, 0)
        self.start_cpu_timer(0)
        self.set_cpu(saved)

    def boot_complete(self) -> None:
        """Finish booting: init_late, the boot CPU in its node, every other CPU up."""
        self.init_late()
        self.boot_cpu_joins_node()
        for cpu in range(1, self.nr_cpu_ids):
            self.cpu_up(cpu)

    # ---- context -------------------------------------------------------------------------------
    def set_event_hook(self, hook: Callable[..., None] | None) -> None:
        """Have ``hook(kind, cachep, ptr, size, flags, node, internal)`` called at each allocation and free
        (the tracepoints; a replay pairs the model's own allocations through it)."""
        self.event_hook = hook

    @contextmanager
    def unobserved(self) -> Iterator[None]:
        """Neither explained nor passed to the event hook while inside (a replay's own bookkeeping)."""
        saved_explain, self.explain = self.explain, None
        saved_hook, self.event_hook = self.event_hook, None
        try:
            yield
        finally:
            self.explain = saved_explain
            self.event_hook = saved_hook

    def kmem_cache_create_unmerged(self, name: str, size: int, align: int = 0, flags: int = 0) -> KmemCache | None:
        """kmem_cache_create() as with slab_nomerge: a cache of its own, never an alias."""
        params = self.boot_params
        saved = params.slab_nomerge
        params.slab_nomerge = True
        try:
            return self.kmem_cache_create(name, size, align, flags)
        finally:
            params.slab_nomerge = saved

    # ---- lookup helpers ----------------------------------------------------------------------------
    def kmalloc_slab(self, size: int, flags: int) -> KmemCache | None:
        c = _km.kmalloc_slab(self, size, flags)
        return None if isinstance(c, int) else c

    def find_cache(self, name: str) -> KmemCache | None:
        """The newest cache with this name (as /proc/slabinfo writes find it), or an alias's target."""
        # The replay asks for the same few names on every event: remember the caches found by name.  A
        # remembered answer holds while slab_caches keeps its length and its first (newest) entry: every
        # creation inserts at the head and every destruction removes, so any change shows in one of the two.
        caches = self.slab_caches
        memo = self.find_memo
        if caches:
            if len(caches) == memo.length and caches[0] is memo.head:
                c = memo.by_name.get(name)
                if c is not None:
                    return c
            else:
                memo.by_name.clear()
                memo.length = len(caches)
                memo.head = caches[0]
        for c in caches:
            if c.name == name:
                memo.by_name[name] = c
                return c
        for c in caches:
            if name in c.aliases:
                return c
        return None

    def virt_to_cache(self, objp: int) -> KmemCache | None:
        page = self.mem_map.virt_to_head_page(objp)
        if page is None or page.slab_cache is None:
            return None
        return page.slab_cache

    def page_of(self, objp: int) -> Page | None:
        return self.mem_map.virt_to_head_page(objp)

    # ---- object bytes (what a driver does with the memory it got) -----------------------------------
    def read(self, ptr: int, n: int) -> bytes:
        """The ``n`` bytes at ``ptr`` (a slab object's freelist indices included, as in the kernel)."""
        return self.memory.read(ptr, n)

    def write(self, ptr: int, data: bytes | bytearray) -> None:
        """Store ``data`` at ``ptr``: nothing checks bounds, so writing past an object (or into a freed
        one) damages what is there, for the debug checks to find later."""
        self.memory.write(ptr, data)

    def memset(self, ptr: int, value: int, n: int) -> None:
        """memset(ptr, value, n), unchecked like write()."""
        self.memory.memset(ptr, value, n)

    # ---- entry points (the kernel's exported API) -------------------------------------------------
    def kmem_cache_create(self, name: str, size: int, align: int = 0, flags: int = 0,
                          ctor: Callable[[int], Any] | bool | None = None, useroffset: int = 0,
                          usersize: int = 0, cpu: int = 0) -> KmemCache | None:
        from .slab_common import kmem_cache_create_usercopy  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            if self.init_late_done and name not in EARLY_INIT_CACHES:
                self.boot_cpu_joins_node()
            return kmem_cache_create_usercopy(self, name, size, align, flags, useroffset, usersize, ctor)
        finally:
            self.set_cpu(saved)

    def kmem_cache_destroy(self, cachep: KmemCache | None, cpu: int = 0) -> None:
        from .slab_common import kmem_cache_destroy  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            kmem_cache_destroy(self, cachep)
        finally:
            self.set_cpu(saved)

    def kmem_cache_shrink(self, cachep: KmemCache, cpu: int = 0) -> int:
        from .slab_common import kmem_cache_shrink  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            return kmem_cache_shrink(self, cachep)
        finally:
            self.set_cpu(saved)

    def shrink_cache(self, name: str, cpu: int = 0) -> int:
        """An administrator's shrink of the cache called ``name``: kmem_cache_shrink() on it (all CPUs'
        arrays, shared and alien arrays drained, every empty slab released).  SLAB has no sysfs shrink
        file and drop_caches does not shrink slab caches, so this stands for a module or test calling
        kmem_cache_shrink.  Returns 1 if objects remain in use, else 0."""
        cachep = self.find_cache(name)
        if cachep is None:
            raise ConfigError(f"shrink: no slab cache named {name!r}")
        return self.kmem_cache_shrink(cachep, cpu=cpu)

    def kmem_cache_alloc(self, cachep: KmemCache, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _alloc.kmem_cache_alloc(cachep, flags, caller)

    def kmem_cache_zalloc(self, cachep: KmemCache, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        from .gfp import __GFP_ZERO  # noqa: PLC0415
        return self.kmem_cache_alloc(cachep, flags | __GFP_ZERO, cpu, caller)

    def kmem_cache_alloc_node(self, cachep: KmemCache, flags: int = GFP_KERNEL, node: int = -1, cpu: int = 0,
                              caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _alloc.kmem_cache_alloc_node(cachep, flags, node, caller)

    def kmem_cache_free(self, cachep: KmemCache, objp: int, cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kmem_cache_free(cachep, objp, caller)

    def kmem_cache_alloc_bulk(self, cachep: KmemCache, nr: int, flags: int = GFP_KERNEL, cpu: int = 0,
                              caller: int = 0) -> list[int]:
        self.set_cpu(cpu)
        out: list[int] = []
        _alloc.kmem_cache_alloc_bulk(cachep, flags, nr, out, caller)
        return out

    def kmem_cache_free_bulk(self, cachep: KmemCache | None, objs: list[int], cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kmem_cache_free_bulk(cachep, len(objs), objs, self, caller)

    def kfree_bulk(self, objs: list[int], cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kfree_bulk(self, len(objs), objs, caller)

    def kmalloc(self, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kmalloc(self, size, flags, caller)

    def kmalloc_node(self, size: int, flags: int = GFP_KERNEL, node: int = -1, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kmalloc_node(self, size, flags, node, caller)

    def kzalloc(self, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kzalloc(self, size, flags, caller)

    def kcalloc(self, n: int, size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.kcalloc(self, n, size, flags, caller)

    def krealloc(self, p: int, new_size: int, flags: int = GFP_KERNEL, cpu: int = 0, caller: int = 0) -> int:
        self.set_cpu(cpu)
        return _km.krealloc(self, p, new_size, flags, caller)

    def ksize(self, p: int) -> int:
        return _km.ksize(self, p)

    def kfree(self, objp: int, cpu: int = 0, caller: int = 0) -> None:
        self.set_cpu(cpu)
        _free.kfree(self, objp, caller)

    def cache_reap(self, cpu: int = 0) -> None:
        self.run_cache_reap(cpu)

    # ---- /proc ---------------------------------------------------------------------------------------
    def slabinfo(self) -> str:
        from .slabinfo import slabinfo_show  # noqa: PLC0415
        return slabinfo_show(self)

    def slabinfo_write(self, text: str | bytes, cpu: int = 0) -> int:
        from .slabinfo import slabinfo_write  # noqa: PLC0415
        saved = self.set_cpu(cpu)
        try:
            return slabinfo_write(self, text)
        finally:
            self.set_cpu(saved)

    def buddyinfo(self) -> str:
        return self.page_alloc.buddyinfo()

    def snapshot(self) -> dict[str, Any]:
        """The machine's state as plain data (dicts, lists, ints, strs): JSON- and pandas-ready.

        ``caches`` has one record per /proc/slabinfo line, with the cache's geometry, tunables, the
        STATS counters, kslab's per-path counters and per-node list lengths and array fill.
        """
        from .slabinfo import get_slabinfo  # noqa: PLC0415
        caches = []
        for c in self.slab_caches:
            d = get_slabinfo(c)
            rec: dict[str, Any] = {f: getattr(d, f) for f in d.__slots__}
            rec.update(object_size=c.object_size, align=c.align, flags=c.flags, gfporder=c.gfporder,
                       placement=c.placement, colour=c.colour, colour_off=c.colour_off, refcount=c.refcount,
                       aliases=list(c.aliases), stats=c.stats.as_dict(), paths=c.paths.as_dict(),
                       cpu_avail=[len(ac.entry) for ac in c.cpu_cache])
            rec["nodes"] = [
                {"node": n.nid, "partial": len(n.slabs_partial), "full": len(n.slabs_full), "free": len(n.slabs_free),
                 "free_objects": n.free_objects, "free_limit": n.free_limit,
                 "shared_avail": len(n.shared.entry) if n.shared is not None else None,
                 "alien_avail": [len(a.entry) if a is not None else None for a in n.alien] if n.alien else None}
                for n in c.node if n is not None]
            caches.append(rec)
        return {
            "machine": {"cpus": self.nr_cpu_ids, "nodes": self.nr_node_ids, "topology": self.config.topology_text(),
                        "mem": self.config.mem, "CONFIG_DEBUG_SLAB": self.debug, "jiffies": self.jiffies,
                        "online_cpus": sorted(self.topo.online_cpus)},
            "caches": caches,
            "buddy": self.page_alloc.zoneinfo_summary(),
            "dmesg": list(self.diag.dmesg),
        }

    def check(self) -> None:
        """Verify every invariant of the model; raises SlabCorruptionError."""
        from .check import check  # noqa: PLC0415
        check(self)

    def __repr__(self) -> str:
        return (f"<Kernel cpus={self.nr_cpu_ids} nodes={self.nr_node_ids} caches={len(self.slab_caches)}"
                f" jiffies={self.jiffies} state={'FULL' if self.slab_state == FULL else self.slab_state}>")


# start_kernel() runs numa_policy_init() and acpi_early_init() between kmem_cache_init_late() and
# arch_cpu_finalize_init(): the caches they create are the only ones made before the boot CPU
# enters its node's mask (x86 NUMA builds), so they keep free_limit = batchcount + num on 1 CPU.
EARLY_INIT_CACHES = frozenset({"numa_policy", "shared_policy_node", "Acpi-Namespace", "Acpi-State", "Acpi-Parse",
                               "Acpi-ParseExt", "Acpi-Operand"})

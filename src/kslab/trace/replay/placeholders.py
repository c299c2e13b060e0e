"""Placeholders: model objects standing for objects the kernel allocated before the trace began (or whose
identity the replay does not know), and the reconciling of per-CPU arrays with the kernel's."""

from __future__ import annotations

from ...mm.errors import SlabCorruptionError
from ...mm.kernel import Kernel
from ...mm.slab.adopt import adopt_objects, array_push, array_take_all
from ...mm.slab_def import KmemCache
from ..events import KMALLOC, KMALLOC_NODE, TraceEvent
from .boot import Boot
from .options import Internal, ReplaySummary


class Placeholders:
    """The pools of allocated objects of unknown identity (``pools``: cache -> model pointers)."""

    def __init__(self, k: Kernel, boot: Boot, summary: ReplaySummary) -> None:
        self.k = k
        self.boot = boot
        self.summary = summary
        self.pools: dict[KmemCache, list[int]] = {}
        # (cache, CPU) whose array the kernel and the model refilled alike (see align_array)
        self.anchored: set[tuple[KmemCache, int]] = set()

    def pool(self, cachep: KmemCache) -> list[int]:
        return self.pools.setdefault(cachep, [])

    def one(self, cachep: KmemCache) -> int:
        """Allocate, straight from the slabs, an object standing for one the kernel had before the trace."""
        objs = self.make(cachep, 1)
        return objs[0] if objs else 0

    def make(self, cachep: KmemCache, count: int, sync: bool = False) -> list[int]:
        """``count`` placeholders (see one) one after the other, fewer if the slabs run out."""
        k = self.k
        node = k.numa_node
        n = cachep.node[node]
        if n is None or count <= 0:
            return []
        off = cachep.obj_offset if k.debug else 0
        # The kernel's objects stand in slabs of their own, or in slabs older than the trace; not in the
        # free slots of a slab grown while the trace was followed: the kernel's allocations from that
        # slab are all in the trace, and its free slots are free in the kernel too.
        # (Only when the trace shows the boot: a trace that starts later shows the model's slabs growing
        # where the kernel's allocations came from slabs it had before.)
        allowed: set[int] | None = None
        if sync and self.boot.shows_boot:
            allowed = self.boot.pre_trace_pages | {p.pfn for ob in self.pools.get(cachep, ())
                                                   if (p := k.page_of(ob - off)) is not None}
        with k.unobserved():
            objs = adopt_objects(cachep, n, node, count, allowed, off)
        if objs:
            self.summary.placeholders[cachep.name] += len(objs)
        return objs

    def align_array(self, ev: TraceEvent, cpu: int, refilled: bool, synced: bool) -> None:
        """Reconcile this CPU's array with the kernel's where the model cannot know it.

        /proc/slabinfo counts objects sitting in per-CPU arrays as active, so a sync (and the replay of
        a boot whose first part was not traced) can match the counts while the model's arrays hold
        objects that the kernel had handed out, or miss objects the kernel had in its array.  The
        function tracer tells which: ``cache_alloc_refill`` shows the kernel's array was empty.  Until
        the first refill that both see alike, an array whose model copy still holds objects when the
        kernel refills gives them to the pool of allocated objects of unknown identity (placeholders);
        an array the model finds empty when the kernel did not refill takes one object from that pool.
        After that first common refill (once ``synced``) the array is left to the model's own rules.
        """
        k = self.k
        if ev.kind == KMALLOC or ev.kind == KMALLOC_NODE:
            cachep = k.kmalloc_slab(ev.bytes_req, ev.gfp)
        else:
            cachep = k.find_cache(ev.name) if ev.name else None
        if cachep is None or not cachep.cpu_cache:
            return
        key = (cachep, cpu)
        if key in self.anchored:
            return
        ac = cachep.cpu_cache[cpu]
        pool = self.pools.setdefault(cachep, [])
        if refilled:
            if ac.entry:
                off = cachep.obj_offset if k.debug else 0
                objs = array_take_all(ac)
                pool.extend(o + off for o in objs)
                self.summary.internal[Internal.ARRAY_FOUND_ALLOCATED] += len(objs)
            if synced:
                self.anchored.add(key)
        elif not ac.entry and pool:
            # a CPU's array holds objects of its own node only (remote ones are freed to alien caches)
            node = k.topo.cpu_to_node[cpu]
            mem_map = k.mem_map
            for i in range(len(pool) - 1, -1, -1):
                page = mem_map.virt_to_head_page(pool[i])
                if page is not None and page.nid == node:
                    off = cachep.obj_offset if k.debug else 0
                    array_push(ac, pool.pop(i) - off)
                    self.summary.internal[Internal.ARRAY_HAD_IN_KERNEL] += 1
                    break

    def check(self, mapped: set[int]) -> None:
        """Every pool object is allocated in its slab, sits in no array, appears once, and is none of
        ``mapped`` (the model objects that stand for kernel pointers)."""
        k = self.k
        for c, pool in self.pools.items():
            off = c.obj_offset if k.debug else 0
            seen: set[int] = set()
            in_arrays = objects_in_arrays(c)
            for p in pool:
                obj = p - off
                if p in seen:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} twice")
                seen.add(p)
                if obj in in_arrays:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is also in an array")
                if p in mapped:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is also mapped to a kernel pointer")
                page = k.page_of(obj)
                if page is None or page.slab_cache is not c or page.fl is None:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is not in a slab of its cache")
                idx = (obj - page.s_mem) // c.size
                if idx in page.fl[page.active:c.num]:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is free in its slab")


def objects_in_arrays(c: KmemCache) -> set[int]:
    """The objects in a cache's per-CPU, shared and alien arrays."""
    in_arrays = {o for ac in c.cpu_cache for o in ac.entry}
    for n in c.node:
        if n is not None:
            if n.shared is not None:
                in_arrays.update(n.shared.entry)
            for a in n.alien or ():
                if a is not None:
                    in_arrays.update(a.entry)
    return in_arrays

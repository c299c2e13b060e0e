"""A SLUB allocator over the buddy allocator: kmem_cache_alloc / kmem_cache_free / kmalloc / kfree, flushing,
shrinking and /proc/slabinfo (mm/slub.c slab_alloc_node, do_slab_free, kfree; mm/slab_common.c, 6.12).

Not wired into ``Kernel`` yet.  Caches with debugging (kmem_cache_debug: alloc_single_from_partial,
free_to_partial_list) are not modelled by the slow paths: using one raises :class:`ConfigError`.
The kmem_cache_node and kmem_cache_cpu structures are plain model objects, not allocations from the
kmem_cache_node cache or the per-CPU allocator.
"""

from __future__ import annotations

from ..errors import ConfigError, KernelBug
from ..gfp import __GFP_COMP
from ..page import PG_slab
from ..page_alloc import PageAllocator
from .fastpath import do_slab_free_fast, slab_alloc_node_fast
from .geometry import get_order
from .kmalloc import kmalloc_slab
from .node import cache_show, init_kmem_cache_cpus, init_kmem_cache_nodes, print_slabinfo_header
from .partial import SlubMM, flush_all, flush_cpu_slab
from .partial import __kmem_cache_shrink as kmem_cache_shrink_  # a __name would be mangled in the class
from .slab import NUMA_NO_NODE, ObjectMemory, Slab
from .slowpath import ___slab_alloc as slab_alloc_slowpath  # (name mangling)
from .slowpath import __slab_free as slab_free_slowpath
from .slub_def import KMALLOC_MAX_CACHE_SIZE, ZERO_SIZE_PTR, KmemCache, Slub

#: __GFP_COMP under a name the class body does not mangle
GFP_COMP = __GFP_COMP


class SlubAllocator:
    """SLUB's allocation entry points for the caches of a booted :class:`Slub`, over ``pa``.

    ``mm`` holds the object memory and the live slabs; ``large`` the pages of kmalloc allocations above
    KMALLOC_MAX_CACHE_SIZE, by address.
    """

    def __init__(self, sl: Slub, pa: PageAllocator, mem: ObjectMemory | None = None) -> None:
        self.sl = sl
        self.mm = SlubMM(pa, mem if mem is not None else ObjectMemory(), sl.cfg.CONFIG_SLUB_CPU_PARTIAL)
        self.large: dict[int, int] = {}
        self.mm.dbg.dmesg = sl.dmesg
        if pa.config.cpus != sl.cfg.nr_cpu_ids or pa.nr_nodes != sl.cfg.nr_node_ids:
            raise ConfigError(f"SLUB booted for {sl.cfg.nr_cpu_ids} CPUs and {sl.cfg.nr_node_ids} nodes, but the "
                              f"machine has {pa.config.cpus} CPUs and {pa.nr_nodes} nodes")
        for s in sl.slab_caches:
            self.kmem_cache_open(s)

    def kmem_cache_open(self, s: KmemCache) -> None:
        """Give a cache its per-node and per-CPU structures (done for every cache at construction; call it for
        a cache created afterwards)."""
        if not s.node:
            init_kmem_cache_nodes(s, self.sl.cfg.nr_node_ids)
            init_kmem_cache_cpus(s, self.sl.cfg.nr_cpu_ids)

    def check(self, s: KmemCache, cpu: int, node: int) -> None:
        """Raise ConfigError for a cache this allocator cannot serve, or a CPU or node the machine lacks."""
        if not s.node:
            raise ConfigError(f"cache {s.name} was not opened by this allocator")
        if not 0 <= cpu < len(s.cpu_slab):
            raise ConfigError(f"CPU {cpu} does not exist (the machine has CPUs 0..{len(s.cpu_slab) - 1})")
        if node != NUMA_NO_NODE and not 0 <= node < len(s.node):
            raise ConfigError(f"node {node} does not exist (the machine has nodes 0..{len(s.node) - 1})")

    def kmem_cache_alloc(self, s: KmemCache, cpu: int, node: int = NUMA_NO_NODE, gfpflags: int = 0) -> int:
        """slab_alloc_node: the lockless fast path, else ___slab_alloc; 0 when out of memory."""
        self.check(s, cpu, node)
        self.mm.dbg.cpu = cpu
        ex = self.mm.explain
        c = s.cpu_slab[cpu]
        if ex is not None:
            ex.step("slab_alloc_node", "entry", cache=s.name, cpu=cpu, node=node, flags=gfpflags, freelist=c.freelist,
                    tid=c.tid, pfn=c.slab.page.pfn if c.slab is not None else 0)
        obj = slab_alloc_node_fast(self.mm.mem, s, c, node)
        if obj is None:
            if ex is not None:
                why = "no_cpu_slab" if c.slab is None else "node_mismatch" if c.freelist else "no_freelist"
                ex.step("__slab_alloc_node", why, cache=s.name, node=node,
                        slab_node=c.slab.nid if c.slab is not None else -1)
            obj = slab_alloc_slowpath(self.mm, s, gfpflags, node, cpu)
        elif ex is not None:
            ex.step("__slab_alloc_node", "fastpath", cache=s.name, obj=obj, next=c.freelist, tid=c.tid)
        if ex is not None:
            ex.step("slab_alloc_node", "done" if obj else "failed", cache=s.name, obj=obj)
        return obj

    def virt_to_slab(self, x: int) -> Slab | None:
        """The slab an address belongs to (None: not a slab page)."""
        page = self.mm.pa.mem_map.virt_to_head_page(x)
        if page is None or not page.flags & (1 << PG_slab):
            return None
        return self.mm.slabs.get(page.pfn)

    def kmem_cache_free(self, s: KmemCache, x: int, cpu: int) -> None:
        """do_slab_free for one object: onto the CPU freelist when its slab is the cpu slab, else __slab_free."""
        slab = self.virt_to_slab(x)
        if slab is None or slab.slab_cache is not s:
            where = "not a slab object" if slab is None else f"an object of {slab.slab_cache.name}"
            raise KernelBug(f"kmem_cache_free({s.name}, {x:#x}): {where}")
        self.check(s, cpu, NUMA_NO_NODE)
        self.do_slab_free(s, slab, x, x, 1, cpu)

    def do_slab_free(self, s: KmemCache, slab: Slab, head: int, tail: int, cnt: int, cpu: int) -> None:
        """do_slab_free: ``cnt`` objects chained from ``head`` to ``tail``, all of ``slab``, onto the CPU
        freelist when ``slab`` is the cpu slab, else __slab_free."""
        c = s.cpu_slab[cpu]
        self.mm.dbg.cpu = cpu
        ex = self.mm.explain
        if ex is not None:
            ex.step("do_slab_free", "fastpath" if slab is c.slab else "slowpath", cache=s.name, pfn=slab.page.pfn,
                    cpu_pfn=c.slab.page.pfn if c.slab is not None else 0, nr=cnt, obj=head, freelist=c.freelist,
                    tid=c.tid, cpu=cpu)
        if not do_slab_free_fast(self.mm.mem, s, c, slab, head, tail, cnt):
            slab_free_slowpath(self.mm, s, slab, head, tail, cnt, cpu)

    def kmalloc(self, size: int, cpu: int, gfpflags: int = 0, node: int = NUMA_NO_NODE) -> int:
        """__kmalloc_node: ZERO_SIZE_PTR for 0 bytes, the kmalloc cache's object up to KMALLOC_MAX_CACHE_SIZE,
        pages from the buddy allocator above it (___kmalloc_large_node); 0 when out of memory."""
        ex = self.mm.explain
        if size > KMALLOC_MAX_CACHE_SIZE:
            if ex is not None:
                ex.step("__do_kmalloc_node", "large", size=size, order=get_order(size), cpu=cpu, flags=gfpflags,
                        limit=KMALLOC_MAX_CACHE_SIZE)
            return self._kmalloc_large(size, gfpflags, node, cpu)
        if size == 0:
            if ex is not None:
                ex.step("__do_kmalloc_node", "zero", cpu=cpu)
            return ZERO_SIZE_PTR
        s = kmalloc_slab(self.sl, size, gfpflags)
        if s is None:
            raise ConfigError(f"no kmalloc cache for {size} bytes")
        if ex is not None:
            ex.step("__do_kmalloc_node", "cache", size=size, cache=s.name, cpu=cpu, flags=gfpflags, stride=s.size,
                    node=node)
        self.mm.dbg.request = size
        try:
            return self.kmem_cache_alloc(s, cpu, node, gfpflags)
        finally:
            self.mm.dbg.request = 0

    def _kmalloc_large(self, size: int, gfpflags: int, node: int, cpu: int) -> int:
        order = get_order(size)
        pa = self.mm.pa
        flags = gfpflags | GFP_COMP
        page = pa.alloc_pages(flags, order, cpu) if node == NUMA_NO_NODE else pa.alloc_pages_node(node, flags,
                                                                                                   order, cpu)
        if page is None:
            return 0
        self.large[page.address] = order
        return page.address

    def kfree(self, x: int, cpu: int) -> None:
        """kfree: nothing for NULL and ZERO_SIZE_PTR, free_large_kmalloc for non-slab pages, else the object's
        cache's do_slab_free."""
        ex = self.mm.explain
        if x <= ZERO_SIZE_PTR:
            if ex is not None:
                ex.step("kfree", "null", obj=x, cpu=cpu)
            return
        slab = self.virt_to_slab(x)
        if slab is not None:
            if ex is not None:
                ex.step("kfree", "slab", obj=x, cpu=cpu, cache=slab.slab_cache.name, pfn=slab.page.pfn,
                        node=slab.nid)
            self.kmem_cache_free(slab.slab_cache, x, cpu)
            return
        if ex is not None:
            ex.step("kfree", "large", obj=x, cpu=cpu, order=self.large.get(x, -1))
        self.free_large_kmalloc(x, cpu)

    def free_large_kmalloc(self, x: int, cpu: int) -> None:
        """Give back the pages of a kmalloc above KMALLOC_MAX_CACHE_SIZE."""
        order = self.large.pop(x, None)
        page = self.mm.pa.mem_map.virt_to_head_page(x)
        if order is None or page is None:
            raise KernelBug(f"kfree({x:#x}): neither a slab object nor a large kmalloc")
        self.mm.pa.free_pages(page, order, cpu)

    def flush_cpu_slab(self, s: KmemCache, cpu: int) -> None:
        """The flush work on one CPU (its cpu slab and per-CPU partial slabs go back to the nodes)."""
        flush_cpu_slab(self.mm, s, cpu)

    def flush_all(self, s: KmemCache) -> None:
        flush_all(self.mm, s)

    def kmem_cache_shrink(self, s: KmemCache, cpu: int = 0) -> int:
        """__kmem_cache_shrink run from ``cpu``: 1 if some node keeps slabs."""
        return kmem_cache_shrink_(self.mm, s, cpu)

    def slabinfo(self) -> list[str]:
        """/proc/slabinfo: the header, then one line per cache in slab_caches order (newest first)."""
        return [*print_slabinfo_header().splitlines(), *(cache_show(s) for s in self.sl.slab_caches)]

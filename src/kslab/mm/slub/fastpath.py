"""New slabs from the page allocator and the lockless fast paths (mm/slub.c, 6.12).

``allocate_slab`` takes ``oo``'s order from the buddy allocator, or ``min``'s when that fails (ORDER_FALLBACK),
and threads the free pointers through the objects in address order (no CONFIG_SLAB_FREELIST_RANDOM).
``slab_alloc_node_fast`` and ``do_slab_free_fast`` are the branches of slab_alloc_node()/do_slab_free() that
need no lock: they pop from / push to the CPU's freelist and step its tid.  When the kernel would take the
slow path instead (__slab_alloc, __slab_free), they return None / False and change nothing; those paths are
not modelled yet, so this module is not wired into ``Kernel``.
"""

from __future__ import annotations

from ..gfp import __GFP_DIRECT_RECLAIM, __GFP_NOFAIL, __GFP_NOMEMALLOC, __GFP_NORETRY, __GFP_NOWARN, __GFP_RECLAIM
from ..page import PG_slab
from ..page_alloc import PageAllocator
from .geometry import oo_objects, oo_order
from .slab import NUMA_NO_NODE, TID_STEP, KmemCacheCpu, ObjectMemory, Slab, StatItem
from .slub_def import KmemCache

KERNEL_SYMBOLS_612 = ("init_tid", "next_tid", "alloc_kmem_cache_cpus", "stat", "get_freepointer",
                      "set_freepointer", "alloc_slab_page", "allocate_slab", "node_match")


def init_tid(cpu: int) -> int:
    """A CPU's first transaction id is its number."""
    return cpu


def next_tid(tid: int) -> int:
    return tid + TID_STEP


def alloc_kmem_cache_cpus(nr_cpu_ids: int) -> list[KmemCacheCpu]:
    """Per-CPU structures of a new cache (init_kmem_cache_cpus: tid = init_tid(cpu))."""
    return [KmemCacheCpu(tid=init_tid(cpu)) for cpu in range(nr_cpu_ids)]


def stat(c: KmemCacheCpu, si: StatItem, n: int = 1) -> None:
    """CONFIG_SLUB_STATS: count on the current CPU (stat_add for n > 1)."""
    c.stat[si] += n


def get_freepointer(mem: ObjectMemory, s: KmemCache, obj: int) -> int:
    """The next free object after ``obj`` (0: none); no FREELIST_HARDENED encoding."""
    return mem.words.get(obj + s.offset, 0)


def set_freepointer(mem: ObjectMemory, s: KmemCache, obj: int, fp: int) -> None:
    mem.words[obj + s.offset] = fp


def alloc_slab_page(pa: PageAllocator, s: KmemCache, flags: int, node: int, order: int, cpu: int) -> Slab | None:
    """The pages of a slab of ``s``, marked PG_slab, from ``node`` (NUMA_NO_NODE: the CPU's node); None if
    the buddy allocator has none (allocate_slab fills in the objects)."""
    if node == NUMA_NO_NODE:
        page = pa.alloc_pages(flags, order, cpu)
    else:
        page = pa.alloc_pages_node(node, flags, order, cpu)
    if page is None:
        return None
    page.flags |= 1 << PG_slab
    return Slab(s, page, order, 0)


def allocate_slab(pa: PageAllocator, mem: ObjectMemory, s: KmemCache, c: KmemCacheCpu, flags: int, node: int,
                  cpu: int) -> Slab | None:
    """A new slab for ``s``: first ``oo``'s order without retrying or warning, then ``min``'s.

    Mirrors mm/slub.c:allocate_slab() (v6.12) without debugging, KASAN, memcg or freelist shuffling:
    the free list runs from the first object to the last.
    """
    flags |= s.allocflags
    alloc_gfp = (flags | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_NOFAIL
    if alloc_gfp & __GFP_DIRECT_RECLAIM and oo_order(s.oo) > oo_order(s.min):
        alloc_gfp = (alloc_gfp | __GFP_NOMEMALLOC) & ~__GFP_RECLAIM
    oo = s.oo
    slab = alloc_slab_page(pa, s, alloc_gfp, node, oo_order(oo), cpu)
    if slab is None:
        oo = s.min
        slab = alloc_slab_page(pa, s, flags, node, oo_order(oo), cpu)
        if slab is None:
            return None
        stat(c, StatItem.ORDER_FALLBACK)
    slab.objects = oo_objects(oo)
    slab.inuse = 0
    slab.frozen = False
    start = slab.address + s.red_left_pad if s.red_left_pad else slab.address
    slab.freelist = start
    p = start
    for _ in range(slab.objects - 1):
        set_freepointer(mem, s, p, p + s.size)
        p += s.size
    set_freepointer(mem, s, p, 0)
    return slab


def node_match(slab: Slab, node: int) -> bool:
    """The slab is on the node asked for (any node for NUMA_NO_NODE)."""
    return node == NUMA_NO_NODE or slab.nid == node


def slab_alloc_node_fast(mem: ObjectMemory, s: KmemCache, c: KmemCacheCpu, node: int) -> int | None:
    """The lockless branch of __slab_alloc_node(): the CPU freelist's first object, or None where the kernel
    calls __slab_alloc (no object, no cpu slab, or a cpu slab on another node)."""
    obj = c.freelist
    slab = c.slab
    if not obj or slab is None or not node_match(slab, node):
        return None
    c.freelist = get_freepointer(mem, s, obj)
    c.tid = next_tid(c.tid)
    stat(c, StatItem.ALLOC_FASTPATH)
    return obj


def do_slab_free_fast(mem: ObjectMemory, s: KmemCache, c: KmemCacheCpu, slab: Slab, head: int, tail: int,
                      cnt: int) -> bool:
    """The lockless branch of do_slab_free(): objects ``head``..``tail`` (``cnt`` of them, already chained)
    go in front of the CPU freelist; False where the kernel calls __slab_free (not the cpu slab)."""
    if slab is not c.slab:
        return False
    set_freepointer(mem, s, tail, c.freelist)
    c.freelist = head
    c.tid = next_tid(c.tid)
    stat(c, StatItem.FREE_FASTPATH, cnt)
    return True

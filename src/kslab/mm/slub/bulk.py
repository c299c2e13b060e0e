"""Bulk allocation and free (mm/slub.c kmem_cache_alloc_bulk, kmem_cache_free_bulk, kfree_bulk, 6.12).

``kmem_cache_alloc_bulk`` pops the CPU freelist object by object (ALLOC_FASTPATH each) and calls
___slab_alloc whenever it runs dry; on failure it frees what it took and returns nothing.
``kmem_cache_free_bulk`` frees the array from its end in detached freelists: objects of one slab, found with
a lookahead of three misses, chained and freed by one do_slab_free.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import KernelBug
from .allocator import SlubAllocator
from .fastpath import get_freepointer, next_tid, set_freepointer, stat
from .slab import NUMA_NO_NODE, Slab, StatItem
from .slowpath import ___slab_alloc
from .slub_def import KmemCache

KERNEL_SYMBOLS_612 = ("build_detached_freelist", "kmem_cache_free_bulk", "kfree_bulk", "kmem_cache_alloc_bulk",
                      "__kmem_cache_alloc_bulk")


@dataclass(slots=True)
class DetachedFreelist:
    """struct detached_freelist: ``cnt`` objects of ``slab`` chained from ``freelist`` to ``tail``."""

    slab: Slab
    s: KmemCache
    freelist: int
    tail: int
    cnt: int


def build_detached_freelist(a: SlubAllocator, s: KmemCache | None, size: int, p: list[int],
                            cpu: int) -> tuple[int, DetachedFreelist | None]:
    """Chain ``p[size-1]`` with the earlier objects of its slab, moving them to the end of ``p[:size]``;
    stops after three objects of other slabs. Returns how many objects are left at the front, and the chain
    (None when the object was a large kmalloc, freed at once, which only kfree_bulk's NULL cache allows)."""
    lookahead = 3
    size -= 1
    obj = p[size]
    slab = a.virt_to_slab(obj)
    if slab is None:
        if s is not None:
            raise KernelBug(f"kmem_cache_free_bulk({s.name}): {obj:#x} is not a slab object")
        a.free_large_kmalloc(obj, cpu)
        return size, None
    ds = slab.slab_cache if s is None else s
    df = DetachedFreelist(slab, ds, obj, obj, 1)
    set_freepointer(a.mm.mem, ds, obj, 0)
    same = size
    while size:
        size -= 1
        obj = p[size]
        if a.virt_to_slab(obj) is slab:
            set_freepointer(a.mm.mem, ds, obj, df.freelist)
            df.freelist = obj
            df.cnt += 1
            same -= 1
            if size != same:
                p[size], p[same] = p[same], p[size]
            continue
        lookahead -= 1
        if not lookahead:
            break
    if a.mm.explain is not None:
        a.mm.explain.step("build_detached_freelist", "chain", cache=ds.name, pfn=slab.page.pfn, cnt=df.cnt,
                          obj=df.freelist, left=same, lookahead=lookahead)
    return same, df


def kmem_cache_free_bulk(a: SlubAllocator, s: KmemCache | None, objects: list[int], cpu: int) -> None:
    """Free every object of ``objects`` (of cache ``s``; None: any cache or large kmalloc, as kfree_bulk),
    one do_slab_free per detached freelist."""
    p = list(objects)
    size = len(p)
    if a.mm.explain is not None:
        a.mm.explain.step("kmem_cache_free_bulk", "entry", cache=s.name if s is not None else "", size=size, cpu=cpu)
    while size:
        size, df = build_detached_freelist(a, s, size, p, cpu)
        if df is not None:
            a.check(df.s, cpu, NUMA_NO_NODE)
            a.do_slab_free(df.s, df.slab, df.freelist, df.tail, df.cnt, cpu)


def kfree_bulk(a: SlubAllocator, objects: list[int], cpu: int) -> None:
    kmem_cache_free_bulk(a, None, objects, cpu)


def kmem_cache_alloc_bulk(a: SlubAllocator, s: KmemCache, flags: int, size: int, cpu: int) -> list[int]:
    """``size`` objects of ``s`` on ``cpu`` (__kmem_cache_alloc_bulk), or none at all when memory runs out."""
    if not size:
        return []
    a.check(s, cpu, NUMA_NO_NODE)
    if a.mm.explain is not None:
        c = s.cpu_slab[cpu]
        a.mm.explain.step("kmem_cache_alloc_bulk_noprof", "entry", cache=s.name, size=size, cpu=cpu, flags=flags,
                          freelist=c.freelist, pfn=c.slab.page.pfn if c.slab is not None else 0)
    return __kmem_cache_alloc_bulk(a, s, flags, size, cpu)


def __kmem_cache_alloc_bulk(a: SlubAllocator, s: KmemCache, flags: int, size: int, cpu: int) -> list[int]:
    """The loop under the CPU's lock: the tid steps only around each ___slab_alloc and once at the end."""
    c = s.cpu_slab[cpu]
    mem = a.mm.mem
    ex = a.mm.explain
    p: list[int] = []
    fast = 0
    for i in range(size):
        obj = c.freelist
        if not obj:
            if ex is not None:
                ex.step("__kmem_cache_alloc_bulk", "slowpath", cache=s.name, i=i, size=size, fast=fast)
            c.tid = next_tid(c.tid)
            obj = ___slab_alloc(a.mm, s, flags, NUMA_NO_NODE, cpu)
            if not obj:
                if ex is not None:
                    ex.step("__kmem_cache_alloc_bulk", "failed", cache=s.name, i=i, size=size)
                kmem_cache_free_bulk(a, s, p, cpu)
                return []
            p.append(obj)
            continue
        c.freelist = get_freepointer(mem, s, obj)
        p.append(obj)
        fast += 1
        stat(c, StatItem.ALLOC_FASTPATH)
    c.tid = next_tid(c.tid)
    if ex is not None:
        ex.step("__kmem_cache_alloc_bulk", "done", cache=s.name, size=size, fast=fast, tid=c.tid)
    return p

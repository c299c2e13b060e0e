"""allocate_slab (order fallback) and the lockless fast paths of slab_alloc_node / do_slab_free (mm/slub.c, 6.12),
over kslab's buddy allocator."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slubhelp import boot

from kslab.mm.config import PAGE_SIZE, MachineConfig
from kslab.mm.gfp import __GFP_NORETRY, __GFP_NOWARN, GFP_KERNEL
from kslab.mm.page import MemMap, Page, PG_slab
from kslab.mm.page_alloc import PageAllocator
from kslab.mm.slub.fastpath import (
    alloc_kmem_cache_cpus,
    allocate_slab,
    do_slab_free_fast,
    get_freepointer,
    next_tid,
    slab_alloc_node_fast,
)
from kslab.mm.slub.geometry import oo_objects, oo_order
from kslab.mm.slub.slab import NUMA_NO_NODE, TID_STEP, KmemCacheCpu, ObjectMemory, Slab, StatItem
from kslab.mm.slub.slub_def import KmemCache


def machine(nodes: int = 1) -> PageAllocator:
    return PageAllocator(MachineConfig.build(cpus=nodes, nodes=nodes, mem="256M"), MemMap())


def kmalloc(name: str, nodes: int = 1) -> KmemCache:
    sl = boot(nodes, nodes)
    return next(s for s in sl.slab_caches if s.name == name)


def cpu_slab(pa: PageAllocator, mem: ObjectMemory, s: KmemCache, node: int = NUMA_NO_NODE) -> tuple[KmemCacheCpu,
                                                                                                     Slab]:
    """A CPU whose cpu slab is a fresh slab with its whole freelist taken (what ___slab_alloc's new-slab
    branch leaves: the freelist moves to the CPU, the slab keeps none and is frozen)."""
    c = alloc_kmem_cache_cpus(1)[0]
    slab = allocate_slab(pa, mem, s, c, GFP_KERNEL, node, 0)
    assert slab is not None
    c.freelist, slab.freelist = slab.freelist, 0
    slab.inuse, slab.frozen = slab.objects, True
    c.slab = slab
    return c, slab


def walk(mem: ObjectMemory, s: KmemCache, obj: int) -> list[int]:
    out = []
    while obj:
        out.append(obj)
        obj = get_freepointer(mem, s, obj)
    return out


def test_new_slab_threads_the_objects_in_address_order() -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-1k")
    c = alloc_kmem_cache_cpus(1)[0]
    slab = allocate_slab(pa, mem, s, c, GFP_KERNEL, NUMA_NO_NODE, 0)
    assert slab is not None and slab.slab_cache is s
    assert (slab.order, slab.objects, slab.inuse, slab.frozen) == (oo_order(s.oo), oo_objects(s.oo), 0, False)
    assert walk(mem, s, slab.freelist) == [slab.address + i * 1024 for i in range(8)]
    assert mem.words[slab.address + s.offset] == slab.address + 1024  # the pointer sits mid-object
    assert slab.page.flags & (1 << PG_slab)
    assert pa.nr_allocated_pages == 2


def test_order_fallback_when_the_buddy_allocator_is_fragmented() -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-4k")
    assert (oo_order(s.oo), oo_order(s.min)) == (3, 0)
    held: list[tuple[Page, int]] = []
    for order in range(10, 2, -1):  # take every block of order 3 and more
        while (page := pa.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY, order)) is not None:
            held.append((page, order))
    c = alloc_kmem_cache_cpus(1)[0]
    slab = allocate_slab(pa, mem, s, c, GFP_KERNEL, 0, 0)
    assert slab is not None and (slab.order, slab.objects) == (0, 1)
    assert c.stat[StatItem.ORDER_FALLBACK] == 1
    assert walk(mem, s, slab.freelist) == [slab.address]
    assert held


def test_fast_alloc_pops_the_cpu_freelist_and_steps_the_tid() -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-256")
    c, slab = cpu_slab(pa, mem, s)
    tid = c.tid
    got = [slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE) for _ in range(slab.objects)]
    assert got == [slab.address + i * 256 for i in range(slab.objects)]
    assert c.tid == tid + slab.objects * TID_STEP and c.stat[StatItem.ALLOC_FASTPATH] == slab.objects
    assert c.freelist == 0
    assert slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE) is None  # empty: the kernel takes __slab_alloc
    assert c.tid == tid + slab.objects * TID_STEP


def test_fast_alloc_refuses_another_node_and_a_missing_slab() -> None:
    pa, mem = machine(2), ObjectMemory()
    s = kmalloc("kmalloc-64", 2)
    c, slab = cpu_slab(pa, mem, s, node=1)
    assert slab.nid == 1
    before = (c.freelist, c.tid)
    assert slab_alloc_node_fast(mem, s, c, 0) is None
    assert (c.freelist, c.tid) == before
    assert slab_alloc_node_fast(mem, s, c, 1) == slab.address
    assert slab_alloc_node_fast(mem, s, KmemCacheCpu(), NUMA_NO_NODE) is None


def test_fast_free_pushes_onto_the_cpu_freelist() -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-128")
    c, slab = cpu_slab(pa, mem, s)
    a = slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE)
    b = slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE)
    assert a is not None and b is not None
    head_before = c.freelist
    assert do_slab_free_fast(mem, s, c, slab, a, a, 1)
    assert c.freelist == a and get_freepointer(mem, s, a) == head_before
    assert slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE) == a  # LIFO: the object just freed comes back
    assert c.stat[StatItem.FREE_FASTPATH] == 1


def test_fast_free_of_another_slab_goes_to_the_slow_path() -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-512")
    c, _ = cpu_slab(pa, mem, s)
    other = allocate_slab(pa, mem, s, c, GFP_KERNEL, NUMA_NO_NODE, 0)
    assert other is not None
    before = (c.freelist, c.tid, dict(mem.words))
    assert not do_slab_free_fast(mem, s, c, other, other.address, other.address, 1)
    assert (c.freelist, c.tid, mem.words) == before


def test_bulk_free_counts_every_object() -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-32")
    c, slab = cpu_slab(pa, mem, s)
    objs = [slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE) for _ in range(3)]
    x, y, z = (o for o in objs if o is not None)
    # a detached freelist z -> y -> x, as build_detached_freelist chains it
    mem.words[z + s.offset] = y
    mem.words[y + s.offset] = x
    rest = c.freelist
    assert do_slab_free_fast(mem, s, c, slab, z, x, 3)
    assert walk(mem, s, c.freelist)[:4] == [z, y, x, rest]
    assert c.stat[StatItem.FREE_FASTPATH] == 3 and c.tid == next_tid(next_tid(next_tid(next_tid(0))))


def test_tids_start_at_the_cpu_number() -> None:
    assert [c.tid for c in alloc_kmem_cache_cpus(4)] == [0, 1, 2, 3]
    assert next_tid(3) == 3 + TID_STEP


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=200))
def test_fast_paths_conserve_objects(ops: list[bool]) -> None:
    """Any mix of fast allocations and frees: allocated + on the CPU freelist = the slab's objects, no
    object twice, every object inside the slab on a stride boundary."""
    pa, mem = machine(), ObjectMemory()
    s = kmalloc("kmalloc-192")
    c, slab = cpu_slab(pa, mem, s)
    live: list[int] = []
    for alloc in ops:
        if alloc:
            obj = slab_alloc_node_fast(mem, s, c, NUMA_NO_NODE)
            if obj is None:
                assert len(live) == slab.objects
                continue
            assert obj not in live
            live.append(obj)
        elif live:
            obj = live.pop(len(live) // 2)
            assert do_slab_free_fast(mem, s, c, slab, obj, obj, 1)
        free = walk(mem, s, c.freelist)
        assert sorted(free + live) == [slab.address + i * s.size for i in range(slab.objects)]
        assert all((o - slab.address) % s.size == 0 and o - slab.address < PAGE_SIZE << slab.order for o in free)


@pytest.mark.parametrize("name", ["kmalloc-8", "kmalloc-96", "kmalloc-8k"])
def test_every_object_fits_in_the_slab(name: str) -> None:
    pa, mem = machine(), ObjectMemory()
    s = kmalloc(name)
    slab = allocate_slab(pa, mem, s, alloc_kmem_cache_cpus(1)[0], GFP_KERNEL, NUMA_NO_NODE, 0)
    assert slab is not None
    objs = walk(mem, s, slab.freelist)
    assert len(objs) == slab.objects and objs[-1] + s.size <= slab.address + (PAGE_SIZE << slab.order)

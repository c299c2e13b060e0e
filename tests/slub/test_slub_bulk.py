"""kmem_cache_alloc_bulk / kmem_cache_free_bulk / kfree_bulk as 6.12 does them (mm/slub.c)."""

from __future__ import annotations

from slowhelp import allocator, cache, check_invariants, objects_of, st
from slubhelp import boot

from kslab.mm.config import MachineConfig
from kslab.mm.page import MemMap
from kslab.mm.page_alloc import PageAllocator
from kslab.mm.slub.allocator import SlubAllocator
from kslab.mm.slub.bulk import build_detached_freelist, kfree_bulk, kmem_cache_alloc_bulk, kmem_cache_free_bulk
from kslab.mm.slub.fastpath import TID_STEP, get_freepointer
from kslab.mm.slub.slab import StatItem

S = StatItem


def test_alloc_bulk_takes_the_cpu_freelist_and_the_slow_path_when_dry() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    p = kmem_cache_alloc_bulk(a, s, 0, 20, 0)
    assert len(p) == len(set(p)) == 20
    slabs = [a.virt_to_slab(x) for x in p]
    assert all(x is not None for x in slabs)
    assert p[:8] == objects_of(s, slabs[0])  # type: ignore[arg-type]
    assert (st(s, S.ALLOC_SLOWPATH), st(s, S.ALLOC_FASTPATH), st(s, S.ALLOC_SLAB)) == (3, 17, 3)
    assert st(s, S.DEACTIVATE_BYPASS) == 2
    # tid: one step before each ___slab_alloc, its own (bypass, load_freelist), and one at the end
    assert s.cpu_slab[0].tid == (2 + 3 + 3 + 1) * TID_STEP
    check_invariants(a, s, set(p))
    assert kmem_cache_alloc_bulk(a, s, 0, 0, 0) == []


def test_detached_freelists_with_the_lookahead() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    objs = kmem_cache_alloc_bulk(a, s, 0, 16, 0)
    x, y = objs[:8], objs[8:]  # slab x is full and off lists, slab y is the cpu slab
    p = [x[0], y[0], x[1], y[1], x[2]]
    left, df = build_detached_freelist(a, s, len(p), p, 0)
    assert df is not None and left == 2 and df.cnt == 3 and df.tail == x[2]
    assert [df.freelist, get_freepointer(a.mm.mem, s, x[0]), get_freepointer(a.mm.mem, s, x[1])] == x[:3]
    assert p[:2] == [y[1], y[0]] and sorted(p[2:]) == sorted(x[:3])
    # three objects of other slabs end the search: x[3] after them stays for the next round
    q = [x[3], y[2], y[3], y[4], x[4]]
    left, df = build_detached_freelist(a, s, len(q), q, 0)
    assert df is not None and df.cnt == 1 and left == 4


def test_free_bulk_one_do_slab_free_per_slab() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    objs = kmem_cache_alloc_bulk(a, s, 0, 16, 0)
    x, y = objs[:8], objs[8:]
    kmem_cache_free_bulk(a, s, [x[0], y[0], x[1], y[1], x[2]], 0)
    # x's three objects in one __slab_free (the full slab goes per-CPU), y's two onto the CPU freelist
    assert (st(s, S.FREE_SLOWPATH), st(s, S.CPU_PARTIAL_FREE), st(s, S.FREE_FASTPATH)) == (1, 1, 2)
    xs = a.virt_to_slab(x[0])
    assert xs is not None and xs.inuse == 5
    check_invariants(a, s, set(objs) - {x[0], x[1], x[2], y[0], y[1]})


def test_kfree_bulk_frees_large_kmallocs_and_objects_of_several_caches() -> None:
    a = allocator()
    pages = a.mm.pa.nr_allocated_pages
    big = a.kmalloc(30000, 0)
    small = [a.kmalloc(64, 0), a.kmalloc(4000, 0), a.kmalloc(64, 0)]
    kfree_bulk(a, [small[0], big, small[1], small[2]], 0)
    assert not a.large
    for name in ("kmalloc-64", "kmalloc-4k"):
        check_invariants(a, cache(a, name), set())
    assert a.mm.pa.nr_allocated_pages == pages + sum(1 << x.order for x in a.mm.slabs.values())


def test_alloc_bulk_out_of_memory_gives_everything_back() -> None:
    a = SlubAllocator(boot(), PageAllocator(MachineConfig.build(cpus=1, nodes=1, mem="64M"), MemMap()))
    s = cache(a, "kmalloc-8k")
    assert kmem_cache_alloc_bulk(a, s, 0, 10000, 0) == []
    check_invariants(a, s, set())
    assert st(s, S.ALLOC_SLAB) > 100

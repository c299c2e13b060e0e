"""The slow paths of 6.12's SLUB, branch by branch, with the SLUB_STATS counters 6.12 increments on each
(___slab_alloc, get_partial_node, get_any_partial, deactivate_slab, __slab_free, put_cpu_partial,
__put_partials, flush_cpu_slab, __kmem_cache_do_shrink, get_slabinfo/cache_show).

kmalloc-4k on these machines: 8 objects per order-3 slab, min_partial 6, cpu_partial_slabs 2.
"""

from __future__ import annotations

import pytest
from slowhelp import allocator, cache, chain, check_invariants, cpu_partials, objects_of, st
from slubhelp import read_data

from kslab.mm.errors import ConfigError, KernelBug
from kslab.mm.page import Page
from kslab.mm.slub.allocator import SlubAllocator
from kslab.mm.slub.fastpath import TID_STEP
from kslab.mm.slub.flags import SLAB_TYPESAFE_BY_RCU
from kslab.mm.slub.geometry import oo_objects
from kslab.mm.slub.node import add_partial, cache_show
from kslab.mm.slub.partial import __flush_cpu_slab, rcu_barrier
from kslab.mm.slub.slab import NUMA_NO_NODE, Slab, StatItem
from kslab.mm.slub.slab_common import kmem_cache_create
from kslab.mm.slub.slub_def import ZERO_SIZE_PTR, KmemCache

S = StatItem


def full_slabs(a: SlubAllocator, s: KmemCache, n: int, cpu: int = 0, node: int = NUMA_NO_NODE
               ) -> list[tuple[Slab, list[int]]]:
    """Allocate n slabs' worth of objects on ``cpu``: each slab, with its objects, in allocation order."""
    per = oo_objects(s.oo)
    objs = [a.kmem_cache_alloc(s, cpu, node) for _ in range(n * per)]
    out = []
    for i in range(n):
        group = objs[i * per:(i + 1) * per]
        slab = a.virt_to_slab(group[0])
        assert slab is not None and all(a.virt_to_slab(o) is slab for o in group)
        out.append((slab, group))
    return out


def test_geometry_assumed_by_these_tests() -> None:
    for cpus, nodes in ((1, 1), (2, 2)):
        s = cache(allocator(cpus, nodes), "kmalloc-4k")
        assert (oo_objects(s.oo), s.min_partial, s.cpu_partial_slabs) == (8, 6, 2)


def test_new_slab_then_cpu_slab_hits() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    (slab, objs), = full_slabs(a, s, 1)
    assert objs == objects_of(s, slab)  # address order
    assert (st(s, S.ALLOC_SLOWPATH), st(s, S.ALLOC_SLAB), st(s, S.ALLOC_FASTPATH)) == (1, 1, 7)
    assert slab.frozen and s.cpu_slab[0].slab is slab and slab.inuse == 8
    assert (s.node[0].nr_slabs, s.node[0].total_objects) == (1, 8)
    check_invariants(a, s, set(objs))


def test_refill_from_the_cpu_slabs_own_remote_frees() -> None:
    a = allocator(2)
    s = cache(a, "kmalloc-4k")
    (slab, objs), = full_slabs(a, s, 1, cpu=0)
    a.kmem_cache_free(s, objs[3], 1)  # another CPU frees into the frozen cpu slab
    a.kmem_cache_free(s, objs[5], 1)
    assert (st(s, S.FREE_SLOWPATH, 1), st(s, S.FREE_FROZEN, 1)) == (2, 2)
    assert chain(a, s, slab.freelist) == [objs[5], objs[3]] and slab.inuse == 6
    assert a.kmem_cache_alloc(s, 0) == objs[5]
    assert (st(s, S.ALLOC_REFILL, 0), st(s, S.ALLOC_SLAB, 0)) == (1, 1)
    assert slab.frozen and slab.freelist == 0 and slab.inuse == 8
    assert a.kmem_cache_alloc(s, 0) == objs[3]  # the rest moved to the CPU freelist: a fast-path hit
    assert st(s, S.ALLOC_FASTPATH, 0) == 8
    check_invariants(a, s, set(objs))


def test_exhausted_cpu_slab_is_bypassed() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    (first, _), (second, _) = full_slabs(a, s, 2)
    assert st(s, S.DEACTIVATE_BYPASS) == 1 and st(s, S.ALLOC_SLAB) == 2
    assert not first.frozen and not first.node_partial and s.cpu_slab[0].slab is second
    assert s.node[0].nr_partial == 0 and s.node[0].nr_slabs == 2


def test_free_to_a_full_slab_puts_it_on_the_cpu_partial_list_and_alloc_takes_it_back() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    (first, objs), (second, _) = full_slabs(a, s, 2)
    a.kmem_cache_free(s, objs[2], 0)
    assert (st(s, S.FREE_SLOWPATH), st(s, S.CPU_PARTIAL_FREE), st(s, S.FREE_FROZEN)) == (1, 1, 0)
    assert cpu_partials(s, 0) == [first] and first.slabs == 1 and not first.frozen
    got = a.kmem_cache_alloc(s, 0)  # the cpu slab is empty: the per-CPU partial slab comes next
    assert got == objs[2]
    assert (st(s, S.CPU_PARTIAL_ALLOC), st(s, S.DEACTIVATE_BYPASS), st(s, S.ALLOC_SLAB)) == (1, 2, 2)
    assert s.cpu_slab[0].slab is first and first.frozen and s.cpu_slab[0].partial is None
    assert not second.frozen


def test_drain_when_the_cpu_partial_list_is_full() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 4)
    for _slab, objs in groups[:3]:
        a.kmem_cache_free(s, objs[0], 0)
    # two slabs fill cpu_partial_slabs; the third free drains them to the node list first
    assert st(s, S.CPU_PARTIAL_FREE) == 3 and st(s, S.CPU_PARTIAL_DRAIN) == 1
    assert st(s, S.FREE_ADD_PARTIAL) == 2
    assert cpu_partials(s, 0) == [groups[2][0]] and groups[2][0].slabs == 1
    # __put_partials walks the list from its head (the newest) and adds at the tail
    assert s.node[0].partial == [groups[1][0], groups[0][0]]
    check_invariants(a, s, {o for _, objs in groups for o in objs[1:]} | set(groups[3][1]))


def test_node_partial_refills_the_cpu_partial_list_up_to_half() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 6)
    for _slab, objs in groups[:5]:
        a.kmem_cache_free(s, objs[0], 0)  # the drains leave slabs 0-3 on the node list, 4 per-CPU
    a.flush_cpu_slab(s, 0)
    n = s.node[0]
    assert n.nr_partial == 5 and s.cpu_slab[0].slab is None
    assert st(s, S.CPUSLAB_FLUSH) == 1 and st(s, S.DEACTIVATE_FULL) == 1  # the full cpu slab is left off lists
    order = list(n.partial)
    before = st(s, S.ALLOC_FROM_PARTIAL)
    a.kmem_cache_alloc(s, 0)
    # the first slab for the CPU, then cpu_partial_slabs / 2 + 1 = 2 more onto its partial list
    assert st(s, S.ALLOC_FROM_PARTIAL) - before == 1 and st(s, S.CPU_PARTIAL_NODE) == 2
    assert s.cpu_slab[0].slab is order[0] and cpu_partials(s, 0) == [order[2], order[1]]
    assert n.partial == order[3:]
    live = {o for _, objs in groups[:5] for o in objs[1:]} | set(groups[5][1]) | {order[0].address}
    check_invariants(a, s, live)


def test_deactivate_with_remote_frees_goes_to_the_tail() -> None:
    a = allocator(2)
    s = cache(a, "kmalloc-4k")
    slab, objs = full_slabs(a, s, 1, cpu=1)[0]
    groups = full_slabs(a, s, 2, cpu=0)
    a.kmem_cache_free(s, groups[0][1][0], 0)
    a.kmem_cache_free(s, groups[0][1][1], 0)  # slab B: per-CPU partial of CPU 0
    a.flush_cpu_slab(s, 0)
    assert s.node[0].partial == [groups[0][0]]
    a.kmem_cache_free(s, objs[0], 0)  # a remote free into CPU 1's cpu slab
    a.kmem_cache_free(s, objs[1], 1)  # and a local one, onto CPU 1's freelist
    assert st(s, S.FREE_FROZEN, 0) == 1 and st(s, S.FREE_FASTPATH, 1) == 1
    a.flush_cpu_slab(s, 1)
    assert st(s, S.DEACTIVATE_REMOTE_FREES, 1) == 1 and st(s, S.DEACTIVATE_TO_TAIL, 1) == 1
    assert s.node[0].partial == [groups[0][0], slab] and slab.inuse == 6 and not slab.frozen


def test_deactivate_without_remote_frees_goes_to_the_head() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    slab, objs = full_slabs(a, s, 1)[0]
    a.kmem_cache_free(s, objs[7], 0)
    a.flush_cpu_slab(s, 0)
    assert st(s, S.DEACTIVATE_TO_HEAD) == 1 and s.node[0].partial == [slab]


def test_free_that_empties_a_node_partial_slab() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 8)
    for _slab, objs in groups[:7]:
        a.kmem_cache_free(s, objs[0], 0)
    a.flush_cpu_slab(s, 0)
    n = s.node[0]
    assert n.nr_partial == 7 >= s.min_partial
    victim, objs = groups[0]
    assert victim.node_partial
    pages = a.mm.pa.nr_allocated_pages
    for o in objs[1:]:
        a.kmem_cache_free(s, o, 0)
    assert (st(s, S.FREE_REMOVE_PARTIAL), st(s, S.FREE_SLAB)) == (1, 1)
    assert victim not in n.partial and n.nr_partial == 6 and n.nr_slabs == 7
    assert a.mm.pa.nr_allocated_pages == pages - 8 and a.virt_to_slab(objs[0]) is None
    _second, objs = groups[1]  # still min_partial partial slabs: discarded too
    for o in objs[1:]:
        a.kmem_cache_free(s, o, 0)
    assert st(s, S.FREE_SLAB) == 2 and n.nr_partial == 5
    keep, objs = groups[2]  # below min_partial an emptied slab stays on the list
    for o in objs[1:]:
        a.kmem_cache_free(s, o, 0)
    assert keep.inuse == 0 and keep in n.partial and st(s, S.FREE_SLAB) == 2 and n.nr_partial == 5
    check_invariants(a, s, {o for _, objs in groups[3:7] for o in objs[1:]} | set(groups[7][1]))


def test_empty_slabs_leaving_the_cpu_are_discarded_beyond_min_partial() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 9)
    for _slab, objs in groups[:8]:
        a.kmem_cache_free(s, objs[0], 0)  # the drains leave slabs 0-5 on the node list, 7 and 6 per-CPU
    n = s.node[0]
    assert n.nr_partial == 6 == s.min_partial and cpu_partials(s, 0) == [groups[7][0], groups[6][0]]
    _cpu_slab, cobjs = groups[8]
    for o in cobjs:
        a.kmem_cache_free(s, o, 0)  # the cpu slab empties on the CPU freelist (fast path)
    seven, sobjs = groups[7]
    for o in sobjs[1:]:
        a.kmem_cache_free(s, o, 0)  # a per-CPU partial slab empties: it stays where it is
    assert seven.inuse == 0 and not seven.node_partial and st(s, S.FREE_SLAB) == 0
    pages = a.mm.pa.nr_allocated_pages
    a.flush_cpu_slab(s, 0)
    # deactivate_slab discards the empty cpu slab, __put_partials the empty partial slab, and adds slab 6
    assert (st(s, S.DEACTIVATE_EMPTY), st(s, S.FREE_SLAB), st(s, S.CPUSLAB_FLUSH)) == (2, 2, 1)
    assert st(s, S.FREE_ADD_PARTIAL) == 6 + 1 and n.partial[-1] is groups[6][0]
    assert a.mm.pa.nr_allocated_pages == pages - 16 and n.nr_slabs == 7
    check_invariants(a, s, {o for _, objs in groups[:7] for o in objs[1:]})


def test_any_partial_takes_a_slab_of_another_node() -> None:
    a = allocator(2, 2)
    s = cache(a, "kmalloc-4k")
    assert s.remote_node_defrag_ratio == 1000
    groups = full_slabs(a, s, 8, cpu=1)  # CPU 1 is on node 1
    assert all(slab.nid == 1 for slab, _ in groups)
    for _slab, objs in groups[:7]:
        a.kmem_cache_free(s, objs[0], 1)
    a.flush_cpu_slab(s, 1)
    assert s.node[1].nr_partial == 7 > s.min_partial and s.node[0].nr_partial == 0
    first = s.node[1].partial[0]
    obj = a.kmem_cache_alloc(s, 0)  # CPU 0, node 0: nothing local, node 1 has more than min_partial
    assert a.virt_to_slab(obj) is first and st(s, S.ALLOC_FROM_PARTIAL, 0) == 1 and st(s, S.ALLOC_SLAB, 0) == 0


@pytest.mark.parametrize("cycles", [1001, 1023])
def test_any_partial_skipped_by_the_defrag_ratio(cycles: int) -> None:
    a = allocator(2, 2)
    a.mm.get_cycles = lambda: cycles
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 8, cpu=1)
    for _slab, objs in groups[:7]:
        a.kmem_cache_free(s, objs[0], 1)
    a.flush_cpu_slab(s, 1)
    obj = a.kmem_cache_alloc(s, 0)
    slab = a.virt_to_slab(obj)
    assert slab is not None and slab.nid == 0 and st(s, S.ALLOC_SLAB, 0) == 1


def test_any_partial_needs_more_than_min_partial() -> None:
    a = allocator(2, 2)
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 7, cpu=1)
    for _slab, objs in groups[:6]:
        a.kmem_cache_free(s, objs[0], 1)
    a.flush_cpu_slab(s, 1)
    assert s.node[1].nr_partial == 6 == s.min_partial
    a.kmem_cache_alloc(s, 0)
    assert st(s, S.ALLOC_SLAB, 0) == 1 and st(s, S.ALLOC_FROM_PARTIAL, 0) == 0


def test_node_mismatch_deactivates_and_allocates_on_the_node_asked_for() -> None:
    a = allocator(2, 2)
    s = cache(a, "kmalloc-4k")
    first = a.kmem_cache_alloc(s, 0)
    slab0 = a.virt_to_slab(first)
    assert slab0 is not None and slab0.nid == 0
    obj = a.kmem_cache_alloc(s, 0, node=1)
    slab1 = a.virt_to_slab(obj)
    assert slab1 is not None and slab1.nid == 1 and s.cpu_slab[0].slab is slab1
    assert st(s, S.ALLOC_NODE_MISMATCH) == 1 and st(s, S.DEACTIVATE_TO_HEAD) == 1
    assert s.node[0].partial == [slab0] and not slab0.frozen
    assert (s.node[0].nr_slabs, s.node[1].nr_slabs) == (1, 1)


def test_cpu_partial_of_another_node_is_put_back_on_its_node() -> None:
    a = allocator(2, 2)
    s = cache(a, "kmalloc-4k")
    (slab0, objs), _ = full_slabs(a, s, 2, cpu=0)
    a.kmem_cache_free(s, objs[0], 0)
    assert cpu_partials(s, 0) == [slab0]
    a.kmem_cache_alloc(s, 0, node=1)  # the cpu slab (node 0) is full: mismatch, and the partial slab too
    assert s.node[0].partial[-1] is slab0 and st(s, S.FREE_ADD_PARTIAL) == 1
    assert s.cpu_slab[0].partial is None and st(s, S.CPU_PARTIAL_ALLOC) == 0


def test_shrink_discards_empty_slabs_and_promotes_the_fullest() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 5)
    live: set[int] = set()
    frees = [8, 1, 3, 8, 2]  # objects freed from slabs 0..4
    for (_slab, objs), k in zip(groups, frees, strict=True):
        for o in objs[:k]:
            a.kmem_cache_free(s, o, 0)
        live |= set(objs[k:])
    pages = a.mm.pa.nr_allocated_pages
    assert a.kmem_cache_shrink(s) == 1
    n = s.node[0]
    assert [x.objects - x.inuse for x in n.partial] == [1, 2, 3]
    assert n.nr_partial == 3 and n.nr_slabs == 3 and a.mm.pa.nr_allocated_pages == pages - 16
    assert s.cpu_slab[0].slab is None and s.cpu_slab[0].partial is None
    check_invariants(a, s, live)
    for o in live:
        a.kmem_cache_free(s, o, 0)
    assert a.kmem_cache_shrink(s) == 0 and n.nr_slabs == 0 and n.total_objects == 0


def test_slabinfo_lines() -> None:
    a = allocator()
    s = cache(a, "kmalloc-4k")
    groups = full_slabs(a, s, 3)
    a.kmem_cache_free(s, groups[0][1][0], 0)
    a.kmem_cache_free(s, groups[1][1][0], 0)
    a.kmem_cache_free(s, groups[2][1][0], 0)
    lines = a.slabinfo()
    assert lines[0] == "slabinfo - version: 2.1"
    assert lines[1].startswith("# name            <active_objs> <num_objs> <objsize>")
    # per-CPU partial and cpu slab free objects count as active; nothing is on the node list yet
    tail = "   4096    8    8 : tunables    0    0    0 : slabdata      3      3      0"
    assert "kmalloc-4k            24     24" + tail in lines
    a.flush_cpu_slab(s, 0)
    assert "kmalloc-4k            21     24" + tail in a.slabinfo()
    assert len(lines) == 2 + len(a.sl.slab_caches)


def test_kmalloc_and_kfree() -> None:
    a = allocator()
    x = a.kmalloc(3000, 0)
    s = cache(a, "kmalloc-4k")
    assert a.virt_to_slab(x) is not None and s.node[0].nr_slabs == 1
    a.kfree(x, 0)
    assert st(s, S.FREE_FASTPATH) == 1
    assert a.kmalloc(0, 0) == ZERO_SIZE_PTR
    a.kfree(ZERO_SIZE_PTR, 0)
    a.kfree(0, 0)
    pages = a.mm.pa.nr_allocated_pages
    big = a.kmalloc(20000, 0)
    assert a.mm.pa.nr_allocated_pages == pages + 8
    a.kfree(big, 0)
    assert a.mm.pa.nr_allocated_pages == pages
    with pytest.raises(KernelBug):
        a.kfree(big, 0)


def test_free_to_the_wrong_cache_is_a_bug() -> None:
    a = allocator()
    x = a.kmem_cache_alloc(cache(a, "kmalloc-4k"), 0)
    with pytest.raises(KernelBug, match="an object of kmalloc-4k"):
        a.kmem_cache_free(cache(a, "kmalloc-2k"), x, 0)


def test_bad_cpus_are_refused_and_debug_caches_served() -> None:
    a = allocator()
    with pytest.raises(ConfigError, match="CPU 3"):
        a.kmem_cache_alloc(cache(a, "kmalloc-4k"), 3)
    b = allocator(slab_debug="")
    assert b.kmalloc(64, 0)  # the debug paths: tests/slub/test_slub_debug_paths.py


def test_without_cpu_partial_full_slabs_go_to_the_node_list() -> None:
    a = allocator(CONFIG_SLUB_CPU_PARTIAL=False)
    s = cache(a, "kmalloc-4k")
    assert s.cpu_partial_slabs == 0 and not a.mm.cpu_partial
    groups = full_slabs(a, s, 3)
    n = s.node[0]
    a.kmem_cache_free(s, groups[0][1][0], 0)  # a full slab: straight to its node's list
    a.kmem_cache_free(s, groups[1][1][0], 0)
    assert (st(s, S.FREE_ADD_PARTIAL), st(s, S.CPU_PARTIAL_FREE)) == (2, 0)
    assert n.partial == [groups[0][0], groups[1][0]] and s.cpu_slab[0].partial is None
    a.flush_cpu_slab(s, 0)
    a.kmem_cache_alloc(s, 0)  # one slab off the node list, none onto a per-CPU list
    assert st(s, S.ALLOC_FROM_PARTIAL) == 1 and st(s, S.CPU_PARTIAL_NODE) == 0
    assert n.partial == [groups[1][0]] and s.cpu_slab[0].slab is groups[0][0]
    check_invariants(a, s, {o for _, objs in groups for o in objs} - {groups[1][1][0]})


def test_typesafe_by_rcu_slabs_wait_for_the_grace_period() -> None:
    a = allocator()
    s = kmem_cache_create(a.sl, "rcu_test", 4096, 0, SLAB_TYPESAFE_BY_RCU)
    assert s is not None
    a.kmem_cache_open(s)
    groups = full_slabs(a, s, 2)
    pages = a.mm.pa.nr_allocated_pages
    for o in groups[0][1]:
        a.kmem_cache_free(s, o, 0)
    for o in groups[1][1]:
        a.kmem_cache_free(s, o, 0)
    assert a.kmem_cache_shrink(s) == 0 and s.node[0].nr_slabs == 0
    assert a.mm.pa.nr_allocated_pages == pages and len(a.mm.rcu_free) == 2
    rcu_barrier(a.mm)
    assert a.mm.pa.nr_allocated_pages == pages - 2 * (1 << groups[0][0].order) and not a.mm.slabs


def test_slabinfo_lines_as_the_kernel_prints_them() -> None:
    """cache_show against S1's /proc/slabinfo at 3-fork: the node counters set to the kernel's figures (free
    objects put on node partial slabs) print the kernel's line, widths and geometry columns included."""
    lines = read_data("S1-slabinfo.3-fork.kmalloc")
    a = allocator()
    assert a.slabinfo()[:2] == lines[:2]
    checked = 0
    for line in lines[2:]:
        f = line.split()
        s = cache(a, f[0])
        active, num, slabs = int(f[1]), int(f[2]), int(f[13])
        n = s.node[0]
        n.nr_slabs, n.total_objects = slabs, num
        free = num - active
        per = oo_objects(s.oo)
        pfn = 1 << 20
        while free:
            slab = Slab(s, Page(pfn), 0, per, inuse=per - min(free, per))
            free -= per - slab.inuse
            add_partial(n, slab, S.DEACTIVATE_TO_TAIL)
            pfn += 1
        assert cache_show(s) == line
        checked += 1
    assert checked == len(lines) - 2 >= 30


def test_flush_all_visits_only_cpus_with_slabs_and_a_dead_cpu_flush_always_steps_the_tid() -> None:
    a = allocator(2)
    s = cache(a, "kmalloc-4k")
    x = a.kmem_cache_alloc(s, 0)
    tid1 = s.cpu_slab[1].tid
    a.flush_all(s)  # CPU 1 has nothing: has_cpu_slab is false and its work is skipped
    assert s.cpu_slab[1].tid == tid1 and st(s, S.CPUSLAB_FLUSH) == 1 and s.cpu_slab[0].slab is None
    __flush_cpu_slab(a.mm, s, 1)  # slub_cpu_dead's flush steps the tid even with no cpu slab
    assert s.cpu_slab[1].tid == tid1 + TID_STEP and st(s, S.CPUSLAB_FLUSH, 1) == 0
    slab = a.virt_to_slab(x)
    assert slab is not None and s.node[0].partial == [slab] and st(s, S.DEACTIVATE_TO_HEAD) == 1

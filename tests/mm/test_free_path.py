"""Every branch of the free path, in the order of the seed's walk through kfree (spec §5, §7.5-§7.9).

kfree -> NULL/ZERO_SIZE_PTR -> virt_to_cache -> __cache_free -> ___cache_free -> cache_free_alien ->
__cache_free_alien -> __drain_alien_cache -> hit/miss -> cache_flusharray -> free_block ->
slab_put_obj -> slabs_destroy -> slab_destroy -> kmem_freepages.
"""

from __future__ import annotations

import pytest
from slabhelp import ac, boot, cols, locate, node

from kslab.mm.gfp import GFP_KERNEL
from kslab.mm.page import PG_active, PG_slab
from kslab.mm.slab_def import SLAB_HWCACHE_ALIGN, SLAB_TYPESAFE_BY_RCU

NOT_SLAB = "virt_to_cache: Object is not a Slab page!"


def ctor(_obj: int) -> None:
    pass


class PageFreeLog:
    """Chain onto page_alloc.hooks.on_page_free and record (pfn, order) of every freed block."""

    def __init__(self, k):
        self.k = k
        self.log: list[tuple[int, int]] = []
        self.prev = k.page_alloc.hooks.on_page_free
        k.page_alloc.hooks.on_page_free = self

    def __call__(self, page, order):
        self.log.append((page.pfn, order))
        if self.prev is not None:
            self.prev(page, order)


# ---- kfree(NULL), ZERO_SIZE_PTR, non-slab pointers ----------------------------------------------------

@pytest.mark.parametrize("ptr", [0, 1, 15, 16])
def test_kfree_null_and_zero_size_ptr(ptr):
    k = boot(cpus=2)
    events = []
    k.event_hook = lambda name, c, p, *rest: events.append((name, p))
    before_dmesg = list(k.dmesg)
    before = k.slabinfo()
    k.kfree(ptr)
    assert events == [("kfree", ptr)]  # the event fires first, unconditionally
    assert k.dmesg == before_dmesg
    assert k.slabinfo() == before
    assert k.ksize(ptr) == 0
    assert k.kmalloc(0) == 16
    k.kfree(k.kmalloc(0))
    assert k.slabinfo() == before


def test_kfree_non_slab_page_warns_once_and_is_ignored():
    k = boot(cpus=2)
    page = k.page_alloc.alloc_pages_node(0, GFP_KERNEL, 0, 0)
    assert page is not None and not page.flags & (1 << PG_slab)
    before = k.slabinfo()
    allocated = k.page_alloc.nr_allocated_pages
    k.kfree(page.address + 64)
    assert k.dmesg.count(NOT_SLAB) == 1
    assert k.slabinfo() == before
    assert k.page_alloc.nr_allocated_pages == allocated  # the page is untouched
    # a second bad free (even a never-allocated address) does not warn again
    k.kfree(page.address)
    k.kfree(page.address + (1 << 30))
    assert k.dmesg.count(NOT_SLAB) == 1
    assert k.ksize(page.address) == 0
    k.check()


def test_kfree_stale_pointer_after_slab_destroyed():
    k = boot(cpus=1, slab_nomerge=True)
    c = k.kmem_cache_create("c", 1000)
    p = k.kmem_cache_alloc(c)
    k.kmem_cache_free(c, p)
    k.kmem_cache_shrink(c)
    assert k.page_of(p) is None  # the slab's pages went back to the buddy allocator
    k.kfree(p)
    assert k.dmesg.count(NOT_SLAB) == 1
    assert cols(k, "c") == (0, 0, 0, 0, 0)
    k.check()


# ---- hit, miss, flush to shared, flush to free_block ----------------------------------------------

def test_freehit_pushes_on_top():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    a, b = k.kmem_cache_alloc(x), k.kmem_cache_alloc(x)
    assert len(ac(x, 0)) == 14
    hits, paths = x.stats.freehit, x.paths.free_hit
    k.kfree(a)
    assert ac(x, 0)[-1] == a and len(ac(x, 0)) == 15
    k.kmem_cache_free(x, b)
    assert ac(x, 0)[-2:] == [a, b]
    assert x.stats.freehit == hits + 2 and x.paths.free_hit == paths + 2
    assert x.stats.freemiss == 0
    # an object freed on another CPU of the same node enters that CPU's array
    c = k.kmem_cache_alloc(x)
    k.kfree(c, cpu=1)
    assert ac(x, 1) == [c]


def test_freemiss_flush_to_shared_then_free_block():
    """Two nodes so that an alien drain can leave the shared array half full (room < batch)."""
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write("x 4 2 2") > 0
    n0 = node(x, 0)
    assert n0.shared.limit == 4 and ac(x, 0) == []
    objs = [k.kmem_cache_alloc(x, cpu=0) for _ in range(10)]
    assert all(k.page_of(o).nid == 0 for o in objs)
    assert len(ac(x, 0)) == 0
    # CPU 1 (node 1) frees three node-0 objects: they wait in its alien array
    for o in objs[7:]:
        k.kfree(o, cpu=1)
    alien = node(x, 1).alien[0]
    assert alien.entry == objs[7:]
    assert x.stats.node_frees == 3
    # cache_reap on CPU 1 drains that alien array into node 0's shared array
    k.run_cache_reap(1)
    assert alien.entry == [] and n0.shared.entry == objs[7:]
    # CPU 0: four hits fill its array
    for o in objs[:4]:
        k.kfree(o, cpu=0)
    assert ac(x, 0) == objs[:4]
    assert x.stats.freehit == 4 and x.stats.freemiss == 0
    # 5th free: miss; shared has room 1 < batch 2: only the oldest object moves, nothing to slabs
    free_before = n0.free_objects
    k.kfree(objs[4], cpu=0)
    assert n0.shared.entry == [*objs[7:], objs[0]]
    assert ac(x, 0) == [objs[1], objs[2], objs[3], objs[4]]
    assert n0.free_objects == free_before
    assert x.stats.freemiss == 1
    assert x.paths.flush_shared == 1 and x.paths.flush_shared_objects == 1 and x.paths.flush_free_block == 0
    # 6th free: shared full: the 2 oldest go back to their slab through free_block
    k.kfree(objs[5], cpu=0)
    assert ac(x, 0) == [objs[3], objs[4], objs[5]]
    assert n0.free_objects == free_before + 2
    assert x.paths.flush_free_block == 1 and x.paths.flush_free_block_objects == 2
    assert x.stats.freemiss == 2
    page, _ = locate(k, x, objs[1])
    assert page.active == 10 - 2  # all ten came from one slab; two are back
    k.check()


def test_flush_to_shared_moves_min_batch_room():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write("x 4 2 2") > 0  # shared limit 4
    objs = [k.kmem_cache_alloc(x) for _ in range(10)]
    for o in objs[:4]:
        k.kfree(o)
    k.kfree(objs[4])  # room 4: moves batch 2
    assert node(x).shared.entry == objs[:2] and ac(x, 0) == objs[2:5]
    k.kfree(objs[5])
    k.kfree(objs[6])  # room 2: moves 2
    assert node(x).shared.entry == objs[:4] and ac(x, 0) == objs[4:7]
    k.kfree(objs[7])
    free_before = node(x).free_objects
    k.kfree(objs[8])  # shared full: free_block(objs[4], objs[5])
    assert node(x).shared.entry == objs[:4] and ac(x, 0) == objs[6:9]
    assert node(x).free_objects == free_before + 2
    assert cols(k, "x")[4] == 4


# ---- free_block: list moves, trimming, destroy order ------------------------------------------------

def _limit1_cache(k, name="c", size=1000):
    """num 4 (1000-byte objects), tuned to limit 1 / batch 1 / shared 0: the second free flushes the first."""
    c = k.kmem_cache_create(name, size)
    assert c.num == 4
    assert k.slabinfo_write(f"{name} 1 1 0") > 0
    return c


def test_free_block_list_moves():
    k = boot(cpus=2)
    c = _limit1_cache(k)
    n = node(c)
    assert n.free_limit == 3 * 1 + 4
    objs = [k.kmem_cache_alloc(c) for _ in range(12)]
    slabs = []
    for o in objs:
        p, _ = locate(k, c, o)
        if p not in slabs:
            slabs.append(p)
    s1, s2, s3 = slabs
    assert [locate(k, c, o)[0] for o in objs] == [s1] * 4 + [s2] * 4 + [s3] * 4
    assert list(n.slabs_full) == [s3, s2, s1]  # each filled slab went to the head of slabs_full
    assert ac(c, 0) == []
    order = [objs[0], objs[4], objs[1], objs[8]]
    for o in order:
        k.kfree(o)
    # objs[0] (s1), objs[4] (s2), objs[1] (s1) went to free_block; objs[8] waits in the array
    assert ac(c, 0) == [objs[8]]
    assert list(n.slabs_partial) == [s2, s1]  # re-linked at the tail on every put
    assert list(n.slabs_full) == [s3]
    assert (s1.active, s2.active, s3.active) == (2, 3, 4)
    # empty s2 completely: it goes to the head of slabs_free
    for o in (objs[5], objs[6], objs[7], objs[9]):
        k.kfree(o)
    assert ac(c, 0) == [objs[9]]  # objs[8] (s3) was flushed
    assert list(n.slabs_free) == [s2]
    assert list(n.slabs_partial) == [s1, s3]
    assert n.free_objects == 4 + 2 + 1
    assert c.stats.max_freeable == 1
    k.check()


def test_free_block_trims_coldest_free_slab_and_returns_pages():
    k = boot(cpus=2)
    c = _limit1_cache(k)
    n = node(c)
    objs = [k.kmem_cache_alloc(c) for _ in range(12)]
    s1, s2, s3 = [locate(k, c, objs[i])[0] for i in (0, 4, 8)]
    pfns = {s.pfn for s in (s1, s2, s3)}
    log = PageFreeLog(k)
    unrecl = k.page_alloc.node_page_state(0, "NR_SLAB_UNRECLAIMABLE_B")
    allocated = k.page_alloc.nr_allocated_pages
    # empty s2 (free_objects 4), then s1 (8 > free_limit 7): the coldest free slab, s2, is destroyed
    for o in objs[4:8] + objs[0:4] + [objs[8]]:
        k.kfree(o)
    assert [pfn for pfn, _ in log.log if pfn in pfns] == [s2.pfn]
    assert list(n.slabs_free) == [s1]
    assert n.free_objects == 4 and n.total_slabs == 2 and n.free_slabs == 1
    assert k.page_alloc.nr_allocated_pages == allocated - 1
    assert k.page_alloc.node_page_state(0, "NR_SLAB_UNRECLAIMABLE_B") == unrecl - 4096
    assert s2.active == -1 and s2.slab_cache is None and not s2.flags & (1 << PG_slab)
    assert k.page_of(objs[4]) is None
    assert c.paths.slabs_trimmed == 1 and c.paths.slabs_destroyed == 1
    assert cols(k, "c") == (4, 8, 1, 2, 0)
    # the freed order-0 page sits at the head of one of CPU 0's pcp lists (LIFO)
    zones = [z for z in k.page_alloc.node_zones[0] if z is not None]
    heads = [lst[0] for z in zones for lst in z.pageset[0].lists if lst]
    assert s2.pfn in heads
    k.check()


def test_slabs_destroy_order_reverse_of_trimming():
    """Several slabs trimmed in one free_block call are destroyed in reverse trimming order."""
    k = boot(cpus=1)
    c = k.kmem_cache_create("big", 8192)  # num 1, order 1, limit 8, batch 4, shared 0 (1 CPU)
    assert k.slabinfo_write("big 8 8 0") > 0
    assert node(c).free_limit == 2 * 8 + 1
    objs = [k.kmem_cache_alloc(c) for _ in range(40)]
    slab = [locate(k, c, o)[0] for o in objs]
    log = PageFreeLog(k)
    for o in objs[:24]:
        k.kfree(o)
    assert log.log == []  # 16 free slabs <= 17
    k.kfree(objs[24])  # the 3rd flush: 24 free objects > 17: trims the 7 coldest, S0..S6
    assert log.log == [(slab[i].pfn, 1) for i in (6, 5, 4, 3, 2, 1, 0)]
    assert list(node(c).slabs_free) == [slab[i] for i in range(23, 6, -1)]
    assert node(c).free_objects == 17
    # 15 live + 1 in the array are active; 33 slabs of which 17 free
    assert cols(k, "big") == (16, 33, 16, 33, 0)
    k.check()


def test_objfreelist_put_into_full_slab():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    assert t.placement == "objfreelist"
    objs = [k.kmem_cache_alloc(t) for _ in range(17)]  # refill 16, then 48: slab A full
    page, _ = locate(k, t, objs[0])
    assert page.active == 64 and page.freelist is None
    assert list(node(t).slabs_full) == [page]
    rest = list(ac(t, 0))
    assert len(rest) == 47
    assert k.slabinfo_write("t64 1 1 0") > 0  # drains ac0 (47 objects) back, oldest first
    assert page.active == 17
    # the first object put back became the freelist storage
    assert page.freelist == rest[0]
    k2 = boot(cpus=2)
    t2 = k2.kmem_cache_create("t64", 64)
    o2 = [k2.kmem_cache_alloc(t2) for _ in range(64)]  # 16 + 48: A full, ac empty
    assert t2.cpu_cache[0].entry == []
    p2, _ = locate(k2, t2, o2[0])
    assert p2.freelist is None
    assert p2.freelist is None and p2.active == 64
    assert k2.slabinfo_write("t64 1 1 0") > 0
    k2.kfree(o2[5])
    k2.kfree(o2[9])  # flushes o2[5] into the full slab
    _, idx = locate(k2, t2, o2[5])
    assert p2.active == 63
    assert p2.freelist == o2[5]
    assert p2.fl[63] == idx
    # the index array really lives in that object's bytes
    assert k2.memory.read(o2[5], 64)[63] == idx
    k2.check()


def test_objfreelist_initial_freelist_location():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    p = k.kmem_cache_alloc(t)
    page, _ = locate(k, t, p)
    assert page.freelist == page.s_mem + 63 * 64
    on = k.kmem_cache_create("on", 8)  # on-slab: the last num bytes of the slab
    q = k.kmem_cache_alloc(on)
    page, _ = locate(k, on, q)
    assert page.freelist == page.address + 4096 - 240


def test_off_slab_freelist_freed_to_its_cache():
    k = boot(cpus=2)
    xc = k.kmem_cache_create("xc", 200, 0, SLAB_HWCACHE_ALIGN, ctor)
    km32 = k.kmalloc_caches[0][5]
    assert xc.placement == "off-slab" and xc.freelist_cache is km32
    p = k.kmem_cache_alloc(xc)
    page, _ = locate(k, xc, p)
    fl_obj = page.fl_obj
    assert fl_obj and k.virt_to_cache(fl_obj) is km32
    assert page.freelist == fl_obj
    log = PageFreeLog(k)
    k.kmem_cache_free(xc, p)
    k.kmem_cache_shrink(xc)
    assert log.log == [(page.pfn, 0)]
    assert ac(km32, 0)[-1] == fl_obj  # kmem_cache_free(freelist_cache, freelist) after the pages
    assert cols(k, "xc") == (0, 0, 0, 0, 0)
    k.check()


def test_typesafe_by_rcu_defers_page_free():
    k = boot(cpus=2)
    r = k.kmem_cache_create("r", 200, 0, SLAB_HWCACHE_ALIGN | SLAB_TYPESAFE_BY_RCU)
    assert r.placement == "off-slab"
    km32 = k.kmalloc_caches[0][5]
    p = k.kmem_cache_alloc(r)
    page, _ = locate(k, r, p)
    fl_obj = page.fl_obj
    allocated = k.page_alloc.nr_allocated_pages
    log = PageFreeLog(k)
    k.kmem_cache_free(r, p)
    k.kmem_cache_shrink(r)
    assert cols(k, "r") == (0, 0, 0, 0, 0)
    assert log.log == []  # pages wait for the grace period
    assert page.flags & (1 << PG_slab)
    assert k.page_alloc.nr_allocated_pages == allocated
    assert ac(km32, 0)[-1] == fl_obj  # but the off-slab freelist is freed at once
    k.check()
    assert k.synchronize_rcu() >= 1
    assert log.log == [(page.pfn, 0)]
    assert k.page_alloc.nr_allocated_pages == allocated - 1
    k.check()


# ---- FREELIST_HARDENED ------------------------------------------------------------------------------

def test_hardened_drops_immediate_double_free():
    k = boot(cpus=2, CONFIG_SLAB_FREELIST_HARDENED=True)
    c = k.kmalloc_caches[0][6]
    p, q = k.kmalloc(64), k.kmalloc(64)
    avail = len(ac(c, 0))
    k.kfree(p)
    n_dmesg = len(k.dmesg)
    k.kfree(p)
    assert len(ac(c, 0)) == avail + 1 and ac(c, 0)[-1] == p
    assert len(k.dmesg) == n_dmesg + 1 and "__free_one" in k.dmesg[-1]
    assert c.paths.hardened_drop == 1
    k.check()
    k.kfree(q)
    k.kfree(q)  # dropped again, but WARN_ON_ONCE stays silent
    assert len(k.dmesg) == n_dmesg + 1
    assert ac(c, 0)[-2:] == [p, q]
    assert c.paths.hardened_drop == 2
    # a non-adjacent double free is not caught here
    a, b = k.kmalloc(64), k.kmalloc(64)
    k.kfree(a)
    k.kfree(b)
    k.kfree(a)
    assert ac(c, 0)[-3:] == [a, b, a]
    assert c.paths.hardened_drop == 2


def test_not_hardened_keeps_both_copies():
    k = boot(cpus=2)
    c = k.kmalloc_caches[0][6]
    p = k.kmalloc(64)
    k.kfree(p)
    k.kfree(p)
    assert ac(c, 0)[-2:] == [p, p]
    assert c.paths.hardened_drop == 0


def test_hardened_wrong_cache_is_redirected():
    k = boot(cpus=2, CONFIG_SLAB_FREELIST_HARDENED=True, slab_nomerge=True)
    a = k.kmem_cache_create("a", 100)
    b = k.kmem_cache_create("b", 100)
    p = k.kmem_cache_alloc(a)
    k.kmem_cache_free(b, p)
    assert "cache_from_obj: Wrong slab cache. b but object is from a" in k.dmesg
    assert ac(a, 0)[-1] == p and ac(b, 0) == []
    k.check()


# ---- remote-node frees ------------------------------------------------------------------------------

def test_alien_staging_and_overflow_into_remote_shared():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    objs = [k.kmem_cache_alloc(x, cpu=1) for _ in range(13)]
    assert all(k.page_of(o).nid == 1 for o in objs)
    alien = node(x, 0).alien[1]
    assert alien.limit == 12
    n1_free = node(x, 1).free_objects
    for i, o in enumerate(objs[:12]):
        k.kfree(o, cpu=0)
        assert alien.entry == objs[:i + 1]
    assert x.stats.node_frees == 12 and x.stats.node_overflow == 0
    assert ac(x, 0) == [] and x.stats.freehit == 0
    assert node(x, 1).free_objects == n1_free
    # the 13th: ACOVERFLOW: the 12 staged objects go to node 1's shared array, then the new one is staged
    k.kfree(objs[12], cpu=0)
    assert x.stats.node_frees == 13 and x.stats.node_overflow == 1
    assert node(x, 1).shared.entry == objs[:12]
    assert alien.entry == [objs[12]]
    assert node(x, 1).free_objects == n1_free
    assert x.paths.alien_overflow == 1 and x.paths.alien_drained_objects == 12
    assert cols(k, "x")[4] == 12
    k.check()


def test_alien_overflow_without_remote_shared_goes_to_free_block():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write("x 120 60 0") > 0  # no shared arrays; the alien arrays stay
    objs = [k.kmem_cache_alloc(x, cpu=1) for _ in range(13)]
    n1 = node(x, 1)
    free_before = n1.free_objects
    for o in objs:
        k.kfree(o, cpu=0)
    assert n1.shared is None
    assert n1.free_objects == free_before + 12
    assert node(x, 0).alien[1].entry == [objs[12]]
    k.check()


def test_noaliencache_frees_straight_to_remote_node():
    k = boot(cpus=2, nodes=2, noaliencache=True)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert node(x, 0).alien is None and node(x, 1).alien is None
    p = k.kmem_cache_alloc(x, cpu=1)
    n1 = node(x, 1)
    page, idx = locate(k, x, p)
    before = n1.free_objects
    k.kfree(p, cpu=0)
    assert n1.free_objects == before + 1
    assert page.fl[page.active] == idx
    assert ac(x, 0) == []
    assert x.stats.node_frees == 1 and x.paths.alien_direct == 1
    k.check()


def test_same_node_other_cpu_is_not_alien():
    k = boot(cpus=4, nodes=2)  # CPUs 0-1 node 0, 2-3 node 1
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    p = k.kmem_cache_alloc(x, cpu=0)
    k.kfree(p, cpu=1)
    assert ac(x, 1) == [p] and x.stats.node_frees == 0


# ---- STATS and PathCounters ---------------------------------------------------------------------------

def test_stats_counters_sequence():
    k = boot(cpus=2)
    c = _limit1_cache(k)  # limit 1 batch 1 shared 0; num 4
    st = c.stats
    base = st.as_dict()
    objs = [k.kmem_cache_alloc(c) for _ in range(6)]
    # every allocation missed (limit 1: the refill takes 1 object, which is popped at once)
    assert st.allocmiss - base["allocmiss"] == 6 and st.allochit == base["allochit"]
    assert st.num_allocations - base["num_allocations"] == 6
    assert st.high_mark == 6 and st.grown == 2
    k.kfree(objs[0])  # hit
    k.kfree(objs[1])  # miss: free_block(objs[0])
    k.kfree(objs[2])  # miss
    k.kfree(objs[3])  # miss: slab 1 now has objs[3] in ac, 3 back
    assert (st.freehit, st.freemiss) == (1, 3)
    assert st.max_freeable == 0
    k.kfree(objs[4])  # miss: objs[3] back: slab 1 empty -> max_freeable 1
    assert st.max_freeable == 1
    p = k.kmem_cache_alloc(c)  # hit: objs[4]
    assert p == objs[4] and st.allochit == 1
    assert st.num_allocations == 6  # hits do not count
    # kmem_cache_alloc_node on the local node: the array is empty -> refill (allocmiss)
    q = k.kmem_cache_alloc_node(c, node=0)
    assert st.allocmiss == 7 and st.num_allocations == 7
    assert st.node_allocs == 0 and st.reaped == 0 and st.errors == 0
    assert st.node_frees == 0 and st.node_overflow == 0
    assert q


def test_node_allocs_counted_only_from_existing_slabs():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    p = k.kmem_cache_alloc_node(x, node=1, cpu=0)  # grows on node 1: no node_allocs, no num_active
    assert k.page_of(p).nid == 1
    assert x.stats.node_allocs == 0 and x.stats.num_active == 0 and x.stats.grown == 1
    q = k.kmem_cache_alloc_node(x, node=1, cpu=0)  # existing slab
    assert x.stats.node_allocs == 1 and x.stats.num_active == 1 and x.stats.high_mark == 1
    assert locate(k, x, q)[1] == 1 and locate(k, x, p)[1] == 0


def test_reaped_counter_only_from_cache_reap():
    k = boot(cpus=1)
    c = k.kmem_cache_create("big", 8192)  # num 1, free_limit 2*4+1 = 9
    objs = [k.kmem_cache_alloc(c) for _ in range(8)]
    for o in objs:
        k.kfree(o)
    k.kmem_cache_shrink(c)
    assert c.stats.reaped == 0
    objs = [k.kmem_cache_alloc(c) for _ in range(12)]
    for o in objs:
        k.kfree(o)  # the 9th free flushes the 4 oldest into their slabs: 4 free slabs, 8 in the array
    assert len(ac(c, 0)) == 8
    n = node(c)
    assert len(n.slabs_free) == 4
    n.free_touched = 0
    n.next_reap = k.jiffies
    c.cpu_cache[0].touched = 1
    k.run_cache_reap(0)
    # drain_freelist(ceil(9 / 5)) = 2 slabs
    assert c.stats.reaped == 2 and len(n.slabs_free) == 2


def test_debug_pointer_is_stride_plus_obj_offset_and_kfree_works():
    k = boot(cpus=2, CONFIG_DEBUG_SLAB=True)
    y = k.kmem_cache_create("y", 200)
    assert (y.size, y.obj_offset) == (224, 8)
    ptrs = [k.kmem_cache_alloc(y) for _ in range(3)]
    for p in ptrs:
        page = k.page_of(p)
        assert (p - page.s_mem) % y.size == 8
    # the first refill of a fresh slab hands out index 15 first (batch 16)
    page = k.page_of(ptrs[0])
    assert ptrs[0] == page.s_mem + 15 * 224 + 8
    before = list(k.dmesg)
    k.kfree(ptrs[0])
    k.kmem_cache_free(y, ptrs[1])
    assert k.dmesg == before
    # the arrays keep stride starts
    assert ac(y, 0)[-2:] == [ptrs[0] - 8, ptrs[1] - 8]
    assert k.kmem_cache_alloc(y) == ptrs[1]
    k.kfree(ptrs[2])
    k.kmem_cache_shrink(y)
    assert k.dmesg == before
    k.check()


def test_free_object_in_tail_page_of_compound_slab():
    k = boot(cpus=2)
    c = k.kmem_cache_create("c2500", 2500)  # size 2504; order 1: 3 objects, left 680, colour 10
    assert (c.size, c.num, c.gfporder, c.colour) == (2504, 3, 1, 10)
    objs = [k.kmem_cache_alloc(c) for _ in range(3)]
    page, idx = locate(k, c, objs[0])
    assert idx == 2 and page.s_mem == page.address + 64
    assert objs[0] - page.address == 64 + 2 * 2504  # in the second (tail) page
    tail = k.mem_map.virt_to_page(objs[0])
    assert tail is not page and tail.compound_head & 1
    assert k.ksize(objs[0]) == 2500 and k.virt_to_cache(objs[0]) is c
    k.kfree(objs[0])
    assert ac(c, 0)[-1] == objs[0]
    k.kmem_cache_shrink(c)  # free_block resolves the head page
    assert page.active == 2 and page.fl[2] == 2
    for o in objs[1:]:
        k.kfree(o)
    k.kmem_cache_shrink(c)
    assert cols(k, "c2500") == (0, 0, 0, 0, 0)
    assert k.page_of(objs[0]) is None
    k.check()


def test_path_counters_sequence():
    k = boot(cpus=2, nodes=2)
    t = k.kmem_cache_create("t64", 64)
    p = t.paths
    objs = [k.kmem_cache_alloc(t, cpu=0)]  # miss, grow (no slab refill: nothing free on the node)
    assert (p.alloc, p.alloc_miss, p.alloc_hit, p.grow, p.refill_slab, p.refill_objects) == (1, 1, 0, 1, 0, 0)
    objs += [k.kmem_cache_alloc(t, cpu=0) for _ in range(16)]  # 15 hits, then a refill of 48 from slab A
    assert (p.alloc, p.alloc_miss, p.alloc_hit, p.grow, p.refill_slab, p.refill_objects) == (17, 2, 15, 1, 1, 48)
    q = k.kmem_cache_alloc_node(t, node=1, cpu=0)  # ____cache_alloc_node on node 1: grows there
    assert (p.node_alloc, p.grow, p.alloc) == (1, 2, 18)
    for o in objs:
        k.kfree(o, cpu=0)
    assert (p.free, p.free_hit, p.free_miss) == (17, 17, 0)
    k.kfree(q, cpu=0)  # remote object: staged in node 0's alien array for node 1
    assert (p.free, p.alien_free, p.alien_overflow, p.free_hit) == (18, 1, 0, 17)
    n0 = node(t, 0)
    n0.next_reap = k.jiffies
    k.run_cache_reap(0)  # ac0 touched: cleared; shared empty; free_touched set by the grow: cleared
    assert p.reap_ac_objects == 0 and p.reap_slabs == 0
    k.run_cache_reap(0)  # untouched now: (120 + 4) // 5 = 24 of the 64 objects go back
    assert p.reap_ac_objects == 24 and len(ac(t, 0)) == 40
    # free_block ran twice: for the (empty) rest of the alien array after its transfer, and for the 24
    assert p.free_block_calls == 2 and p.alloc_failed == 0
    k.check()


# ---- init_on_free and the pfmemalloc branch of ___cache_free ---------------------------------------

def test_init_on_free_zeroes_object_size_bytes():
    k = boot(cpus=2, init_on_free=True)
    p = k.kmalloc(70)  # kmalloc-96: object_size 96, stride 128
    k.memory.write(p, b"\xaa" * 128)
    k.kfree(p)
    assert k.memory.read(p, 128) == bytes(96) + b"\xaa" * 32
    c = k.kmem_cache_create("c", 64, 0, 0, ctor)  # a ctor: never zeroed
    q = k.kmem_cache_alloc(c)
    k.memory.write(q, b"\xbb" * 64)
    k.kfree(q)
    assert k.memory.read(q, 64) == b"\xbb" * 64
    r = k.kmem_cache_create("r", 64, 0, SLAB_TYPESAFE_BY_RCU)  # RCU readers may look: never zeroed
    o = k.kmem_cache_alloc(r)
    k.memory.write(o, b"\xcc" * 64)
    k.kfree(o)
    assert k.memory.read(o, 64) == b"\xcc" * 64
    k2 = boot(cpus=2)
    p2 = k2.kmalloc(70)
    k2.memory.write(p2, b"\xaa" * 96)
    k2.kfree(p2)
    assert k2.memory.read(p2, 96) == b"\xaa" * 96


def test_pfmemalloc_slab_objects_bypass_the_array():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    objs = [k.kmem_cache_alloc(x) for _ in range(32)]  # two full slabs, ac0 empty
    page, _ = locate(k, x, objs[0])
    page.flags |= 1 << PG_active  # SetPageSlabPfmemalloc: the slab came from the reserves
    k.sk_memalloc_socks = True
    n = node(x)
    free_before = n.free_objects
    hits = x.stats.freehit
    k.kfree(objs[0])
    assert ac(x, 0) == []  # straight back to its slab (cache_free_pfmemalloc)
    assert n.free_objects == free_before + 1
    assert x.stats.freehit == hits + 1  # counted as a hit first
    assert x.paths.pfmemalloc_free == 1
    other = locate(k, x, objs[20])[0]
    assert other is not page
    k.kfree(objs[20])  # an ordinary slab: the array
    assert ac(x, 0) == [objs[20]]
    # a full array: the miss flushes first, then the pfmemalloc object still bypasses the array
    assert k.slabinfo_write("x 1 1 0") > 0
    k.kfree(objs[21])
    k.kfree(objs[1])
    assert x.stats.freemiss == 1 and ac(x, 0) == [] and x.paths.pfmemalloc_free == 2
    k.check()

"""The allocation path (spec §4): refill sizes and order, LIFO reuse, shared refills, slab choice,
colouring, node-specific allocation, fallback, the kmalloc family, bulk allocation, mempolicy."""

from __future__ import annotations

from slabhelp import ac, boot, cols, locate, node

from kslab.mm.gfp import __GFP_NOWARN, __GFP_THISNODE, __GFP_ZERO, GFP_KERNEL
from kslab.mm.slab_def import SLAB_HWCACHE_ALIGN


def _t64(k):
    t = k.kmem_cache_create("t64", 64)
    assert t.name == "t64" and t.num == 64 and t.batchcount == 60
    return t


# ---- refill sizes and object order --------------------------------------------------------------------

def test_first_refill_limited_to_batchrefill_limit():
    k = boot(cpus=2)
    t = _t64(k)
    p = k.kmem_cache_alloc(t)
    assert len(ac(t, 0)) == 15  # 16 taken, one returned
    assert t.cpu_cache[0].touched == 1
    assert node(t).free_objects == 48
    page, idx = locate(k, t, p)
    assert idx == 15
    # the array holds A0..A14 in address order: the next allocations return them descending
    assert [locate(k, t, o)[1] for o in ac(t, 0)] == list(range(15))
    got = [k.kmem_cache_alloc(t) for _ in range(15)]
    assert [g - page.s_mem for g in got] == [64 * i for i in range(14, -1, -1)]
    # now touched: the refill may take the whole batch (60), limited by the 48 left in the slab
    k.kmem_cache_alloc(t)
    assert len(ac(t, 0)) == 47


def test_first_refill_with_small_batch_is_not_capped():
    k = boot(cpus=2)
    t = _t64(k)
    assert k.slabinfo_write("t64 20 10 0") > 0
    k.kmem_cache_alloc(t)
    assert len(ac(t, 0)) == 9
    # a failed attempt never happens here; an untouched array on another CPU also starts at 10
    k.kmem_cache_alloc(t, cpu=1)
    assert len(ac(t, 1)) == 9


def test_untouched_again_after_reap_caps_refill():
    k = boot(cpus=2)
    t = _t64(k)
    objs = [k.kmem_cache_alloc(t) for _ in range(16)]  # array empty, touched
    k.run_cache_reap(0)  # empty array: drain_array does nothing, touched stays
    assert t.cpu_cache[0].touched == 1
    for o in objs:
        k.kfree(o)
    k.run_cache_reap(0)  # touched: cleared only
    assert t.cpu_cache[0].touched == 0 and len(ac(t, 0)) == 16
    k.run_cache_reap(0)  # untouched: (120 + 4) // 5 = 24 > 16 -> (16 + 1) // 2 = 8 freed
    assert len(ac(t, 0)) == 8


def test_lifo_reuse_same_cpu():
    k = boot(cpus=2)
    t = _t64(k)
    a, b = k.kmem_cache_alloc(t), k.kmem_cache_alloc(t)
    k.kfree(a)
    k.kfree(b)
    assert k.kmem_cache_alloc(t) == b
    assert k.kmem_cache_alloc(t) == a
    c = k.kmem_cache_alloc(t)
    k.kfree(c, cpu=1)
    assert k.kmem_cache_alloc(t, cpu=0) != c
    assert k.kmem_cache_alloc(t, cpu=1) == c
    assert t.stats.allochit >= 3


def test_refill_from_shared_takes_top_and_sets_touched():
    k = boot(cpus=2)
    t = _t64(k)
    objs = [k.kmem_cache_alloc(t) for _ in range(200)]
    for o in objs:
        k.kfree(o)
    shared = node(t).shared
    assert shared.avail == 180 and shared.touched == 0
    snapshot = list(shared.entry)
    free_objects = node(t).free_objects
    p = k.kmem_cache_alloc(t, cpu=1)  # untouched: batch 16 from the top of the shared array
    assert p == snapshot[-1]
    assert ac(t, 1) == snapshot[164:179]
    assert shared.entry == snapshot[:164]
    assert shared.touched == 1
    assert node(t).free_objects == free_objects  # objects from the shared array are not slab objects
    assert t.paths.refill_shared == 1
    assert cols(k, "t64")[4] == 164


def test_refill_from_short_shared_never_tops_up_from_slabs():
    k = boot(cpus=2)
    t = _t64(k)
    assert k.slabinfo_write("t64 4 2 2") > 0  # shared limit 4
    objs = [k.kmem_cache_alloc(t) for _ in range(10)]
    for o in objs[:5]:
        k.kfree(o)  # the 5th free flushes objs[0], objs[1] to shared
    assert node(t).shared.entry == objs[:2]
    k.kfree(objs[5])  # ac now full: [2, 3, 4, 5]
    for _ in range(4):
        k.kmem_cache_alloc(t, cpu=0)
    assert ac(t, 0) == []
    free_objects = node(t).free_objects
    assert free_objects > 0
    p = k.kmem_cache_alloc(t, cpu=0)  # batch 2 from shared (2 available): nothing from slabs
    assert p == objs[1] and ac(t, 0) == [objs[0]]
    assert node(t).shared.entry == [] and node(t).free_objects == free_objects


# ---- slab choice --------------------------------------------------------------------------------------

def test_get_first_slab_prefers_partial_then_newest_free():
    k = boot(cpus=4)
    c = k.kmem_cache_create("c", 1000)  # num 4
    assert k.slabinfo_write("c 1 1 0") > 0  # free_limit 5*1 + 4 = 9: two empty slabs stay
    assert node(c).free_limit == 9
    objs = [k.kmem_cache_alloc(c) for _ in range(12)]
    s1, s2, s3 = [locate(k, c, objs[i])[0] for i in (0, 4, 8)]
    n = node(c)
    # empty s1 then s2 (s2 is the most recently freed), and leave s3 partial
    for o in objs[0:4] + objs[4:8] + [objs[8], objs[9]]:
        k.kfree(o)
    assert ac(c, 0) == [objs[9]]
    assert list(n.slabs_free) == [s2, s1] and list(n.slabs_partial) == [s3]
    assert k.kmem_cache_alloc(c) == objs[9]  # the array first
    n.free_touched = 0
    p = k.kmem_cache_alloc(c)
    assert locate(k, c, p)[0] is s3 and n.free_touched == 0  # partial slab
    assert p == objs[8]  # the index freed last is handed out first
    assert list(n.slabs_full) == [s3]
    q = k.kmem_cache_alloc(c)
    assert locate(k, c, q)[0] is s2  # no partial: head of slabs_free
    assert n.free_touched == 1
    assert n.free_slabs == 1 and list(n.slabs_free) == [s1] and list(n.slabs_partial) == [s2]
    # within s2 the free stack returns the last put index first
    assert locate(k, c, q)[1] == locate(k, c, objs[7])[1]
    k.check()


def test_new_slab_only_when_nothing_free():
    k = boot(cpus=2)
    t = _t64(k)
    for _ in range(16):
        k.kmem_cache_alloc(t)
    assert t.stats.grown == 1
    k.kmem_cache_alloc(t)  # 48 free objects in A: no grow
    assert t.stats.grown == 1 and node(t).total_slabs == 1


# ---- colouring ----------------------------------------------------------------------------------------

def test_colour_rotation_increments_before_use():
    k = boot(cpus=2)
    c = k.kmem_cache_create("c1960", 1960)  # num 2, left 176: colour 2, colour_off 64
    assert (c.num, c.colour, c.colour_off) == (2, 2, 64)
    offsets = []
    for _ in range(4):
        p = k.kmem_cache_alloc(c)  # each refill grows one slab and takes its 2 objects
        k.kmem_cache_alloc(c)
        page, _ = locate(k, c, p)
        offsets.append(page.s_mem - page.address)
    assert offsets == [64, 0, 64, 0]
    d = k.kmem_cache_create("c3000", 3000)  # colour 34
    offs = []
    for _ in range(3):
        p = k.kmem_cache_alloc(d)
        k.kmem_cache_alloc(d)
        page, _ = locate(k, d, p)
        offs.append(page.s_mem - page.address)
    assert offs == [64, 128, 192]
    assert node(d).colour_next == 3
    # colour 1 or 0: every slab at offset 0
    y = k.kmem_cache_create("y200", 200)  # colour 1
    assert y.colour == 1
    p = k.kmem_cache_alloc(y)
    assert k.page_of(p).s_mem == k.page_of(p).address


def test_colour_is_per_node():
    k = boot(cpus=2, nodes=2)
    c = k.kmem_cache_create("c1960", 1960)
    p0 = k.kmem_cache_alloc(c, cpu=0)
    p1 = k.kmem_cache_alloc(c, cpu=1)
    for p in (p0, p1):
        page = k.page_of(p)
        assert page.s_mem - page.address == 64
    assert k.page_of(p0).nid == 0 and k.page_of(p1).nid == 1


# ---- node-specific allocation, fallback --------------------------------------------------------------

def test_alloc_node_on_other_node_bypasses_array():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    p = k.kmem_cache_alloc_node(x, node=1, cpu=0)
    page, idx = locate(k, x, p)
    assert page.nid == 1 and idx == 0
    assert ac(x, 0) == [] and ac(x, 1) == []
    n1 = node(x, 1)
    assert list(n1.slabs_partial) == [page] and n1.free_objects == 15
    q = k.kmem_cache_alloc_node(x, node=1, cpu=0)
    assert locate(k, x, q) == (page, 1) and n1.free_objects == 14
    # node -1 and the local node go through the per-CPU array
    r = k.kmem_cache_alloc_node(x, node=-1, cpu=0)
    assert k.page_of(r).nid == 0 and len(ac(x, 0)) == 15
    s = k.kmalloc_node(100, node=1, cpu=0)
    assert k.page_of(s).nid == 1 and k.ksize(s) == 128
    k.check()


def _exhaust_node(k, nid, cpu):
    held = []
    for order in range(10, -1, -1):
        while True:
            p = k.page_alloc.alloc_pages_node(nid, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, order, cpu)
            if p is None:
                break
            held.append((p, order))
    return held


def test_fallback_alloc_when_node_has_no_memory():
    k = boot(cpus=2, nodes=2, mem="64M")
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    held = _exhaust_node(k, 1, 1)
    assert held
    p = k.kmem_cache_alloc(x, cpu=1)
    assert p
    page, idx = locate(k, x, p)
    assert page.nid == 0 and idx == 0  # taken straight from a node-0 slab grown by fallback_alloc
    assert ac(x, 1) == []
    assert x.paths.fallback_alloc == 1
    assert x.stats.node_allocs == 1 and x.stats.grown == 1
    n0 = node(x, 0)
    assert list(n0.slabs_partial) == [page] and n0.free_objects == 15
    assert node(x, 1).total_slabs == 0
    # with __GFP_THISNODE there is no fallback: NULL
    assert k.kmem_cache_alloc_node(x, GFP_KERNEL | __GFP_THISNODE, node=1, cpu=1) == 0
    assert k.kmem_cache_alloc_node(x, GFP_KERNEL | __GFP_THISNODE, node=1, cpu=0) == 0
    # a second ordinary allocation on CPU 1 finds node 0's free objects through the zonelist
    q = k.kmem_cache_alloc(x, cpu=1)
    assert locate(k, x, q) == (page, 1)
    assert x.stats.grown == 1
    k.check()
    for pg, order in held:
        k.page_alloc.free_pages(pg, order, 1)
    k.check()


# ---- the kmalloc family ------------------------------------------------------------------------------

def test_kmalloc_zero_and_too_large():
    k = boot(cpus=2)
    before = k.slabinfo()
    assert k.kmalloc(0) == 16
    assert k.kmalloc((4 << 20) + 1) == 0
    assert k.kmalloc(1 << 40) == 0
    assert k.kmalloc_node(0, node=0) == 16
    assert k.kmalloc_node((4 << 20) + 1, node=0) == 0
    assert k.slabinfo() == before


def test_ksize_is_object_size():
    k = boot(cpus=2)
    assert k.ksize(k.kmalloc(70)) == 96
    assert k.ksize(k.kmalloc(1)) == 32
    assert k.ksize(k.kmalloc(100)) == 128
    assert k.ksize(k.kmalloc(129)) == 192
    assert k.ksize(k.kmalloc(5000)) == 8192
    assert k.ksize(k.kmalloc(4 << 20)) == 4 << 20
    c = k.kmem_cache_create("c", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.ksize(k.kmem_cache_alloc(c)) == 200  # not the 256-byte stride


def test_krealloc():
    k = boot(cpus=2)
    p = k.kmalloc(70)
    k.memory.write(p, bytes(range(96)))
    assert k.krealloc(p, 90) == p  # fits in ksize 96
    assert k.krealloc(p, 96) == p
    q = k.krealloc(p, 100)
    assert q != p and k.ksize(q) == 128
    assert k.memory.read(q, 96) == bytes(range(96))  # ks bytes copied
    assert ac(k.kmalloc_caches[0][1], 0)[-1] == p  # the old one was freed
    assert k.krealloc(q, 0) == 16
    assert ac(k.kmalloc_caches[0][7], 0)[-1] == q
    r = k.krealloc(0, 50)
    assert k.ksize(r) == 64
    s = k.krealloc(16, 10)
    assert k.ksize(s) == 32
    # __GFP_ZERO zeroes the spare tail when the object is kept
    k.memory.write(s, b"\xff" * 32)
    assert k.krealloc(s, 8, GFP_KERNEL | __GFP_ZERO) == s
    assert k.memory.read(s, 32) == b"\xff" * 8 + bytes(24)


def test_kcalloc_and_kzalloc():
    k = boot(cpus=2)
    assert k.kcalloc(1 << 62, 8) == 0  # n * size overflows 64 bits
    assert k.kcalloc((1 << 64) // 8, 8) == 0
    p = k.kmalloc(64)
    k.memory.write(p, b"\xaa" * 64)
    k.kfree(p)
    q = k.kcalloc(8, 8)
    assert q == p and k.memory.read(q, 64) == bytes(64)
    k.memory.write(q, b"\xbb" * 64)
    k.kfree(q)
    r = k.kzalloc(64)
    assert r == q and k.memory.read(r, 64) == bytes(64)
    assert k.kcalloc(0, 8) == 16


def test_bulk_alloc_and_free():
    k = boot(cpus=2)
    t = _t64(k)
    objs = k.kmem_cache_alloc_bulk(t, 20)
    assert len(objs) == 20 and len(set(objs)) == 20
    # same order as 20 single allocations: A15..A0, then the refill of 48 from A: A63, A62, A61, A60
    assert [locate(k, t, o)[1] for o in objs] == [*range(15, -1, -1), 63, 62, 61, 60]
    k.kmem_cache_free_bulk(t, objs)
    assert ac(t, 0)[-20:] == objs
    more = [k.kmalloc(64) for _ in range(3)]
    k.kfree_bulk(more)
    assert ac(k.kmalloc_caches[0][6], 0)[-3:] == more
    k.check()


def test_bulk_alloc_failure_releases_everything():
    k = boot(cpus=1, mem="64M")
    h = k.kmem_cache_create("h", 4 << 20)  # one object per order-10 slab
    pages = k.page_alloc.nr_allocated_pages
    got = k.kmem_cache_alloc_bulk(h, 64)
    assert got == []
    k.kmem_cache_shrink(h)
    assert cols(k, "h") == (0, 0, 0, 0, 0)
    assert k.page_alloc.nr_allocated_pages == pages
    k.check()


# ---- mempolicy ------------------------------------------------------------------------------------------

def test_interleave_mempolicy_alternates_nodes():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    k.set_mempolicy(0, "interleave", [0, 1])
    objs = [k.kmem_cache_alloc(x, cpu=0) for _ in range(6)]
    assert [k.page_of(o).nid for o in objs] == [0, 1, 0, 1, 0, 1]
    assert x.paths.alternate_node_alloc == 3
    # node-1 objects came straight from the node-1 slab, in index order
    assert [locate(k, x, o)[1] for o in objs[1::2]] == [0, 1, 2]
    # kmem_cache_alloc_node does not consult the policy
    r = k.kmem_cache_alloc_node(x, node=-1, cpu=0)
    s = k.kmem_cache_alloc_node(x, node=-1, cpu=0)
    assert k.page_of(r).nid == 0 and k.page_of(s).nid == 0
    # back to local
    k.set_mempolicy(0, "local")
    assert all(k.page_of(k.kmem_cache_alloc(x, cpu=0)).nid == 0 for _ in range(4))
    k.check()


def test_preferred_mempolicy():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    k.set_mempolicy(0, "preferred", [1])
    objs = [k.kmem_cache_alloc(x, cpu=0) for _ in range(3)]
    assert [k.page_of(o).nid for o in objs] == [1, 1, 1]
    assert ac(x, 0) == []


def test_failed_refill_leaves_array_empty_and_untouched():
    k = boot(cpus=1, mem="64M")
    t = _t64(k)
    events = []
    k.event_hook = lambda name, c, p, *rest: events.append((name, p))
    held = _exhaust_node(k, 0, 0)
    # GFP_KERNEL may dip a little deeper than the exact-node attempt: take what is left too
    for order in range(10, -1, -1):
        while True:
            pg = k.page_alloc.alloc_pages_node(0, GFP_KERNEL | __GFP_NOWARN, order, 0)
            if pg is None:
                break
            held.append((pg, order))
    misses = t.stats.allocmiss
    assert k.kmem_cache_alloc(t) == 0
    assert t.stats.allocmiss == misses + 1
    assert ac(t, 0) == [] and t.cpu_cache[0].touched == 0
    assert t.paths.grow_failed >= 1
    assert cols(k, "t64") == (0, 0, 0, 0, 0)
    assert ("kmem_cache_alloc", 0) in events
    for pg, order in held:
        k.page_alloc.free_pages(pg, order, 0)
    assert k.kmem_cache_alloc(t) != 0
    k.check()


# ---- pfmemalloc slabs (sk_memalloc_socks) ---------------------------------------------------------------

def _pfmemalloc_setup():
    from kslab.mm.page import PG_active  # noqa: PLC0415

    k = boot(cpus=2)
    t = _t64(k)
    objs = [k.kmem_cache_alloc(t) for _ in range(16)]  # slab A: 16 handed out, 48 free; ac0 empty
    page, _ = locate(k, t, objs[0])
    assert ac(t, 0) == [] and node(t).free_objects == 48
    page.flags |= 1 << PG_active
    k.sk_memalloc_socks = True
    return k, t, page


def test_pfmemalloc_slab_skipped_by_ordinary_refill():
    k, t, page = _pfmemalloc_setup()
    n = node(t)
    p = k.kmem_cache_alloc(t)
    # A is a reserve slab and free_objects 48 <= free_limit 244: the refill skips it, a new slab grows
    # (the array is touched: batch 60 from the new slab, the last one first)
    q, idx = locate(k, t, p)
    assert q is not page and idx == 59
    assert t.stats.grown == 2 and n.free_touched == 1
    assert page.active == 16


def test_pfmemalloc_allowed_takes_one_object_directly():
    from kslab.mm.gfp import __GFP_MEMALLOC  # noqa: PLC0415

    k, t, page = _pfmemalloc_setup()
    p = k.kmem_cache_alloc(t, GFP_KERNEL | __GFP_MEMALLOC)
    assert locate(k, t, p) == (page, 16)  # cache_alloc_pfmemalloc: straight from the reserve slab
    assert ac(t, 0) == [] and t.stats.grown == 1
    assert node(t).free_objects == 47


def test_pfmemalloc_nomemalloc_wins():
    """__gfp_pfmemalloc_flags(): __GFP_NOMEMALLOC forbids the reserves even with __GFP_MEMALLOC."""
    from kslab.mm.gfp import __GFP_MEMALLOC, __GFP_NOMEMALLOC  # noqa: PLC0415

    k, t, page = _pfmemalloc_setup()
    p = k.kmem_cache_alloc(t, GFP_KERNEL | __GFP_MEMALLOC | __GFP_NOMEMALLOC)
    assert locate(k, t, p)[0] is not page
    assert t.stats.grown == 2 and page.active == 16


def test_a_refill_that_raced_with_another_cpus_grow_grows_its_own_slab():
    """Two CPUs of a node refill at once and both find the node empty: each grows a slab (the kernel
    takes the list lock only to look).  Replayed one after the other, the second would take the first
    one's leftovers; Kernel.replay_hooks.race_grow makes it grow as the kernel's did."""
    from kslab.mm.explain import Explain  # noqa: PLC0415
    k = boot(cpus=2)
    t = _t64(k)
    k.kmem_cache_alloc(t, cpu=1)  # CPU 1 grows: 16 objects to its array, 48 left on the node
    assert node(t).free_objects == 48 and sum(1 for _ in node(t).slabs_partial) == 1
    k.replay_hooks.race_grow = t
    k.explain = Explain()
    p = k.kmem_cache_alloc(t, cpu=0)
    assert ("cache_alloc_refill", "raced") in {(s.func, s.key) for s in k.explain.steps}
    assert k.replay_hooks.race_grow is None
    # CPU 0 took its batch from a second slab of its own; CPU 1's leftovers stay on the node
    assert locate(k, t, p)[0] is not None
    assert node(t).free_objects == 48 + 48
    assert len(ac(t, 0)) == 15
    k.explain = None
    k.check()

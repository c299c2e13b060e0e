"""Administrative paths (spec §3.2, §3.4, §6.5-§6.7): kmem_cache_shrink, kmem_cache_destroy, writes to
/proc/slabinfo, CPU hotplug, and the by-name shrink."""

from __future__ import annotations

import pytest
from debughelp import ac, boot, cols, listed, node, tunables

from kslab.mm.errors import ConfigError

# ---- kmem_cache_shrink -------------------------------------------------------------------------------


def _t64_used_on_both_cpus():
    """t64 on 2 CPUs: 100 objects allocated on CPU 0 and 50 on CPU 1; 60 and 30 of them freed on the
    same CPUs (they stay in the per-CPU arrays), so 60 are really in use."""
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    a = [k.kmem_cache_alloc(t, cpu=0) for _ in range(100)]
    b = [k.kmem_cache_alloc(t, cpu=1) for _ in range(50)]
    for p in a[:60]:
        k.kmem_cache_free(t, p, cpu=0)
    for p in b[:30]:
        k.kmem_cache_free(t, p, cpu=1)
    assert ac(t, 0) and ac(t, 1)
    return k, t, a[60:] + b[30:]


def test_shrink_drains_every_cpu_and_releases_every_empty_slab():
    k, t, live = _t64_used_on_both_cpus()
    assert cols(k, "t64")[0] > 60  # objects sitting in arrays count as active
    assert k.kmem_cache_shrink(t, cpu=0) == 1  # objects remain
    active, num, active_slabs, num_slabs, sharedavail = cols(k, "t64")
    assert active == 60  # exactly the objects in use
    assert active_slabs == num_slabs and sharedavail == 0
    assert ac(t, 0) == [] and ac(t, 1) == []  # CPU 1's array too (the kernel IPIs every CPU)
    assert not node(t).slabs_free and node(t).free_slabs == 0
    assert num == num_slabs * 64
    # the pages left are exactly those holding the live objects
    assert {k.page_of(p).pfn for p in live} == {p.pfn for p in list(node(t).slabs_partial) + list(node(t).slabs_full)}
    k.check()


def test_shrink_of_an_unused_cache_returns_every_page():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    pages = k.page_alloc.nr_allocated_pages
    objs = [k.kmem_cache_alloc(t, cpu=0) for _ in range(200)]
    assert k.page_alloc.nr_allocated_pages == pages + 4  # spec §12.3: 4 order-0 slabs of 64
    for i, p in enumerate(objs):
        k.kmem_cache_free(t, p, cpu=(i + 1) % 2)
    assert k.kmem_cache_shrink(t) == 0
    assert cols(k, "t64") == (0, 0, 0, 0, 0)
    assert k.page_alloc.nr_allocated_pages == pages
    k.check()


def test_shrink_cache_by_name():
    k, t, live = _t64_used_on_both_cpus()
    assert k.shrink_cache("t64", cpu=1) == 1
    assert cols(k, "t64")[0] == 60
    for p in live:
        k.kmem_cache_free(t, p)
    assert k.shrink_cache("t64") == 0
    assert cols(k, "t64") == (0, 0, 0, 0, 0)
    with pytest.raises(ConfigError, match="no slab cache named 'nosuch'"):
        k.shrink_cache("nosuch")


# ---- kmem_cache_destroy ------------------------------------------------------------------------------


def test_destroy_with_objects_left_keeps_the_cache_with_refcount_0():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    objs = [k.kmem_cache_alloc(t) for _ in range(10)]
    for p in objs[1:]:
        k.kmem_cache_free(t, p)
    n = len(k.dmesg)
    k.kmem_cache_destroy(t)
    msg = "kmem_cache_destroy t64: Slab cache still has objects"
    assert k.dmesg[n:] == [msg]
    assert t.refcount == 0 and t in k.slab_caches and listed(k, "t64")
    assert cols(k, "t64")[0] == 1  # shut down = shrunk: only the live object is left
    rec = k.misuse[-1]
    assert (rec.kind, rec.check, rec.cache, rec.messages) == ("destroy_busy", "kmem_cache_destroy", "t64", [msg])
    # the cache is still usable
    q = k.kmem_cache_alloc(t)
    k.kmem_cache_free(t, q)
    # a second destroy only drops the refcount to -1: no message, nothing released, even now that it is empty
    k.kmem_cache_free(t, objs[0])
    n = len(k.dmesg)
    k.kmem_cache_destroy(t)
    assert k.dmesg[n:] == [] and t.refcount == -1 and listed(k, "t64")
    assert cols(k, "t64")[3] > 0  # not even shrunk
    k.check()


def test_destroy_of_an_empty_cache_releases_everything():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    objs = [k.kmem_cache_alloc(t, cpu=1) for _ in range(100)]
    pages = k.page_alloc.nr_allocated_pages
    for p in objs:
        k.kmem_cache_free(t, p, cpu=0)
    kc_free = len(ac(k.kmem_cache, 0))
    n = len(k.dmesg)
    k.kmem_cache_destroy(t)
    assert k.dmesg[n:] == []
    assert t not in k.slab_caches and not listed(k, "t64")
    assert k.page_alloc.nr_allocated_pages == pages - 2  # its two slabs
    assert all(x is None for x in t.node)  # node structures, shared arrays freed
    assert ac(k.kmem_cache, 0)[-1] == t.addr and len(ac(k.kmem_cache, 0)) == kc_free + 1  # struct kmem_cache
    k.check()


def test_destroy_of_an_alias_only_drops_a_reference():
    k = boot(cpus=2)
    a = k.kmem_cache_create("a64", 64)
    b = k.kmem_cache_create("b64", 64)
    assert b is a and a.refcount == 2
    k.kmem_cache_destroy(b)
    assert a.refcount == 1 and a in k.slab_caches
    k.kmem_cache_destroy(a)
    assert a not in k.slab_caches
    k.kmem_cache_destroy(None)  # NULL: nothing


# ---- /proc/slabinfo writes: do_tune_cpucache -----------------------------------------------------------


def test_slabinfo_write_retunes_and_drains_the_old_arrays():
    k, t, _ = _t64_used_on_both_cpus()
    old_shared = node(t).shared
    line = "t64 60 30 4\n"
    assert k.slabinfo_write(line) == len(line)
    assert tunables(k, "t64") == (60, 30, 4)
    assert (t.cpu_cache[0].limit, t.cpu_cache[0].batchcount) == (60, 30)
    assert ac(t, 0) == [] and ac(t, 1) == []  # every online CPU's old array emptied into the slabs
    n = node(t)
    assert n.shared is not old_shared and n.shared.limit == 4 * 30 and n.shared.entry == []
    assert n.free_limit == (1 + 2) * 30 + 64  # recomputed with the new batchcount
    # only the live objects stay active; empty slabs beyond free_limit were released by free_block
    active, num, _, _, sharedavail = cols(k, "t64")
    assert (active, sharedavail) == (60, 0)
    assert num - active == n.free_objects <= n.free_limit
    k.check()


def test_slabinfo_write_with_unchanged_values_still_drains():
    k, t, _ = _t64_used_on_both_cpus()
    assert k.slabinfo_write("t64 120 60 8") == len("t64 120 60 8")
    assert tunables(k, "t64") == (120, 60, 8)
    assert cols(k, "t64")[0] == 60 and ac(t, 0) == [] and ac(t, 1) == []


@pytest.mark.parametrize("text", ["t64 0 1 1", "t64 10 11 1", "t64 10 0 0", "t64 10 5 -1"])
def test_slabinfo_write_out_of_range_values_succeed_without_effect(text):
    k, t, _ = _t64_used_on_both_cpus()
    before = (k.slabinfo(), list(ac(t, 0)), list(ac(t, 1)))
    assert k.slabinfo_write(text) == len(text)
    assert (k.slabinfo(), list(ac(t, 0)), list(ac(t, 1))) == before


@pytest.mark.parametrize("text, err", [
    ("nosuch 10 5 1", -22),        # no cache of that name
    ("t64 10 5", -22),              # fewer than 3 numbers
    ("t64", -22),                   # no space
    ("t64 10 5 1" + " " * 120, -22),  # more than 128 bytes
    ("t64 5000 1 0", -12),          # per-CPU arrays of 16 + 8 * 5000 bytes do not fit the percpu allocator
])
def test_slabinfo_write_errors(text, err):
    k, _, _ = _t64_used_on_both_cpus()
    assert k.slabinfo_write(text) == err
    if err == -22:
        assert tunables(k, "t64") == (120, 60, 8)


# ---- CPU hotplug ---------------------------------------------------------------------------------------


def test_cpu_down_frees_the_dead_cpus_array_and_every_empty_slab_of_the_node():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    n = node(t)
    assert n.free_limit == (1 + 2) * 60 + 64
    objs = [k.kmem_cache_alloc(t, cpu=1) for _ in range(20)]
    for p in objs[:15]:
        k.kmem_cache_free(t, p, cpu=1)
    cached = len(ac(t, 1))
    assert cached > 0 and cols(k, "t64")[0] == 5 + cached
    shared = n.shared
    k.cpu_down(1)
    assert n.free_limit == 244 - 60  # free_limit -= batchcount
    assert ac(t, 1) == []  # the dead CPU's array went back to the slabs
    assert cols(k, "t64")[0] == 5
    assert n.shared is shared  # CPU 0 is still on the node: the shared array stays
    # then drain_freelist(INT_MAX) for every cache on the node: no empty slab is left anywhere
    assert all(not c.node[0].slabs_free for c in k.slab_caches)
    assert 1 not in k.topo.online_cpus and all(timer[2] != 1 for timer in k.reap_work.timers)
    k.check()


def test_cpu_up_recomputes_free_limit_without_the_new_cpu():
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    k.cpu_down(1)
    k.cpu_up(1)
    # cpuup_prepare runs before the CPU joins its node: (1 + 1) * 60 + 64
    assert node(t).free_limit == 184
    assert 1 in k.topo.online_cpus and any(timer[2] == 1 for timer in k.reap_work.timers)
    p = k.kmem_cache_alloc(t, cpu=1)
    k.kmem_cache_free(t, p, cpu=1)
    k.check()


def test_cpu_down_of_a_nodes_last_cpu_frees_its_shared_and_alien_arrays():
    k = boot(cpus=2, nodes=2)  # CPU 1 alone on node 1
    t = k.kmem_cache_create("t64", 64)
    n1 = node(t, 1)
    assert n1.free_limit == (1 + 1) * 60 + 64
    objs = [k.kmem_cache_alloc(t, cpu=1) for _ in range(200)]  # node-1 objects
    for p in objs[:100]:
        k.kmem_cache_free(t, p, cpu=1)  # 60 flushed to node 1's shared array
    back = [k.kmem_cache_alloc(t, cpu=0) for _ in range(3)]  # node-0 objects ...
    for p in back:
        k.kmem_cache_free(t, p, cpu=1)  # ... staged in node 1's alien array for node 0
    assert len(n1.shared.entry) == 60 and len(n1.alien[0].entry) == 3
    k.cpu_down(1)
    assert n1.shared is None and n1.alien is None  # both freed: node 1 has no CPU left
    assert t.node[1] is n1  # node structures are never freed
    assert n1.free_limit == 184 - 60
    assert ac(t, 1) == []
    # the alien objects went home, into node 0's shared array; CPU 0 still caches 13 (its refill of 16)
    n0 = node(t, 0)
    assert set(back) <= set(n0.shared.entry) and len(ac(t, 0)) == 13
    assert cols(k, "t64")[0] == 100 + 13 + len(n0.shared.entry)
    assert cols(k, "t64")[4] == len(n0.shared.entry)  # only node 0's shared array is left
    assert all(not c.node[1].slabs_free for c in k.slab_caches if c.node[1] is not None)
    k.cpu_up(1)
    assert n1.free_limit == (1 + 0) * 60 + 64
    assert n1.shared is not None and n1.shared.entry == [] and n1.shared.limit == 480
    assert n1.alien is not None and n1.alien[0].limit == 12
    k.check()


def test_cpu_down_of_the_last_cpu_is_refused():
    k = boot(cpus=1)
    with pytest.raises(ConfigError):
        k.cpu_down(0)

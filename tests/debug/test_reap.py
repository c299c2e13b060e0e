"""The periodic rules of spec §6.1-§6.4 and §7.6: cache_reap, drain_array, drain_freelist, the reap
timers, the alien rotor and RCU-deferred slab pages.

Every expected number is worked out by hand in the comments (HZ = 1000).
"""

from __future__ import annotations

import pytest
from debughelp import HZ, ac, boot, cols, far_future, node

from kslab.mm.explain import Explain
from kslab.mm.slab_def import SLAB_TYPESAFE_BY_RCU

# ---- drain_array: the per-CPU arrays ---------------------------------------------------------------


def _t64_with_64_cached():
    """t64 (64-byte objects, limit 120, batch 60) on 2 CPUs with 64 objects cached in CPU 0's array.

    40 allocations on CPU 0: refill 16 (untouched array: BATCHREFILL_LIMIT), 15 left after the
    first, 0 after the 16th; the 17th refills 48 (the rest of slab A), 47 left; 23 more leave 24.
    Freeing the 40 on CPU 0 pushes them: 24 + 40 = 64 < limit, no flush.  The array is touched.
    """
    k = boot(cpus=2)
    t = k.kmem_cache_create("t64", 64)
    assert (t.limit, t.batchcount, t.shared) == (120, 60, 8)
    objs = [k.kmem_cache_alloc(t, cpu=0) for _ in range(40)]
    assert len(ac(t, 0)) == 24
    for p in objs:
        k.kmem_cache_free(t, p, cpu=0)
    assert len(ac(t, 0)) == 64 and t.cpu_cache[0].touched == 1
    far_future(k, t)  # only the per-CPU part of the reaps below
    return k, t


def test_drain_array_fifth_of_limit_then_half_of_what_is_left():
    k, t = _t64_with_64_cached()
    seen = []
    for _ in range(8):
        k.run_cache_reap(0)
        seen.append(len(ac(t, 0)))
    # touched: only cleared (64); then (120 + 4) // 5 = 24 per reap: 40, 16; then fewer than 24 are
    # present: (avail + 1) // 2 freed: 16 -> 8, 8 -> 4, 4 -> 2, 2 -> 1, 1 -> 0
    assert seen == [64, 40, 16, 8, 4, 2, 1, 0]


def test_drain_array_frees_the_oldest_entries_into_the_slabs():
    k, t = _t64_with_64_cached()
    k.run_cache_reap(0)  # clears touched
    before = list(ac(t, 0))
    free_before = node(t).free_objects
    active_before = cols(k, "t64")[0]
    k.run_cache_reap(0)
    assert ac(t, 0) == before[24:]  # the 24 oldest (bottom of the array) went back to their slabs
    assert node(t).free_objects == free_before + 24
    assert cols(k, "t64")[0] == active_before - 24
    k.check()


def test_touched_array_is_only_untouched_and_frees_do_not_touch():
    k, t = _t64_with_64_cached()
    k.run_cache_reap(0)
    k.run_cache_reap(0)
    assert len(ac(t, 0)) == 40 and t.cpu_cache[0].touched == 0
    p = k.kmem_cache_alloc(t, cpu=0)  # an allocation touches the array
    assert len(ac(t, 0)) == 39 and t.cpu_cache[0].touched == 1
    k.run_cache_reap(0)
    assert len(ac(t, 0)) == 39 and t.cpu_cache[0].touched == 0  # only un-touched
    k.kmem_cache_free(t, p, cpu=0)  # a free does not touch it
    assert len(ac(t, 0)) == 40 and t.cpu_cache[0].touched == 0
    k.run_cache_reap(0)
    assert len(ac(t, 0)) == 16


@pytest.mark.parametrize("limit, per_reap", [(120, 24), (54, 11), (24, 5), (16, 4), (8, 2), (6, 2), (1, 1)])
def test_drain_array_amount_per_limit(limit, per_reap):
    # spec §6.2: (limit + 4) // 5 per reap (limit 1 -> 1); the array is filled with limit - 1 objects
    k = boot(cpus=1)
    t = k.kmem_cache_create("t64", 64)
    assert k.slabinfo_write(f"t64 {limit} 1 0") > 0
    far_future(k, t)
    objs = [k.kmem_cache_alloc(t) for _ in range(2 * limit)]
    for p in objs[:max(limit - 1, 1)]:
        k.kmem_cache_free(t, p)
    avail = len(ac(t, 0))
    assert avail == max(limit - 1, 1)
    k.run_cache_reap(0)  # the allocations touched the array: only cleared
    assert len(ac(t, 0)) == avail
    k.run_cache_reap(0)
    assert avail - len(ac(t, 0)) == per_reap


def test_reap_of_one_cpu_leaves_the_other_cpus_array_alone():
    k, t = _t64_with_64_cached()
    q = [k.kmem_cache_alloc(t, cpu=1) for _ in range(3)]
    for p in q:
        k.kmem_cache_free(t, p, cpu=1)
    n1 = len(ac(t, 1))
    for _ in range(3):
        k.run_cache_reap(0)
    assert len(ac(t, 1)) == n1
    assert len(ac(t, 0)) == 16


# ---- the node part: shared array, free slabs, next_reap, free_touched ------------------------------


def _t64_spec_12_3():
    """Spec §12.3: 200 allocations then 200 frees in allocation order on CPU 0: ac0 72, shared 180."""
    k = boot(cpus=2)
    k.reap_work.offsets["t64"] = 0
    t = k.kmem_cache_create("t64", 64)
    assert node(t).next_reap == 4 * HZ  # created at jiffies 0: 0 + REAPTIMEOUT_NODE + offset 0
    objs = [k.kmem_cache_alloc(t, cpu=0) for _ in range(200)]
    for p in objs:
        k.kmem_cache_free(t, p, cpu=0)
    assert cols(k, "t64") == (252, 256, 4, 4, 180)
    assert len(ac(t, 0)) == 72
    assert node(t).shared.touched == 0 and node(t).free_touched == 1
    return k, t


def test_shared_array_drained_on_node_reap_every_4_seconds():
    k, t = _t64_spec_12_3()
    n = node(t)
    k.advance(4 * HZ, run_timers=False)
    k.run_cache_reap(0)
    # node part due (next_reap == jiffies): shared 480-entry array: (480 + 4) // 5 = 96 freed;
    # ac0 was touched: only cleared; free_touched was 1: cleared instead of drain_freelist
    assert cols(k, "t64") == (156, 256, 4, 4, 84)
    assert len(ac(t, 0)) == 72 and n.free_touched == 0
    assert n.next_reap == 8 * HZ
    # 2 s later: per-CPU part only (next_reap still in the future): 24 oldest of ac0
    k.advance(6 * HZ, run_timers=False)
    k.run_cache_reap(0)
    assert cols(k, "t64") == (132, 256, 4, 4, 84)
    assert n.next_reap == 8 * HZ
    # one jiffy before next_reap: still per-CPU only (24 more from ac0, shared untouched)
    k.advance(8 * HZ - 1, run_timers=False)
    k.run_cache_reap(0)
    assert cols(k, "t64") == (108, 256, 4, 4, 84)
    # at next_reap: shared 84 < 96 -> (84 + 1) // 2 = 42 freed; ac0 24 -> 0;
    # drain_freelist(ceil(free_limit 244 / (5 * 64))) = 1 slab
    k.advance(8 * HZ, run_timers=False)
    k.run_cache_reap(0)
    assert n.next_reap == 12 * HZ
    assert t.stats.reaped == 1
    assert cols(k, "t64") == (42, 192, 1, 3, 42)
    k.check()


def test_touched_shared_array_is_only_untouched():
    k, t = _t64_spec_12_3()
    n = node(t)
    # CPU 1's array was never used: the refill is capped at BATCHREFILL_LIMIT 16, from the shared array
    q = [k.kmem_cache_alloc(t, cpu=1) for _ in range(1)]
    assert n.shared.touched == 1 and len(n.shared.entry) == 180 - 16 and len(ac(t, 1)) == 15
    k.advance(4 * HZ, run_timers=False)
    k.run_cache_reap(0)
    assert len(n.shared.entry) == 164 and n.shared.touched == 0
    k.advance(8 * HZ, run_timers=False)
    k.run_cache_reap(0)
    assert len(n.shared.entry) == 164 - 96
    k.kmem_cache_free(t, q[0], cpu=1)


def _big():
    """Spec §12.4 with the frees on the other CPU: 8192-byte objects (num 1, limit 8, batch 4, no shared
    array), free_limit = (1 + 2) * 4 + 1 = 13.  30 allocations on CPU 0 grow 30 slabs; freeing them on
    CPU 1: 8 fill ac1, then every 4th free flushes 4 to free_block (6 flushes = 24 objects); free
    slabs beyond free_objects 13 are destroyed at once (3 + 4 + 4 = 11): 19 slabs, 13 free, 6 in ac1.
    No allocation found free objects on the node (each went straight to growing), so free_touched is 0."""
    k = boot(cpus=2, slab_nomerge=True)
    k.reap_work.offsets["big"] = 123
    k.advance(500, run_timers=False)
    c = k.kmem_cache_create("big", 8192)
    assert (c.num, c.gfporder, c.limit, c.batchcount, c.shared) == (1, 1, 8, 4, 0)
    n = node(c)
    assert n.free_limit == 13
    assert n.next_reap == 500 + 4 * HZ + 123
    objs = [k.kmem_cache_alloc(c, cpu=0) for _ in range(30)]
    for p in objs:
        k.kmem_cache_free(c, p, cpu=1)
    assert cols(k, "big") == (6, 19, 6, 19, 0)
    assert len(n.slabs_free) == 13 and n.free_touched == 0
    return k, c, n


def test_drain_freelist_ceil_free_limit_over_5_num_per_node_reap():
    k, c, n = _big()
    t0 = n.next_reap
    k.advance(t0 - 1, run_timers=False)
    k.run_cache_reap(0)  # not due yet
    assert len(n.slabs_free) == 13 and c.stats.reaped == 0
    free_counts = []
    for i in range(5):
        k.advance(t0 + 4 * HZ * i, run_timers=False)
        k.run_cache_reap(0)
        assert n.next_reap == k.jiffies + 4 * HZ
        free_counts.append(len(n.slabs_free))
    # ceil(13 / (5 * 1)) = 3 slabs per node reap, coldest first, until none is left
    assert free_counts == [10, 7, 4, 1, 0]
    assert c.stats.reaped == 13
    assert cols(k, "big") == (6, 6, 6, 6, 0)
    k.check()


def test_drain_freelist_takes_the_coldest_slabs():
    k, _, n = _big()
    order = list(n.slabs_free)  # head (most recently freed) to tail (coldest)
    k.advance(n.next_reap, run_timers=False)
    k.run_cache_reap(0)
    assert list(n.slabs_free) == order[:-3]
    assert all(p.slab_cache is None for p in order[-3:])  # back in the buddy allocator


def test_free_touched_postpones_drain_freelist_by_one_node_period():
    k, c, n = _big()
    t0 = n.next_reap
    k.advance(t0, run_timers=False)
    k.run_cache_reap(0)
    assert len(n.slabs_free) == 10
    # free objects on the node but no partial slab: the refill (batch 4, one object per slab) takes 4
    # free slabs and sets free_touched; one object is returned, 3 stay in ac0
    p = k.kmem_cache_alloc(c, cpu=0)
    assert n.free_touched == 1 and len(n.slabs_free) == 6 and len(ac(c, 0)) == 3
    k.advance(t0 + 4 * HZ, run_timers=False)
    k.run_cache_reap(0)  # ac0 touched: cleared; free_touched: cleared instead of drain_freelist
    assert n.free_touched == 0 and len(n.slabs_free) == 6 and len(ac(c, 0)) == 3
    k.advance(t0 + 8 * HZ, run_timers=False)
    k.run_cache_reap(0)  # ac0 untouched: (8 + 4) // 5 = 2 freed: 8 free slabs; then 3 drained
    assert len(ac(c, 0)) == 1 and len(n.slabs_free) == 5
    k.kmem_cache_free(c, p, cpu=0)


# ---- the reap timers ---------------------------------------------------------------------------------


def _reap_times(k, until):
    ex = Explain()
    k.explain = ex
    k.advance(until)
    k.explain = None
    return [(s.values["cpu"], s.values["jiffies"]) for s in ex.steps if (s.func, s.key) == ("cache_reap", "reap")]


def test_reap_timer_cadence_first_about_a_second_then_every_two_with_skew():
    # The kernel's jiffies start at INITIAL_JIFFIES = 2**32 - 300*HZ, whose remainder modulo HZ is 296:
    # its whole seconds fall 704 jiffies past each second of uptime.  Armed at boot (jiffies 0) with
    # __round_jiffies_relative(HZ, cpu): 1000 + 3*cpu (+296) rounds up to the next whole second, 1704,
    # minus the skew 3*cpu.  Re-armed with round_jiffies_relative(2*HZ): already on the (skewed) second.
    k = boot(cpus=4)
    times = _reap_times(k, 6000)
    assert times == [(3, 1695), (2, 1698), (1, 1701), (0, 1704),
                     (3, 3695), (2, 3698), (1, 3701), (0, 3704),
                     (3, 5695), (2, 5698), (1, 5701), (0, 5704)]
    assert k.reap_work.runs == 12 and k.jiffies == 6000


def test_reap_timer_matches_the_real_kernels_reaps():
    # cache_reap lines of the real 5.10 traces (oracle run R1, 1 CPU, global clock in seconds):
    # prod kernel 1.744923, 3.728985; debug kernel 3.826767, 5.752340, 7.736243.  Each run comes a
    # few ms after the model's due time; the second prod reap, 1.984 s after the first, proves the
    # rounding goes down to a whole second at x.704 (a plain uptime clock would give 4.000).
    k = boot(cpus=1)
    assert _reap_times(k, 2000) == [(0, 1704)]
    k = boot(cpus=1)
    k.reap_work.timers.clear()
    k.advance(1745, run_timers=False)  # the prod kernel's first reap ran at 1.744923 s
    k.run_cache_reap(0, rearm=True)
    assert [t[0] for t in k.reap_work.timers] == [3704]  # observed 3.728985
    k = boot(cpus=1)
    k.reap_work.timers.clear()
    k.advance(3827, run_timers=False)  # the debug kernel's first reap (a slower boot)
    k.run_cache_reap(0, rearm=True)
    assert _reap_times(k, 8000) == [(0, 5704), (0, 7704)]  # observed 5.752340, 7.736243


def test_round_jiffies_relative_rules():
    k = boot(cpus=2)
    k.reap_work.timers.clear()
    # just past a whole second (less than HZ/4): rounded down, if that is still in the future
    k.advance(4750, run_timers=False)  # +1000 +3 -> 5753, absolute remainder 49: down to 5704 - 3
    assert k.round_jiffies_relative(HZ, 1) == 5701 - 4750
    # not in the future after rounding down: the exact value is kept
    k2 = boot(cpus=1)
    k2.advance(710, run_timers=False)  # absolute remainder 6: 720 rounds down to 704 < 710
    assert k2.round_jiffies_relative(10, 0) == 10
    assert k2.round_jiffies_relative(10, 0, force_up=True) == 1704 - 710
    # otherwise up to the next whole second
    k2.advance(1000, run_timers=False)
    assert k2.round_jiffies_relative(2 * HZ, 0) == 3704 - 1000


def test_cpu_hotplug_stops_and_restarts_the_cpus_reap_timer():
    k = boot(cpus=2)
    k.advance(2000)  # CPU 1 reaped at 1701, CPU 0 at 1704
    k.cpu_down(1)
    assert sorted(t[0] for t in k.reap_work.timers) == [3704]  # only CPU 0's
    k.advance(4750)
    k.cpu_up(1)  # 4750 + 1000 + 3 rounds down (remainder 49) to 5704 - 3
    assert sorted((t[2], t[0]) for t in k.reap_work.timers) == [(0, 5704), (1, 5701)]
    k.cpu_down(1)
    k.advance(5000)
    k.cpu_up(1)  # 5000 + 1000 + 3: remainder 299, up to 6704 - 3
    assert [t[0] for t in k.reap_work.timers if t[2] == 1] == [6701]


# ---- alien arrays: the reap rotor on 2 nodes -------------------------------------------------------


def test_alien_reap_rotor_two_nodes():
    k = boot(cpus=2, nodes=2)  # CPU 0 on node 0, CPU 1 on node 1
    t = k.kmem_cache_create("t64", 64)
    far_future(k, t)
    n0, n1 = node(t, 0), node(t, 1)
    assert n0.alien[0] is None and n0.alien[1].limit == 12  # limit 120 > 1: alien arrays hold 12
    assert k.reap_work.slab_reap_node == [1, 0]  # init_reap_node: the next online node after the CPU's own
    objs = [k.kmem_cache_alloc(t, cpu=1) for _ in range(10)]  # node-1 objects
    for p in objs[:5]:
        k.kmem_cache_free(t, p, cpu=0)  # freed on node 0: staged in n0.alien[1]
    assert len(n0.alien[1].entry) == 5
    shared1 = len(n1.shared.entry)
    k.run_cache_reap(0)  # rotor at node 1: alien[1] drained into node 1's shared array
    assert n0.alien[1].entry == [] and len(n1.shared.entry) == shared1 + 5
    assert k.reap_work.slab_reap_node[0] == 0
    for p in objs[5:]:
        k.kmem_cache_free(t, p, cpu=0)
    k.run_cache_reap(0)  # rotor at node 0: n0.alien[0] does not exist: nothing drained
    assert len(n0.alien[1].entry) == 5 and k.reap_work.slab_reap_node[0] == 1
    k.run_cache_reap(0)  # back at node 1
    assert n0.alien[1].entry == [] and len(n1.shared.entry) == shared1 + 10
    k.check()


# ---- SLAB_TYPESAFE_BY_RCU: pages freed after a grace period ------------------------------------------


@pytest.mark.parametrize("how", ["synchronize_rcu", "advance"])
def test_typesafe_by_rcu_slab_pages_freed_after_grace_period(how):
    k = boot(cpus=1)
    c = k.kmem_cache_create("rcu128", 128, flags=SLAB_TYPESAFE_BY_RCU)
    p = k.kmem_cache_alloc(c)
    page = k.page_of(p)
    k.kmem_cache_free(c, p)
    assert k.kmem_cache_alloc(c) == p  # objects are reused at once (LIFO), no grace period
    k.kmem_cache_free(c, p)
    allocated = k.page_alloc.nr_allocated_pages
    assert k.kmem_cache_shrink(c) == 0
    assert cols(k, "rcu128") == (0, 0, 0, 0, 0)  # the slab is gone from the cache ...
    assert page.rcu_pending and page.slab_cache is c  # ... but its pages wait for readers
    assert k.page_alloc.nr_allocated_pages == allocated
    if how == "synchronize_rcu":
        assert k.synchronize_rcu() == 1
    else:
        k.advance(k.jiffies + 1)
    assert not page.rcu_pending and page.slab_cache is None
    assert k.page_alloc.nr_allocated_pages == allocated - (1 << c.gfporder)
    k.check()


def test_typesafe_by_rcu_reaped_slab_waits_too():
    k = boot(cpus=1)
    c = k.kmem_cache_create("rcu128", 128, flags=SLAB_TYPESAFE_BY_RCU)
    p = k.kmem_cache_alloc(c)
    page = k.page_of(p)
    k.kmem_cache_free(c, p)
    k.kmem_cache_shrink(c)
    assert page.rcu_pending
    k.advance(k.jiffies)  # no time passes: no grace period ends
    assert page.rcu_pending
    k.advance(k.jiffies + 1)
    assert not page.rcu_pending


def test_typesafe_by_rcu_cache_released_after_rcu_barrier():
    k = boot(cpus=1)
    c = k.kmem_cache_create("rcu128", 128, flags=SLAB_TYPESAFE_BY_RCU)
    k.kmem_cache_destroy(c)
    assert c not in k.slab_caches and c.node[0] is not None  # unlinked, not yet released
    k.synchronize_rcu()
    assert c.node[0] is None and c.addr not in k.cache_by_addr

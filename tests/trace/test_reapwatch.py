"""Following the kernel's cache_reap runs through the function tracer (kslab.trace.reapwatch)."""

from __future__ import annotations

import io

import pytest

from kslab.mm.config import MachineConfig
from kslab.trace.events import FUNC, KMALLOC, TraceEvent
from kslab.trace.ftrace import iter_events
from kslab.trace.reapwatch import NodeAtReap, ReapWatch, pick_jiffies, place_passes
from kslab.trace.replay import Applied, Followed, Replayer


def func(cpu: int, pid: int, fn: str, parent: str = "", lineno: int = 1) -> TraceEvent:
    return TraceEvent(kind=FUNC, lineno=lineno, cpu=cpu, ts=0.0, comm="t", pid=pid, text=fn, parent=parent)


@pytest.mark.parametrize(("passes", "now", "estimate", "want"), [
    (0, 5, 25, (9, True)),     # before the first timer
    (2, 5, 25, (19, True)),    # both timers of 10, not yet 20
    (3, 5, 25, (25, True)),    # 20 passed, 30 not: the estimate fits
    (6, 5, 25, (30, True)),    # all
    (1, 5, 25, (19, False)),   # 10 and 10 expire together: 2 passes is the nearest, nearest the estimate
    (4, 5, 25, (25, False)),   # 3 is nearer than 6
    (0, 15, 12, (15, False)),  # the clock does not go back: 2 timers have already expired
])
def test_pick_jiffies(passes: int, now: int, estimate: int, want: tuple[int, bool]) -> None:
    assert pick_jiffies([10, 10, 20, 30, 30, 30], passes, now, estimate) == want


def test_a_run_counts_its_drain_array_lines_and_ends_with_the_worker() -> None:
    w = ReapWatch(func(0, 13, "cache_reap", "process_one_work"), min_drains=2)
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(1, 30, "cache_reap", "process_one_work"))  # another CPU: not this run's business
    assert w.observe(func(0, 13, "drain_array_locked", "drain_array"))
    assert w.observe(func(0, 99, "cache_alloc_refill", "kmem_cache_alloc"))  # preempted mid-walk
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    # the worker's next work
    assert not w.observe(TraceEvent(kind=KMALLOC, lineno=9, cpu=0, ts=0.0, comm="t", pid=13, ptr=1))
    assert w.drains == 3


def test_a_worker_preempted_after_a_call_per_cache_comes_back_for_the_rest() -> None:
    """The last caches' second calls can come after another task had the CPU (a cond_resched())."""
    w = ReapWatch(func(0, 13, "cache_reap", "process_one_work"), min_drains=2)
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(0, 99, "cache_alloc_refill", "kmem_cache_alloc"))  # another task takes the CPU
    assert w.observe(func(1, 30, "cache_alloc_refill", "kmem_cache_alloc"))
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))  # the worker again: the same walk
    assert w.observe(func(0, 13, "drain_array_locked", "drain_array"))
    assert w.drains == 3 and bytes(w.drained) == b"\x00\x00\x01"
    assert w.observe(func(0, 99, "cache_alloc_refill", "kmem_cache_alloc"))
    for _ in range(ReapWatch.AWAY_LIMIT - 1):
        assert w.observe(func(1, 30, "cache_alloc_refill", "kmem_cache_alloc"))
    assert not w.observe(func(1, 30, "cache_alloc_refill", "kmem_cache_alloc"))  # it did not come back: over


def test_a_run_with_nothing_under_it_gave_up() -> None:
    w = ReapWatch(func(1, 30, "cache_reap", "process_one_work"), min_drains=100)
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))  # the other CPU's reap holds slab_mutex
    assert not w.observe(func(1, 87, "cache_grow_begin", "cache_alloc_refill"))  # another task on CPU 1
    assert w.drains == 0


def reap_lines(cpu: int, pid: int, drains: int, ts: int) -> list[str]:
    out = [f"     kworker/{cpu}:1-{pid}      [{cpu:03d}] ....       {ts}: cache_reap <-process_one_work\n"]
    out += [f"     kworker/{cpu}:1-{pid}      [{cpu:03d}] ....       {ts + 1 + i}: drain_array <-cache_reap\n"
            for i in range(drains)]
    return out


def test_replay_skips_a_reap_that_gave_up_and_pins_the_clock() -> None:
    rep = Replayer(MachineConfig.build(cpus=2))
    # boot first (no trace of it), so that the number of caches is known
    head = "     kworker/0:1-13      [000] ....       1: kmem_cache_shrink <-x\n"
    rep.run(iter_events(io.StringIO(head)), clock="counter")
    caches = len(rep.k.slab_caches)
    timers = sorted(n.next_reap for c in rep.k.slab_caches if (n := c.node[0]) is not None)
    # CPU 0 reaps, with node passes for the caches with the earliest timers; CPU 1 tries at the same time
    p = next(i for i in range(1, len(timers)) if timers[i - 1] < timers[i])
    lines = reap_lines(0, 13, caches + p, 10)[:1] + reap_lines(1, 30, 0, 11) + reap_lines(0, 13, caches + p, 11)[1:]
    # then another task runs on CPU 1: its worker had given up
    lines.append("     sh-77      [001] ....       900: kmem_cache_shrink <-x\n")
    rep2 = Replayer(MachineConfig.build(cpus=2))
    s = rep2.run(iter_events(io.StringIO("".join(lines))), clock="counter")
    assert s.applied[Applied.CACHE_REAP_GAVE_UP] == 1
    assert s.applied[Applied.CACHE_REAP] == 1
    assert s.followed[Followed.PASSES_EQUAL] == 1
    assert timers[p - 1] <= rep2.k.jiffies < timers[p]
    assert s.accounted() == s.events


def test_a_run_names_the_pages_drain_freelist_gave_back() -> None:
    from kslab.trace.events import MM_PAGE_FREE  # noqa: PLC0415
    w = ReapWatch(func(0, 13, "cache_reap", "process_one_work"), min_drains=1)
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(0, 13, "kmem_freepages", "slabs_destroy"))  # a drained array's slab: not evidence
    assert w.observe(TraceEvent(kind=MM_PAGE_FREE, lineno=3, cpu=0, ts=0.0, comm="t", pid=13, pfn=100))
    assert w.observe(func(0, 13, "kmem_freepages", "drain_freelist.isra.0"))
    assert w.observe(TraceEvent(kind=MM_PAGE_FREE, lineno=5, cpu=0, ts=0.0, comm="t", pid=13, pfn=200))
    assert w.freelist_pfns == [200]
    assert bytes(w.freelist_after) == b"\x01"


def test_an_inlined_drain_freelist_is_told_from_an_array_drain() -> None:
    """Debug kernels inline drain_freelist and slabs_destroy: kmem_freepages <-slab_destroy comes from
    both.  After a free_block the slab may be one the array drain emptied; without one, it cannot."""
    from kslab.trace.events import MM_PAGE_FREE  # noqa: PLC0415
    w = ReapWatch(func(0, 13, "cache_reap", "process_one_work"), min_drains=1)
    for fn, parent in (("drain_array", "cache_reap"), ("drain_array_locked", "drain_array"),
                       ("free_block", "drain_array_locked"), ("kmem_freepages", "slab_destroy")):
        assert w.observe(func(0, 13, fn, parent))
    assert w.observe(TraceEvent(kind=MM_PAGE_FREE, lineno=3, cpu=0, ts=0.0, comm="t", pid=13, pfn=100))
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(0, 13, "kmem_freepages", "slab_destroy"))
    assert w.observe(TraceEvent(kind=MM_PAGE_FREE, lineno=5, cpu=0, ts=0.0, comm="t", pid=13, pfn=300))
    assert w.freelist_pfns == [300]


RACE = """\
          a-101   [001] ....     2.000001: cache_alloc_refill <-kmem_cache_alloc
          b-102   [000] ....     2.000002: cache_alloc_refill <-kmem_cache_alloc
          a-101   [001] ....     2.000003: cache_grow_begin <-cache_alloc_refill
          b-102   [000] ....     2.000004: cache_grow_begin <-cache_alloc_refill
          a-101   [001] ....     2.000005: cache_grow_end <-cache_alloc_refill
          a-101   [001] ....     2.000006: kmem_cache_alloc: call_site=f+0x1/0x2 ptr=ffff888012340000 \
bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL name=racy
          b-102   [000] ....     2.000007: cache_grow_end <-cache_alloc_refill
          b-102   [000] ....     2.000008: kmem_cache_alloc: call_site=f+0x1/0x2 ptr=ffff888012350000 \
bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL name=racy
"""


@pytest.mark.parametrize("raced", [True, False])
def test_two_cpus_that_grew_at_once_both_grow_in_the_replay(raced: bool) -> None:
    """Both CPUs found the node empty and grew a slab (the function tracer shows both grows before
    either allocation): the model, which replays CPU 1 first, must not let CPU 0 take CPU 1's slab."""
    text = RACE if raced else "\n".join(
        ln for ln in RACE.replace("\\\n", "").splitlines() if "[000]" not in ln or "kmem_cache_alloc:" in ln) + "\n"
    rep = Replayer(MachineConfig.build(cpus=2))
    rep.start_boot([])
    c = rep.k.kmem_cache_create("racy", 64)
    for ev in iter_events(io.StringIO(text.replace("\\\n", ""))):
        rep.feed(ev)
    rep.finish()
    n = c.node[0]
    slabs = sum(1 for _ in n.slabs_partial) + sum(1 for _ in n.slabs_full) + n.free_slabs
    assert slabs == (2 if raced else 1)
    assert rep.summary.followed[Followed.RACED_GROW] == (1 if raced else 0)
    rep.k.check()


def test_early_node_timers_follow_a_late_start_of_jiffies() -> None:
    """A trace that shows the boot, with time in it: its first reap run at 5 s shows no node pass, while
    the caches created before its first event would have expired had jiffies started with the trace's
    clock.  Their timers are put later by whole seconds until the run's count fits."""
    lines = ["     swapper/0-1      [000] ....     1.000000: enable_cpucache <-kmem_cache_init_late\n"]
    rep0 = Replayer(MachineConfig.build(cpus=1))
    rep0.run(iter_events(io.StringIO(lines[0])))
    caches = len(rep0.k.slab_caches)
    lines += [f"     kworker/0:1-13      [000] ....     5.{i:06d}: drain_array <-cache_reap\n"
              for i in range(1, caches + 1)]
    lines.insert(1, "     kworker/0:1-13      [000] ....     5.000000: cache_reap <-process_one_work\n")
    lines.append("     sh-77      [000] ....     5.500000: kmem_cache_shrink <-x\n")
    rep = Replayer(MachineConfig.build(cpus=1))
    s = rep.run(iter_events(io.StringIO("".join(lines))))
    assert s.followed[Followed.EARLY_TIMERS_LATER] == 1
    assert s.followed[Followed.PASSES_EQUAL] == 1
    assert min(n.next_reap for c in rep.k.slab_caches for n in c.node if n is not None) > 5000


def node(own: bool = False, shared: bool = False, due: int = 100, freeing: bool = False,
         bound: bool = False) -> NodeAtReap:
    return NodeAtReap(own, shared, due, freeing, bound=bound)


def test_passes_follow_the_timers_when_the_calls_agree() -> None:
    caches = [node(own=True), node(shared=True, due=-5), node()]
    assert place_passes(caches, bytes([1, 0, 1, 0]), bytes(4)) == [False, True, False]


def test_passes_go_where_the_drained_arrays_say() -> None:
    # the model's timer says the first cache expired; the trace's second call drained a shared array,
    # which only the third cache has: the third passed, not the first
    caches = [node(due=-5), node(), node(shared=True, due=3)]
    assert place_passes(caches, bytes([0, 0, 0, 1]), bytes(4)) == [False, False, True]


def test_a_freelist_page_names_the_cache_that_passed() -> None:
    caches = [node(due=-1), node(due=50, freeing=True), node(due=80)]
    assert place_passes(caches, bytes(4), bytes([0, 0, 1, 0])) == [False, True, False]
    # a model that would free a page where the trace shows none: that cache did not pass
    caches = [node(due=-1, freeing=True), node(due=10, freeing=False)]
    assert place_passes(caches, bytes(3), bytes(3)) == [False, True]


def test_among_equal_outcomes_the_nearest_timer_passes() -> None:
    caches = [node(due=40), node(due=7), node(due=300)]
    assert place_passes(caches, bytes(4), bytes(4)) == [False, True, False]


def test_a_count_the_walk_cannot_make_gives_no_plan() -> None:
    assert place_passes([node(), node()], bytes(1), bytes(1)) is None
    assert place_passes([node(), node()], bytes(5), bytes(5)) is None


def test_a_free_slab_after_the_drains_is_worked_out_without_changing_anything() -> None:
    rep = Replayer(MachineConfig.build(cpus=2))
    rep.run(iter_events(io.StringIO("     sh-7      [000] ....       1: kmem_cache_shrink <-x\n")), clock="counter")
    k = rep.k
    c = k.kmem_cache_create("t", 1024)
    assert c is not None
    objs = [k.kmem_cache_alloc(c) for _ in range(c.num)]  # one slab, its objects all handed out
    for o in objs:
        k.kmem_cache_free(c, o)  # back into CPU 0's array: the slab stays in use
    n = c.node[0]
    assert n is not None and n.free_slabs == 0
    ac = c.cpu_cache[0]
    before = (list(ac.entry), n.free_objects, n.free_slabs)
    # a fifth of the array's limit is more than it holds: half of it goes, the slab keeps the rest
    assert not rep.reaper.free_slab_after_drains(c, n, 0, own=False, shared=False)
    drained = min((ac.limit + 4) // 5, (len(ac.entry) + 1) // 2)
    assert rep.reaper.free_slab_after_drains(c, n, 0, own=True, shared=False) == (drained >= c.num)
    assert (list(ac.entry), n.free_objects, n.free_slabs) == before
    # one object per slab: the drained object's slab is then free, and drain_freelist has one to give back
    big = k.kmem_cache_create("u", 4096)
    assert big is not None and big.num == 1
    k.kmem_cache_free(big, k.kmem_cache_alloc(big))
    nb = big.node[0]
    assert nb is not None and nb.free_slabs == 0 and big.cpu_cache[0].entry
    assert rep.reaper.free_slab_after_drains(big, nb, 0, own=True, shared=False)


def test_without_drain_array_locked_in_the_trace_the_timers_place_the_passes() -> None:
    """A function filter without drain_array_locked (or without drain_freelist's pages) says nothing of
    the outcomes: all zeros would read as "nothing drained" and pull the passes away from the timers."""
    caches = [node(shared=True, due=-5), node(due=50), node(due=200)]
    assert place_passes(caches, None, None, calls=4) == [True, False, False]
    assert place_passes(caches, bytes(4), None) == [False, True, False]  # what the zeros would have said
    assert place_passes(caches, None, bytes(4), calls=4) == [True, False, False]


def test_a_run_marks_the_calls_that_an_alien_drain_came_before() -> None:
    """reap_alien runs just before a cache's first drain_array: its __drain_alien_cache line marks that call."""
    w = ReapWatch(func(0, 13, "cache_reap", "process_one_work"), min_drains=3)
    for fn, parent in (("drain_array", "cache_reap"), ("__drain_alien_cache", "cache_reap"),
                       ("transfer_objects", "__drain_alien_cache"), ("free_block", "__drain_alien_cache"),
                       ("slabs_destroy", "cache_reap"), ("drain_array", "cache_reap"), ("drain_array", "cache_reap")):
        assert w.observe(func(0, 13, fn, parent))
    assert bytes(w.alien_before) == b"\x00\x01\x00"
    assert bytes(w.freelist_after) == b"\x00\x00\x00"


def test_alien_drains_tell_first_calls_from_second_ones() -> None:
    """Shown by our U3 capture (3 CPUs, nodes 0 / 1-2): with no array drained, the timers alone put the
    passes on the wrong caches; the alien drains, which only come before a first call, place them."""
    # the model's timers say the first cache passed; the trace's alien drain before the third call says
    # that call is the second cache's first one: the first cache did not pass, the second did
    caches = [node(due=-3), node(due=40)._replace(alien=True), node(due=90)]
    assert place_passes(caches, bytes(4), bytes(4)) == [True, False, False]
    assert place_passes(caches, bytes(4), bytes(4), alien_before=bytes([0, 1, 0, 0])) == [False, True, False]
    # no alien line where the model's alien array has objects costs as an array outcome does
    assert place_passes(caches, bytes(4), bytes(4), alien_before=bytes(4)) == [True, False, False]
    assert place_passes(caches, bytes(4), bytes(4), alien_before=bytes(3)) is None


def test_drain_freelist_of_an_rcu_cache_shows_its_freelist_not_its_pages() -> None:
    """A SLAB_TYPESAFE_BY_RCU cache's slab pages go back from an RCU callback: under the reap, only the
    off-slab freelist's kmem_cache_free (call site drain_freelist) shows that drain_freelist freed a slab."""
    from kslab.mm.slab_def import CFLGS_OFF_SLAB, SLAB_TYPESAFE_BY_RCU  # noqa: PLC0415
    from kslab.trace.events import KMEM_CACHE_FREE  # noqa: PLC0415
    from kslab.trace.replay.reap import ReapFollower  # noqa: PLC0415
    w = ReapWatch(func(0, 13, "cache_reap", "process_one_work"), min_drains=1)
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(func(0, 13, "drain_array", "cache_reap"))
    assert w.observe(TraceEvent(kind=KMEM_CACHE_FREE, lineno=4, cpu=0, ts=0.0, comm="t", pid=13, ptr=0x1000,
                                call_site="drain_freelist.isra.0+0xc8/0x110", name="kmalloc-32"))
    assert bytes(w.freelist_after) == b"\x00\x01" and w.freelist_pfns == []
    from kslab.mm.kernel import Kernel  # noqa: PLC0415
    k = Kernel(MachineConfig.build(cpus=1))
    c = k.kmem_cache_create_unmerged("r", 2112, flags=SLAB_TYPESAFE_BY_RCU)  # sighand_cache's size
    off = k.kmem_cache_create_unmerged("b", 136, flags=SLAB_TYPESAFE_BY_RCU)  # p9_req_t's
    plain = k.kmem_cache_create_unmerged("p", 136)
    assert c is not None and plain is not None and off is not None
    assert ReapFollower.frees_at_once(plain)
    assert not c.flags & CFLGS_OFF_SLAB and not ReapFollower.frees_at_once(c)
    assert off.flags & CFLGS_OFF_SLAB and ReapFollower.frees_at_once(off)


def test_a_timer_the_kernel_showed_later_is_only_a_lower_bound() -> None:
    """Shown by our U6 capture (6 CPUs, 1 node): a run that did not pass a cache whose model timer had
    expired puts that timer at the next run, but the kernel's is later by an amount the trace does not
    give.  Read as exact, it pulled a later run's pass onto that cache, away from the cache whose shared
    array the kernel drained (proc_inode_cache then kept 8 slabs more than the kernel)."""
    # the third call drained a shared array, which only the second cache has
    caches = [node(due=-1500), node(shared=True, due=400)]
    assert place_passes(caches, bytes([0, 0, 1]), bytes(3)) == [True, False]
    caches = [node(due=-1500, bound=True), node(shared=True, due=400)]
    assert place_passes(caches, bytes([0, 0, 1]), bytes(3)) == [False, True]
    # with nothing else to go by, a bound timer that has expired still passes
    assert place_passes([node(due=-1500, bound=True), node(due=5)], bytes(3), bytes(3)) == [True, False]

"""Following the kernel's cache_reap runs through the function tracer (kslab.trace.reapwatch)."""

from __future__ import annotations

import io

import pytest

from kslab.mm.config import MachineConfig
from kslab.trace.events import FUNC, KMALLOC, TraceEvent
from kslab.trace.ftrace import iter_events
from kslab.trace.reapwatch import ReapWatch, pick_jiffies
from kslab.trace.replay import Replayer


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
    rep2 = Replayer(MachineConfig.build(cpus=2))
    s = rep2.run(iter_events(io.StringIO("".join(lines))), clock="counter")
    assert s.applied["cache_reap (gave up: slab_mutex busy)"] == 1
    assert s.applied["cache_reap"] == 1
    assert s.followed["node passes equal to the trace's"] == 1
    assert timers[p - 1] <= rep2.k.jiffies < timers[p]
    assert s.accounted() == s.events

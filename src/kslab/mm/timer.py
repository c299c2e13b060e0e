"""Time: jiffies moving on, the per-CPU reap work (kernel/time/timer.c's rounding, mm/slab.c's
start_cpu_timer and cache_reap rearming) and RCU grace periods (call_rcu, synchronize_rcu).

:class:`KernelTime` is a base class of :class:`~kslab.mm.kernel.Kernel` (the class is not used on its own);
the reap timers' state is :class:`ReapWork`, ``Kernel.reap_work``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from .config import MachineConfig
from .errors import ConfigError
from .replay_hooks import INITIAL_JIFFIES, ReplayHooks
from .slab import reap as _reap

if TYPE_CHECKING:
    from .kernel import Kernel
    from .slab_def import KmemCache
    from .topology import Topology

__all__ = ["KernelTime", "ReapWork"]


class ReapWork:
    """mm/slab.c's per-CPU reap work (``Kernel.reap_work``): the armed timers (``timers``, a heap of
    (jiffies, seq, cpu): the delayed work ``reap_work`` of each CPU, ``seq`` keeping equal times in arming
    order), how many cache_reap() runs there were (``runs``), each CPU's ``slab_reap_node`` (the node whose
    alien arrays its next reap drains) and, by cache name, the part of a node's first ``next_reap`` that
    the kernel derives from its cache's address (``offsets``, when a caller fixes it)."""

    __slots__ = ("offsets", "runs", "seq", "slab_reap_node", "timers")

    def __init__(self, cpus: int) -> None:
        self.timers: list[tuple[int, int, int]] = []
        self.seq = 0
        self.runs = 0
        self.slab_reap_node = [0] * cpus
        self.offsets: dict[str, int] = {}


class KernelTime:
    """The clock, reap timers and RCU of :class:`~kslab.mm.kernel.Kernel`."""

    config: MachineConfig
    jiffies: int
    topo: Topology
    reap_work: ReapWork
    rcu_callbacks: list[Callable[[], None]]
    replay_hooks: ReplayHooks

    if TYPE_CHECKING:
        def set_cpu(self, cpu: int) -> int: ...

    def call_rcu(self, fn: Callable[..., None], *args: Any) -> None:
        self.rcu_callbacks.append(lambda: fn(*args))

    def rcu_barrier_then(self, fn: Callable[[], None]) -> None:
        self.rcu_callbacks.append(fn)

    def synchronize_rcu(self) -> int:
        """End the current grace period: run every queued RCU callback."""
        n = 0
        while self.rcu_callbacks:
            cbs, self.rcu_callbacks = self.rcu_callbacks, []
            for cb in cbs:
                cb()
                n += 1
        return n

    def reap_offset(self, cachep: KmemCache) -> int:
        """The address-derived part of a node's first next_reap: (address of the cache) % REAPTIMEOUT_NODE."""
        offsets = self.reap_work.offsets
        if cachep.name in offsets:
            return offsets[cachep.name]
        kaddr = self.replay_hooks.kernel_cache_addr.get(cachep.addr)
        if kaddr is not None:
            return kaddr % (4 * self.config.HZ)
        return (cachep.addr + self.config.reap_seed) % (4 * self.config.HZ)

    def round_jiffies_relative(self, j: int, cpu: int, force_up: bool = False) -> int:
        """__round_jiffies_relative(j, cpu) of kernel/time/timer.c: the delay ``j`` made to end on a whole
        second of the kernel's jiffies counter, skewed by 3 jiffies per CPU.

        ``k.jiffies`` counts ticks since boot, while the kernel's counter starts at INITIAL_JIFFIES
        (300 s before the 32-bit wrap): its whole seconds fall at ``-INITIAL_JIFFIES % HZ`` past each
        second of uptime (704 ms at HZ=1000).  The real 5.10 traces agree: a reap at 1.745 s is followed
        by one at 3.729 s, which rounding on whole seconds of uptime (to 4.000 s) cannot give."""
        hz = self.config.HZ
        base = INITIAL_JIFFIES(hz)
        now = base + self.jiffies
        original = now + j
        t = original + cpu * 3
        rem = t % hz
        # just after a whole second: round down (unless force_up), else up to the next one
        t = t - rem if rem < hz // 4 and not force_up else t - rem + hz
        t -= cpu * 3
        # time_is_after_jiffies(): a rounded time that is not in the future keeps the exact value
        return (t if t > now else original) - now

    def start_cpu_timer(self, cpu: int) -> None:
        """slab_online_cpu(): the CPU's reap work, first due about a second from now."""
        delay = self.round_jiffies_relative(self.config.HZ, cpu)
        self._arm(cpu, self.jiffies + delay)

    def _arm(self, cpu: int, when: int) -> None:
        work = self.reap_work
        work.seq += 1
        heapq.heappush(work.timers, (when, work.seq, cpu))

    def advance(self, jiffies: int, run_timers: bool = True) -> int:
        """Move the clock to ``jiffies``, running every reap that falls due on the way."""
        ran = 0
        if jiffies < self.jiffies:
            raise ConfigError(f"time cannot go backwards (jiffies {self.jiffies} -> {jiffies})")
        # With nothing allocated in between, five per-CPU reaps empty an array and five node reaps empty
        # the free lists; after 16 periods per CPU a reap changes nothing, so a long idle gap is skipped
        # in bounded time: the remaining timers are moved past the gap on their 2 s grid.
        budget = 16 * max(1, len(self.topo.online_cpus))
        work = self.reap_work
        while run_timers and work.timers and work.timers[0][0] <= jiffies:
            if ran >= budget:
                period = 2 * self.config.HZ
                timers = []
                for when, seq, cpu in work.timers:
                    if when <= jiffies:
                        when += ((jiffies - when) // period + 1) * period
                    timers.append((when, seq, cpu))
                heapq.heapify(timers)
                work.timers = timers
                break
            when, _, cpu = heapq.heappop(work.timers)
            if when > self.jiffies:
                self.jiffies = when
            self.synchronize_rcu()
            self.run_cache_reap(cpu, rearm=True)
            ran += 1
        if jiffies > self.jiffies:
            self.jiffies = jiffies
            self.synchronize_rcu()
        return ran

    def run_cache_reap(self, cpu: int, rearm: bool = False) -> None:
        """Run cache_reap() on ``cpu`` now (as the per-CPU reap work does every ~2 s)."""
        saved = self.set_cpu(cpu)
        try:
            _reap.cache_reap(cast("Kernel", self))
        finally:
            self.set_cpu(saved)
        if rearm:
            self._arm(cpu, self.jiffies + self.round_jiffies_relative(2 * self.config.HZ, cpu))

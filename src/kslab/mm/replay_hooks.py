"""What a replay of a real trace tells the model, grouped in one object: ``Kernel.replay_hooks``.

The model alone never sets any of it (a kernel booted without a replay keeps the defaults, and behaves as
the kernel would with no trace to follow); kslab.trace.replay sets it where the trace shows what the model
cannot know by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING


def INITIAL_JIFFIES(hz: int) -> int:  # the kernel's macro
    """include/linux/jiffies.h: jiffies start 300 s before the 32-bit wrap, as an unsigned long."""
    return (-300 * hz) & 0xFFFFFFFF


if TYPE_CHECKING:
    from .kernel import Kernel
    from .page import Page
    from .slab_def import KmemCache


class ReplayHooks:
    """The replay's hooks into the model (see the module docstring).

    * ``race_grow``: the model runs one CPU at a time.  When a trace shows two CPUs refilling the same
      cache at once, each finding the node empty and growing a slab, the one replayed second would find
      the first one's slab: a replay sets race_grow to that cache, and the next cache_alloc_refill of it
      goes straight to growing, as the kernel's did (then it is None again);
    * ``grow_outcomes``: per CPU, what the kernel's grows for the allocation being replayed on it got:
      the node of their pages, or -1 when the page allocation failed (the model sees neither the page
      cache nor reclaim, so its nodes do not run out of pages when the kernel's do): the model's
      cache_grow_begin takes them one each, in order (grow_node);
    * ``kernel_cache_addr``: the address a struct kmem_cache of the model had in the traced kernel (a
      replay pairs them, see adopt_kernel_cache_addr), from which its node timers start;
    * ``shuffled``: called as shuffled(cachep, page, precomputed) when CONFIG_SLAB_FREELIST_RANDOM's
      shuffle_freelist has filled a new slab's freelist (``precomputed``: from the cache's random_seq, not
      a per-slab PRNG), so that a replay can follow the slab's order (trace.replay.shuffle).
    """

    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.race_grow: KmemCache | None = None
        self.kernel_cache_addr: dict[int, int] = {}
        self.shuffled: Callable[[KmemCache, Page, bool], None] | None = None
        self.grow_outcomes: dict[int, list[int]] = {}

    def grow_node(self, cpu: int, nodeid: int, thisnode: bool) -> int | None:
        """The node the next grow on ``cpu`` takes its pages from (None: it fails), asked for ``nodeid``
        (with ``thisnode``: __GFP_THISNODE, which only fails or not); see grow_outcomes."""
        outcomes = self.grow_outcomes.get(cpu)
        if not outcomes:
            return nodeid
        node = outcomes.pop(0)
        if node == -1:
            return None
        return nodeid if thisnode or node < 0 else node

    def raced(self, cachep: KmemCache) -> None:
        """The next cache_alloc_refill of ``cachep`` grows (see race_grow)."""
        self.race_grow = cachep

    def clear_race(self) -> None:
        self.race_grow = None

    def adopt_kernel_cache_addr(self, cachep_addr: int, kaddr: int) -> None:
        """A traced kernel had this cache's struct kmem_cache at ``kaddr``: its node timers start from
        that address (init_cache_node), also when the cache was set up before the address was known."""
        k = self.k
        hz = k.config.HZ
        caches = [(c, k.reap_offset(c)) for c in k.slab_caches if c.addr == cachep_addr]
        self.kernel_cache_addr[cachep_addr] = kaddr
        for c, old in caches:
            new = k.reap_offset(c)
            for n in c.node:
                # only a timer still as init_cache_node set it, at this jiffy
                if n is not None and n.next_reap == k.jiffies + 4 * hz + old:
                    n.next_reap += new - old

    def reap_grid(self, cpu: int) -> tuple[int, int]:
        """(period, phase): the jiffies ``j`` with ``j % period == phase`` are the whole seconds of the
        kernel's counter, skewed for ``cpu``, on which round_jiffies_relative() puts its reap work."""
        hz = self.k.config.HZ
        return hz, (-(INITIAL_JIFFIES(hz) + cpu * 3)) % hz

    def first_reap_delay(self, cpu: int) -> int:
        """When a CPU that came online at jiffies 0 runs its first reap (start_cpu_timer's rounding)."""
        k = self.k
        saved = k.jiffies
        k.jiffies = 0
        try:
            return k.round_jiffies_relative(k.config.HZ, cpu)
        finally:
            k.jiffies = saved

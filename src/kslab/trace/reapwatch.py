"""Following the kernel's ``cache_reap`` runs through the function tracer.

``cache_reap`` (mm/slab.c) walks every cache under ``slab_mutex``:

* it starts with ``mutex_trylock(&slab_mutex)`` and gives up at once when another CPU's reap (or a
  cache creation, a /proc/slabinfo write, ...) holds the mutex: the trace then shows the
  ``cache_reap`` line and nothing under it;
* otherwise it calls ``drain_array()`` once per cache for the CPU's own array, and a second time,
  for the node's shared array, on the caches whose node-level timer ``n->next_reap`` has expired
  (which then also get ``drain_freelist``).

So the number of ``drain_array <-cache_reap`` lines of one run is ``caches + node passes``.  On a
trace without time in it (the ``counter`` clock) the node passes are what pins down the time of the
reap: jiffies must lie between the ``next_reap`` of the last cache that passed and of the first that
did not.  :class:`ReapWatch` collects one run's lines (the events of other CPUs that interleave with
it are held back with them); the replay then runs the model's ``cache_reap`` at the run's first line,
skips it if the kernel gave up, and picks the clock from the node passes.
"""

from __future__ import annotations

from bisect import bisect_right

from .events import ALLOC_KINDS, FUNC, MARK, MM_PAGE_FREE, TraceEvent

#: Functions the reap walk calls that the oracle kernels' function tracer can show under it.
REAP_INNER = frozenset({"drain_array_locked", "free_block", "slabs_destroy", "kmem_freepages",
                        "__drain_alien_cache", "transfer_objects", "drain_freelist", "slab_destroy"})


class ReapWatch:
    """The ``drain_array`` lines of one ``cache_reap`` run on one CPU."""

    __slots__ = ("cpu", "drains", "freelist_pfns", "lineno", "min_drains", "pid", "seen", "_freed_block", "_freeing")

    def __init__(self, ev: TraceEvent, min_drains: int) -> None:
        self.cpu = ev.cpu
        self.pid = ev.pid
        self.lineno = ev.lineno
        self.drains = 0
        #: the pages drain_freelist gave back: the caches they belonged to passed the node-level part
        self.freelist_pfns: list[int] = []
        self._freeing = False
        self._freed_block = False  # free_block ran since the last drain_array line
        #: an event came after the cache_reap line (a run with nothing after it may yet continue; one
        #: with events after it but no drain_array line had given up: a walk starts at once)
        self.seen = False
        #: the walk calls drain_array at least once per cache: before that many, the run is not over
        self.min_drains = min_drains

    def observe(self, ev: TraceEvent) -> bool:
        """Count ``ev`` if it belongs to the run; False when the run is over before ``ev``."""
        self.seen = True
        if ev.cpu != self.cpu:
            return True
        if ev.pid == self.pid:
            kind = ev.kind
            if kind == FUNC:
                text = ev.text
                if text == "drain_array" and ev.parent == "cache_reap":
                    self.drains += 1
                    self._freed_block = False
                elif text not in REAP_INNER:
                    return False  # the worker went on to something else (another reap, other work)
                elif text == "free_block":
                    self._freed_block = True
                # a slab given back by drain_freelist: named so where it is a function of its own; where
                # it is inlined, slab_destroy() is called from the walk itself, and without a free_block
                # since the last drain_array it cannot be a slab that the array drain emptied
                self._freeing = text == "kmem_freepages" and (
                    ev.parent.startswith("drain_freelist") or (ev.parent == "slab_destroy" and not self._freed_block))
            elif kind in ALLOC_KINDS or kind == MARK:
                return False
            elif kind == MM_PAGE_FREE and self._freeing:
                self.freelist_pfns.append(ev.pfn)
                self._freeing = False
            # frees of off-slab freelists and the page frees of destroyed slabs belong to the walk
            return True
        # another task runs on the CPU: the worker gave up or finished its walk (a worker preempted in
        # the middle of its walk, at a cond_resched(), comes back for the rest)
        return 0 < self.drains < self.min_drains


def pick_jiffies(next_reaps: list[int], passes: int, now: int, estimate: int,
                 grid: tuple[int, int] | None = None) -> tuple[int, bool]:
    """The jiffies at which ``passes`` of the node timers ``next_reaps`` have expired, and whether exactly.

    The kernel's test is ``time_after(n->next_reap, jiffies)``: a node passes when its ``next_reap`` is
    at most jiffies.  The clock does not go back, so only values from ``now`` on are allowed.  Of the
    ranges of jiffies that give the number of passes nearest ``passes``, the value nearest ``estimate``
    is chosen; with ``grid = (period, phase)``, a value on the grid (``j % period == phase``: where the
    reap timer, rounded by round_jiffies, fires) is preferred to one off it.
    """
    v = sorted(next_reaps)
    # ranges [start, end] of jiffies over which the number of expired timers is constant
    later = sorted({t for t in v if t > now})
    starts = [now, *later]
    ranges = [(lo, (starts[i + 1] - 1) if i + 1 < len(starts) else None, bisect_right(v, lo))
              for i, lo in enumerate(starts)]
    best: tuple[int, int, int, int] | None = None  # (count error, off grid, distance to the estimate, jiffies)
    for lo, hi, c in ranges:
        j = max(lo, estimate)
        if hi is not None and j > hi:
            j = hi
        off_grid = 0
        if grid is not None:
            period, phase = grid
            below = j - (j - phase) % period
            above = below if below == j else below + period
            on = [g for g in (below, above) if g >= lo and (hi is None or g <= hi)]
            if on:
                j = min(on, key=lambda g: (abs(g - estimate), g))
            else:
                off_grid = 1
        key = (abs(c - passes), off_grid, abs(j - estimate), j)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[3], best[0] == 0


__all__ = ["REAP_INNER", "ReapWatch", "pick_jiffies"]


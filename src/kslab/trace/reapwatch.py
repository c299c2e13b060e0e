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

Which caches passed is in the lines too: ``drain_array_locked`` under a call shows that the array was
drained, and a page drain_freelist gave back follows only a cache's second call.  The model knows every
cache's arrays, so :func:`place_passes` finds where in the sequence the second calls are, and the
replay sets the model's node timers to match.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import NamedTuple

from .events import ALLOC_KINDS, FUNC, KMEM_CACHE_FREE, MARK, MM_PAGE_FREE, TraceEvent

#: Functions the reap walk calls that the oracle kernels' function tracer can show under it.
REAP_INNER = frozenset({"drain_array_locked", "free_block", "slabs_destroy", "kmem_freepages",
                        "__drain_alien_cache", "transfer_objects", "drain_freelist", "slab_destroy"})


class ReapWatch:
    """The ``drain_array`` lines of one ``cache_reap`` run on one CPU."""

    __slots__ = ("alien_before", "away", "cpu", "drained", "freelist_after", "freelist_pfns", "lineno", "min_drains",
                 "pid", "seen", "_alien", "_freed_block", "_freeing")

    #: after another task took the CPU from a worker that had walked every cache once, how many events
    #: to wait for the worker to come back to its walk (it was preempted before the last caches' second
    #: calls) before the run is taken as over
    AWAY_LIMIT = 2000

    def __init__(self, ev: TraceEvent, min_drains: int) -> None:
        self.cpu = ev.cpu
        self.pid = ev.pid
        self.lineno = ev.lineno
        #: one entry per drain_array line: 1 if drain_array_locked ran under it (the array was drained)
        self.drained = bytearray()
        #: one entry per drain_array line: 1 if drain_freelist gave back a page after it
        self.freelist_after = bytearray()
        #: one entry per drain_array line: 1 if reap_alien drained an alien array (``__drain_alien_cache``)
        #: since the line before: reap_alien runs just before a cache's first call, never before its second
        self.alien_before = bytearray()
        self._alien = False
        #: the pages drain_freelist gave back: the caches they belonged to passed the node-level part
        self.freelist_pfns: list[int] = []
        self._freeing = False
        self._freed_block = False  # free_block ran since the last drain_array line
        #: an event came after the cache_reap line (a run with nothing after it may yet continue; one
        #: with events after it but no drain_array line had given up: a walk starts at once)
        self.seen = False
        #: the walk calls drain_array at least once per cache: before that many, the run is not over
        self.min_drains = min_drains
        #: events seen since another task took the CPU after min_drains (None: the worker has it)
        self.away: int | None = None

    @property
    def drains(self) -> int:
        """The run's drain_array lines so far."""
        return len(self.drained)

    def observe(self, ev: TraceEvent) -> bool:
        """Count ``ev`` if it belongs to the run; False when the run is over before ``ev``."""
        self.seen = True
        if ev.cpu != self.cpu:
            if self.away is not None:
                self.away += 1
                return self.away <= self.AWAY_LIMIT
            return True
        if ev.pid == self.pid:
            self.away = None
            kind = ev.kind
            if kind == FUNC:
                text = ev.text
                if text == "drain_array" and ev.parent == "cache_reap":
                    self.drained.append(0)
                    self.freelist_after.append(0)
                    self.alien_before.append(self._alien)
                    self._alien = False
                    self._freed_block = False
                elif text == "__drain_alien_cache" and ev.parent == "cache_reap":
                    self._alien = True
                elif text == "drain_array_locked" and self.drained:
                    self.drained[-1] = 1
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
                if self.freelist_after:
                    self.freelist_after[-1] = 1
                self._freeing = False
            elif kind == KMEM_CACHE_FREE and ev.call_site.startswith("drain_freelist") and self.freelist_after:
                # an off-slab freelist freed by drain_freelist's slab_destroy: the slab went, even where its
                # pages go back later (a SLAB_TYPESAFE_BY_RCU cache's, from an RCU callback)
                self.freelist_after[-1] = 1
            # frees of off-slab freelists and the page frees of destroyed slabs belong to the walk
            return True
        # another task runs on the CPU: the worker gave up, or finished its walk, or was preempted (at a
        # cond_resched()) and comes back for the rest.  Before a call per cache it cannot be over; after,
        # the worker's next line tells, if it comes soon enough
        if self.drains == 0:
            return False
        if self.drains < self.min_drains:
            return True
        self.away = (self.away or 0) + 1
        return self.away <= self.AWAY_LIMIT


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


class NodeAtReap(NamedTuple):
    """What the model says of one cache as a ``cache_reap`` run reaches it."""

    own: bool  #: drain_array would drain the CPU's array (it has objects and was not touched)
    shared: bool  #: ... and the node's shared array
    due: int  #: ``next_reap - jiffies``: at most 0 when the model's node timer has expired
    freeing: bool  #: drain_freelist would give back a page (that the trace shows at once)
    alien: bool = False  #: reap_alien would drain the alien array of the CPU's reap node
    #: the timer is only a lower bound: a run the timer said would pass did not (the kernel's timer was
    #: later, by an unknown amount), and the cache has not passed since
    bound: bool = False


#: costs of place_passes: an outcome the model's arrays cannot give, and a node timer read against the
#: model's (plus up to 999 for how far the timer is from expiring, or since it expired).  One outcome
#: the model cannot give weighs more than any one timer read against it (at most 1999), and less than
#: two: moving one pass elsewhere reads two timers against the model (one that expired stays, one that
#: did not passes), so a pass moves to explain two contradicting outcomes, not one.
MISMATCH = 2500
AGAINST_TIMER = 1000
#: ... and a timer that is only a lower bound, read either way
BOUND_TIMER = 300


def place_passes(caches: list[NodeAtReap], drained: bytes | bytearray | None,
                 freelist_after: bytes | bytearray | None, calls: int | None = None,
                 alien_before: bytes | bytearray | None = None) -> list[bool] | None:
    """Which caches passed the node-level part of a ``cache_reap`` run, from the trace's drain_array lines.

    The walk calls drain_array once per cache for the CPU's array, then, where the node timer had
    expired, once more for the node's shared array, followed by drain_freelist.  ``drained[i]`` tells
    whether drain_array_locked ran under the trace's i-th call, ``freelist_after[i]`` whether
    drain_freelist gave back a page after it.  The model knows both arrays of every cache, so the
    sequence says where the second calls are.  The passes are placed where the sequence fits best,
    by dynamic programming over (cache, passes so far): an outcome the model's arrays cannot give
    costs more than a node timer read against the model's, and among the timers read against the
    model's, those nearest to expiring (or to not having expired) cost least.  ``alien_before[i]`` tells
    whether reap_alien drained an alien array just before the i-th call: that call is then a cache's
    first, and the model knows which caches' alien arrays (for the CPU's reap node) have objects.  A
    trace whose function
    tracer does not show drain_array_locked (or drain_freelist's pages) gives None for that sequence:
    ``calls`` is then the number of drain_array lines, and only the timers place the passes.  None when
    the number of calls cannot be the walk's.
    """
    total = len(caches)
    if calls is None:
        calls = len(drained) if drained is not None else len(freelist_after) if freelist_after is not None else 0
    extra = calls - total
    if extra < 0 or extra > total or any(seq is not None and len(seq) != calls
                                         for seq in (drained, freelist_after, alien_before)):
        return None
    # a sequence the trace does not give costs nothing either way: 2 stands for "not known"
    known_drained = drained if drained is not None else bytes([2]) * calls
    known_freed = freelist_after if freelist_after is not None else bytes([2]) * calls
    known_alien = alien_before if alien_before is not None else bytes([2]) * calls

    def miss(seen: int, want: bool) -> int:
        return MISMATCH if seen != 2 and seen != want else 0

    inf = 1 << 62
    cost = [0] + [inf] * extra  # cost[p]: the best cost of the caches so far with p passes among them
    choices: list[bytearray] = []
    for i, c in enumerate(caches):
        if c.bound:
            stay, go = (0, BOUND_TIMER) if c.due > 0 else (BOUND_TIMER, 0)
        else:
            stay = 0 if c.due > 0 else AGAINST_TIMER + min(999, -c.due)
            go = 0 if c.due <= 0 else AGAINST_TIMER + min(999, c.due)
        new = [inf] * (extra + 1)
        pick = bytearray(extra + 1)
        for p in range(min(i, extra) + 1):
            base = cost[p]
            if base >= inf:
                continue
            pos = i + p
            # the CPU's array; drain_freelist never runs after its call
            here = (base + miss(known_drained[pos], c.own) + miss(known_freed[pos], False)
                    + miss(known_alien[pos], c.alien))
            v = here + stay
            if v < new[p]:
                new[p] = v
                pick[p] = 0
            if p < extra:
                v = (here + go + miss(known_drained[pos + 1], c.shared) + miss(known_freed[pos + 1], c.freeing)
                     + miss(known_alien[pos + 1], False))
                if v < new[p + 1]:
                    new[p + 1] = v
                    pick[p + 1] = 1
        cost = new
        choices.append(pick)
    if cost[extra] >= inf:
        return None
    plan = [False] * total
    p = extra
    for i in range(total - 1, -1, -1):
        if choices[i][p]:
            plan[i] = True
            p -= 1
    return plan


__all__ = ["AGAINST_TIMER", "MISMATCH", "REAP_INNER", "NodeAtReap", "ReapWatch", "pick_jiffies", "place_passes"]


"""Following the kernel's cache_reap runs and the clock: the runs' evidence (collected by
:class:`ReapHold`, see reapwatch), jiffies on a counter-clock trace, the node timers, and the model's runs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ...mm.kernel import Kernel
from ...mm.page import PAGE_OFFSET, PAGE_SHIFT
from ...mm.slab.adopt import set_next_reap
from ...mm.slab.reap import drain_array_tofree
from ...mm.slab_def import CFLGS_OFF_SLAB, SLAB_TYPESAFE_BY_RCU, KmemCache
from ..events import FUNC, TraceEvent
from ..reapwatch import NodeAtReap, ReapWatch, pick_jiffies, place_passes
from .boot import Boot
from .options import Applied, Clock, Followed, ReapMode, ReplaySummary
from .ptrmap import PointerMap
from .stage import Stage


class TraceClock:
    """The trace's clock (``mode``, a :class:`Clock`) and the model's jiffies following it.

    ``in_seconds`` is ``mode == Clock.SECONDS`` kept as a plain bool: the fast paths test it at every
    event, and comparing with an enum member costs about four times as much."""

    def __init__(self, k: Kernel, run_timers: bool) -> None:
        self.k = k
        self.hz = k.config.HZ
        self._mode = Clock.SECONDS
        self.in_seconds = True
        self.run_timers = run_timers

    @property
    def mode(self) -> Clock:
        return self._mode

    @mode.setter
    def mode(self, mode: Clock) -> None:
        self._mode = mode
        self.in_seconds = mode == Clock.SECONDS

    def follow(self, ev: TraceEvent) -> None:
        """On a clock in seconds, jiffies move on to the event's time stamp."""
        if self.in_seconds:
            j = int(ev.ts * self.hz)
            if j > self.k.jiffies:
                self.k.advance(j, run_timers=self.run_timers)


class ReapEvidence:
    """What the function tracer showed of the kernel's cache_reap runs: each run's lines (``drains``, by the
    line of its cache_reap) and which of the functions involved the tracer shows at all."""

    def __init__(self) -> None:
        self.drains: dict[int, ReapWatch] = {}
        self.traced_drain_array = False
        # whether the function tracer shows drain_array_locked, and drain_freelist's pages (kmem_freepages
        # lines and page frees): until it does, a reap run's lines say nothing of them
        self.traced_drain_locked = False
        self.traced_freepages = False
        # whether it shows __drain_alien_cache (reap_alien's drain of an alien array)
        self.traced_alien = False


class ReapHold(Stage):
    """Holds the events back while a cache_reap run's lines are being counted (see reapwatch): the model
    runs each at its first line, with the whole run's evidence."""

    def __init__(self, k: Kernel, evidence: ReapEvidence, limit: int) -> None:
        super().__init__()
        self.k = k
        self.evidence = evidence
        self.limit = limit
        self.watches: dict[int, ReapWatch] = {}
        self.held: list[TraceEvent] = []

    def idle(self) -> bool:
        return not self.watches

    def push(self, ev: TraceEvent) -> None:
        watches = self.watches
        if watches:
            for cpu, w in list(watches.items()):
                if not w.observe(ev):
                    self.evidence.drains[w.lineno] = w
                    del watches[cpu]
            if watches or (ev.kind == FUNC and ev.text == "cache_reap"):
                self._hold(ev)
                return
            self._release()
        elif ev.kind == FUNC and ev.text == "cache_reap":
            self._hold(ev)
            return
        self.down.push(ev)

    def _hold(self, ev: TraceEvent) -> None:
        if ev.kind == FUNC:
            ev_ = self.evidence
            if ev.text == "cache_reap":
                self.watches[ev.cpu] = ReapWatch(ev, len(self.k.slab_caches))
            elif ev.text == "drain_array":
                ev_.traced_drain_array = True
            elif ev.text == "drain_array_locked":
                ev_.traced_drain_locked = True
            elif ev.text == "kmem_freepages":
                ev_.traced_freepages = True
            elif ev.text == "__drain_alien_cache":
                ev_.traced_alien = True
        hold = self.held
        hold.append(ev)
        if len(hold) >= self.limit:
            self._close(full=True)

    def _close(self, full: bool) -> None:
        """End the runs still being collected and replay the held events.  When the hold is ``full``,
        a run with no drain_array line in all that time gave up; when the input ends (or is flushed),
        a run with nothing after its cache_reap line is not known to have given up."""
        for w in self.watches.values():
            if full or w.drains or w.seen:
                self.evidence.drains[w.lineno] = w
        self.watches.clear()
        self._release()

    def _release(self) -> None:
        hold, self.held = self.held, []
        for ev in hold:
            self.down.push(ev)

    def flush(self) -> None:
        if self.held:
            self._close(full=False)


class ReapFollower:
    """The model's cache_reap where the kernel's ran (``--reap trace``), the clock estimated from the runs
    on a counter-clock trace, and the node timers set from the runs' outcomes."""

    align_passes = True  # False: the node timers are left to the model (tests)

    def __init__(self, k: Kernel, boot: Boot, ptrs: PointerMap, clock: TraceClock, evidence: ReapEvidence,
                 reap: str, summary: ReplaySummary) -> None:
        self.k = k
        self.boot = boot
        self.ptrs = ptrs
        self.clock = clock
        self.evidence = evidence
        self.reap = reap
        self.summary = summary
        self.count: Counter[int] = Counter()
        #: the nodes whose timer a run put at the next run because the kernel's did not pass where the
        #: model's timer had expired: the kernel's timer is later, by an amount nothing in the trace gives
        self.bound: set[int] = set()

    def cache_reap(self, ev: TraceEvent) -> bool:
        """The function tracer's cache_reap line; False when the model does not run it (``--reap``)."""
        self.count[ev.cpu] += 1
        evidence = self.evidence
        watch = evidence.drains.pop(ev.lineno, None)
        drains = watch.drains if watch is not None else None
        if not evidence.traced_drain_array:
            drains = None  # the function tracer does not show drain_array: the runs are not known
        cpu = self.boot.cpu(ev)
        forced = self._freelist_evidence(cpu, watch) if drains else []
        self._clock_from_reap(ev, cpu, drains, forced)
        if drains and watch is not None and self.align_passes and cpu == ev.cpu:
            # (on a smaller machine than the trace's, the CPU's arrays are not the kernel's CPU's)
            self._passes_from_drains(cpu, watch)
        if self.reap != ReapMode.TRACE:
            return False
        if drains == 0:
            # the kernel's mutex_trylock(&slab_mutex) failed: that run visited no cache
            self.summary.applied[Applied.CACHE_REAP_GAVE_UP] += 1
            return True
        self._run_reap(cpu, drains)
        self.summary.reaps += 1
        self.summary.applied[Applied.CACHE_REAP] += 1
        return True

    def _freelist_evidence(self, cpu: int, watch: ReapWatch | None) -> list[Any]:
        """Node structures whose reap timer had expired in the kernel's run, as drain_freelist showed.

        drain_freelist() runs only in a cache's node-level part, so a page it gave back names a cache
        that passed.  Where the model's timer for that node says otherwise (its first timer comes from
        the cache's address and creation time, which a trace does not always give), the model's is
        wrong: it is made to expire now."""
        if watch is None or not watch.freelist_pfns:
            return []
        k = self.k
        node = k.topo.cpu_to_node[cpu]
        out = []
        for pfn in watch.freelist_pfns:
            c = self.ptrs.kpage_cache.get((PAGE_OFFSET >> PAGE_SHIFT) + pfn)
            n = c.node[node] if c is not None and node < len(c.node) else None
            if n is not None and n not in out:
                out.append(n)
        return out

    def _clock_from_reap(self, ev: TraceEvent, cpu: int, drains: int | None, forced: list[Any]) -> None:
        """A trace without time in it (counter clock): estimate jiffies at a cache_reap run.

        Each CPU's reap work runs every 2 s after a first run at ~1 s (as Kernel.start_cpu_timer arms
        it); that estimate drifts where the work ran late (it is a deferrable timer: an idle CPU runs
        it when it next wakes).  When the function tracer showed the run, its count of ``drain_array``
        calls gives the number of caches whose node timer had expired, which bounds jiffies (see
        reapwatch.pick_jiffies); the estimate is then only the tie-breaker.
        """
        k = self.k
        if self.clock.mode != Clock.COUNTER:
            if drains and self.boot.early_timers:
                self._early_timers_lag(ev, cpu, drains, forced)
            self._force_timers(forced, k.jiffies)
            return
        hz = self.clock.hz
        n = self.count[ev.cpu]
        j = k.replay_hooks.first_reap_delay(ev.cpu) + (n - 1) * 2 * hz
        if drains:
            node = k.topo.cpu_to_node[cpu]
            timers = [nd.next_reap for c in k.slab_caches if (nd := c.node[node]) is not None and nd not in forced]
            passes = drains - len(k.slab_caches) - len(forced)
            j, exact = pick_jiffies(timers, passes, k.jiffies, j, k.replay_hooks.reap_grid(cpu))
            if not exact:
                self.summary.followed[Followed.CLOCK_NEAREST] += 1
        if j > k.jiffies:
            k.advance(j, run_timers=False)
        self._force_timers(forced, k.jiffies)

    def _early_timers_lag(self, ev: TraceEvent, cpu: int, drains: int, forced: list[Any]) -> None:
        """On a trace with time in it, place the node timers of the caches created before its first
        event.  The kernel created them at kmem_cache_init, when jiffies still stood at its start, but
        jiffies may have started counting seconds after the clock of the trace did (an emulated early
        boot can be that slow), and the model, which knows only the trace's clock, sets them as if
        jiffies had started with it.  While none of them has expired yet, a reap run with fewer node
        passes than the model's says they were set later: by whole seconds, since the reap runs keep
        the phase of whole seconds of jiffies.  The smallest such delay that gives the run's count is
        taken, once."""
        k = self.k
        boot = self.boot
        node = k.topo.cpu_to_node[cpu]
        jiffies = k.jiffies
        early = [(nd, t) for nd, t in boot.early_timers if nd.nid == node and nd not in forced]
        if any(nd.next_reap != t for nd, t in early):
            boot.early_timers = []  # one of them has expired and been reset: too late to move them
            return
        timers = [nd.next_reap for c in k.slab_caches if (nd := c.node[node]) is not None and nd not in forced]
        passes = drains - len(k.slab_caches) - len(forced)
        now = sum(1 for t in timers if t <= jiffies)
        if passes >= now:
            return
        later = {id(nd) for nd, _ in early}
        others = [nd.next_reap for c in k.slab_caches
                  if (nd := c.node[node]) is not None and nd not in forced and id(nd) not in later]
        hz = self.clock.hz
        expired = sum(1 for t in others if t <= jiffies)  # the timers that are not moved
        for lag in range(hz, jiffies + hz, hz):
            n = expired + sum(1 for _, t in early if t + lag <= jiffies)
            if n == passes:
                for nd, t in boot.early_timers:
                    set_next_reap(nd, t + lag)
                boot.early_timers = []
                self.summary.notes.append(f"line {ev.lineno}: the node timers of the caches created before the "
                                          f"trace began put {lag} ticks later (jiffies started after the "
                                          f"trace's clock), so that this cache_reap run's node passes fit")
                self.summary.followed[Followed.EARLY_TIMERS_LATER] += 1
                return

    def _passes_from_drains(self, cpu: int, watch: ReapWatch) -> None:
        """Set the model's node timers so that the caches pass where the kernel's run shows they did
        (see reapwatch.place_passes); a timer the kernel's run did not find expired expires at the next."""
        k = self.k
        node = k.topo.cpu_to_node[cpu]
        reap_node = k.reap_work.slab_reap_node[cpu]
        j = k.jiffies
        nodes = []
        caches = []
        for c in k.slab_caches:
            n = c.node[node] if node < len(c.node) else None
            if n is None:
                return
            ac = c.cpu_cache[cpu]
            sh = n.shared
            own = bool(ac.entry) and not ac.touched
            shared = sh is not None and bool(sh.entry) and not sh.touched
            # drain_freelist gives back a page when the node has a free slab (after the array drains just
            # before) and took none from its free list since the last reap (free_touched)
            freeing = not n.free_touched and self.free_slab_after_drains(c, n, cpu, own, shared)
            alien = n.alien[reap_node] if n.alien is not None and reap_node < len(n.alien) else None
            caches.append(NodeAtReap(own, shared, n.next_reap - j, freeing and self.frees_at_once(c),
                                     alien is not None and bool(alien.entry), id(n) in self.bound))
            nodes.append(n)
        ev_ = self.evidence
        plan = place_passes(caches, watch.drained if ev_.traced_drain_locked else None,
                            watch.freelist_after if ev_.traced_freepages else None, watch.drains,
                            watch.alien_before if ev_.traced_alien else None)
        if plan is None:
            return
        moved = 0
        bound = self.bound
        for n, passed in zip(nodes, plan, strict=True):
            if passed:
                bound.discard(id(n))
                if n.next_reap > j:
                    set_next_reap(n, j)
                    moved += 1
            elif n.next_reap <= j:
                set_next_reap(n, j + 1)
                bound.add(id(n))
                moved += 1
        if moved:
            self.summary.followed[Followed.TIMERS_FROM_DRAINS] += moved

    @staticmethod
    def frees_at_once(c: KmemCache) -> bool:
        """Whether drain_freelist's slab_destroy shows the slab's page being given back: a
        SLAB_TYPESAFE_BY_RCU cache's pages go back from an RCU callback, later and elsewhere; only its
        off-slab freelist's free (``kmem_cache_free`` from drain_freelist) is seen then."""
        return not c.flags & SLAB_TYPESAFE_BY_RCU or bool(c.flags & CFLGS_OFF_SLAB)

    def free_slab_after_drains(self, c: KmemCache, n: Any, cpu: int, own: bool, shared: bool) -> bool:
        """Whether ``n`` has a free slab after cache_reap drains the CPU's array (``own``) and the
        shared one (``shared``): drain_array_locked's count of the oldest objects, as free_block
        gives them back and then trims the free slabs beyond free_limit; nothing is changed."""
        free_slabs: int = n.free_slabs
        if not own and not shared:
            return free_slabs > 0
        free_objects: int = n.free_objects
        page_of = self.k.page_of
        taken: dict[int, int] = {}
        for ac, drains in ((c.cpu_cache[cpu], own), (n.shared, shared)):
            if not drains or ac is None:
                continue
            tofree = drain_array_tofree(ac, False)
            free_objects += tofree
            for obj in ac.entry[:tofree]:
                page = page_of(obj)
                if page is None:
                    continue
                left = taken.get(page.pfn, page.active) - 1
                taken[page.pfn] = left
                if left == 0:
                    free_slabs += 1
            while free_objects > n.free_limit and free_slabs > 0:
                free_objects -= c.num
                free_slabs -= 1
        return free_slabs > 0

    def _force_timers(self, forced: list[Any], jiffies: int) -> None:
        for nd in forced:
            if nd.next_reap > jiffies:
                set_next_reap(nd, jiffies)
                self.summary.followed[Followed.TIMERS_FROM_FREELIST] += 1

    def _run_reap(self, cpu: int, drains: int | None) -> None:
        """Run the model's cache_reap on ``cpu`` and compare its node passes with the kernel's."""
        k = self.k
        node = k.topo.cpu_to_node[cpu]
        before = [(n, n.next_reap) for c in k.slab_caches if (n := c.node[node]) is not None]
        caches = len(k.slab_caches)
        k.run_cache_reap(cpu)
        passed = [n for n, t in before if n.next_reap != t]
        for n in passed:
            self.bound.discard(id(n))  # its timer is the model's own again
        if drains is None:
            return
        passes = len(passed)
        if caches + passes == drains:
            self.summary.followed[Followed.PASSES_EQUAL] += 1
        else:
            self.summary.followed[Followed.PASSES_DIFFER] += 1

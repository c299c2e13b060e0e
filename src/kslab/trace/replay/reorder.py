"""The reordering holds: stages that hold events back until the trace shows in which order the kernel
really did what they stand for, then pass them on (see engine.Replayer for the pipeline).

Each is a :class:`Stage`: ``push(ev)``, ``flush()``, a downstream ``down``; each says whether it holds
anything for a CPU (``idle(cpu)``), and :func:`make_feed` builds the pipeline's entry with the one
"nothing is held for this CPU" short-cut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...mm.kernel import Kernel
from ...mm.slab_def import KmemCache
from ..events import (
    FUNC,
    KFREE,
    KMALLOC,
    KMEM_CACHE_ALLOC,
    KMEM_CACHE_ALLOC_NODE,
    KMEM_CACHE_FREE,
    MARK,
    MM_PAGE_ALLOC,
    MM_PAGE_FREE_BATCHED,
    TraceEvent,
)
from .apply import Apply
from .boot import Boot
from .markers import Markers
from .options import Followed, ReplaySummary
from .ptrmap import PointerMap
from .reap import ReapHold
from .stage import Stage

# A /proc/slabinfo write is seen twice: the function tracer's slabinfo_write line when the kernel
# tunes the cache, and later the marker that an --action turns into the model's write.  Events in
# between are held back (at most HOLD_LIMIT) so the model's write can happen where the kernel's did.
# (The same limit bounds the interrupt hold after a refill and the reap hold.)
HOLD_LIMIT = 20_000
# events held for interrupts (see IrqWindow)
IRQ_WINDOW_LIMIT = 4096
# events held for a free whose flush came before another CPU's refill (see FlushOrder)
FLUSH_RACE_LIMIT = 256


class EventCache:
    """The model's cache of an allocation or free of the trace, when the event or the pointer tells."""

    def __init__(self, k: Kernel, ptrs: PointerMap) -> None:
        self.k = k
        self.kcache = ptrs.kcache

    def __call__(self, ev: TraceEvent) -> KmemCache | None:
        k = self.k
        kind = ev.kind
        if kind == KMALLOC:
            return k.kmalloc_slab(ev.bytes_req, ev.gfp)
        if kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_FREE) and ev.name:
            return k.find_cache(ev.name)
        if kind in (KFREE, KMEM_CACHE_FREE):
            return self.kcache.get(ev.ptr)
        return None


class FlushOrder(Stage):
    """Frees whose flush came before another CPU's refill.

    A free's event is written after the free, and its function-tracer lines come before it: the
    cache_flusharray line says when the free moved a batch of its CPU's array to the node (the
    node's shared array, or free_block to the slabs), under the node's list_lock.  A refill on
    another CPU of the node takes from the same shared array and slabs under that lock.  When the
    refill's cache_alloc_refill line comes after a flush line whose free event has not come yet,
    the flush went first; if the allocation's event is nevertheless written before the free's,
    and the free is of the allocation's cache, the free is replayed first.  The events from the
    allocation's on are held back until the flushing CPU's next event (at most FLUSH_RACE_LIMIT)."""

    def __init__(self, k: Kernel, event_cache: EventCache, summary: ReplaySummary) -> None:
        super().__init__()
        self.cpu_to_node = k.topo.cpu_to_node
        self.cpus = k.config.cpus
        self.event_cache = event_cache
        self.summary = summary
        # per CPU, the line of a cache_flusharray whose free event has not come yet, and of a
        # cache_alloc_refill whose allocation event has not; the hold: (flushing CPU, allocation, events)
        self.open: dict[int, int] = {}
        self.refill_seen: dict[int, int] = {}
        self.race: tuple[int, TraceEvent, list[TraceEvent]] | None = None

    def idle(self, cpu: int) -> bool:
        return self.race is None and cpu not in self.open and cpu not in self.refill_seen

    def push(self, ev: TraceEvent) -> None:
        race = self.race
        if race is not None:
            cpu, alloc, held = race
            if ev.cpu != cpu or ev.kind > KMEM_CACHE_FREE:
                held.append(ev)
                if len(held) > FLUSH_RACE_LIMIT:
                    self._release()
                return
            self.race = None
            self.open.pop(cpu, None)
            cachep = self.event_cache(ev) if ev.kind >= KFREE else None
            first = cachep is not None and cachep is self.event_cache(alloc)
            if first:
                self.summary.followed[Followed.FLUSH_BEFORE_REFILL] += 1
            self.push_held(ev, held, self.push if first else None)
            return
        kind = ev.kind
        if kind == FUNC:
            text = ev.text
            if text == "cache_flusharray":
                self.open[ev.cpu] = ev.lineno
            elif text == "cache_alloc_refill":
                self.refill_seen[ev.cpu] = ev.lineno
        elif kind <= KMEM_CACHE_FREE:
            opened = self.open
            if opened:
                opened.pop(ev.cpu, None)
            if kind <= KMEM_CACHE_ALLOC_NODE and self.refill_seen:
                line = self.refill_seen.pop(ev.cpu, None)
                if line is not None and opened and kind in (KMALLOC, KMEM_CACHE_ALLOC):
                    to_node = self.cpu_to_node
                    node = to_node[ev.cpu % self.cpus]
                    for cpu, fline in opened.items():
                        if fline < line and to_node[cpu % self.cpus] == node:
                            self.race = (cpu, ev, [ev])
                            return
        self.down.push(ev)

    def _release(self) -> None:
        """Replay the events held back for a free whose event did not come, in their order (they may
        start another such hold)."""
        assert self.race is not None
        cpu, _, held = self.race
        self.race = None
        self.open.pop(cpu, None)
        for e in held:
            self.push(e)

    def flush(self) -> None:
        while self.race is not None:
            self._release()


class IrqWindow(Stage):
    """Allocations done before an interrupt whose events came first.

    kmem_cache_alloc() and kmalloc() emit their event after local_irq_restore(): an interrupt (and the
    softirqs run on its way out) can come between the allocation and its line, so the trace shows
    the interrupt's events first although the allocation was done before them.  Two things tell:
    the function tracer's cache_alloc_refill before the interrupt (see IrqRefillHold), and, for an
    allocation the CPU's array satisfied, the object it returned: an array hands out its newest
    object, so when the interrupt freed objects of the cache onto this CPU's array and the
    allocation's object is not the last of them, the allocation came first, and the replay moves it
    before the interrupt's first event of that cache.  To see the allocation, the events from an
    interrupt's first line until the interrupted task's next line are held back (at most
    IRQ_WINDOW_LIMIT; a trace without the irq-info column has no interrupt lines and holds nothing)."""

    def __init__(self, k: Kernel, boot: Boot, event_cache: EventCache, summary: ReplaySummary) -> None:
        super().__init__()
        self.k = k
        self.boot = boot
        self.event_cache = event_cache
        self.summary = summary
        self.buf: list[TraceEvent] = []  # events held back while an interrupt's window is open
        self.windows: dict[int, int] = {}  # CPU -> index in buf of its interrupt's first event
        self.task_pid: dict[int, int] = {}  # CPU -> pid of its last event outside interrupts

    def idle(self, cpu: int) -> bool:
        return not self.buf

    def push(self, ev: TraceEvent) -> None:
        kind = ev.kind
        buf = self.buf
        if kind >= MM_PAGE_ALLOC:  # page allocator events, markers, function-tracer lines
            if buf:
                buf.append(ev)
            else:
                self.down.push(ev)
            return
        cpu = ev.cpu
        windows = self.windows
        if ev.irq:
            if cpu not in windows and self.task_pid.get(cpu) == ev.pid:
                windows[cpu] = len(buf)
            if buf or cpu in windows:
                buf.append(ev)
                if len(buf) > IRQ_WINDOW_LIMIT:
                    self._release()
            else:
                self.down.push(ev)
            return
        self.task_pid[cpu] = ev.pid
        start = windows.pop(cpu, None)
        if start is not None and kind in (KMALLOC, KMEM_CACHE_ALLOC) and ev.ptr:
            at = self._alloc_before_irq(ev, buf, start)
            if at is not None:
                buf.insert(at, ev)
                self.summary.followed[Followed.ALLOC_BEFORE_IRQ] += 1
                if not windows:
                    self._release()
                return
        if buf:
            buf.append(ev)
            if not windows:
                self._release()
        else:
            self.down.push(ev)

    def _alloc_before_irq(self, ev: TraceEvent, buf: list[TraceEvent], start: int) -> int | None:
        """Where in ``buf`` the task's allocation ``ev`` was really done (None: where it is)."""
        cachep = self.event_cache(ev)
        if cachep is None:
            return None
        k = self.k
        cpu = ev.cpu
        node = k.topo.cpu_to_node[cpu % k.config.cpus]
        first = None
        last_free = None
        freed: set[int] = set()
        for i in range(start, len(buf)):
            e = buf[i]
            if e.cpu != cpu or e.kind > KMEM_CACHE_FREE or not e.irq:
                continue
            if self.event_cache(e) is not cachep:
                continue
            if first is None:
                first = i
            if e.kind >= KFREE:
                if k.numa_multi and self.boot.kernel_node(e.ptr) != node:
                    continue  # a remote object goes to an alien cache, not to this CPU's array
                last_free = e.ptr
                freed.add(e.ptr)
            else:
                last_free = None
        if first is None or last_free is None or ev.ptr in freed:
            return None
        return first

    def _release(self) -> None:
        """Replay the events held back for interrupts, in their (corrected) order."""
        held = self.buf[:]
        self.buf.clear()
        self.windows.clear()
        for e in held:
            self.down.push(e)

    def flush(self) -> None:
        if self.buf:
            self._release()


class IrqRefillHold(Stage):
    """Allocations whose event came after an interrupt's: replay ``ev`` in the order the kernel did what
    the events stand for.

    An allocation's event is written after the allocation returned, with interrupts enabled
    again, so an interrupt taken in between (and its softirqs: a batch of RCU callbacks freeing
    objects, say) shows its events before the allocation's.  That the allocation came first is
    only known when the function tracer shows its ``cache_alloc_refill``: the refill and the
    taking of the object run with interrupts off (but for the page allocation of a grow, between
    ``cache_grow_begin`` and ``cache_grow_end``, where interrupts may come before the object is
    taken).  So, after a CPU's refill (its grow ended), events of that CPU in a deeper context
    (``TraceEvent.irq``: softirq over task, hardirq over softirq...) hold back every event until
    the refill's own context on that CPU shows its next event: the allocation, replayed before
    the held events (anything else: the events stay in their order)."""

    def __init__(self, summary: ReplaySummary) -> None:
        super().__init__()
        self.summary = summary
        # per CPU, the context (irq), pid and grow state of a cache_alloc_refill whose allocation event
        # has not come yet; the hold: (CPU, context, pid, events held since an interrupt after the refill)
        self.refill_open: dict[int, list[Any]] = {}
        self.hold: tuple[int, int, int, list[TraceEvent]] | None = None

    def idle(self, cpu: int) -> bool:
        return self.hold is None and cpu not in self.refill_open

    def push(self, ev: TraceEvent) -> None:
        hold = self.hold
        if hold is not None:
            cpu, ctx, pid, held = hold
            if ev.cpu != cpu or ev.irq > ctx:
                held.append(ev)
                if len(held) >= HOLD_LIMIT:
                    self._release()
                return
            self.hold = None
            self.refill_open.pop(cpu, None)
            first = ev.kind <= KMEM_CACHE_ALLOC_NODE and ev.irq == ctx and ev.pid == pid
            if first:
                self.summary.followed[Followed.ALLOC_AFTER_IRQ] += 1
            self.push_held(ev, held, self.down.push if first else None)
            return
        refill = self.refill_open
        if ev.kind == FUNC and ev.text == "cache_alloc_refill":
            refill[ev.cpu] = [ev.irq, ev.pid, False]
        elif refill and ev.cpu in refill:
            state = refill[ev.cpu]
            if ev.irq > state[0]:
                if not state[2]:
                    self.hold = (ev.cpu, state[0], state[1], [ev])
                    return
            elif ev.kind == FUNC:
                if ev.parent == "cache_alloc_refill" and ev.text in ("cache_grow_begin", "cache_grow_end"):
                    state[2] = ev.text == "cache_grow_begin"
            elif ev.kind < MM_PAGE_ALLOC or ev.kind > MM_PAGE_FREE_BATCHED:
                del refill[ev.cpu]  # the allocation, or whatever the refill's context did next
        self.down.push(ev)

    def _release(self, to_end: bool = False) -> None:
        """Replay the events held back for an allocation whose event did not come, in their order
        (``to_end``: and those of any hold they start, as the end of the input does)."""
        while self.hold is not None:
            cpu, _, _, held = self.hold
            self.hold = None
            self.refill_open.pop(cpu, None)
            for e in held:
                self.push(e)
            if not to_end:
                break

    def flush(self) -> None:
        if self.hold is not None:
            self._release(to_end=True)


class SlabinfoWriteHold(Stage):
    """A /proc/slabinfo write (see HOLD_LIMIT): from the function tracer's slabinfo_write line to the next
    marker, events are held back; if an --action turns that marker into a slabinfo-write, the model's
    write runs where the kernel's slabinfo_write did."""

    def __init__(self, k: Kernel, boot: Boot, markers: Markers, apply: Apply, summary: ReplaySummary) -> None:
        super().__init__()
        self.k = k
        self.boot = boot
        self.markers = markers
        self.apply = apply
        self.summary = summary
        self.held: list[TraceEvent] | None = None

    def idle(self, cpu: int) -> bool:
        return self.held is None

    def push(self, ev: TraceEvent) -> None:
        held = self.held
        if held is not None:
            held.append(ev)
            if ev.kind == MARK or len(held) >= HOLD_LIMIT:
                self._release()
            return
        if ev.kind == FUNC and ev.text == "slabinfo_write" and self.markers.action_res:
            self.held = [ev]
            return
        self.down.push(ev)

    def _release(self) -> None:
        """The marker after a slabinfo_write arrived (or the hold is full): if an --action turns it into a
        slabinfo-write, run that first, at the kernel's moment, then the held events (general code)."""
        held, self.held = self.held or [], None
        last = held[-1]
        early = self.markers.slabinfo_write_action(last) if last.kind == MARK else None
        apply = self.apply.apply
        for ev in held:
            if early is not None and ev is held[0]:
                apply(ev)
                self.k.set_cpu(self.boot.cpu(ev))
                self.markers.action(early, ev)
                self.summary.notes.append(f"line {ev.lineno}: {early!r} applied where the kernel's slabinfo_write "
                                          f"ran (its marker is line {last.lineno})")
                self.markers.early_action = (last.lineno, early)
                continue
            apply(ev)

    def flush(self) -> None:
        if self.held is not None:
            self._release()


def make_feed(flush_order: FlushOrder, irq: IrqWindow, refill: IrqRefillHold, reap: ReapHold,
              slabinfo: SlabinfoWriteHold, apply: Apply) -> Callable[[TraceEvent], None]:
    """The pipeline's entry: ``flush_order``'s push, short-cut to ``apply`` for an allocation or free
    outside interrupts on a CPU for which no stage holds anything and which starts no hold (what the
    stages come down to for it: the IrqWindow notes the task's pid).  The one "nothing held" predicate,
    each stage's ``idle(cpu)`` written out in one expression."""
    head = flush_order.push
    fast_alloc, fast_free = apply.fast.alloc, apply.fast.free
    flush_open, refill_seen = flush_order.open, flush_order.refill_seen
    irq_buf, task_pid = irq.buf, irq.task_pid
    refill_open = refill.refill_open
    watches = reap.watches

    def feed(ev: TraceEvent) -> None:
        """Replay one event (observers see each event once, after this, in the trace's order)."""
        cpu = ev.cpu
        if (ev.kind <= KMEM_CACHE_FREE and not ev.irq and flush_order.race is None and cpu not in flush_open
                and cpu not in refill_seen and not irq_buf and refill.hold is None and cpu not in refill_open
                and not watches and slabinfo.held is None):
            task_pid[cpu] = ev.pid
            # Apply.push(), inlined
            if apply.fast_path and (fast_alloc(ev) if ev.kind <= KMEM_CACHE_ALLOC_NODE else fast_free(ev)):
                return
            apply.apply(ev)
            return
        head(ev)

    return feed

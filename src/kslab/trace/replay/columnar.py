"""The lean common path: the replay fed from the columnar parser's chunks (:mod:`kslab.trace.columns`).

:func:`run_chunks` replays the rows of a trace's :class:`~kslab.trace.chunk.ColumnChunk` s as
``Replayer.run`` replays its events, with the same results.  A plain hit, an allocation that the CPU's array
serves or a free of a known object onto its CPU's array with room, is done in one loop over the columns,
without a TraceEvent; every other row becomes its TraceEvent (``ColumnChunk.event``) and goes to the
pipeline's entry (``Replayer.feed``), exactly as before.

What decides whether a row may take the lean path is kept as flags, worked out again only after a row went
to the general code, at the next allocation or free (a lean hit changes none of it): ``alloc_ok`` and
``free_ok`` (nothing held by any stage, the fast path switched on, no /proc/slabinfo read awaited, nothing
explained, no debug checks, no spreading, the replay's own event hook) and the CPUs on which a hit may run
(``alloc_cpus``, ``free_cpus``: present, online while the manifest's directives bring CPUs up, no refill seen
or held, no interrupt window, and for allocations, no refill the kernel showed).
What changes with each row is tested per row, in the order ``FastPath.alloc``/``FastPath.free`` test it:
the clock, the call site, the task's policy, the cache and its array.  Those per-row guards and the effects
of a hit are the fast paths' own (``FastPath.alloc_row`` and ``FastPath.free_row``, which
``FastPath.alloc``/``free`` call too), and the replay-wide guards behind the flags are
``FastPath.allowed``/``alloc_allowed``/``allowed_cpus``/``alloc_allowed_cpus``: one definition for both, so
that they cannot drift apart.  The bookkeeping of a hit is mm's (``mm.slab.hits``).

A replay with observers, a sample callback or a wrapped ``feed`` (``--save-state``) takes every row through
``feed`` (still without the line-to-TraceEvent parser).  tests/trace/test_columnar.py compares both with
``Replayer.run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..chunk import ColumnChunk
from ..events import KMEM_CACHE_ALLOC_NODE, KMEM_CACHE_FREE, MARK, TraceEvent
from .boot import HEAD_EVENTS
from .options import ReplaySummary

if TYPE_CHECKING:
    from .engine import Replayer

__all__ = ["run_chunks"]


def run_chunks(rep: Replayer, chunks: Iterable[ColumnChunk], clock: str | None = None,
               on_mark: Callable[[TraceEvent], None] | None = None) -> ReplaySummary:
    """``rep.run`` of the chunks' rows (the same results); ``on_mark`` sees each marker on its way in."""
    it = iter(chunks)
    head: list[TraceEvent] = []
    chunk: ColumnChunk | None = None
    start = 0
    for chunk in it:
        start = min(len(chunk), HEAD_EVENTS - len(head))
        head.extend(chunk.event(r) for r in range(start))
        if len(head) >= HEAD_EVENTS:
            break
    else:
        chunk = None
    rep.begin(head, clock)
    n = 0
    feed = rep.feed
    sample = rep.on_sample
    every = rep.sample_every if sample is not None else 0
    for ev in head:
        if on_mark is not None and ev.kind == MARK:
            on_mark(ev)
        feed(ev)
        n += 1
        if every > 0 and not n % every:
            assert sample is not None
            sample(rep, ev)
    if chunk is not None:
        rest: Iterator[ColumnChunk] = _chain(chunk, it)
        if feed is rep._feed and (rep.on_sample is None or rep.sample_every <= 0):
            n = Lean(rep, on_mark).run(rest, start, n)
        else:
            n = _run_events(rep, rest, start, n, on_mark)
    rep.summary.events = n
    rep.finish()
    return rep.summary


def _chain(first: ColumnChunk, rest: Iterator[ColumnChunk]) -> Iterator[ColumnChunk]:
    yield first
    yield from rest


def _run_events(rep: Replayer, chunks: Iterator[ColumnChunk], start: int, n: int,
                on_mark: Callable[[TraceEvent], None] | None) -> int:
    """Every row through ``rep.feed`` as its TraceEvent (what Replayer.run does after the head)."""
    feed = rep.feed
    progress = rep.on_progress
    sample = rep.on_sample
    every = rep.sample_every if sample is not None else 0
    for chunk in chunks:
        for r in range(start, len(chunk)):
            ev = chunk.event(r)
            if on_mark is not None and ev.kind == MARK:
                on_mark(ev)
            feed(ev)
            n += 1
            if every > 0 and not n % every:
                assert sample is not None
                sample(rep, ev)
            if progress is not None and not n & 0xFFFF:
                progress(n, ev.lineno)
        start = 0
    return n


class Lean:
    """The lean loop of one replay (see the module docstring)."""

    def __init__(self, rep: Replayer, on_mark: Callable[[TraceEvent], None] | None) -> None:
        self.rep = rep
        self.on_mark = on_mark
        flush_order, irq, refill, reap, slabinfo, apply = rep.stages
        self.flush_order, self.irq, self.refill, self.reap, self.slabinfo = flush_order, irq, refill, reap, slabinfo
        self.apply = apply
        self.alloc_ok = self.free_ok = False
        self.alloc_cpus: frozenset[int] = frozenset()
        self.free_cpus: frozenset[int] = frozenset()
        self.all_cpus = frozenset(range(apply.fast.cpus))

    def update(self) -> None:
        """The flags, worked out again after a row went to the general code (see the module docstring): the
        pipeline's "nothing held" predicate (reorder.make_feed) and the fast path's own guards
        (FastPath.allowed, alloc_allowed, cpu_allowed, alloc_cpu_allowed), which FastPath tests per event."""
        fast = self.apply.fast
        flush_order, refill = self.flush_order, self.refill
        idle = (self.apply.fast_path and flush_order.race is None and not self.irq.buf and refill.hold is None
                and not self.reap.watches and self.slabinfo.held is None)
        self.free_ok = ok = idle and fast.allowed()
        self.alloc_ok = idle and fast.alloc_allowed()
        if not ok:
            return
        flush_open, refill_seen, refill_open = flush_order.open, flush_order.refill_seen, refill.refill_open
        cpus = self.all_cpus
        if flush_open or refill_seen or refill_open:
            cpus = cpus.difference(flush_open, refill_seen, refill_open)
        self.free_cpus = cpus = fast.allowed_cpus(cpus)
        self.alloc_cpus = fast.alloc_allowed_cpus(cpus)

    def run(self, chunks: Iterator[ColumnChunk], start: int, n: int) -> int:
        """Replay the rows from row ``start`` of the first chunk on; ``n``: the events fed before.  Returns the
        events fed in all."""
        rep = self.rep
        feed = rep.feed
        progress = rep.on_progress
        on_mark = self.on_mark
        fast = self.apply.fast
        alloc_row, free_row = fast.alloc_row, fast.free_row
        task_pid = self.irq.task_pid
        update = self.update
        dirty = True  # the flags are worked out at the next allocation or free after a row went to feed()
        alloc_ok = free_ok = False
        alloc_cpus = free_cpus = self.all_cpus
        for chunk in chunks:
            lineno_col, who_col, ts_col, code_col, ptr_col, tail_col = (chunk.lineno, chunk.who, chunk.ts, chunk.code,
                                                                      chunk.ptr, chunk.tail)
            whos, heads, tails, side = chunk.whos, chunk.heads, chunk.tails, chunk.side
            for r in range(start, len(chunk)):
                n += 1
                if progress is not None and not n & 0xFFFF:
                    progress(n, lineno_col[r])
                code = code_col[r]
                if code >= 0:
                    head = heads[code]
                    kind = head[0]
                    if kind <= KMEM_CACHE_FREE:
                        if dirty:
                            update()
                            alloc_ok, free_ok = self.alloc_ok, self.free_ok
                            alloc_cpus, free_cpus = self.alloc_cpus, self.free_cpus
                            dirty = False
                        if kind <= KMEM_CACHE_ALLOC_NODE:
                            if alloc_ok:
                                _, pid, cpu, irq = whos[who_col[r]]
                                if not irq and cpu in alloc_cpus:
                                    bytes_req, _, gfp, node, name, _ = tails[tail_col[r]]
                                    if alloc_row(kind, head[1], pid, cpu, ts_col[r], ptr_col[r], bytes_req, gfp,
                                                 node, name, None):
                                        task_pid[cpu] = pid  # what the pipeline's entry notes (reorder.make_feed)
                                        continue
                        elif free_ok:
                            _, pid, cpu, irq = whos[who_col[r]]
                            if not irq and cpu in free_cpus and free_row(kind, head[1], cpu, ts_col[r], ptr_col[r],
                                                                         tails[tail_col[r]][4]):
                                task_pid[cpu] = pid
                                continue
                    ev = chunk.event(r)
                else:
                    ev = side[-1 - code]
                    if on_mark is not None and ev.kind == MARK:
                        on_mark(ev)
                feed(ev)
                dirty = True
            start = 0
        return n

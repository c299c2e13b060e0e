"""The lean common path: the replay fed from the columnar parser's chunks (:mod:`kslab.trace.columns`).

:func:`run_chunks` replays the rows of a trace's :class:`~kslab.trace.chunk.ColumnChunk` s as
``Replayer.run`` replays its events, with the same results.  A plain hit, an allocation that the CPU's array
serves or a free of a known object onto its CPU's array with room, is done in one loop over the columns,
without a TraceEvent; every other row becomes its TraceEvent (``ColumnChunk.event``) and goes to the
pipeline's entry (``Replayer.feed``), exactly as before.

What decides whether a row may take the lean path is kept as flags, worked out again only after a row went
to the general code (a lean hit changes none of it): ``alloc_ok`` and ``free_ok`` (nothing held by any stage,
the fast path switched on, no /proc/slabinfo read awaited, nothing explained, no debug checks, no spreading,
the replay's own event hook) and the CPUs on which a hit may run (``alloc_cpus``, ``free_cpus``: present,
online while the manifest's directives bring CPUs up, no refill seen or held, no interrupt window, and for
allocations, no refill the kernel showed).  What changes with each row is tested per row, in the order
``FastPath.alloc``/``FastPath.free`` test it: the clock, the call site, the task's policy, the cache and its
array.  The bookkeeping of a hit is mm's (``mm.slab.hits``), as in the fast paths.

A replay with observers, a sample callback or a wrapped ``feed`` (``--save-state``) takes every row through
``feed`` (still without the line-to-TraceEvent parser).  tests/trace/test_columnar.py compares both with
``Replayer.run``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ...mm.gfp import __GFP_ZERO
from ...mm.page import PAGE_OFFSET, PAGE_SHIFT, PG_slab
from ...mm.slab.alloc import slab_want_init_on_alloc
from ...mm.slab.free import ___cache_free
from ...mm.slab.hits import array_alloc_hit_counted, array_free_hit
from ...mm.slab.kmalloc import kmalloc_slab
from ...mm.slab_def import KmemCache
from ..chunk import ColumnChunk
from ..events import KIND_NAMES, KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE, KMEM_CACHE_FREE, MARK, TraceEvent
from .boot import HEAD_EVENTS
from .options import ReplaySummary
from .sites import PLAIN_ALLOC_SITES, PLAIN_FREE_SITES, plain_alloc_site, plain_free_site

if TYPE_CHECKING:
    from .engine import Replayer

__all__ = ["run_chunks"]

_GFP_ZERO = __GFP_ZERO
_cache_free = ___cache_free
_PG_SLAB = 1 << PG_slab


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

    def update(self) -> None:
        """The flags, worked out again after a row went to the general code (see the module docstring)."""
        rep = self.rep
        k = rep.k
        apply = self.apply
        fast = apply.fast
        flush_order, refill = self.flush_order, self.refill
        ok = (apply.fast_path and flush_order.race is None and not self.irq.buf and refill.hold is None
              and not self.reap.watches and self.slabinfo.held is None and k.explain is None and not k.debug
              and k.event_hook is rep.internal.hook)
        self.free_ok = ok
        # FREELIST_RANDOM's follower renames a hit's object (FastPath._take): such rows go to the general code
        self.alloc_ok = ok and not fast.pending_read and not k.cpuset_slab_spread and fast.shuffle is None
        if not ok:
            return
        directive = rep.boot.directive_mode
        online = k.topo.online_cpus
        flush_open, refill_seen, refill_open = flush_order.open, flush_order.refill_seen, refill.refill_open
        cpus = frozenset(c for c in range(fast.cpus) if not (directive and c not in online) and c not in flush_open
                         and c not in refill_seen and c not in refill_open)
        self.free_cpus = cpus
        refilled = fast.refilled
        lost, grows = fast.lost, fast.grows  # FastPath.alloc steps aside for these CPUs too
        self.alloc_cpus = frozenset(c for c in cpus if c not in refilled and c not in lost and c not in grows)

    def run(self, chunks: Iterator[ColumnChunk], start: int, n: int) -> int:
        """Replay the rows from row ``start`` of the first chunk on; ``n``: the events fed before.  Returns the
        events fed in all."""
        rep = self.rep
        feed = rep.feed
        progress = rep.on_progress
        on_mark = self.on_mark
        alloc_hit, free_hit = self.alloc_hit, self.free_hit
        self.update()
        update = self.update
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
                    if kind <= KMEM_CACHE_ALLOC_NODE:
                        if self.alloc_ok:
                            who = whos[who_col[r]]
                            if not who[3] and who[2] in self.alloc_cpus and alloc_hit(
                                    kind, head[1], who[1], who[2], ts_col[r], ptr_col[r], tails[tail_col[r]]):
                                continue
                    elif kind <= KMEM_CACHE_FREE and self.free_ok:
                        who = whos[who_col[r]]
                        if not who[3] and who[2] in self.free_cpus and free_hit(
                                kind, head[1], who[1], who[2], ts_col[r], ptr_col[r], tails[tail_col[r]]):
                            continue
                    ev = chunk.event(r)
                else:
                    ev = side[-1 - code]
                    if on_mark is not None and ev.kind == MARK:
                        on_mark(ev)
                feed(ev)
                update()
            start = 0
        return n

    def alloc_hit(self, kind: int, call_site: str, pid: int, cpu: int, ts: float, kptr: int,
                  tail: tuple[int, int, int, int, str | None, bool | None]) -> bool:
        """``FastPath.alloc`` of a row that passed the flags, when it is a plain hit: the same tests in the same
        order, the same effects (False: nothing done that the general code would not do as well)."""
        fast = self.apply.fast
        k = fast.k
        clock = fast.clock
        if not kptr or (clock.in_seconds and int(ts * clock.hz) > k.jiffies):
            return False
        plain = PLAIN_ALLOC_SITES.get(call_site)
        if plain is None:
            plain = plain_alloc_site(call_site)
        if not plain:
            return False
        policies = fast.boot.policies.active
        if policies and pid in (0, 1):
            return False
        if cpu != k.cpu:
            k.set_cpu(cpu)
        if policies:
            k.set_policy(cpu, None)
        if k.policies and cpu in k.policies:
            return False
        bytes_req, _, gfp, nodeid, name, _ = tail
        if kind <= KMALLOC_NODE:
            if bytes_req <= 0:
                return False
            found = kmalloc_slab(k, bytes_req, gfp)
            if found is None or isinstance(found, int):
                return False
            cachep = found
        else:
            if not name:
                return False
            named = k.find_cache(name)
            if named is None:
                return False
            cachep = named
        if kind & 1:
            node = k.numa_node
            if nodeid >= k.nr_node_ids or nodeid == -1:
                nodeid = node
            if nodeid != node or nodeid >= len(cachep.node) or cachep.node[nodeid] is None:
                return False
        cpu_cache = cachep.cpu_cache
        if not cpu_cache:
            return False
        ac = cpu_cache[cpu]
        if not ac.entry:
            return False
        ptrs = fast.ptrs
        kmap = ptrs.kmap
        if kptr in kmap:
            return False  # record_alloc() of a pointer believed live: the general code
        self.irq.task_pid[cpu] = pid
        ptrs.evno += 1
        mptr = array_alloc_hit_counted(cachep, ac)
        if (gfp & _GFP_ZERO or k.config.init_on_alloc) and slab_want_init_on_alloc(cachep, gfp):
            k.memory.memset(mptr, 0, cachep.object_size)
        owner: KmemCache | None = cachep
        if kind <= KMALLOC_NODE:
            page = k.mem_map.pages.get((mptr - PAGE_OFFSET) >> PAGE_SHIFT)
            if page is not None and page.compound_head & 1:
                page = k.mem_map.compound_head(page)
            owner = page.slab_cache if page is not None else None
        fast.applied[KIND_NAMES[kind]] += 1
        kmap[kptr] = mptr
        if owner is not None:
            ptrs.kcache[kptr] = owner
            ptrs.kpage_cache[kptr >> 12] = owner
        if ptrs.out is not None:
            ptrs.write(kptr, mptr, KIND_NAMES[kind], owner)
        return True

    def free_hit(self, kind: int, call_site: str, pid: int, cpu: int, ts: float, kptr: int,
                 tail: tuple[int, int, int, int, str | None, bool | None]) -> bool:
        """``FastPath.free`` of a row that passed the flags (the same tests in the same order, the same
        effects)."""
        fast = self.apply.fast
        k = fast.k
        clock = fast.clock
        if kptr <= 16 or (clock.in_seconds and int(ts * clock.hz) > k.jiffies):
            return False
        plain = PLAIN_FREE_SITES.get(call_site)
        if plain is None:
            plain = plain_free_site(call_site)
        if not plain:
            return False
        if cpu != k.cpu:
            k.set_cpu(cpu)
        ptrs = fast.ptrs
        kmap = ptrs.kmap
        mptr = kmap.get(kptr)
        if mptr is None or mptr in ptrs.internal_rev:
            return False
        page = k.mem_map.pages.get((mptr - PAGE_OFFSET) >> PAGE_SHIFT)
        if page is None:
            return False
        if page.compound_head & 1:
            page = k.mem_map.compound_head(page)
        if not page.flags & _PG_SLAB:
            return False
        c = page.slab_cache
        if c is None:
            return False
        if kind == KMEM_CACHE_FREE:
            cachep = ptrs.kcache.get(kptr)
            name = tail[4]
            if name:
                named = k.find_cache(name)
                if named is not None:
                    cachep = named
            if cachep is not None and cachep is not c:
                return False
        self.irq.task_pid[cpu] = pid
        ptrs.evno += 1
        del kmap[kptr]
        ptrs.kcache.pop(kptr, None)
        ac = c.cpu_cache[cpu]
        entry = ac.entry
        if (not k.sk_memalloc_socks and not k.config.init_on_free and (not k.numa_multi or page.nid == k.numa_node)
                and len(entry) < ac.limit
                and not (k.config.CONFIG_SLAB_FREELIST_HARDENED and entry and entry[-1] == mptr)):
            array_free_hit(c, ac, mptr)
        else:
            _cache_free(c, mptr, 0)
        fast.applied[KIND_NAMES[kind]] += 1
        return True

"""A columnar trace parser: the inputs of :mod:`kslab.trace.ftrace`, parsed into typed columns in chunks.

:func:`iter_chunks` reads the same inputs as :func:`kslab.trace.ftrace.iter_events` (ftrace text, trace-cmd
report, perf script; compressed or not) and yields one :class:`ColumnChunk` per batch of input lines (about
``CHUNK_SIZE`` characters).  A chunk has one row per event, in file order, in six typed columns:

==========  ==============  ==================================================================================
column      array type      meaning
==========  ==============  ==================================================================================
``lineno``  ``q``           the 1-based line number
``who``     ``i``           index into ``chunk.whos``: (comm, pid, cpu, irq) of the ``comm-pid [cpu] flags``
``ts``      ``d``           the time stamp, as ``TraceEvent.ts``
``code``    ``i``           >= 0: index into ``chunk.heads``: (kind, call site) of a kmem event, (FUNC,
                            function, parent) of a function-tracer line, (page kind, (gfp, order,
                            migratetype)) of a page event; < 0: the event is ``chunk.side[-1 - code]``, a
                            :class:`TraceEvent` (markers, and whatever the general code parsed)
``ptr``     ``Q``           the object pointer of a kmem event, the ``page=`` of a page event (0 otherwise)
``tail``    ``q``           kmem event: index into ``chunk.tails``, (bytes_req, bytes_alloc, gfp, node, name,
                            accounted); page event: the pfn; 0 otherwise
==========  ==============  ==================================================================================

The text fields are interned: a call site, a cache name, a function name is one string in a table, shared by
every row that has it.  The per-event typed columns (kind, cpu, call-site id, bytes_req, bytes_alloc, gfp,
cache-name id, node, irq) are derived from these by :meth:`ColumnChunk.column`.  Nothing is dropped: every
line that gives a ``TraceEvent`` in ``iter_events`` gives a row here, and :func:`iter_column_events` turns the
rows back into exactly the events ``iter_events`` yields (same fields, same ``ParseStats``, the same
``TraceParseError`` at the same line, the events before it delivered first).

How: the common shapes (a kmem event, a function-tracer line) take the same fast path as ``iter_events``
(the same splits, the same caches, filled by ftrace's own helpers), and every other line goes through
:func:`_general_line`, which is ``iter_events``'s general code (sections 1-3 of its loop) as a function.
``tests/trace/test_columns.py`` and ``benchmarks/parse_identity.py --columns`` check the equality.

The tables (``whos``, ``heads``, ``tails``) only grow within a chunk; they are started afresh at a chunk
boundary once one holds more than ``CACHE_LIMIT`` entries (a chunk keeps the tables its rows point into).
``ParseStats`` is up to date after each chunk; when iteration stops early (the consumer closes the
generator), the counts cover the whole chunk already read rather than stopping at the last event consumed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from typing import Any, Final

from kslab.trace import ftrace
from kslab.trace.chunk import COLUMNS, ColumnChunk  # (defined there, part of this module's interface)
from kslab.trace.errors import TraceParseError
from kslab.trace.events import (
    FUNC,
    KIND_NAMES,
    KMEM_CACHE_FREE,
    MARK,
    MM_PAGE_ALLOC,
    MM_PAGE_FREE_BATCHED,
    TraceEvent,
)
from kslab.trace.ftrace_general import (
    CACHE_LIMIT,
    BadLine,
    ParseState,
    ParseStats,
    after_spaces,
    func_entry,
    general_event,
    kmem_head,
    print_text,
    slow_line,
    strip_offset,
    tail_values,
    try_tail_values,
)
from kslab.trace.tracefile import Source, checked_batches, line_batches, open_trace_text

_INF: Final = float("inf")

__all__ = ["COLUMNS", "ColumnChunk", "compiled_available", "iter_chunks", "iter_column_events"]

_U64: Final = (1 << 64) - 1
_I63: Final = 1 << 63

class _Counts:
    """The counters of a parse that the general code updates (the fast path keeps its own in locals)."""

    __slots__ = ("header", "lost", "seconds", "counter", "by_kind", "skipped")

    def __init__(self, skipped: Counter[str]) -> None:
        self.header = 0
        self.lost = 0
        self.seconds = False
        self.counter = False
        self.by_kind = [0] * len(KIND_NAMES)
        self.skipped = skipped


def iter_chunks(source: Source, *, skip_bad: bool = False, stats: ParseStats | None = None,
                engine: str | None = None) -> Iterator[ColumnChunk]:
    """Parse a text trace into :class:`ColumnChunk` s (arguments and errors as
    :func:`kslab.trace.ftrace.iter_events`; a TraceParseError comes after the chunk of the rows before it).

    ``engine``: ``"pure"`` (this module), ``"compiled"`` (the C scanner of :mod:`kslab.trace.cscan`; an
    ImportError when it is not built), or None: the compiled one when it is built and ``KSLAB_PURE`` is not
    set (or ``0``), else pure Python.  Both give the same rows."""
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source == "-"):
        os.stat(source)  # fail now, not at the first next()
    st = stats if stats is not None else ParseStats()
    if engine is None:
        engine = "compiled" if compiled_available() else "pure"
    if engine == "compiled":
        from kslab.trace.cscan import iter_chunks_compiled  # noqa: PLC0415

        return iter_chunks_compiled(source, skip_bad, st)
    if engine != "pure":
        raise ValueError(f"engine {engine!r}: expected 'pure' or 'compiled'")
    return _iter_chunks(source, skip_bad, st)


def compiled_available() -> bool:
    """Whether the compiled scanner is built and allowed (``KSLAB_PURE`` unset, empty or ``0``)."""
    if os.environ.get("KSLAB_PURE", "") not in ("", "0"):
        return False
    try:
        from kslab.trace import _cscan  # type: ignore[attr-defined]  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def iter_column_events(source: Source, *, skip_bad: bool = False, stats: ParseStats | None = None,
                       engine: str | None = None) -> Generator[TraceEvent, None, None]:
    """The TraceEvents of :func:`iter_chunks`' rows: what :func:`kslab.trace.ftrace.iter_events` yields."""
    chunks = iter_chunks(source, skip_bad=skip_bad, stats=stats, engine=engine)

    def gen() -> Generator[TraceEvent, None, None]:
        for chunk in chunks:
            yield from chunk.events()

    return gen()


def _iter_chunks(source: Source, skip_bad: bool, stats: ParseStats) -> Generator[ColumnChunk, None, None]:
    """The pure-Python engine behind :func:`iter_chunks`.  Section 0 of the loop is ``iter_events``'s fast
    path for kmem events and function-tracer lines, writing a row instead of building an event; its page
    event branch builds the event into the side table; a line it declines goes to :func:`_general_line`.

    A parser hot loop, one long function on purpose (as ``ftrace._iter_events``): locals are CPython's fastest
    names, and a call per line would cost as much as parsing a field."""
    state = ParseState(stats)
    counts = _Counts(stats.skipped)
    by_kind = counts.by_kind
    lineno = 0
    seconds = counter = False
    failed = False
    prefix_get = state.prefixes.get
    kind_get = state.kinds.get
    tails = state.tails
    kmem_heads: dict[str, tuple[int, str, Any, int]] = {}  # (kind, call site, tails.get, code)
    kmem_head_get = kmem_heads.get
    # interning: prefix text -> who index, function entry -> code, per kind: tail text -> tail index
    who_ids: dict[str, int] = {}
    func_ids: dict[str, int] = {}
    page_ids: list[dict[str, int]] = [{} for _ in KIND_NAMES]
    tail_ids: list[dict[str, int]] = [{} for _ in KIND_NAMES]
    whos: list[tuple[str, int, int, int]] = []
    heads: list[tuple[int, Any, str]] = []
    tvals: list[tuple[Any, ...]] = []

    def flush() -> None:
        stats.lines = lineno - 1 if failed else lineno
        stats.events = sum(by_kind)
        stats.header = counts.header
        stats.lost_events = counts.lost
        stats.by_kind = Counter({KIND_NAMES[k]: n for k, n in enumerate(by_kind) if n})
        if seconds or counts.seconds:
            stats.clocks_seen.add("seconds")
        if counter or counts.counter:
            stats.clocks_seen.add("counter")

    with ExitStack() as stack:
        read, binary, path = open_trace_text(source, stack)
        try:
            for lines in checked_batches(line_batches(read, binary, ftrace.CHUNK_SIZE), path, lambda: lineno):  # noqa: B023
                if len(whos) > CACHE_LIMIT or len(heads) > CACHE_LIMIT or len(tvals) > CACHE_LIMIT:
                    who_ids, func_ids = {}, {}
                    page_ids = [{} for _ in KIND_NAMES]
                    kmem_heads.clear()
                    tail_ids = [{} for _ in KIND_NAMES]
                    whos, heads, tvals = [], [], []
                chunk = ColumnChunk(whos, heads, tvals)
                side = chunk.side
                a_line, a_who, a_ts = chunk.lineno.append, chunk.who.append, chunk.ts.append
                a_code, a_ptr, a_tail = chunk.code.append, chunk.ptr.append, chunk.tail.append
                for line in lines:
                    lineno += 1
                    # ---- 0. the fast path (as in ftrace._iter_events) ------------------------------
                    head, colon_sp, rest = line.partition(": ")
                    key, _, ts_text = head.rpartition(" ")
                    who = prefix_get(key)
                    if who is not None and colon_sp:
                        a, dot, b = ts_text.partition(".")
                        if a.isdecimal() and (not dot or b.isdecimal()):
                            ts = float(ts_text)
                            if ts != _INF:
                                name_cs, sep, ptr_tail = rest.partition(" ptr=")
                                if sep:  # "kmalloc: call_site=SYM ptr=HEX REST"
                                    kc = kmem_head_get(name_cs)
                                    if kc is None:
                                        kh = kmem_head(name_cs, state)
                                        if kh is not None:
                                            if len(kmem_heads) >= CACHE_LIMIT:
                                                kmem_heads.clear()
                                            kc = kmem_heads[name_cs] = (*kh, len(heads))
                                            heads.append((kh[0], kh[1], ""))
                                    if kc is not None:
                                        kmem_kind, _, tail_get, code = kc
                                        ptr_text, _, tail = ptr_tail.partition(" ")
                                        try:
                                            ptr = int(ptr_text, 16)
                                        except ValueError:
                                            ptr = -1
                                        if 0 <= ptr <= _U64:
                                            tid = tail_ids[kmem_kind].get(tail)
                                            if tid is None:
                                                values = tail_get(tail)
                                                if values is None:
                                                    values = try_tail_values(kmem_kind, tail, state)
                                                if values is not None:
                                                    tid = tail_ids[kmem_kind][tail] = len(tvals)
                                                    tvals.append(values[:6])
                                            if tid is not None:
                                                wid = who_ids.get(key)
                                                if wid is None:
                                                    wid = who_ids[key] = len(whos)
                                                    whos.append(who)
                                                a_line(lineno)
                                                a_who(wid)
                                                a_ts(ts)
                                                a_code(code)
                                                a_ptr(ptr)
                                                a_tail(tid)
                                                if dot:
                                                    seconds = True
                                                else:
                                                    counter = True
                                                by_kind[kmem_kind] += 1
                                                continue
                                elif ": " not in rest:  # a function-tracer entry "func <-parent"
                                    fcode = func_ids.get(rest)
                                    if fcode is None:
                                        fp = func_entry(rest)
                                        if fp is not None:
                                            fcode = func_ids[rest] = len(heads)
                                            heads.append((FUNC, *fp))
                                    if fcode is not None:
                                        wid = who_ids.get(key)
                                        if wid is None:
                                            wid = who_ids[key] = len(whos)
                                            whos.append(who)
                                        a_line(lineno)
                                        a_who(wid)
                                        a_ts(ts)
                                        a_code(fcode)
                                        a_ptr(0)
                                        a_tail(0)
                                        if dot:
                                            seconds = True
                                        else:
                                            counter = True
                                        by_kind[FUNC] += 1
                                        continue
                                else:  # "mm_page_alloc: page=HEX pfn=DEC REST"
                                    name_page, sep, pfn_tail = rest.partition(" pfn=")
                                    e = name_page.find(": ")
                                    if sep and e > 0:
                                        pkind = kind_get(name_page[:e])
                                        if (
                                            pkind is not None and MM_PAGE_ALLOC <= pkind <= MM_PAGE_FREE_BATCHED
                                            and name_page.startswith("page=", e + 2)
                                        ):
                                            pfn_text, _, tail = pfn_tail.partition(" ")
                                            pcode = page_ids[pkind].get(tail)
                                            if pcode is None:
                                                values = tails[pkind].get(tail)
                                                if values is None:
                                                    values = try_tail_values(pkind, tail, state)
                                                if values is not None:
                                                    pcode = page_ids[pkind][tail] = len(heads)
                                                    heads.append((pkind, values, ""))
                                            if pcode is not None:
                                                try:
                                                    page = int(name_page[e + 7 :], 16)
                                                    pfn = int(pfn_text)
                                                except ValueError:
                                                    page = -1
                                                if 0 <= page <= _U64 and -_I63 <= pfn < _I63:
                                                    wid = who_ids.get(key)
                                                    if wid is None:
                                                        wid = who_ids[key] = len(whos)
                                                        whos.append(who)
                                                    a_line(lineno)
                                                    a_who(wid)
                                                    a_ts(ts)
                                                    a_code(pcode)
                                                    a_ptr(page)
                                                    a_tail(pfn)
                                                    if dot:
                                                        seconds = True
                                                    else:
                                                        counter = True
                                                    by_kind[pkind] += 1
                                                    continue
                    try:
                        ev = _general_line(line, lineno, state, counts)
                    except BadLine as bad:
                        reason = bad.args[0]
                        if not skip_bad:
                            failed = True
                            flush()
                            if len(chunk):
                                chunk.seal()
                                yield chunk
                            raise TraceParseError(path, lineno, reason, line) from None
                        counts.skipped[reason] += 1
                        continue
                    if ev is not None:
                        side.append(ev)
                        a_line(lineno)
                        a_who(-1)
                        a_ts(ev.ts)
                        a_code(-len(side))
                        a_ptr(0)
                        a_tail(0)
                flush()
                if len(chunk):
                    chunk.seal()
                    yield chunk
        finally:
            flush()


def _general_line(line: str, lineno: int, state: ParseState, counts: _Counts) -> TraceEvent | None:
    """``iter_events``' general code (sections 1-3 of its loop) for one line: the event, or None for a line
    that gives none (counted in ``counts``); raises BadLine for a malformed line."""
    who = None
    colon = line.find(": ")
    if colon > 0:
        sp = line.rfind(" ", 0, colon)
        who = state.prefixes.get(line[:sp])
    if who is not None:
        comm, pid, cpu, irq = who
        ts_text = line[sp + 1 : colon]
        a, dot, b = ts_text.partition(".")
        if a.isdecimal() and (not dot or b.isdecimal()):
            ts = float(ts_text)
        else:
            who = None
        p0 = colon + 2
    if who is None:
        res = slow_line(line, state)
        what = res[0]
        if what == "header":
            counts.header += 1
            return None
        if what == "lost":
            counts.lost += res[1]
            counts.skipped["lost events"] += 1
            return None
        if what == "skip":
            counts.skipped[res[1]] += 1
            return None
        _, comm, pid, cpu, irq, ts_text, p0 = res
        ts = float(ts_text)
    if ts == _INF:
        raise BadLine("malformed: timestamp out of range")
    if "." in ts_text:
        counts.seconds = True
    else:
        counts.counter = True
    e = line.find(": ", p0)
    if e < 0:
        if line.endswith(":") and len(line) > p0 + 1:
            e = len(line) - 1
        else:
            return _function_line(line, p0, counts, (lineno, cpu, ts, comm, pid, irq))
    ename = line[p0:e]
    kind = state.kinds.get(ename)
    if kind is None:
        reason = state.others.get(ename)
        if reason is None:
            kind = state.resolve_kind(ename)
            if kind < 0:
                reason = state.others[ename]
        if reason is not None:
            counts.skipped[reason] += 1
            return None
        assert kind is not None
    ev = _fields_event(line, kind, ename, e + 2, state, (lineno, cpu, ts, comm, pid))
    if irq:
        ev.irq = irq
    counts.by_kind[kind] += 1
    return ev


def _function_line(line: str, p0: int, counts: _Counts,
                   head: tuple[int, int, float, str, int, int]) -> TraceEvent | None:
    """A line with no event name: a function-tracer entry, a stack trace's end, or malformed (the part of
    ``iter_events``' section 2 for ``e < 0``)."""
    lineno, cpu, ts, comm, pid, irq = head
    i = line.find(" <-", p0)
    if i >= 0:
        func = line[p0:i]
        parent = line[i + 3 :]
    elif line.find(" ", p0) < 0 and len(line) > p0:
        func = line[p0:]
        parent = ""
    elif line.endswith("stack trace>", p0):
        counts.skipped["stack trace"] += 1
        return None
    elif len(line) <= p0:
        raise BadLine("malformed: no event")
    else:
        raise BadLine("malformed: unrecognised payload")
    if "+" in func:
        func = strip_offset(func)
    counts.by_kind[FUNC] += 1
    return TraceEvent(FUNC, lineno, cpu, ts, comm, pid, "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, func, parent, irq)


def _fields_event(line: str, kind: int, ename: str, f0: int, state: ParseState,
                  head: tuple[int, int, float, str, int]) -> TraceEvent:
    """Section 3 of ``iter_events``' general code: the event from the fields starting at ``f0``."""
    lineno, cpu, ts, comm, pid = head
    tails = state.tails
    ev = None
    if kind <= KMEM_CACHE_FREE:
        if line.startswith("call_site=", f0) or line.startswith("call_site=", f0 := after_spaces(line, f0)):
            p = line.find(" ptr=", f0)
            if p > 0:
                q = line.find(" ", p + 5)
                if q < 0:
                    q = len(line)
                try:
                    ptr = int(line[p + 5 : q], 16)
                except ValueError:
                    ptr = -1
                if ptr >= 0:
                    tail = line[q + 1 :]
                    values = tails[kind].get(tail)
                    if values is None:
                        values = tail_values(kind, tail, state)
                    ev = TraceEvent(kind, lineno, cpu, ts, comm, pid, line[f0 + 10 : p], ptr, *values)
    elif kind <= MM_PAGE_FREE_BATCHED:
        if line.startswith("page=", f0) or line.startswith("page=", f0 := after_spaces(line, f0)):
            p = line.find(" pfn=", f0)
            if p > 0:
                q = line.find(" ", p + 5)
                if q < 0:
                    q = len(line)
                tail = line[q + 1 :]
                values = tails[kind].get(tail)
                if values is None:
                    values = tail_values(kind, tail, state)
                gfp, order, migratetype = values
                try:  # noqa: SIM105
                    ev = TraceEvent(kind, lineno, cpu, ts, comm, pid, "", int(line[f0 + 5 : p], 16), 0, 0, gfp, -1,
                                    None, None, int(line[p + 5 : q]), order, migratetype, "", "")
                except ValueError:
                    pass
    elif kind == MARK:
        text = line[f0:]
        if ename != "tracing_mark_write":
            text = print_text(text.lstrip())
        ev = TraceEvent(MARK, lineno, cpu, ts, comm, pid, text=text)
    if ev is None:
        ev = general_event(kind, line[f0:], state, (lineno, cpu, ts, comm, pid))
    return ev

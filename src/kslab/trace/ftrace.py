"""Streaming parser of text traces of the kmem tracepoints and the function tracer.

Understood layouts (all may be mixed in one input):

* the kernel's ``trace``/``trace_pipe`` text: ``comm-pid [cpu] flags ts: payload``, with or without
  the irq-info ``flags`` column, with or without the ``(tgid)`` column of ``record-tgid``;
* ``trace-cmd report``: the same columns (the ``cpus=N`` preamble and the padding after the event
  name are accepted), and the ``-l`` latency layout ``comm-pid cpuFLAGS ts: payload``;
* ``perf script``: ``comm pid [cpu] ts: subsystem:event: fields``.

Payloads: the kmem events of kernels 3.x to 6.x (``kmalloc``, ``kmalloc_node``, ``kfree``,
``kmem_cache_alloc``, ``kmem_cache_alloc_node``, ``kmem_cache_free``, ``mm_page_alloc``,
``mm_page_free``, ``mm_page_free_batched``), trace markers (``tracing_mark_write: text`` or the
``print`` event) and function-tracer lines (``func <-parent``; trace-cmd's ``function: func <--
parent``).  Lines of any other event are counted in ``ParseStats.skipped`` as ``other event: NAME``.

Time stamps are kept as floats: seconds for the nanosecond clocks, the raw count for the
``counter`` clock; ``ParseStats.clocks_seen`` says which style was seen.

The parser reads the input in 1 MiB chunks and keeps nothing but small caches between lines (the
parsed ``comm-pid [cpu] flags`` prefixes, the parsed gfp strings and field tails), so inputs of any
size stream.  The hot paths use no regular expression, only ``str.partition``/``str.find`` and
slicing (see ``_iter_events``); whatever they do not recognise goes to slower, general code
(:mod:`kslab.trace.ftrace_general`), which is also what names the problem of a malformed line.
Opening the input, decompressing it and cutting it into lines is :mod:`kslab.trace.tracefile`'s job.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Generator
from contextlib import ExitStack
from typing import Any, Final

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
from kslab.trace.tracefile import CHUNK_SIZE, Source, checked_batches, line_batches, open_trace_text

__all__ = ["CHUNK_SIZE", "ParseStats", "Source", "iter_events", "open_trace_text"]

_INF: Final = float("inf")


def iter_events(
    source: Source, *, skip_bad: bool = False, stats: ParseStats | None = None
) -> Generator[TraceEvent, None, None]:
    """Parse a text trace, yielding one :class:`TraceEvent` per kmem event, marker and function
    entry, in file order.

    ``source``: a path (``str``/``PathLike``; .gz/.xz/.lzma/.bz2/.zst decompressed on the fly),
    ``"-"`` for standard input, or an open text or binary file object (not closed here).

    A malformed line raises :class:`~kslab.trace.errors.TraceParseError` (path, line number,
    reason, line); with ``skip_bad=True`` it is counted in ``stats.skipped`` under its reason
    (``malformed: ...``) instead.  Lines of other events and tracers are never errors.

    ``stats``, when given, is filled in as the input is read (see :class:`ParseStats`).

    A path is checked for existence at call time (FileNotFoundError); reading starts at the
    first ``next()``.  Closing the generator early (``close()``, or dropping it) closes what it
    opened, and stops the ``zstd`` child process if one was started.
    """
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source == "-"):
        os.stat(source)  # fail now, not at the first next()
    return _iter_events(source, skip_bad, stats if stats is not None else ParseStats())


def _iter_events(source: Source, skip_bad: bool, stats: ParseStats) -> Generator[TraceEvent, None, None]:
    """The generator behind :func:`iter_events`.

    The loop body is one long function on purpose: locals are the fastest names in CPython, and a
    call per line costs as much as parsing a field.

    Each line is first offered to a fast path (section 0 of the loop) for the shapes that make up
    nearly all of a kmem trace: ``PREFIX TS: kmem_event: call_site=SYM ptr=HEX REST``,
    ``PREFIX TS: mm_page_*: page=HEX pfn=DEC REST`` and ``PREFIX TS: func <-parent``, where PREFIX,
    the start ``kmem_event: call_site=SYM``, REST and the function entry are all found in caches of
    what the general code (or the helpers below, which read them as it does) made of them before.
    It splits the line with three or four ``str.partition`` calls and builds the event without the
    class call.  It changes no parse state except through those helpers (whose results are the
    general code's), raises nothing and declines on any doubt; a declined line goes through the
    general code from the start, so the result is always what the general code gives:
    1. the prefix: find the first ``: `` (the end of the time stamp) and the space before the
       time stamp; everything before that space is looked up in a cache of validated prefixes
       -> (comm, pid, cpu, irq); a miss, or any surprise (a comm holding ``: ``, a header, garbage),
       goes to ``slow_line``, which validates and caches the prefix or classifies the line;
    2. the event name (up to the next ``: ``; none for function-tracer lines);
    3. for kmem and page events: ``call_site=``/``page=`` is taken up to `` ptr=``/`` pfn=``, the
       pointer/pfn up to the next space, and the remaining fields (sizes, flags, node, name...),
       which repeat a lot, are looked up in a per-kind cache of parsed values.  Anything that
       does not fit goes through ``general_event``, which also names what is wrong.
    """
    state = ParseState(stats)
    skipped = stats.skipped
    by_kind = [0] * len(KIND_NAMES)
    lineno = 0
    header = 0
    lost = 0
    seconds = counter = False
    failed = False

    prefix_get = state.prefixes.get
    kind_get = state.kinds.get
    others_get = state.others.get
    tails = state.tails
    Event = TraceEvent
    # the fast path builds events as object.__new__ + __init__ with the arguments spelled out: a
    # Python-to-Python call, cheaper than calling the class (and than spreading a tuple into it)
    new_event = object.__new__
    init_event = TraceEvent.__init__
    kmem_heads: dict[str, tuple[int, str, Callable[[str], Any]]] = {}
    kmem_head_get = kmem_heads.get
    funcs: dict[str, tuple[str, str]] = {}
    func_get = funcs.get

    def flush() -> None:
        stats.lines = lineno - 1 if failed else lineno
        stats.events = sum(by_kind)
        stats.header = header
        stats.lost_events = lost
        stats.by_kind = Counter({KIND_NAMES[k]: n for k, n in enumerate(by_kind) if n})
        if seconds:
            stats.clocks_seen.add("seconds")
        if counter:
            stats.clocks_seen.add("counter")

    with ExitStack() as stack:
        read, binary, path = open_trace_text(source, stack)
        try:
            # the lambda reads lineno when it is called (late binding on purpose): the line being parsed
            for lines in checked_batches(line_batches(read, binary, CHUNK_SIZE), path, lambda: lineno):  # noqa: B023
                for line in lines:
                    lineno += 1
                    # ---- 0. the fast path: the common shapes, every cache hit -------------
                    # Only what the general code below would turn into the same event passes here;
                    # anything else (a prefix not yet cached, an odd field) goes on to the general
                    # code, which parses the line from the start.  The fast path changes the parse
                    # state only where the general code would have made the same change for the line
                    # (try_tail_values), so that a declined line finds the state it would have found.
                    head, colon_sp, rest = line.partition(": ")
                    key, _, ts_text = head.rpartition(" ")
                    who = prefix_get(key)
                    if who is not None and colon_sp:
                        a, dot, b = ts_text.partition(".")
                        if a.isdecimal() and (not dot or b.isdecimal()):
                            ts = float(ts_text)
                            if ts != _INF:
                                comm, pid, cpu, irq = who
                                name_cs, sep, ptr_tail = rest.partition(" ptr=")
                                if sep:  # "kmalloc: call_site=SYM ptr=HEX REST"
                                    kc = kmem_head_get(name_cs)
                                    if kc is None:
                                        kc = kmem_head(name_cs, state)
                                        if kc is not None:
                                            if len(kmem_heads) >= CACHE_LIMIT:
                                                kmem_heads.clear()
                                            kmem_heads[name_cs] = kc
                                    if kc is not None:
                                        kmem_kind, call_site, tail_get = kc
                                        ptr_text, _, tail = ptr_tail.partition(" ")
                                        try:
                                            ptr = int(ptr_text, 16)
                                        except ValueError:  # "(null)": the general code knows
                                            ptr = -1
                                        if ptr >= 0:  # (in this order: the general code parses the
                                            # pointer before the tail, which may change the stats)
                                            values = tail_get(tail)
                                            if values is None:
                                                values = try_tail_values(kmem_kind, tail, state)
                                            if values is not None:
                                                breq, balloc, gfp, node, name, accounted, _, _, _, _, _ = values
                                                out = new_event(Event)
                                                init_event(
                                                    out, kmem_kind, lineno, cpu, ts, comm, pid, call_site, ptr,
                                                    breq, balloc, gfp, node, name, accounted,
                                                )
                                                if irq:
                                                    out.irq = irq
                                                if dot:
                                                    seconds = True
                                                else:
                                                    counter = True
                                                by_kind[kmem_kind] += 1
                                                yield out
                                                continue
                                elif ": " not in rest:  # a function-tracer entry "func <-parent"
                                    fp = func_get(rest)
                                    if fp is None:
                                        fp = func_entry(rest)
                                        if fp is not None:
                                            if len(funcs) >= CACHE_LIMIT:
                                                funcs.clear()
                                            funcs[rest] = fp
                                    if fp is not None:
                                        func, parent = fp
                                        out = new_event(Event)
                                        init_event(
                                            out, FUNC, lineno, cpu, ts, comm, pid,
                                            "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, func, parent, irq,
                                        )
                                        if dot:
                                            seconds = True
                                        else:
                                            counter = True
                                        by_kind[FUNC] += 1
                                        yield out
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
                                            values = tails[pkind].get(tail)
                                            if values is None:
                                                values = try_tail_values(pkind, tail, state)
                                            if values is not None:
                                                try:
                                                    page = int(name_page[e + 7 :], 16)
                                                    pfn = int(pfn_text)
                                                except ValueError:
                                                    page = -1
                                                if page >= 0:
                                                    gfp, order, migratetype = values
                                                    out = new_event(Event)
                                                    init_event(
                                                        out, pkind, lineno, cpu, ts, comm, pid, "", page,
                                                        0, 0, gfp, -1, None, None, pfn, order, migratetype,
                                                    )
                                                    if irq:
                                                        out.irq = irq
                                                    if dot:
                                                        seconds = True
                                                    else:
                                                        counter = True
                                                    by_kind[pkind] += 1
                                                    yield out
                                                    continue
                    try:
                        # ---- 1. prefix: "comm-pid [cpu] flags ts: " ----------------------
                        who = None
                        colon = line.find(": ")
                        if colon > 0:
                            sp = line.rfind(" ", 0, colon)
                            who = prefix_get(line[:sp])
                        if who is not None:
                            comm, pid, cpu, irq = who
                            ts_text = line[sp + 1 : colon]
                            # float() also takes "1e5", "inf", "1_0", "-1": only what the slow path's
                            # _TIMESTAMP takes (digits[.digits]) may pass here, or a line would parse
                            # differently with and without its prefix in the cache
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
                                header += 1
                                continue
                            if what == "lost":
                                lost += res[1]
                                skipped["lost events"] += 1
                                continue
                            if what == "skip":
                                skipped[res[1]] += 1
                                continue
                            _, comm, pid, cpu, irq, ts_text, p0 = res
                            ts = float(ts_text)
                        if ts == _INF:  # 400 digits and more: no clock counts that far
                            raise BadLine("malformed: timestamp out of range")
                        if "." in ts_text:
                            seconds = True
                        else:
                            counter = True

                        # ---- 2. event name, or a function-tracer line --------------------
                        e = line.find(": ", p0)
                        if e < 0:
                            if line.endswith(":") and len(line) > p0 + 1:
                                e = len(line) - 1  # an event without fields (or truncated)
                            else:
                                i = line.find(" <-", p0)
                                if i >= 0:
                                    func = line[p0:i]
                                    parent = line[i + 3 :]
                                elif line.find(" ", p0) < 0 and len(line) > p0:
                                    func = line[p0:]
                                    parent = ""
                                elif line.endswith("stack trace>", p0):  # "<stack trace>", "<user ...>"
                                    skipped["stack trace"] += 1
                                    continue
                                elif len(line) <= p0:
                                    raise BadLine("malformed: no event")
                                else:
                                    raise BadLine("malformed: unrecognised payload")
                                if "+" in func:
                                    func = strip_offset(func)
                                by_kind[FUNC] += 1
                                yield Event(
                                    FUNC, lineno, cpu, ts, comm, pid,
                                    "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, func, parent, irq,
                                )
                                continue
                        ename = line[p0:e]
                        kind = kind_get(ename)
                        if kind is None:  # not one of ours, or a name printed in an odd way
                            reason = others_get(ename)
                            if reason is None:
                                kind = state.resolve_kind(ename)
                                if kind < 0:
                                    reason = state.others[ename]
                            if reason is not None:
                                skipped[reason] += 1
                                continue
                            assert kind is not None
                        f0 = e + 2

                        # ---- 3. fields ---------------------------------------------------
                        ev = None
                        if kind <= KMEM_CACHE_FREE:
                            # call_site=SYM ptr=HEX REST; SYM may hold a space: "f+0x1/0x2 [mod]"
                            if line.startswith("call_site=", f0) or line.startswith(
                                "call_site=", f0 := after_spaces(line, f0)  # trace-cmd's padding
                            ):
                                p = line.find(" ptr=", f0)
                                if p > 0:
                                    q = line.find(" ", p + 5)
                                    if q < 0:
                                        q = len(line)
                                    try:
                                        ptr = int(line[p + 5 : q], 16)
                                    except ValueError:  # "(null)", "  (null)": the general code knows
                                        ptr = -1
                                    if ptr >= 0:
                                        tail = line[q + 1 :]
                                        values = tails[kind].get(tail)
                                        if values is None:
                                            values = tail_values(kind, tail, state)
                                        ev = Event(
                                            kind, lineno, cpu, ts, comm, pid, line[f0 + 10 : p], ptr, *values
                                        )
                        elif kind <= MM_PAGE_FREE_BATCHED:
                            # page=HEX pfn=DEC REST
                            if line.startswith("page=", f0) or line.startswith(
                                "page=", f0 := after_spaces(line, f0)
                            ):
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
                                    try:  # noqa: SIM105 - cheaper than contextlib.suppress, once per line
                                        ev = Event(
                                            kind, lineno, cpu, ts, comm, pid, "", int(line[f0 + 5 : p], 16),
                                            0, 0, gfp, -1, None, None,
                                            int(line[p + 5 : q]),
                                            order, migratetype, "", "",
                                        )
                                    except ValueError:
                                        pass  # "pfn=0x...", "page=(null)": the general code knows
                        elif kind == MARK:
                            text = line[f0:]
                            if ename != "tracing_mark_write":  # trace-cmd's and perf's "print"
                                text = print_text(text.lstrip())
                            ev = Event(MARK, lineno, cpu, ts, comm, pid, text=text)
                        if ev is None:
                            ev = general_event(kind, line[f0:], state, (lineno, cpu, ts, comm, pid))
                        if irq:
                            ev.irq = irq
                        by_kind[kind] += 1
                        yield ev
                    except BadLine as bad:
                        reason = bad.args[0]
                        if not skip_bad:
                            failed = True
                            raise TraceParseError(path, lineno, reason, line) from None
                        skipped[reason] += 1
                flush()
        finally:
            flush()

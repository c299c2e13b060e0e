"""The compiled engine of :mod:`kslab.trace.columns`: the C line scanner (``_cscan``, built by setup.py when a
compiler is there) driven from Python.

The lines are split exactly as the pure engine splits them (``ftrace.line_batches``); the scanner takes
the run of lines from a position on whose keys (prefix, kmem head and tail, function entry, page event name
and tail) are all in its tables and writes their rows; the first line it cannot take is parsed here by the
general code (``columns._general_line``), its event goes to the side table, and its keys, when the fast
path of ``iter_events`` would have taken such a line, are added to the scanner's tables with the ids and
values the pure engine uses.  So the scanner only ever repeats, for the same text, what the Python code
decided, and the rows, events, ParseStats and errors are those of the pure engine.
"""

from __future__ import annotations

import codecs
from array import array
from collections import Counter
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from typing import Any

from kslab.trace import _cscan, columns, ftrace, tracefile  # type: ignore[attr-defined]
from kslab.trace.columns import COLUMNS, ColumnChunk, _Counts, _general_line
from kslab.trace.errors import TraceParseError
from kslab.trace.events import FUNC, KIND_NAMES, MM_PAGE_ALLOC, MM_PAGE_FREE_BATCHED, TraceEvent
from kslab.trace.ftrace_general import BadLine, ParseState, ParseStats, func_entry, kmem_head
from kslab.trace.tracefile import Source, checked_batches, open_trace_text

__all__ = ["iter_chunks_compiled"]

# The scanner's tables (as in _cscan.c).
T_WHO, T_HEAD, T_TAIL, T_FUNC, T_PKIND, T_PAGE = range(6)
_N = len(KIND_NAMES)


class _Tables:
    """The interning tables shared with the pure engine's layout, and the scanner that mirrors them."""

    def __init__(self) -> None:
        self.scanner = _cscan.Scanner()
        self.reset()

    def reset(self) -> None:
        self.scanner.clear()
        self.who_ids: dict[str, int] = {}
        self.head_ids: dict[tuple[int, str], int] = {}
        self.tail_ids: list[dict[str, int]] = [{} for _ in KIND_NAMES]
        self.whos: list[tuple[str, int, int, int]] = []
        self.heads: list[tuple[int, Any, str]] = []
        self.tvals: list[tuple[Any, ...]] = []

    def full(self) -> bool:
        limit: int = columns.CACHE_LIMIT  # type: ignore[attr-defined]  # (read here: tests lower it)
        return len(self.whos) > limit or len(self.heads) > limit or len(self.tvals) > limit

    def who(self, key: str, who: tuple[str, int, int, int]) -> int:
        wid = self.who_ids.get(key)
        if wid is None:
            wid = self.who_ids[key] = len(self.whos)
            self.whos.append(who)
        return wid

    def head(self, table: int, key: str, entry: tuple[int, Any, str]) -> int:
        code = self.head_ids.get((table, key))
        if code is None:
            code = self.head_ids[(table, key)] = len(self.heads)
            self.heads.append(entry)
        return code

    def register(self, line: str, state: ParseState) -> None:
        """Add the keys of ``line`` to the scanner when ``iter_events``' fast path would take such a line (its
        prefix cached, its head, tail or function entry understood as the general code understands them)."""
        head, colon_sp, rest = line.partition(": ")
        key, _, _ = head.rpartition(" ")
        who = state.prefixes.get(key)
        if who is None or not colon_sp:
            return
        add = self.scanner.add
        name_cs, sep, ptr_tail = rest.partition(" ptr=")
        if sep:
            kh = kmem_head(name_cs, state)
            if kh is None:
                return
            kind, call_site, _ = kh
            tail = ptr_tail.partition(" ")[2]
            values = state.tails[kind].get(tail)
            if values is None:
                return
            tid = self.tail_ids[kind].get(tail)
            if tid is None:
                tid = self.tail_ids[kind][tail] = len(self.tvals)
                self.tvals.append(values[:6])
            add(T_WHO, 0, key, self.who(key, who), 0)
            add(T_HEAD, 0, name_cs, self.head(T_HEAD, name_cs, (kind, call_site, "")), kind)
            add(T_TAIL, kind, tail, tid, 0)
        elif ": " not in rest:
            fp = func_entry(rest)
            if fp is not None:
                add(T_WHO, 0, key, self.who(key, who), 0)
                add(T_FUNC, 0, rest, self.head(T_FUNC, rest, (FUNC, *fp)), 0)
        else:
            name_page, sep, pfn_tail = rest.partition(" pfn=")
            e = name_page.find(": ")
            if not sep or e <= 0:
                return
            pkind = state.kinds.get(name_page[:e])
            if pkind is None or not MM_PAGE_ALLOC <= pkind <= MM_PAGE_FREE_BATCHED:
                return
            if not name_page.startswith("page=", e + 2):
                return
            tail = pfn_tail.partition(" ")[2]
            values = state.tails[pkind].get(tail)
            if values is None:
                return
            add(T_WHO, 0, key, self.who(key, who), 0)
            add(T_PKIND, 0, name_page[:e], pkind, 0)
            add(T_PAGE, pkind, tail, self.head(T_PAGE + 16 * pkind, tail, (pkind, values, "")), 0)


def _text_blocks(read: Any, binary: bool) -> Iterator[str | list[str]]:
    """``ftrace.line_batches``' lines, as they come: an ASCII block of them as one str (the lines are
    ``block.split("\\n")``; the scanner splits it itself), else (text that is not ASCII) the list of lines."""
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode if binary else None
    carry = ""
    bom = True
    while True:
        data = read(ftrace.CHUNK_SIZE)  # (read here: tests lower it)
        if not data:
            break
        text: str = decode(data) if decode is not None else data
        if bom:
            bom = False
            if text[:1] == "\ufeff":
                text = text[1:]
        if carry:
            text = carry + text
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        cut = text.rfind("\n")
        carry = text[cut + 1 :]
        if len(carry) > tracefile._MAX_LINE:
            block, carry = text, ""
        elif cut >= 0:
            block = text[:cut]
        else:
            continue
        yield block if block.isascii() else block.split("\n")
    if decode is not None:
        carry += decode(b"", True)
    if carry.endswith("\r"):
        carry = carry[:-1]
    if carry:
        yield [carry]


def _new_chunk(t: _Tables) -> ColumnChunk:
    chunk = ColumnChunk(t.whos, t.heads, t.tvals)
    for name, code in COLUMNS:
        setattr(chunk, name, array(code))
    return chunk


def iter_chunks_compiled(source: Source, skip_bad: bool, stats: ParseStats) -> Generator[ColumnChunk, None, None]:
    """The compiled engine behind :func:`kslab.trace.columns.iter_chunks`."""
    state = ParseState(stats)
    counts = _Counts(stats.skipped)
    cbuf = array("q", [0] * (_N + 2))  # the scanner's by-kind counts, then seconds, counter
    t = _Tables()
    scan = t.scanner.scan
    scan_text = t.scanner.scan_text
    lineno = 0
    failed = False

    def flush() -> None:
        stats.lines = lineno - 1 if failed else lineno
        by_kind = [a + b for a, b in zip(counts.by_kind, cbuf[:_N], strict=True)]
        stats.events = sum(by_kind)
        stats.header = counts.header
        stats.lost_events = counts.lost
        stats.by_kind = Counter({KIND_NAMES[k]: n for k, n in enumerate(by_kind) if n})
        if counts.seconds or cbuf[_N]:
            stats.clocks_seen.add("seconds")
        if counts.counter or cbuf[_N + 1]:
            stats.clocks_seen.add("counter")

    with ExitStack() as stack:
        read, binary, path = open_trace_text(source, stack)
        try:
            blocks: Any = _text_blocks(read, binary)  # (checked_batches passes them on as they are)
            for block in checked_batches(blocks, path, lambda: lineno):  # noqa: B023
                if t.full():
                    t.reset()
                chunk = _new_chunk(t)
                text = isinstance(block, str)
                pos = 0
                n = len(block)
                while True:
                    if text:
                        stop, end, *cols = scan_text(block, pos, lineno, cbuf)
                    else:
                        stop, *cols = scan(block, pos, lineno, cbuf)
                    if cols[0]:
                        for (name, _), data in zip(COLUMNS, cols, strict=True):
                            getattr(chunk, name).frombytes(data)
                        lineno += len(cols[0]) // 8
                    if stop >= n + text:  # (a block of text ends with a line without its newline)
                        break
                    if isinstance(block, str):
                        line = block[stop:end]
                        pos = end + 1
                    else:
                        line = block[stop]
                        pos = stop + 1
                    lineno += 1
                    known = len(state.prefixes)
                    try:
                        ev = _general_line(line, lineno, state, counts)
                    except BadLine as bad:
                        reason = bad.args[0]
                        if not skip_bad:
                            failed = True
                            flush()
                            if len(chunk):
                                yield chunk
                            raise TraceParseError(path, lineno, reason, line) from None
                        counts.skipped[reason] += 1
                        continue
                    if len(state.prefixes) < known:  # the prefix cache was started afresh: so is the scanner
                        t.scanner.clear()
                    if ev is not None:
                        _side_row(chunk, ev)
                        t.register(line, state)
                flush()
                if len(chunk):
                    yield chunk
        finally:
            flush()


def _side_row(chunk: ColumnChunk, ev: TraceEvent) -> None:
    chunk.side.append(ev)
    chunk.lineno.append(ev.lineno)
    chunk.who.append(-1)
    chunk.ts.append(ev.ts)
    chunk.code.append(-len(chunk.side))
    chunk.ptr.append(0)
    chunk.tail.append(0)

"""The chunk of rows that :mod:`kslab.trace.columns` yields: typed columns and the tables they index (the
layout is described in that module's docstring)."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any, Final

from kslab.trace.events import FUNC, MM_PAGE_ALLOC, TraceEvent

__all__ = ["COLUMNS", "ColumnChunk"]

#: The stored columns of a chunk, and their array type codes.
COLUMNS: Final = (("lineno", "q"), ("who", "i"), ("ts", "d"), ("code", "i"), ("ptr", "Q"), ("tail", "q"))

# The derived columns (ColumnChunk.column).
_DERIVED: Final = ("kind", "cpu", "pid", "irq", "call_site_id", "bytes_req", "bytes_alloc", "gfp", "node",
                   "name_id")


class ColumnChunk:
    """The rows of one batch of input lines (see the module docstring)."""

    __slots__ = ("lineno", "who", "ts", "code", "ptr", "tail", "whos", "heads", "tails", "side", "_sites",
                 "_names")

    def __init__(self, whos: list[tuple[str, int, int, int]], heads: list[tuple[int, Any, str]],
                 tails: list[tuple[Any, ...]]) -> None:
        # lists while the chunk is filled (an append to a list is a third of one to an array), arrays after
        # seal()
        self.lineno: Any = []
        self.who: Any = []
        self.ts: Any = []
        self.code: Any = []
        self.ptr: Any = []
        self.tail: Any = []
        #: (comm, pid, cpu, irq) per ``who`` index
        self.whos = whos
        #: per ``code`` index >= 0: (kind, call_site, "") of a kmem event, (FUNC, function, parent), or
        #: (page kind, (gfp, order, migratetype), "") of a page event
        self.heads = heads
        #: (bytes_req, bytes_alloc, gfp, node, name, accounted) per ``tail`` index
        self.tails = tails
        #: the events of the rows whose ``code`` is negative
        self.side: list[TraceEvent] = []
        self._sites: dict[str, int] | None = None
        self._names: dict[str | None, int] | None = None

    def __len__(self) -> int:
        return len(self.lineno)

    def seal(self) -> None:
        """Turn the columns into arrays (done before the chunk is handed out)."""
        for name, code in COLUMNS:
            col = getattr(self, name)
            if not isinstance(col, array):
                setattr(self, name, array(code, col))

    def interned(self) -> tuple[list[str], list[str | None]]:
        """The call-site strings and cache names that ``call_site_id`` and ``name_id`` index (this chunk's)."""
        self.column("call_site_id")
        assert self._sites is not None and self._names is not None
        return list(self._sites), list(self._names)

    def column(self, name: str) -> array[int]:
        """A derived per-row column: ``kind``, ``cpu``, ``pid``, ``irq``, ``call_site_id``, ``bytes_req``,
        ``bytes_alloc``, ``gfp``, ``node``, ``name_id`` (ids into :meth:`interned`; for the side rows, the
        values of their event)."""
        if name not in _DERIVED:
            raise KeyError(name)
        if name in ("cpu", "pid", "irq"):
            i = ("pid", "cpu", "irq").index(name) + 1
            vals = [self.whos[w][i] if c >= 0 else getattr(self.side[-1 - c], name)
                    for w, c in zip(self.who, self.code, strict=True)]
            return array("q", vals)
        if self._sites is None:
            self._sites, self._names = {}, {}
        sites, names = self._sites, self._names
        assert names is not None
        out = array("q")
        for r in range(len(self.code)):
            ev = self.event(r)
            if name == "kind":
                out.append(ev.kind)
            elif name == "call_site_id":
                out.append(sites.setdefault(ev.call_site, len(sites)))
            elif name == "name_id":
                out.append(names.setdefault(ev.name, len(names)))
            else:
                out.append(getattr(ev, name))
        return out

    def event(self, r: int) -> TraceEvent:
        """The TraceEvent of row ``r`` (what ``iter_events`` yields for that line)."""
        code: int = self.code[r]
        if code < 0:
            ev: TraceEvent = self.side[-1 - code]
            return ev
        comm, pid, cpu, irq = self.whos[self.who[r]]
        kind, a, b = self.heads[code]
        if kind == FUNC:
            return TraceEvent(FUNC, self.lineno[r], cpu, self.ts[r], comm, pid, "", 0, 0, 0, 0, -1, None, None,
                              -1, -1, -1, a, b, irq)
        if kind >= MM_PAGE_ALLOC:
            gfp, order, migratetype = a
            return TraceEvent(kind, self.lineno[r], cpu, self.ts[r], comm, pid, "", self.ptr[r], 0, 0, gfp, -1, None,
                              None, self.tail[r], order, migratetype, "", "", irq)
        breq, balloc, gfp, node, name, accounted = self.tails[self.tail[r]]
        return TraceEvent(kind, self.lineno[r], cpu, self.ts[r], comm, pid, a, self.ptr[r], breq, balloc, gfp,
                          node, name, accounted, -1, -1, -1, "", "", irq)

    def events(self) -> Iterator[TraceEvent]:
        """The TraceEvents of every row, in order."""
        Event = TraceEvent
        whos, heads, tails, side = self.whos, self.heads, self.tails, self.side
        for lineno, w, ts, code, ptr, t in zip(self.lineno, self.who, self.ts, self.code, self.ptr, self.tail,
                                               strict=True):
            if code < 0:
                yield side[-1 - code]
                continue
            comm, pid, cpu, irq = whos[w]
            kind, a, b = heads[code]
            if kind == FUNC:
                yield Event(FUNC, lineno, cpu, ts, comm, pid, "", 0, 0, 0, 0, -1, None, None, -1, -1, -1, a, b, irq)
            elif kind >= MM_PAGE_ALLOC:
                gfp, order, migratetype = a
                yield Event(kind, lineno, cpu, ts, comm, pid, "", ptr, 0, 0, gfp, -1, None, None, t, order,
                            migratetype, "", "", irq)
            else:
                breq, balloc, gfp, node, name, accounted = tails[t]
                yield Event(kind, lineno, cpu, ts, comm, pid, a, ptr, breq, balloc, gfp, node, name, accounted,
                            -1, -1, -1, "", "", irq)

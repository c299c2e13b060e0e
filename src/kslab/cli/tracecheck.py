"""What a trace is, before and after its replay: the checks that turn a silent wrong result into one
clear sentence.

* :class:`TraceCheck` watches the events on their way into the replay for signs that the trace is not
  from a 64-bit Linux 5.10 SLAB kernel (a SLUB or SLOB kernel, a 32-bit kernel, a much older kernel) and
  says once, on stderr, what that means for the result;
* :func:`check_not_empty` makes a trace without events an error naming the file ("no events"), and
  :func:`not_text` words a binary input as "not a text trace".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from enum import Enum

from ..trace.chunk import ColumnChunk
from ..trace.events import ALLOC_KINDS, FUNC, KMALLOC, KMALLOC_NODE, TraceEvent
from ..trace.ftrace import ParseStats

#: Functions that only SLUB has (SLAB's are cache_alloc_refill, cache_grow_begin, free_block...).
SLUB_FUNCTIONS = frozenset({"___slab_alloc", "__slab_alloc", "allocate_slab", "new_slab", "__slab_free",
                            "deactivate_slab", "put_cpu_partial", "__put_partials", "unfreeze_partials",
                            "get_partial_node", "discard_slab", "flush_cpu_slab"})
#: Functions that only SLOB has.
SLOB_FUNCTIONS = frozenset({"slob_alloc", "slob_free", "slob_new_pages", "slob_page_alloc"})
#: Cache names SLAB never has on x86-64 (its smallest kmalloc cache is kmalloc-32; random kmalloc caches
#: came with SLUB-only kernels).
SLUB_CACHE = re.compile(r"^(dma-)?kmalloc-(cg-|rcl-|rnd-\d+-)?(8|16)$|^kmalloc-rnd-")
#: A call site printed as a bare address (kernels before call_site became a symbol, %pS).
BARE_CALL_SITE = re.compile(r"^(0x)?[0-9a-f]{8,16}$")
#: Page allocator events of kernels older than 3.3 (later: mm_page_free, mm_page_free_batched).
OLD_EVENTS = ("other event: mm_page_free_direct", "other event: mm_pagevec_free")
#: Events looked at (the rest of a long trace goes by unchecked, at no cost).
CHECKED_EVENTS = 100_000
#: Allocations looked at for 32-bit pointers.
POINTER_SAMPLE = 200


class Finding(Enum):
    """A sign that the trace is not what the model replays (the value: what it means for the result)."""

    SLUB = ("a SLUB kernel", "kslab models SLAB (mm/slab.c): SLUB's slabs, per-CPU slabs and partial lists "
            "are other structures, so the replay's slab counts and /proc/slabinfo do not predict this kernel's")
    SLOB = ("a SLOB kernel", "kslab models SLAB (mm/slab.c); SLOB has no caches of its own to count, so the "
            "replay's slab counts do not describe this kernel")
    BITS32 = ("a 32-bit kernel", "kslab models x86-64 (8-byte pointers, its kmalloc sizes and alignment): "
              "object sizes, objects per slab and so every count may differ from this kernel's")
    OLD = ("a kernel much older than 5.10", "kslab follows 5.10's mm/slab.c and event formats; an older "
           "kernel's SLAB differs in places (tunables, reaping, kmalloc caches), so take the counts as "
           "approximate")


class TraceCheck:
    """Looks at the events going by (see the module docstring); :meth:`warnings` after the replay."""

    def __init__(self) -> None:
        self.found: dict[Finding, str] = {}
        self.pointers = 0
        self.high_pointers = 0

    def wrap(self, events: Iterable[TraceEvent]) -> Iterator[TraceEvent]:
        """The events, looked at up to the first :data:`CHECKED_EVENTS` (the signs show early: the kernel
        is the same all along) and then passed on untouched."""
        it = iter(events)
        look = self.look
        for ev in itertools.islice(it, CHECKED_EVENTS):
            look(ev)
            yield ev
        yield from it

    def wrap_chunks(self, chunks: Iterable[ColumnChunk]) -> Iterator[ColumnChunk]:
        """``wrap`` for the columnar parser's chunks: the events of the rows up to the first
        :data:`CHECKED_EVENTS` looked at, each chunk passed on untouched."""
        it = iter(chunks)
        left = CHECKED_EVENTS
        look = self.look
        for chunk in it:
            for ev in itertools.islice(chunk.events(), left):
                look(ev)
            left -= len(chunk)
            yield chunk
            if left <= 0:
                break
        yield from it

    def look(self, ev: TraceEvent) -> None:
        """The checks of one event."""
        found = self.found
        kind = ev.kind
        if kind == FUNC:
            fn = ev.text
            if fn in SLUB_FUNCTIONS and Finding.SLUB not in found:
                found[Finding.SLUB] = f"line {ev.lineno} traces {fn}(), a SLUB function"
            elif fn in SLOB_FUNCTIONS and Finding.SLOB not in found:
                found[Finding.SLOB] = f"line {ev.lineno} traces {fn}(), a SLOB function"
        elif kind in ALLOC_KINDS:
            self._alloc(ev)

    def _alloc(self, ev: TraceEvent) -> None:
        found = self.found
        if ev.name and Finding.SLUB not in found and SLUB_CACHE.match(ev.name):
            found[Finding.SLUB] = f"line {ev.lineno} allocates from {ev.name}, a cache SLAB does not have"
        if ev.kind in (KMALLOC, KMALLOC_NODE) and ev.bytes_alloc and not (found.keys() & {Finding.SLUB,
                                                                                            Finding.SLOB}):
            size = ev.bytes_alloc
            if size in (8, 16):
                found[Finding.SLUB] = (f"line {ev.lineno}: kmalloc gave {size} bytes; SLAB's smallest kmalloc "
                                       "cache is kmalloc-32")
            elif size < 32 or not (size & (size - 1) == 0 or size in (96, 192)):
                found[Finding.SLOB] = (f"line {ev.lineno}: kmalloc gave {size} bytes, not the size of a kmalloc "
                                       "cache")
        if Finding.OLD not in found and ev.call_site and BARE_CALL_SITE.match(ev.call_site):
            found[Finding.OLD] = f"line {ev.lineno}: the call site is a bare address ({ev.call_site})"
        if ev.ptr and self.pointers < POINTER_SAMPLE:
            self.pointers += 1
            if ev.ptr >= 1 << 32:
                self.high_pointers += 1
            elif self.pointers == POINTER_SAMPLE and not self.high_pointers:
                found[Finding.BITS32] = f"the first {POINTER_SAMPLE} objects' pointers all fit in 32 bits"

    def warnings(self, stats: ParseStats | None = None) -> list[str]:
        """One sentence per finding: what the trace looks like, why, and what it means for the result."""
        if stats is not None and Finding.OLD not in self.found:
            old = [k for k in OLD_EVENTS if stats.skipped.get(k)]
            if old:
                self.found[Finding.OLD] = f"it has {old[0].removeprefix('other event: ')} events (before 3.3)"
        return [f"the trace looks like {f.value[0]}'s ({why}): {f.value[1]}" for f, why in self.found.items()]


def trace_name(trace: str) -> str:
    return "<stdin>" if trace == "-" else trace


def check_not_empty(trace: str, stats: ParseStats) -> None:
    """A trace that gave no event is an error naming the file and saying what it held instead."""
    if stats.events:
        return
    binary = stats.skipped.get("malformed: binary data", 0)
    if binary:
        raise ValueError(f"{trace_name(trace)}: not a text trace ({plural(binary, 'line')} of binary data, no "
                         "events; a trace-cmd trace.dat? give the output of 'trace-cmd report')")
    skipped = sum(stats.skipped.values())
    if not stats.lines:
        what = "the input is empty"
    elif not skipped:
        what = f"{plural(stats.header, 'header line')} and no trace lines"
    else:
        reason = max(stats.skipped.items(), key=lambda kv: (kv[1], kv[0]))[0]
        what = f"{plural(stats.header, 'header line')}, {plural(skipped, 'line')} skipped (e.g. {reason})"
    raise ValueError(f"{trace_name(trace)}: no events ({what})")


def plural(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def not_text(message: str) -> str | None:
    """The parser's error for binary input, worded as "not a text trace" (None for any other error)."""
    if "malformed: binary data" not in message:
        return None
    where = message.split(": malformed:", 1)[0]
    return (f"{where}: not a text trace (binary data; a trace-cmd trace.dat? give the output of "
            "'trace-cmd report')")

"""Replay of a Linux 6.12 SLUB trace through the SLUB model, from boot.

The trace interpretation is the project's: :func:`kslab.trace.cache.cached_events` parses the trace, and the
kernel's objects are paired with the model's by pointer (``kmap``), as SLAB's replay does.  The SLUB stages
are this module's: every allocation runs on the event's CPU (and node, for the ``_node`` calls and a
kmalloc's ``node=``), every free on the CPU that freed, through the model's fast and slow paths.  A 6.12
kmalloc above KMALLOC_MAX_CACHE_SIZE shows twice (the page path's event, then the caller's), and is applied
once.  At a ``snapshot NAME begin`` marker the model's /proc/slabinfo and /sys/kernel/slab are recorded.

Measured on the way: reuse (an allocation of a kernel address seen before gets the model object that address
had: both allocators picked the same object again) and layout (the object's offset in its slab is the
kernel's).  What is not applied is counted by reason in :attr:`SlubReplay.skipped`, never dropped silently.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ...mm.config import PAGE_SIZE
from ...mm.errors import KslabError
from ...mm.slub.geometry import oo_order
from ...mm.slub.machine import SlubKernel
from ...mm.slub.slub_def import KMALLOC_MAX_CACHE_SIZE, KmemCache
from ..cache import cached_events
from ..events import FREE_KINDS, KFREE, KMALLOC, KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE, MARK, TraceEvent

SNAPSHOT_PREFIX: Final = "oracle: snapshot "


class Skip:
    """Reasons an event is not applied (keys of :attr:`SlubReplay.skipped`)."""

    FREE_UNKNOWN: Final = "free of a pointer not allocated in the trace"
    FREE_NULL: Final = "free of NULL/ZERO_SIZE_PTR (nothing to do)"
    ALLOC_FAILED: Final = "allocation that failed in the kernel (ptr 0)"
    ALLOC_LIVE: Final = "allocation of a pointer already live (the large kmalloc's second event)"
    UNKNOWN_CACHE: Final = "kmem_cache_alloc of a cache the model does not have"
    MODEL_OOM: Final = "allocation the model could not serve (out of memory)"
    FUNC: Final = "function-tracer entry (not replayed)"
    PAGE: Final = "page allocator event (not replayed)"
    MARK_OTHER: Final = "trace marker other than a snapshot"


class SlubReplayError(KslabError):
    """A trace the SLUB replay cannot follow (names the trace line and the reason)."""


@dataclass(slots=True)
class Snapshot:
    """The model at a ``snapshot NAME begin`` marker: /proc/slabinfo and every /sys/kernel/slab file."""

    name: str
    lineno: int
    slabinfo: str
    sysfs: list[str]


@dataclass(slots=True)
class Cross:
    """Frees by where they ran: on the CPU that allocated the object or another, fast path or not."""

    same_cpu: int = 0
    other_cpu: int = 0


@dataclass(slots=True, eq=False)
class SlubReplay:
    """One replay: the machine, the pointer map and what the replay counted."""

    k: SlubKernel
    kmap: dict[int, int] = field(default_factory=dict)
    alloc_cpu: dict[int, int] = field(default_factory=dict)
    last_model: dict[int, int] = field(default_factory=dict)
    applied: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    reuse: Counter[bool] = field(default_factory=Counter)
    layout: Counter[bool] = field(default_factory=Counter)
    cross: Cross = field(default_factory=Cross)
    snapshots: list[Snapshot] = field(default_factory=list)
    events: int = 0

    def run(self, events: Iterable[TraceEvent]) -> SlubReplay:
        """Apply every event in order."""
        for ev in events:
            self.events += 1
            kind = ev.kind
            if kind <= KMEM_CACHE_ALLOC_NODE:
                self.alloc(ev)
            elif kind in FREE_KINDS:
                self.free(ev)
            elif kind == MARK:
                self.mark(ev)
            else:
                self.skipped[Skip.PAGE if kind < MARK else Skip.FUNC] += 1
        return self

    # ---- the stages ---------------------------------------------------------------------------------
    def alloc(self, ev: TraceEvent) -> None:
        """kmalloc / kmem_cache_alloc (and their _node forms) on the event's CPU."""
        kptr = ev.ptr
        if not kptr:
            self.skipped[Skip.ALLOC_FAILED] += 1
            return
        if kptr in self.kmap:
            self.skipped[Skip.ALLOC_LIVE] += 1
            return
        k = self.k
        cpu = ev.cpu
        node = ev.node if ev.kind in (KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE) or ev.kind == KMALLOC else -1
        if ev.kind <= KMALLOC_NODE:
            mptr = k.kmalloc_node(ev.bytes_req, ev.gfp, node, cpu)
            s = None if ev.bytes_req > KMALLOC_MAX_CACHE_SIZE else k.virt_to_cache(mptr)
        else:
            s = k.find_cache(ev.name or "")
            if s is None:
                self.skipped[Skip.UNKNOWN_CACHE] += 1
                return
            mptr = k.kmem_cache_alloc_node(s, ev.gfp, node, cpu)
        if not mptr:
            self.skipped[Skip.MODEL_OOM] += 1
            return
        self.applied[ev.kind_name] += 1
        self.kmap[kptr] = mptr
        self.alloc_cpu[kptr] = cpu
        before = self.last_model.get(kptr)
        if before is not None:
            self.reuse[before == mptr] += 1
        self.last_model[kptr] = mptr
        if s is not None:
            span = PAGE_SIZE << oo_order(s.oo)
            self.layout[kptr % span == mptr % span] += 1

    def free(self, ev: TraceEvent) -> None:
        """kfree / kmem_cache_free on the event's CPU of the model object paired with the kernel's."""
        kptr = ev.ptr
        if kptr <= 16:
            self.skipped[Skip.FREE_NULL] += 1
            return
        mptr = self.kmap.pop(kptr, None)
        if mptr is None:
            self.skipped[Skip.FREE_UNKNOWN] += 1
            return
        cpu = ev.cpu
        if self.alloc_cpu.pop(kptr) == cpu:
            self.cross.same_cpu += 1
        else:
            self.cross.other_cpu += 1
        k = self.k
        if ev.kind == KFREE:
            k.kfree(mptr, cpu)
        else:
            s = k.virt_to_cache(mptr)
            if s is None:
                k.kfree(mptr, cpu)
            else:
                k.kmem_cache_free(s, mptr, cpu)
        self.applied[ev.kind_name] += 1

    def mark(self, ev: TraceEvent) -> None:
        """A ``snapshot NAME begin`` marker records the model's /proc/slabinfo and /sys/kernel/slab."""
        text = ev.text.strip()
        if text.startswith(SNAPSHOT_PREFIX) and text.endswith(" begin"):
            name = text[len(SNAPSHOT_PREFIX):-len(" begin")]
            self.snapshots.append(Snapshot(name, ev.lineno, self.k.slabinfo(), self.k.sysfs_dump()))
            self.applied["snapshot"] += 1
        else:
            self.skipped[Skip.MARK_OTHER] += 1

    # ---- figures -----------------------------------------------------------------------------------
    def fast_path_share(self) -> tuple[int, int]:
        """(fast-path allocations and frees, all allocations and frees) summed over the caches' SLUB_STATS."""
        from ...mm.slub.slab import StatItem  # noqa: PLC0415
        fast = total = 0
        for s in self.k.slab_caches:
            for c in s.cpu_slab:
                fast += c.stat[StatItem.ALLOC_FASTPATH] + c.stat[StatItem.FREE_FASTPATH]
                total += sum(c.stat[i] for i in (StatItem.ALLOC_FASTPATH, StatItem.ALLOC_SLOWPATH,
                                                 StatItem.FREE_FASTPATH, StatItem.FREE_SLOWPATH))
        return fast, total

    def caches_by_name(self) -> dict[str, KmemCache]:
        return {s.name: s for s in self.k.slab_caches}


def replay_slub_trace(k: SlubKernel, trace: str | os.PathLike[str], *, use_cache: bool = True) -> SlubReplay:
    """Replay ``trace`` (a path) through the SLUB machine ``k``, booted with the trace's cache log."""
    events: Iterable[TraceEvent]
    if use_cache:
        events = cached_events(trace)
    else:
        from ..ftrace import iter_events  # noqa: PLC0415
        events = iter_events(trace)
    return SlubReplay(k).run(events)

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
from ..events import FREE_KINDS, FUNC, KFREE, KMALLOC, KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE, MARK, TraceEvent
from ..ftrace import ParseStats
from ..replay.boot import TaskPolicies
from ..replay.options import UnknownFree
from .options import SlubReplayOptions

SNAPSHOT_PREFIX: Final = "oracle: snapshot "
#: the cache of the seq_file that cat's open of /proc/slabinfo allocates (seq_open)
SEQ_FILE: Final = "seq_file"
#: The order in which ``grep -r`` reads the files of a 6.12 /sys/kernel/slab cache directory (kernfs's readdir
#: order, the same in every directory), as the captures show it: the order of their sysslab lines, with the two
#: files that print nothing (validate and shrink, in an order the captures cannot tell) where the trace's reads
#: (one seq_read_iter buffer per file, show_stat and show_slab_objects by their own allocations) place them.
SYSFS_READ_ORDER: Final = (
    "remote_node_defrag_ratio", "free_frozen", "total_objects", "cpuslab_flush", "alloc_fastpath",
    "cpu_partial_free", "cpu_slabs", "objects", "deactivate_full", "objects_partial", "cpu_partial",
    "cmpxchg_double_cpu_fail", "validate", "free_slowpath", "deactivate_to_tail", "min_partial", "order_fallback",
    "deactivate_empty", "alloc_from_partial", "poison", "red_zone", "free_slab", "slabs", "cpu_partial_node",
    "alloc_slowpath", "destroy_by_rcu", "sanity_checks", "align", "alloc_node_mismatch", "deactivate_remote_frees",
    "alloc_slab", "free_remove_partial", "aliases", "store_user", "trace", "reclaim_account", "order",
    "object_size", "alloc_refill", "cpu_partial_drain", "free_fastpath", "shrink", "hwcache_align",
    "cpu_partial_alloc", "cmpxchg_double_fail", "deactivate_bypass", "objs_per_slab", "partial",
    "slabs_cpu_partial", "free_add_partial", "ctor", "slab_size", "cache_dma", "deactivate_to_head")
#: the reader of /sys/kernel/slab in the captures, and the allocations that mark its reads
GREP: Final = "grep"
READ_BUFFER_SITE: Final = "seq_read_iter"
SHOW_SITES: Final = ("show_stat", "show_slab_objects")
#: the function-tracer entry that starts a bulk free (kfree_bulk calls it too)
BULK_FREE: Final = "kmem_cache_free_bulk"


class Skip:
    """Reasons an event is not applied (keys of :attr:`SlubReplay.skipped`)."""

    FREE_UNKNOWN: Final = "free of a pointer not allocated in the trace"
    FREE_UNKNOWN_IGNORED: Final = "free of a pointer not allocated in the trace (ignored by --unknown-free)"
    FREE_NULL: Final = "free of NULL/ZERO_SIZE_PTR (nothing to do)"
    ALLOC_FAILED: Final = "allocation that failed in the kernel (ptr 0)"
    ALLOC_LIVE: Final = "allocation of a pointer already live (the large kmalloc's second event)"
    UNKNOWN_CACHE: Final = "kmem_cache_alloc of a cache the model does not have"
    MODEL_OOM: Final = "allocation the model could not serve (out of memory)"
    FUNC: Final = "function-tracer entry (not replayed)"
    PAGE: Final = "page allocator event (not replayed)"
    MARK_OTHER: Final = "trace marker other than a snapshot"


class Applied:
    """Keys of :attr:`SlubReplay.applied` besides the event kinds' names."""

    PLACEHOLDER: Final = "placeholder (allocated before tracing began)"
    PLACEHOLDER_SUFFIX: Final = " of a placeholder"
    SNAPSHOT: Final = "snapshot"
    BULK: Final = "kmem_cache_free_bulk (its objects' frees as one call)"


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
class GrepRead:
    """``grep -r . /sys/kernel/slab`` after a snapshot's end marker: its process, the directories in the order it
    reads them, how many files it has read, and whether the last read's value is still to be taken."""

    snapshot: Snapshot
    dirs: list[str]
    pid: int = -1
    index: int = 0
    pending: bool = False


@dataclass(slots=True)
class Bulk:
    """A kmem_cache_free_bulk being traced on a CPU: its task, its objects' call site, the model objects."""

    pid: int
    call_site: str
    objects: list[int]


@dataclass(slots=True)
class Cross:
    """Frees by where they ran: on the CPU that allocated the object or another, fast path or not."""

    same_cpu: int = 0
    other_cpu: int = 0


@dataclass(slots=True, eq=False)
class SlubReplay:
    """One replay: the machine, the pointer map and what the replay counted."""

    k: SlubKernel
    opts: SlubReplayOptions = field(default_factory=SlubReplayOptions)
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
    #: model objects standing for the kernel's objects allocated before tracing began, per cache name
    placeholders: dict[str, list[int]] = field(default_factory=dict)
    #: frees of unknown pointers by cache name (kmem_cache_free names it), up to ``stop_at`` when given
    unknown_frees: Counter[str] = field(default_factory=Counter)
    stop_at: str | None = None
    #: between a snapshot's begin marker and the allocation of the seq_file that reads /proc/slabinfo
    reading: bool = False
    #: the kmem_cache_free_bulk in progress on each CPU
    bulk: dict[int, Bulk] = field(default_factory=dict)
    #: snapshot name -> the /sys/kernel/slab directories in the order the capture's grep read them; with one,
    #: each file's value is taken when grep reads it (see :meth:`grep_event`), else all at the end marker
    sysfs_plans: dict[str, list[str]] = field(default_factory=dict)
    grep: GrepRead | None = None
    #: the boot tasks' interleave policy (kslab.trace.replay.boot.TaskPolicies, shared with SLAB's replay),
    #: followed while it is active; None: every task allocates with the local policy
    policies: TaskPolicies | None = None

    def place(self, counts: dict[str, int]) -> None:
        """Allocate ``counts[name]`` placeholder objects of each cache on CPU 0, in the model's boot order
        (the kernel allocated them before its trace began, with only the boot CPU up)."""
        for s in reversed(self.k.slab_caches):
            for name in (s.name, *s.aliases):
                n = counts.get(name, 0)
                if n > 0:
                    got = [self.k.kmem_cache_alloc(s, cpu=0) for _ in range(n)]
                    self.placeholders.setdefault(name, []).extend(p for p in got if p)
                    self.applied[Applied.PLACEHOLDER] += len(got)

    def adopt(self, pairs: dict[int, int]) -> None:
        """Pair kernel objects allocated before the trace began with the model objects standing for them
        (see :mod:`.pretrace`); counted as placeholders."""
        self.kmap.update(pairs)
        self.applied[Applied.PLACEHOLDER] += len(pairs)

    def run(self, events: Iterable[TraceEvent]) -> SlubReplay:
        """Apply every event in order (up to the snapshot marker ``stop_at``, when given, and the walk of
        /sys/kernel/slab after it when there is a plan for it: up to the first marker after the walk began)."""
        stop = f"{SNAPSHOT_PREFIX}{self.stop_at} end" if self.stop_at is not None else None
        walking = False
        for ev in events:
            if walking and ev.kind == MARK and self.grep is not None and self.grep.pid >= 0:
                break
            if stop is not None and ev.kind == MARK and ev.text.strip() == stop:
                self.mark(ev)
                if self.grep is None:
                    break
                walking, stop = True, None  # and the walk of /sys/kernel/slab that follows
                continue
            self.events += 1
            kind = ev.kind
            if self.grep is not None and ev.comm == GREP and self.grep_event(ev):
                continue
            bulk = self.bulk.get(ev.cpu)
            if bulk is not None and not (kind in FREE_KINDS and ev.call_site == bulk.call_site
                                         and ev.pid == bulk.pid):
                if bulk.call_site or kind not in FREE_KINDS:
                    self.flush_bulk(ev.cpu)
                else:
                    bulk.call_site, bulk.pid = ev.call_site, ev.pid
            if kind <= KMEM_CACHE_ALLOC_NODE:
                if self.policies is not None and self.policies.active:
                    self.policies.apply(ev, ev.cpu)
                self.alloc(ev)
            elif kind in FREE_KINDS:
                self.free(ev)
            elif kind == MARK:
                self.mark(ev)
            elif kind == FUNC and ev.text == BULK_FREE:
                self.bulk[ev.cpu] = Bulk(ev.pid, "", [])
                self.applied[Applied.BULK] += 1
            else:
                self.skipped[Skip.PAGE if kind < MARK else Skip.FUNC] += 1
        for cpu in list(self.bulk):
            self.flush_bulk(cpu)
        return self

    def grep_event(self, ev: TraceEvent) -> bool:
        """An event of the sysfs reader: its read-buffer allocation starts a file's read, whose value is taken
        before grep's next event (after it, when that is the show function's own allocation). A new grep
        process starts the directory over (the capture's last walk is the one in its file). True when the
        event was applied here."""
        g = self.grep
        assert g is not None
        if ev.pid != g.pid:
            g.pid, g.index, g.pending = ev.pid, 0, False
        applied = False
        if g.pending:
            if ev.kind == KMALLOC and ev.call_site.startswith(SHOW_SITES):
                self.alloc(ev)
                applied = True
            self.take_read(g)
        if not applied and ev.kind == KMALLOC and ev.call_site.startswith(READ_BUFFER_SITE):
            self.alloc(ev)
            g.pending = True
            return True
        return applied

    def take_read(self, g: GrepRead) -> None:
        """The value of the file grep is reading, as the model has it now."""
        from ...mm.slub.sysfs import SLAB_ATTRS, sysfs_dirs  # noqa: PLC0415
        g.pending = False
        if not g.index:  # the walk's first file: its values replace what the end marker (or a walk before) left
            g.snapshot.sysfs = []
        d, i = divmod(g.index, len(SYSFS_READ_ORDER))
        g.index += 1
        if d >= len(g.dirs):
            return
        attr = SYSFS_READ_ORDER[i]
        s = sysfs_dirs(self.k.sl).get(g.dirs[d])
        if s is not None and attr in SLAB_ATTRS:
            g.snapshot.sysfs.append(f"/sys/kernel/slab/{g.dirs[d]}/{attr}:{SLAB_ATTRS[attr](s)}")

    def flush_bulk(self, cpu: int) -> None:
        """The objects of a kmem_cache_free_bulk (traced one by one before the kernel frees them) go back in
        one call, which frees each slab's objects as one detached freelist."""
        bulk = self.bulk.pop(cpu)
        if bulk.objects:
            self.k.kmem_cache_free_bulk(None, bulk.objects, cpu)

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
        if self.reading and ev.name == SEQ_FILE:
            self.read_point()

    def free(self, ev: TraceEvent) -> None:
        """kfree / kmem_cache_free on the event's CPU of the model object paired with the kernel's."""
        kptr = ev.ptr
        if kptr <= 16:
            self.skipped[Skip.FREE_NULL] += 1
            return
        mptr = self.kmap.pop(kptr, None)
        if mptr is None:
            self.free_placeholder(ev)
            return
        cpu = ev.cpu
        where = self.alloc_cpu.pop(kptr, None)
        if where == cpu:
            self.cross.same_cpu += 1
        elif where is not None:  # (None: an object of a slab older than the trace)
            self.cross.other_cpu += 1
        k = self.k
        bulk = self.bulk.get(cpu)
        if bulk is not None:
            bulk.objects.append(mptr)
        elif ev.kind == KFREE:
            k.kfree(mptr, cpu)
        else:
            s = k.virt_to_cache(mptr)
            if s is None:
                k.kfree(mptr, cpu)
            else:
                k.kmem_cache_free(s, mptr, cpu)
        self.applied[ev.kind_name] += 1

    def free_placeholder(self, ev: TraceEvent) -> None:
        """A free of an object allocated before tracing: a placeholder of its cache (the one at the same
        offset in its slab if there is one, else the last placed); counted as unknown when there is none."""
        name = ev.name or ""
        self.unknown_frees[name] += 1
        if self.opts.unknown_free == UnknownFree.IGNORE:
            self.skipped[Skip.FREE_UNKNOWN_IGNORED] += 1
            return
        pool = self.placeholders.get(name)
        if not pool:
            self.skipped[Skip.FREE_UNKNOWN] += 1
            return
        s = self.k.find_cache(name)
        span = PAGE_SIZE << oo_order(s.oo) if s is not None else PAGE_SIZE
        i = next((j for j in range(len(pool) - 1, -1, -1) if pool[j] % span == ev.ptr % span), len(pool) - 1)
        mptr = pool.pop(i)
        self.k.kfree(mptr, ev.cpu)
        self.applied[ev.kind_name + Applied.PLACEHOLDER_SUFFIX] += 1

    def mark(self, ev: TraceEvent) -> None:
        """The snapshot markers: ``snapshot NAME begin`` starts one (its /proc/slabinfo is taken when the
        reader's seq_file is allocated, see :meth:`read_point`), ``snapshot NAME end`` takes /sys/kernel/slab
        (the capture reads it right after that marker)."""
        text = ev.text.strip()
        if not text.startswith(SNAPSHOT_PREFIX):
            self.skipped[Skip.MARK_OTHER] += 1
            return
        name, _, what = text[len(SNAPSHOT_PREFIX):].rpartition(" ")
        if what == "begin":
            self.grep = None
            self.snapshots.append(Snapshot(name, ev.lineno, self.k.slabinfo(), []))
            self.reading = True
            self.applied[Applied.SNAPSHOT] += 1
        elif what == "end" and self.snapshots and self.snapshots[-1].name == name:
            self.snapshots[-1].sysfs = self.k.sysfs_dump()
            self.reading = False
            plan = self.sysfs_plans.get(name)
            if plan:
                self.grep = GrepRead(self.snapshots[-1], plan)
        else:
            self.skipped[Skip.MARK_OTHER] += 1

    def read_point(self) -> None:
        """The reader of the snapshot's /proc/slabinfo got its seq_file: the kernel prints the file now."""
        self.snapshots[-1].slabinfo = self.k.slabinfo()
        self.reading = False

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


def trace_events(trace: str | os.PathLike[str], use_cache: bool,
                 stats: ParseStats | None = None) -> Iterable[TraceEvent]:
    """The trace's events (through the parse cache with ``use_cache``), counted in ``stats`` when given."""
    if use_cache:
        return cached_events(trace, stats=stats)
    from ..ftrace import iter_events  # noqa: PLC0415
    return iter_events(trace, stats=stats)


def replay_slub_trace(k: SlubKernel, trace: str | os.PathLike[str], *, use_cache: bool = True,
                      placeholders: dict[str, int] | None = None,
                      options: SlubReplayOptions | None = None,
                      stats: ParseStats | None = None) -> SlubReplay:
    """Replay ``trace`` (a path) through the SLUB machine ``k``, booted with the trace's cache log, after
    allocating ``placeholders`` (see :func:`placeholder_counts`); ``options`` (its ``use_cache`` then
    overrides ``use_cache``); the parse is counted in ``stats``."""
    opts = options if options is not None else SlubReplayOptions(use_cache=use_cache)
    rep = SlubReplay(k, opts)
    if placeholders:
        rep.place(placeholders)
    return rep.run(trace_events(trace, opts.use_cache, stats))


def placeholder_counts(rep: SlubReplay, kernel_slabinfo: dict[str, dict[str, int]]) -> dict[str, int]:
    """How many objects each cache had from before tracing began, from a replay without placeholders stopped
    at a snapshot (``rep.stop_at``) and the kernel's /proc/slabinfo there: the kernel's active objects the
    model lacks, plus the frees of unknown objects of the cache before the snapshot."""
    model = rep.snapshots[-1].slabinfo if rep.snapshots else rep.k.slabinfo()
    from ..slabinfo_parse import parse_slabinfo  # noqa: PLC0415
    mine = parse_slabinfo(model)
    out: dict[str, int] = {}
    for name, kv in kernel_slabinfo.items():
        mv = mine.get(name)
        lack = kv["active_objs"] - (mv["active_objs"] if mv else 0)
        n = max(lack, 0) + rep.unknown_frees.get(name, 0)
        if n:
            out[name] = n
    for name, n in rep.unknown_frees.items():
        if name and name not in out and name not in kernel_slabinfo:
            out[name] = n
    return out

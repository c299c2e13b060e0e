"""Replay a kernel trace through the model.

Each kmem event runs on the CPU the trace names, in trace order; kernel pointers are mapped to
model objects.  The engine also keeps the machine's boot in step with the trace (the manifest's
creations and directives), recognises the allocations that the model makes itself (node
structures, array caches, off-slab freelists, ``struct kmem_cache``), handles frees of objects
allocated before the trace began (placeholders), runs ``cache_reap`` where the trace did, and acts
on markers (sync with a real /proc/slabinfo, snapshots, administrative actions).

The engine never prints: progress goes to a callback, results into :class:`ReplaySummary`.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..manifest import Create, Directive, Entry, ManifestBoot, usercopy_window
from ..mm.config import MachineConfig
from ..mm.errors import KernelBug, KslabError
from ..mm.gfp import __GFP_ZERO
from ..mm.kernel import Kernel
from ..mm.list import list_del
from ..mm.page import PAGE_OFFSET, PAGE_SHIFT, PG_slab
from ..mm.slab.alloc import kmem_cache_alloc, kmem_cache_alloc_node, slab_want_init_on_alloc
from ..mm.slab.free import ___cache_free, kfree, kmem_cache_free
from ..mm.slab.grow import cache_grow_begin, cache_grow_end, fixup_slab_list, slab_get_obj
from ..mm.slab.kmalloc import kmalloc, kmalloc_node, kmalloc_slab
from ..mm.slab.node import drain_freelist
from ..mm.slab.reap import drain_array_tofree
from ..mm.slab_common import find_mergeable
from ..mm.slab_def import SLAB_HWCACHE_ALIGN, KmemCache
from .events import (
    FUNC,
    KFREE,
    KIND_NAMES,
    KMALLOC,
    KMALLOC_NODE,
    KMEM_CACHE_ALLOC,
    KMEM_CACHE_ALLOC_NODE,
    KMEM_CACHE_FREE,
    MARK,
    MM_PAGE_ALLOC,
    MM_PAGE_FREE,
    MM_PAGE_FREE_BATCHED,
    TraceEvent,
)
from .reapwatch import NodeAtReap, ReapWatch, pick_jiffies, place_passes


class ReplayError(KslabError):
    """A replay that cannot go on (bad option, impossible input): names the file and line."""


# ---- the model's own allocations, as the kernel's trace shows them -------------------------------
# trace call-site function -> group; the model tags its internal calls (internal="...") and
# INTERNAL_TAGS maps those tags to the same groups, so both sides can be paired.
_ALLOC_SITES = {
    "kmem_cache_create_usercopy": "alloc:kmem_cache", "create_cache": "alloc:kmem_cache",
    "kmem_cache_create": "alloc:kmem_cache", "create_kmalloc_cache": "alloc:kmem_cache",
    "init_cache_node": "alloc:node", "setup_cpu_cache": "alloc:node", "init_list": "alloc:node",
    "setup_kmem_cache_node": "alloc:array", "alloc_arraycache": "alloc:array",
    "__alloc_alien_cache": "alloc:array", "alloc_alien_cache": "alloc:array",
    "cache_grow_begin": "alloc:freelist", "alloc_slabmgmt": "alloc:freelist",
}
_FREE_SITES = {
    "setup_kmem_cache_node": "free:array", "free_alien_cache": "free:array", "__kmem_cache_release": "free:array",
    "cpuup_canceled": "free:array", "alloc_alien_cache": "free:array", "__kmem_cache_shutdown": "free:array",
    "slab_destroy": "free:freelist", "slab_kmem_cache_release": "free:kmem_cache",
    "kmem_cache_release": "free:kmem_cache", "kmem_cache_destroy": "free:kmem_cache",
    "shutdown_cache": "free:kmem_cache",
}
INTERNAL_TAGS = {
    "create_cache": "alloc:kmem_cache", "create_kmalloc_cache": "alloc:kmem_cache",
    "init_cache_node": "alloc:node", "setup_cpu_cache": "alloc:node", "init_list": "alloc:node",
    "alloc_arraycache": "alloc:array", "__alloc_alien_cache": "alloc:array", "alloc_alien_cache": "alloc:array",
    "alloc_slabmgmt": "alloc:freelist",
    "setup_kmem_cache_node": "free:array", "free_alien_cache": "free:array", "__kmem_cache_release": "free:array",
    "cpuup_canceled": "free:array",
    "slab_destroy": "free:freelist", "kmem_cache_destroy": "free:kmem_cache",
}

# Callers of kmem_cache_shrink() whose cache the function tracer does not name: ACPICA's
# acpi_purge_cached_objects() purges its caches in this order.
KNOWN_SHRINK_CALLERS = {"acpi_os_purge_cache": ("Acpi-State", "Acpi-Operand", "Acpi-Parse", "Acpi-ParseExt")}


_SITE_FUNCTIONS: dict[str, str] = {}  # site_function()'s answers: a trace has few distinct call sites


def site_function(call_site: str) -> str:
    """``foo+0x10/0x20 [mod]`` -> ``foo`` (``.constprop.0``-style suffixes removed)."""
    f = _SITE_FUNCTIONS.get(call_site)
    if f is None:
        f = call_site.split("+", 1)[0].split(" ", 1)[0]
        dot = f.find(".")
        if dot > 0:
            f = f[:dot]
        if len(_SITE_FUNCTIONS) >= 100_000:
            _SITE_FUNCTIONS.clear()
        _SITE_FUNCTIONS[call_site] = f
    return f


# The fast paths' call-site classification (see Replayer._alloc_fast): a call site is plain when its
# function is not one of the model's own allocations (frees).  Answers remembered, like site_function's.
_PLAIN_ALLOC_SITES: dict[str, bool] = {}
_PLAIN_FREE_SITES: dict[str, bool] = {}


def _plain_alloc_site(call_site: str) -> bool:
    if len(_PLAIN_ALLOC_SITES) >= 100_000:
        _PLAIN_ALLOC_SITES.clear()
    plain = _PLAIN_ALLOC_SITES[call_site] = site_function(call_site) not in _ALLOC_SITES
    return plain


def _plain_free_site(call_site: str) -> bool:
    if len(_PLAIN_FREE_SITES) >= 100_000:
        _PLAIN_FREE_SITES.clear()
    plain = _PLAIN_FREE_SITES[call_site] = site_function(call_site) not in _FREE_SITES
    return plain


# names with two leading underscores would be mangled inside the class
_GFP_ZERO = __GFP_ZERO
_cache_free = ___cache_free
_PG_SLAB = 1 << PG_slab


@dataclass
class ReplayOptions:
    reap: str = "trace"  # trace | timer | off
    start_slabinfo: str | None = None
    sync_on: str | None = None
    actions: list[tuple[str, str]] = field(default_factory=list)
    snapshot_on: str | None = None
    out: str | None = None
    ptr_map: str | None = None
    unknown_free: str = "placeholder"  # placeholder | ignore
    skip_bad: bool = False
    check_every: int = 0


@dataclass
class ReplaySummary:
    """What the replay did: every event is applied or skipped with a reason."""

    events: int = 0
    applied: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    internal: Counter[str] = field(default_factory=Counter)
    unknown_frees: Counter[str] = field(default_factory=Counter)
    placeholders: Counter[str] = field(default_factory=Counter)
    sync: dict[str, Any] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    cpu_remapped: int = 0
    reaps: int = 0
    #: what the function tracer showed and the replay followed: the kernel's cache_reap runs (and how
    #: the model's compare), refills that ran at the same time on two CPUs
    followed: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def accounted(self) -> int:
        return sum(self.applied.values()) + sum(self.skipped.values())


class Replayer:
    """Drives a :class:`Kernel` from trace events."""

    def __init__(self, config: MachineConfig, manifest: list[Entry] | None = None,
                 options: ReplayOptions | None = None, manifest_path: str = "<manifest>") -> None:
        self.opts = opts = options or ReplayOptions()
        self.k = k = Kernel(config, boot=False)
        k.boot_early()
        self.mb = ManifestBoot(k, list(manifest or []), manifest_path)
        # Whether the trace covers the boot is only known from its first events (see run()).
        self.directive_mode = self.mb.has_directives
        self.booted = False
        self.summary = ReplaySummary()
        self.kmap: dict[int, int] = {}  # kernel object pointer -> model pointer
        self.kcache: dict[int, KmemCache] = {}  # kernel pointer -> model cache (for frees)
        self.irq_buf: list[TraceEvent] = []  # events held back while an interrupt's window is open
        self.irq_windows: dict[int, int] = {}  # CPU -> index in irq_buf of its interrupt's first event
        self.task_pid: dict[int, int] = {}  # CPU -> pid of its last event outside interrupts
        self.internal_rev: dict[int, int] = {}  # model pointer of an internal structure -> kernel pointer
        self.kpage_cache: dict[int, KmemCache] = {}  # kernel pfn of a slab page -> cache
        self.placeholder: dict[KmemCache, list[int]] = {}
        #: slab pages the model had before the first event of a trace that shows the boot: what else the
        #: kernel's hold is not known
        self.pre_trace_pages: set[int] = set()
        self.shows_boot = False
        self.pending_model: dict[str, deque[int]] = {}
        self.pending_trace: dict[str, deque[int]] = {}
        self.shrink_rotor: Counter[str] = Counter()
        self.synced = opts.sync_on is None
        self.sync_re = re.compile(opts.sync_on) if opts.sync_on else None
        self.snap_re = re.compile(opts.snapshot_on) if opts.snapshot_on else None
        self.action_res = [(re.compile(rx), act) for rx, act in opts.actions]
        self.ptrmap: IO[str] | None = None
        self.evno = 0
        self.clock = "seconds"
        self.reap_count: Counter[int] = Counter()
        self.hz = config.HZ
        self.cpus = config.cpus
        self.on_progress: Callable[[int, int], None] | None = None
        # called as on_sample(replayer, event) every sample_every events (reports build timelines)
        self.on_sample: Callable[[Replayer, TraceEvent], None] | None = None
        self.sample_every = 0
        # sync/snapshot requests wait for the reader's read(2) of /proc/slabinfo (see _mark)
        self.pending_read: list[tuple[str, str, TraceEvent]] = []
        # CPUs on which the kernel's function tracer showed cache_alloc_refill since their last alloc
        self.kernel_refilled: Counter[int] = Counter()
        self.anchored: set[tuple[KmemCache, int]] = set()
        self.align_arrays = True
        self.align_passes = True
        self.held: list[TraceEvent] | None = None
        # a cache_reap run being collected (see reapwatch), and the drain_array count of collected runs
        self.reap_watches: dict[int, ReapWatch] = {}
        self.reap_hold: list[TraceEvent] = []
        self.reap_drains: dict[int, ReapWatch] = {}
        # concurrent refills (see _race_check): the line of each CPU's last cache_alloc_refill and
        # cache_grow_begin, and the last allocations that grew a slab (line, CPU, cache, node)
        self.refill_line: dict[int, int] = {}
        self.kernel_grew: dict[int, int] = {}
        self.recent_grows: deque[tuple[int, int, KmemCache, int]] = deque(maxlen=32)
        self.traced_drain_array = False
        # whether the function tracer shows drain_array_locked, and drain_freelist's pages (kmem_freepages
        # lines and page frees): until it does, a reap run's lines say nothing of them
        self.traced_drain_locked = False
        self.traced_freepages = False
        # allocations whose event came after an interrupt's events (see feed): per CPU, the context
        # (irq), pid and grow state of a cache_alloc_refill whose allocation event has not come yet,
        # and the events held back since an interrupt showed up after that refill
        self.refill_open: dict[int, list[Any]] = {}
        self.irq_hold: tuple[int, int, int, list[TraceEvent]] | None = None
        # frees whose flush came before another CPU's refill (see _feed_flush_order): per CPU, the line
        # of a cache_flusharray whose free event has not come yet, and of a cache_alloc_refill whose
        # allocation event has not; and the events held back for such a free (CPU, allocation, events)
        self.flush_open: dict[int, int] = {}
        self.refill_seen: dict[int, int] = {}
        self.flush_race: tuple[int, TraceEvent, list[TraceEvent]] | None = None
        # the node timers of the caches that exist before the first event, as set (see _early_timers_lag)
        self.early_timers: list[tuple[Any, int]] = []
        self.early_action: tuple[int, str] | None = None
        # boot-time interleave policy of pids 0 and 1 (see _task_policy); decided in start_boot()
        self.boot_policies = False
        self.pid0_policy: Any = None
        self.pid1_policy: Any = None
        self.pid1_seen = False
        from ..mm.page_alloc import qemu_node_ranges  # noqa: PLC0415
        self.node_ranges = [(lo, hi, nid) for nid, rs in enumerate(qemu_node_ranges(config)) for lo, hi in rs]
        self.saw_functions = False
        self._by_geometry: dict[tuple[int, int], list[KmemCache]] = {}
        self._hook = self._model_event  # one bound method, so that the fast paths can tell it by identity
        k.event_hook = self._hook
        if opts.out:
            Path(opts.out).mkdir(parents=True, exist_ok=True)
        if opts.ptr_map:
            Path(opts.ptr_map).parent.mkdir(parents=True, exist_ok=True)
            self.ptrmap = open(opts.ptr_map, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish()
            self.ptrmap.write("event,kernel_ptr,model_ptr,kind,cache\n")

    # ---- the model's own allocations --------------------------------------------------------------
    def _model_event(self, kind: str, cachep: KmemCache | None, ptr: int, size: int, flags: int, node: int,
                     internal: str) -> None:
        if not internal:
            return
        group = INTERNAL_TAGS.get(internal)
        if group is None:
            return
        is_free = kind in ("kfree", "kmem_cache_free")
        if is_free and group.startswith("alloc:"):
            group = "free:" + group[6:]  # an error path frees what its function allocated
        elif not is_free and group.startswith("free:"):
            group = "alloc:" + group[5:]
        if is_free:
            # the model frees its own structure: forget which kernel pointer stood for it, or, if no
            # kernel allocation was paired with it yet, withdraw it from whichever queue awaits one
            kptr = self.internal_rev.pop(ptr, None)
            if kptr is not None and self.kmap.get(kptr) == ptr:
                del self.kmap[kptr]
                self.kcache.pop(kptr, None)
            elif ptr:
                for name, waiting in self.pending_model.items():
                    if name.startswith("alloc:") and ptr in waiting:
                        waiting.remove(ptr)
                        self.summary.internal[name + " model only (freed)"] += 1
                        break
        q = self.pending_trace.get(group)
        if q:
            kptr = q.popleft()
            self._pair(group, kptr, ptr, cachep)
        else:
            self.pending_model.setdefault(group, deque()).append(ptr)

    def _pair(self, group: str, kptr: int, mptr: int, cachep: KmemCache | None) -> None:
        self.summary.internal[group + " paired"] += 1
        if group.startswith("alloc:"):
            if kptr and mptr:
                if group == "alloc:kmem_cache":
                    # a cache's node timers start at an offset from its address (init_cache_node's
                    # ((unsigned long)cachep) % REAPTIMEOUT_NODE): the kernel's address, not the model's
                    self.k.adopt_kernel_cache_addr(mptr, kptr)
                self.kmap[kptr] = mptr
                self.internal_rev[mptr] = kptr
                if cachep is not None:
                    self.kcache[kptr] = cachep
                if self.ptrmap is not None:
                    self.ptrmap.write(f"{self.evno},{kptr:x},{mptr:x},internal,{cachep.name if cachep else ''}\n")
        elif kptr in self.kmap and self.internal_rev.get(self.kmap[kptr]) == kptr:
            del self.internal_rev[self.kmap.pop(kptr)]
            self.kcache.pop(kptr, None)

    def _trace_internal(self, group: str, kptr: int) -> None:
        q = self.pending_model.get(group)
        if q:
            mptr = q.popleft()
            cache = self.k.virt_to_cache(mptr) if mptr > 16 else None
            self._pair(group, kptr, mptr, cache)
        else:
            self.pending_trace.setdefault(group, deque()).append(kptr)

    # ---- caches -------------------------------------------------------------------------------------
    def _advance_manifest_to_create(self) -> KmemCache | None:
        """A `struct kmem_cache` was allocated in the trace: apply the manifest up to the next creation
        that makes a new cache (aliases and directives before it apply on the way)."""
        mb = self.mb
        while mb.pos < len(mb.entries):
            e = mb.entries[mb.pos]
            if isinstance(e, Directive):
                mb.step()
                continue
            assert isinstance(e, Create)
            flags = e.flags
            _useroffset, usersize = (e.useroffset, e.usersize) if e.usersize >= 0 else usercopy_window(e.name, e.size)
            mergeable = not usersize and find_mergeable(self.k, e.size, e.align, flags, e.name,
                                                        True if e.ctor else None) is not None
            mb.step(self.k.cpu)
            if not mergeable:
                return self.k.slab_caches[0] if self.k.slab_caches else None
        return None

    def _traced_creation(self, kptr: int) -> None:
        """The trace allocated a struct kmem_cache at ``kptr``: create the manifest's next cache and pair
        the two structures.

        They are paired directly rather than first come, first served: a trace that covers the boot
        starts its kmem events after the kernel created its first caches, which the model creates
        too (from the manifest), so the model has structures no kernel event will ever stand for.
        """
        q = self.pending_model.get("alloc:kmem_cache")
        waiting_before = len(q) if q else 0
        c = self._advance_manifest_to_create()
        q = self.pending_model.get("alloc:kmem_cache")
        if c is not None and q and len(q) > waiting_before and q[-1] == c.addr:
            q.pop()
            self._pair("alloc:kmem_cache", kptr, c.addr, self.k.virt_to_cache(c.addr) if c.addr > 16 else None)
        else:
            self._trace_internal("alloc:kmem_cache", kptr)

    def _cache_by_name(self, name: str, ev: TraceEvent) -> KmemCache | None:
        c = self.k.find_cache(name)
        if c is not None:
            return c
        # the manifest may create it later than the trace shows it: look ahead
        mb = self.mb
        for i in range(mb.pos, len(mb.entries)):
            e = mb.entries[i]
            if isinstance(e, Create) and e.name == name:
                while mb.pos <= i:
                    mb.step()
                return self.k.find_cache(name)
        # infer a cache from the event (object_size and size)
        return self._infer_cache(name, ev)

    def _infer_cache(self, name: str | None, ev: TraceEvent) -> KmemCache | None:
        osz, size = ev.bytes_req, ev.bytes_alloc
        if osz <= 0 or size <= 0 or size < osz:
            return None
        if name is None:
            cands = [c for c in self.k.slab_caches if c.object_size == osz and c.size == size]
            if len(cands) == 1:
                return cands[0]
            cands = [c for c in self.k.slab_caches if c.size == size and c.object_size >= osz
                     and not c.name.startswith(("kmalloc-", "dma-kmalloc-"))]
            if cands:
                return cands[0]
            name = f"inferred-{osz}-{size}"
            c = self.k.find_cache(name)
            if c is not None:
                return c
        for flags in (0, SLAB_HWCACHE_ALIGN):
            saved = self.k.slab_nomerge
            self.k.slab_nomerge = True
            c = self.k.kmem_cache_create(name, osz, 0, flags)
            self.k.slab_nomerge = saved
            if c is not None and c.size == size:
                self.summary.notes.append(f"inferred cache {name}: object_size {osz} size {size}")
                self.summary.internal["cache inferred"] += 1
                return c
            if c is not None:
                self.k.kmem_cache_destroy(c)
        return None

    # ---- placeholders: objects allocated before the trace began -----------------------------------
    def _placeholder(self, cachep: KmemCache) -> int:
        """Allocate, straight from the slabs, an object standing for one the kernel had before the trace."""
        objs = self._placeholders(cachep, 1)
        return objs[0] if objs else 0

    def _placeholders(self, cachep: KmemCache, count: int, sync: bool = False) -> list[int]:
        """``count`` placeholders (see _placeholder) one after the other, fewer if the slabs run out."""
        k = self.k
        node = k.numa_node
        n = cachep.node[node]
        if n is None or count <= 0:
            return []
        objs: list[int] = []
        off = cachep.obj_offset if k.debug else 0
        stats = cachep.stats
        # The kernel's objects stand in slabs of their own, or in slabs older than the trace; not in the
        # free slots of a slab grown while the trace was followed: the kernel's allocations from that
        # slab are all in the trace, and its free slots are free in the kernel too.
        # (Only when the trace shows the boot: a trace that starts later shows the model's slabs growing
        # where the kernel's allocations came from slabs it had before.)
        allowed: set[int] | None = None
        if sync and self.shows_boot:
            allowed = self.pre_trace_pages | {p.pfn for ob in self.placeholder.get(cachep, ())
                                              if (p := k.page_of(ob - off)) is not None}
        saved_explain, k.explain = k.explain, None
        saved_hook, k.event_hook = k.event_hook, None
        try:
            for _ in range(count):
                page = self._placeholder_slab(n, allowed)
                if page is None:
                    page = cache_grow_begin(cachep, cachep.allocflags | 0xCC0, node)
                    if page is None:
                        break
                    cache_grow_end(cachep, page)
                    page = self._placeholder_slab(n, allowed)
                    if page is None:
                        break
                if allowed is not None:
                    allowed.add(page.pfn)
                obj = slab_get_obj(cachep, page)
                n.free_objects -= 1
                stats.num_active += 1
                fixup_slab_list(cachep, n, page)
                objs.append(obj + off)
        finally:
            k.explain = saved_explain
            k.event_hook = saved_hook
        if objs:
            self.summary.placeholders[cachep.name] += len(objs)
        return objs

    @staticmethod
    def _placeholder_slab(n: Any, allowed: set[int] | None) -> Any:
        """A slab for a placeholder: a partial one (among ``allowed`` unless None), else a free one
        (get_first_slab's order, without its free_touched: the kernel did not take this object now)."""
        for page in n.slabs_partial:
            if allowed is None or page.pfn in allowed:
                return page
        page = n.slabs_free.lru_next
        if page is n.slabs_free:
            return None
        n.free_slabs -= 1
        return page

    def _unknown_free(self, ev: TraceEvent, cachep: KmemCache | None) -> None:
        kptr = ev.ptr
        if cachep is None:
            cachep = self.kpage_cache.get(kptr >> 12)
        if cachep is None:
            self.summary.skipped["free of unknown pointer (cache unknown)"] += 1
            return
        self.summary.unknown_frees[cachep.name] += 1
        if self.opts.unknown_free != "placeholder":
            self.summary.skipped["free of unknown pointer (ignored by policy)"] += 1
            return
        pool = self.placeholder.get(cachep)
        mptr = pool.pop() if pool else self._placeholder(cachep)
        if not mptr:
            self.summary.skipped["free of unknown pointer (no placeholder)"] += 1
            return
        self._do_free(ev, cachep, mptr)
        self.summary.applied[ev.kind_name + " (placeholder)"] += 1

    # ---- events --------------------------------------------------------------------------------------
    def _cpu(self, ev: TraceEvent, bring_up: bool = True) -> int:
        """The model's CPU for ``ev`` (one the machine lacks is remapped); on a boot along the trace, a
        CPU not up yet is brought up unless ``bring_up`` is False."""
        cpu = ev.cpu
        if cpu >= self.cpus:
            cpu %= self.cpus
            self.summary.cpu_remapped += 1
        if bring_up and self.directive_mode and cpu not in self.k.online_cpus:
            self._bring_up(cpu)
        return cpu

    def _bring_up(self, cpu: int) -> None:
        # apply the manifest's directives up to this CPU's @cpu_up (creations on the way too)
        mb = self.mb
        for i in range(mb.pos, len(mb.entries)):
            e = mb.entries[i]
            if isinstance(e, Directive) and e.what == "cpu_up" and e.arg == cpu:
                while mb.pos <= i:
                    mb.step()
                return
        self.k.cpu_up(cpu)

    def _record_alloc(self, ev: TraceEvent, mptr: int, cachep: KmemCache | None) -> None:
        kptr = ev.ptr
        old = self.kmap.get(kptr)
        if old is not None:
            # the kernel handed out a pointer we believed live: its free was not in the trace
            self.summary.internal["implicit free (pointer reused without a traced free)"] += 1
            self.summary.notes.append(f"line {ev.lineno}: {kptr:#x} reallocated without a traced free")
            oc = self.kcache.get(kptr)
            if self.internal_rev.get(old) == kptr:
                # paired with one of the model's own structures: the model keeps it
                del self.internal_rev[old]
            elif oc is not None:
                self._do_free(ev, oc, old)
        if mptr:
            self.kmap[kptr] = mptr
            if cachep is not None:
                self.kcache[kptr] = cachep
                self.kpage_cache[kptr >> 12] = cachep
        if self.ptrmap is not None:
            self.ptrmap.write(f"{self.evno},{kptr:x},{mptr:x},{ev.kind_name},{cachep.name if cachep else ''}\n")

    def _do_free(self, ev: TraceEvent, cachep: KmemCache | None, mptr: int) -> None:
        k = self.k
        if ev.kind == KMEM_CACHE_FREE and cachep is not None:
            real = k.virt_to_cache(mptr)
            if real is not cachep:
                # the trace names another cache than the one the model's object lives in: free it
                # where it lives (the kernel, hardened or not, must not see objects cross caches)
                self.summary.notes.append(f"line {ev.lineno}: kmem_cache_free({ev.name}) of an object of "
                                          f"{real.name if real else '?'} in the model")
                self.summary.internal["kmem_cache_free to another cache than the model's"] += 1
                if real is None:
                    return
                cachep = real
            kmem_cache_free(cachep, mptr)
        else:
            kfree(k, mptr)

    def _alloc(self, ev: TraceEvent) -> None:
        kind = ev.kind
        if ev.kind in (KMEM_CACHE_ALLOC_NODE, KMALLOC_NODE, KMALLOC, KMEM_CACHE_ALLOC) and ev.ptr == 0:
            self.kernel_refilled.pop(ev.cpu, None)
        site = site_function(ev.call_site)
        if kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_ALLOC_NODE):
            group = _ALLOC_SITES.get(site)
            if group == "alloc:kmem_cache" or (ev.name == "kmem_cache" and site in ("kmem_cache_create_usercopy",
                                                                                 "create_cache")):
                self.kernel_refilled.pop(ev.cpu, None)
                self.summary.applied[ev.kind_name + " (cache creation)"] += 1
                # the model's kmem_cache_create allocates its struct kmem_cache itself: on the CPU the
                # trace says, under the task's policy (an interleaving boot task takes it from the node
                # the kernel's pointer is on), so that it comes from the same array the kernel's did
                # (a CPU not up yet in the model would be brought up by applying the manifest up to its
                # @cpu_up, creations included: the creation is then left to the boot CPU)
                cpu = self._cpu(ev, bring_up=False)
                if cpu in self.k.online_cpus:
                    self.k.set_cpu(cpu)
                    if self.boot_policies:
                        self._task_policy(ev, cpu)
                else:
                    self.k.set_cpu(0)
                self._traced_creation(ev.ptr)
                return
            if group == "alloc:freelist":
                self.kernel_refilled.pop(ev.cpu, None)
                self.summary.applied[ev.kind_name + " (internal: off-slab freelist)"] += 1
                self._trace_internal(group, ev.ptr)
                return
        elif site in _ALLOC_SITES and _ALLOC_SITES[site] in ("alloc:node", "alloc:array"):
            # by call site: kmem_cache_node structures come from init_cache_node (and the boot paths);
            # setup_kmem_cache_node's own kmallocs are the shared array and the inlined alien arrays
            # (an alien array of 12 entries is 120 bytes, the size of a kmem_cache_node: not a clue)
            group = _ALLOC_SITES[site]
            self.kernel_refilled.pop(ev.cpu, None)
            self.summary.applied[ev.kind_name + " (internal)"] += 1
            self._trace_internal(group, ev.ptr)
            return
        if not ev.ptr:
            self.summary.skipped[ev.kind_name + " that failed in the kernel"] += 1
            return
        cpu = self._cpu(ev)
        k = self.k
        k.set_cpu(cpu)
        if self.boot_policies:
            self._task_policy(ev, cpu)
        refilled = self.kernel_refilled.pop(ev.cpu, 0) > 0
        if self.align_arrays and self.saw_functions:
            self._align_array(ev, cpu, refilled)
        grew = self.kernel_grew.pop(ev.cpu, 0)
        if grew and refilled:
            self._race_check(ev, cpu)
        if kind == KMALLOC:
            mptr = kmalloc(k, ev.bytes_req, ev.gfp)
            cachep = k.virt_to_cache(mptr) if mptr > 16 else None
        elif kind == KMALLOC_NODE:
            mptr = kmalloc_node(k, ev.bytes_req, ev.gfp, ev.node if ev.node < k.nr_node_ids else -1)
            cachep = k.virt_to_cache(mptr) if mptr > 16 else None
        else:
            cachep = self._cache_by_name(ev.name, ev) if ev.name else self._infer_cache(None, ev)
            if cachep is None:
                self.summary.skipped[ev.kind_name + " of an unknown cache"] += 1
                return
            if kind == KMEM_CACHE_ALLOC:
                mptr = kmem_cache_alloc(cachep, ev.gfp)
            else:
                mptr = kmem_cache_alloc_node(cachep, ev.gfp, ev.node if ev.node < k.nr_node_ids else -1)
        k.race_grow = None
        if not mptr:
            self.summary.skipped[ev.kind_name + " failed in the model"] += 1
            return
        self.summary.applied[ev.kind_name] += 1
        self._record_alloc(ev, mptr, cachep)
        if self.pending_read and site in ("seq_read_iter", "seq_read"):
            self._run_pending(ev)

    def _race_check(self, ev: TraceEvent, cpu: int) -> None:
        """The kernel grew a slab for this allocation (the function tracer showed cache_grow_begin under
        its cache_alloc_refill).  If another CPU of the node grew the same cache after this CPU's refill
        began, the two refills ran at the same time and each found the node empty: the model, which
        replays the other CPU's allocation first, must not let this one take that CPU's new slab."""
        k = self.k
        kind = ev.kind
        if kind == KMALLOC:
            cachep = k.kmalloc_slab(ev.bytes_req, ev.gfp)
        elif kind == KMEM_CACHE_ALLOC and ev.name:
            cachep = k.find_cache(ev.name)
        else:
            return  # the _node variants refill through ____cache_alloc_node, not cache_alloc_refill
        if cachep is None:
            return
        node = k.cpu_to_node[cpu]
        start = self.refill_line.get(ev.cpu, 0)
        for lineno, other, c, nd in self.recent_grows:
            if other != ev.cpu and c is cachep and nd == node and lineno > start:
                k.race_grow = cachep
                self.summary.followed["refills that raced with another CPU's grow"] += 1
                break
        self.recent_grows.append((ev.lineno, ev.cpu, cachep, node))

    def _align_array(self, ev: TraceEvent, cpu: int, refilled: bool) -> None:
        """Reconcile this CPU's array with the kernel's where the model cannot know it.

        /proc/slabinfo counts objects sitting in per-CPU arrays as active, so a sync (and the replay of
        a boot whose first part was not traced) can match the counts while the model's arrays hold
        objects that the kernel had handed out, or miss objects the kernel had in its array.  The
        function tracer tells which: ``cache_alloc_refill`` shows the kernel's array was empty.  Until
        the first refill that both see alike, an array whose model copy still holds objects when the
        kernel refills gives them to the pool of allocated objects of unknown identity (placeholders);
        an array the model finds empty when the kernel did not refill takes one object from that pool.
        After that first common refill the array is left to the model's own rules.
        """
        k = self.k
        if ev.kind == KMALLOC or ev.kind == KMALLOC_NODE:
            cachep = k.kmalloc_slab(ev.bytes_req, ev.gfp)
        else:
            cachep = k.find_cache(ev.name) if ev.name else None
        if cachep is None or not cachep.cpu_cache:
            return
        key = (cachep, cpu)
        if key in self.anchored:
            return
        ac = cachep.cpu_cache[cpu]
        pool = self.placeholder.setdefault(cachep, [])
        if refilled:
            if ac.entry:
                off = cachep.obj_offset if k.debug else 0
                pool.extend(o + off for o in ac.entry)
                self.summary.internal["array objects found allocated in the kernel"] += len(ac.entry)
                ac.entry.clear()
            if self.synced:
                self.anchored.add(key)
        elif not ac.entry and pool:
            # a CPU's array holds objects of its own node only (remote ones are freed to alien caches)
            node = k.cpu_to_node[cpu]
            mem_map = k.mem_map
            for i in range(len(pool) - 1, -1, -1):
                page = mem_map.virt_to_head_page(pool[i])
                if page is not None and page.nid == node:
                    off = cachep.obj_offset if k.debug else 0
                    ac.entry.append(pool.pop(i) - off)
                    self.summary.internal["array objects the kernel had in its array"] += 1
                    break

    def _task_policy(self, ev: TraceEvent, cpu: int) -> None:
        """numa_policy_init() gives the boot task an interleave policy over all nodes: allocations of
        pid 0 (from numa_policy_init until rest_init starts kernel_init) and of pid 1 (which inherits it
        at fork, until kernel_init calls numa_default_policy() before exec'ing /init) alternate nodes
        through alternate_node_alloc().  Other tasks have the default (local) policy."""
        from ..mm.kernel import MemPolicy  # noqa: PLC0415
        k = self.k
        pid = ev.pid
        pol = None
        if pid == 0 and self.pid0_policy is None and not self.pid1_seen and k.find_cache("numa_policy") is not None:
            self.pid0_policy = MemPolicy("interleave", tuple(k.online_nodes), 0)
        if pid == 1 and not self.pid1_seen:
            self.pid1_seen = True
            src = self.pid0_policy
            self.pid1_policy = MemPolicy("interleave", tuple(k.online_nodes), src.il_prev if src else 0)
            self.pid0_policy = None
        if pid == 0:
            pol = self.pid0_policy
        elif pid == 1:
            if self.pid1_policy is not None and site_function(ev.call_site) == "alloc_bprm":
                # exec'ing /init: kernel_init() called numa_default_policy() just before.  (The comm
                # printed with each line is the task's last name, so it cannot tell when exec happened.)
                self.pid1_policy = None
                self.boot_policies = False
                k.policies.clear()
            pol = self.pid1_policy
        if pol is None:
            k.policies.pop(cpu, None)
        else:
            k.policies[cpu] = pol
            # The interleave rotor also turns for allocations the trace does not show (interrupt
            # context does not use it; some boot allocations have no event), so take its phase from
            # the node the kernel's object came from, which the traced pointer tells.
            kn = self._kernel_node(ev.ptr)
            if kn >= 0 and ev.kind in (KMALLOC, KMEM_CACHE_ALLOC):
                nodes = sorted(pol.nodes)
                if kn in nodes:
                    pol.il_prev = nodes[nodes.index(kn) - 1]

    def _kernel_node(self, ptr: int) -> int:
        """The node of a traced kernel object, from the machine's physical layout (-1 if outside it)."""
        pfn = (ptr - 0xFFFF888000000000) >> 12
        for start, end, nid in self.node_ranges:
            if start <= pfn < end:
                return nid
        return -1

    def _free(self, ev: TraceEvent) -> None:
        site = site_function(ev.call_site)
        kind = ev.kind
        if kind == KFREE and site in _FREE_SITES and _FREE_SITES[site] == "free:array":
            self.summary.applied["kfree (internal)"] += 1
            self._trace_internal("free:array", ev.ptr)
            return
        if kind == KMEM_CACHE_FREE and site in _FREE_SITES and _FREE_SITES[site] in ("free:freelist",
                                                                                     "free:kmem_cache"):
            self.summary.applied["kmem_cache_free (internal)"] += 1
            self._trace_internal(_FREE_SITES[site], ev.ptr)
            return
        kptr = ev.ptr
        if kptr <= 16:
            self.summary.applied[ev.kind_name + " of NULL/ZERO_SIZE_PTR (nothing to do)"] += 1
            return
        cpu = self._cpu(ev)
        self.k.set_cpu(cpu)
        mptr = self.kmap.get(kptr)
        if mptr is not None and self.internal_rev.get(mptr) == kptr:
            # the kernel pointer stands for one of the model's own structures (paired with an internal
            # allocation): an ordinary free of it in the trace must not free the model's structure
            self.summary.skipped[ev.kind_name + " of a pointer paired with a model structure"] += 1
            return
        mptr = self.kmap.pop(kptr, None)
        cachep = self.kcache.pop(kptr, None)
        if kind == KMEM_CACHE_FREE and ev.name:
            named = self.k.find_cache(ev.name)
            if named is not None:
                cachep = named
        if mptr is None:
            self._unknown_free(ev, cachep)
            return
        self._do_free(ev, cachep, mptr)
        self.summary.applied[ev.kind_name] += 1

    def _func(self, ev: TraceEvent) -> None:
        fn = ev.text
        parent = ev.parent
        k = self.k
        self.saw_functions = True
        if fn == "cache_alloc_refill":
            self.kernel_refilled[ev.cpu] = 1
            self.refill_line[ev.cpu] = ev.lineno
            self.kernel_grew.pop(ev.cpu, None)
        elif fn == "cache_grow_begin" and parent == "cache_alloc_refill":
            self.kernel_grew[ev.cpu] = ev.lineno
        elif fn == "cache_reap":
            self.reap_count[ev.cpu] += 1
            watch = self.reap_drains.pop(ev.lineno, None)
            drains = watch.drains if watch is not None else None
            if not self.traced_drain_array:
                drains = None  # the function tracer does not show drain_array: the runs are not known
            cpu = self._cpu(ev)
            forced = self._freelist_evidence(cpu, watch) if drains else []
            self._clock_from_reap(ev, cpu, drains, forced)
            if drains and watch is not None and self.align_passes and cpu == ev.cpu:
                # (on a smaller machine than the trace's, the CPU's arrays are not the kernel's CPU's)
                self._passes_from_drains(cpu, watch)
            if self.opts.reap == "trace":
                if drains == 0:
                    # the kernel's mutex_trylock(&slab_mutex) failed: that run visited no cache
                    self.summary.applied["cache_reap (gave up: slab_mutex busy)"] += 1
                    return
                self._run_reap(cpu, drains)
                self.summary.reaps += 1
                self.summary.applied["cache_reap"] += 1
                return
        elif fn == "enable_cpucache" and parent == "kmem_cache_init_late":
            if self.directive_mode and not k.init_late_done:
                self._run_directive("init_late", -1)
                self.summary.applied["kmem_cache_init_late"] += 1
                return
        elif fn == "setup_kmem_cache_node" and parent == "cpuup_prepare":
            if self.directive_mode:
                # the next @cpu_up of the manifest is being prepared now
                mb = self.mb
                for i in range(mb.pos, len(mb.entries)):
                    e = mb.entries[i]
                    if isinstance(e, Directive) and e.what == "cpu_up":
                        if e.arg not in k.online_cpus:
                            while mb.pos <= i:
                                mb.step()
                            self.summary.applied["cpuup_prepare"] += 1
                            return
                        break
        elif fn == "kmem_cache_shrink":
            names = KNOWN_SHRINK_CALLERS.get(parent)
            if names:
                i = self.shrink_rotor[parent]
                self.shrink_rotor[parent] += 1
                c = k.find_cache(names[i % len(names)])
                if c is not None:
                    k.kmem_cache_shrink(c, cpu=self._cpu(ev))
                    self.summary.applied["kmem_cache_shrink"] += 1
                    return
        self.summary.skipped["function trace line (informational)"] += 1

    def _run_directive(self, what: str, arg: int) -> None:
        mb = self.mb
        for i in range(mb.pos, len(mb.entries)):
            e = mb.entries[i]
            if isinstance(e, Directive) and e.what == what and (arg < 0 or e.arg == arg):
                while mb.pos <= i:
                    mb.step()
                return
        if what == "init_late":
            self.k.init_late()

    # ---- time ----------------------------------------------------------------------------------------
    def _clock(self, ev: TraceEvent) -> None:
        if self.clock == "seconds":
            j = int(ev.ts * self.hz)
            if j > self.k.jiffies:
                self.k.advance(j, run_timers=self.opts.reap == "timer")

    def _freelist_evidence(self, cpu: int, watch: ReapWatch | None) -> list[Any]:
        """Node structures whose reap timer had expired in the kernel's run, as drain_freelist showed.

        drain_freelist() runs only in a cache's node-level part, so a page it gave back names a cache
        that passed.  Where the model's timer for that node says otherwise (its first timer comes from
        the cache's address and creation time, which a trace does not always give), the model's is
        wrong: it is made to expire now."""
        if watch is None or not watch.freelist_pfns:
            return []
        k = self.k
        node = k.cpu_to_node[cpu]
        out = []
        for pfn in watch.freelist_pfns:
            c = self.kpage_cache.get((PAGE_OFFSET >> PAGE_SHIFT) + pfn)
            n = c.node[node] if c is not None and node < len(c.node) else None
            if n is not None and n not in out:
                out.append(n)
        return out

    def _clock_from_reap(self, ev: TraceEvent, cpu: int, drains: int | None, forced: list[Any] | None = None) -> None:
        """A trace without time in it (counter clock): estimate jiffies at a cache_reap run.

        Each CPU's reap work runs every 2 s after a first run at ~1 s (as Kernel.start_cpu_timer arms
        it); that estimate drifts where the work ran late (it is a deferrable timer: an idle CPU runs
        it when it next wakes).  When the function tracer showed the run, its count of ``drain_array``
        calls gives the number of caches whose node timer had expired, which bounds jiffies (see
        reapwatch.pick_jiffies); the estimate is then only the tie-breaker.
        """
        k = self.k
        forced = forced or []
        if self.clock != "counter":
            if drains and self.early_timers:
                self._early_timers_lag(ev, cpu, drains, forced)
            self._force_timers(forced, k.jiffies)
            return
        n = self.reap_count[ev.cpu]
        j = k.first_reap_delay(ev.cpu) + (n - 1) * 2 * self.hz
        if drains:
            node = k.cpu_to_node[cpu]
            timers = [nd.next_reap for c in k.slab_caches if (nd := c.node[node]) is not None and nd not in forced]
            passes = drains - len(k.slab_caches) - len(forced)
            j, exact = pick_jiffies(timers, passes, k.jiffies, j, k.reap_grid(cpu))
            if not exact:
                self.summary.followed["clock: no jiffies gives the trace's node passes (nearest taken)"] += 1
        if j > k.jiffies:
            k.advance(j, run_timers=False)
        self._force_timers(forced, k.jiffies)

    def _early_timers_lag(self, ev: TraceEvent, cpu: int, drains: int, forced: list[Any]) -> None:
        """On a trace with time in it, place the node timers of the caches created before its first
        event.  The kernel created them at kmem_cache_init, when jiffies still stood at its start, but
        jiffies may have started counting seconds after the clock of the trace did (an emulated early
        boot can be that slow), and the model, which knows only the trace's clock, sets them as if
        jiffies had started with it.  While none of them has expired yet, a reap run with fewer node
        passes than the model's says they were set later: by whole seconds, since the reap runs keep
        the phase of whole seconds of jiffies.  The smallest such delay that gives the run's count is
        taken, once."""
        k = self.k
        node = k.cpu_to_node[cpu]
        jiffies = k.jiffies
        early = [(nd, t) for nd, t in self.early_timers if nd.nid == node and nd not in forced]
        if any(nd.next_reap != t for nd, t in early):
            self.early_timers = []  # one of them has expired and been reset: too late to move them
            return
        timers = [nd.next_reap for c in k.slab_caches if (nd := c.node[node]) is not None and nd not in forced]
        passes = drains - len(k.slab_caches) - len(forced)
        now = sum(1 for t in timers if t <= jiffies)
        if passes >= now:
            return
        later = {id(nd) for nd, _ in early}
        others = [nd.next_reap for c in k.slab_caches
                  if (nd := c.node[node]) is not None and nd not in forced and id(nd) not in later]
        hz = self.hz
        expired = sum(1 for t in others if t <= jiffies)  # the timers that are not moved
        for lag in range(hz, jiffies + hz, hz):
            n = expired + sum(1 for _, t in early if t + lag <= jiffies)
            if n == passes:
                for nd, t in self.early_timers:
                    nd.next_reap = t + lag
                self.early_timers = []
                self.summary.notes.append(f"line {ev.lineno}: the node timers of the caches created before the "
                                          f"trace began put {lag} ticks later (jiffies started after the "
                                          f"trace's clock), so that this cache_reap run's node passes fit")
                self.summary.followed["early node timers put later (jiffies started after the trace clock)"] += 1
                return

    def _passes_from_drains(self, cpu: int, watch: ReapWatch) -> None:
        """Set the model's node timers so that the caches pass where the kernel's run shows they did
        (see reapwatch.place_passes); a timer the kernel's run did not find expired expires at the next."""
        k = self.k
        node = k.cpu_to_node[cpu]
        j = k.jiffies
        nodes = []
        caches = []
        for c in k.slab_caches:
            n = c.node[node] if node < len(c.node) else None
            if n is None:
                return
            ac = c.cpu_cache[cpu]
            sh = n.shared
            own = bool(ac.entry) and not ac.touched
            shared = sh is not None and bool(sh.entry) and not sh.touched
            # drain_freelist gives back a page when the node has a free slab (after the array drains just
            # before) and took none from its free list since the last reap (free_touched)
            freeing = not n.free_touched and self._free_slab_after_drains(c, n, cpu, own, shared)
            caches.append(NodeAtReap(own, shared, n.next_reap - j, freeing))
            nodes.append(n)
        plan = place_passes(caches, watch.drained if self.traced_drain_locked else None,
                            watch.freelist_after if self.traced_freepages else None, watch.drains)
        if plan is None:
            return
        moved = 0
        for n, passed in zip(nodes, plan, strict=True):
            if passed and n.next_reap > j:
                n.next_reap = j
                moved += 1
            elif not passed and n.next_reap <= j:
                n.next_reap = j + 1
                moved += 1
        if moved:
            self.summary.followed["node timers set from the outcome of each drain_array"] += moved

    def _free_slab_after_drains(self, c: KmemCache, n: Any, cpu: int, own: bool, shared: bool) -> bool:
        """Whether ``n`` has a free slab after cache_reap drains the CPU's array (``own``) and the
        shared one (``shared``): drain_array_locked's count of the oldest objects, as free_block
        gives them back and then trims the free slabs beyond free_limit; nothing is changed."""
        free_slabs: int = n.free_slabs
        if not own and not shared:
            return free_slabs > 0
        free_objects: int = n.free_objects
        page_of = self.k.page_of
        taken: dict[int, int] = {}
        for ac, drains in ((c.cpu_cache[cpu], own), (n.shared, shared)):
            if not drains or ac is None:
                continue
            tofree = drain_array_tofree(ac, False)
            free_objects += tofree
            for obj in ac.entry[:tofree]:
                page = page_of(obj)
                if page is None:
                    continue
                left = taken.get(page.pfn, page.active) - 1
                taken[page.pfn] = left
                if left == 0:
                    free_slabs += 1
            while free_objects > n.free_limit and free_slabs > 0:
                free_objects -= c.num
                free_slabs -= 1
        return free_slabs > 0

    def _force_timers(self, forced: list[Any], jiffies: int) -> None:
        for nd in forced:
            if nd.next_reap > jiffies:
                nd.next_reap = jiffies
                self.summary.followed["node timers expired as drain_freelist showed"] += 1

    def _run_reap(self, cpu: int, drains: int | None) -> None:
        """Run the model's cache_reap on ``cpu`` and compare its node passes with the kernel's."""
        k = self.k
        if drains is None:
            k.run_cache_reap(cpu)
            return
        node = k.cpu_to_node[cpu]
        before = [(n, n.next_reap) for c in k.slab_caches if (n := c.node[node]) is not None]
        caches = len(k.slab_caches)
        k.run_cache_reap(cpu)
        passes = sum(1 for n, t in before if n.next_reap != t)
        if caches + passes == drains:
            self.summary.followed["node passes equal to the trace's"] += 1
        else:
            self.summary.followed["node passes differ from the trace's"] += 1

    # ---- markers -------------------------------------------------------------------------------------
    def _mark(self, ev: TraceEvent) -> None:
        """Markers: sync, actions, snapshots.

        /proc/slabinfo shows the allocator as it was when the reader's read(2) generated the text:
        ``seq_read_iter`` allocates its buffer, then calls the show functions.  A marker written just
        before a reader starts (``snapshot X begin``) therefore asks for the state at that reader's
        buffer allocation; the sync and the snapshot wait for it, and happen at the next marker if no
        read comes first.
        """
        text = ev.text
        handled = False
        if self.pending_read:
            self._run_pending(ev)
        for rx, act in self.action_res:
            m = rx.search(text)
            if m:
                try:
                    expanded = m.expand(act)
                except (re.error, IndexError) as e:
                    raise ReplayError(f"line {ev.lineno}: --action {rx.pattern}=>{act}: {e}") from None
                if self.early_action == (ev.lineno, expanded):
                    self.early_action = None  # already run where the kernel's slabinfo_write ran
                else:
                    self.action(expanded, ev)
                handled = True
        if self.sync_re is not None and not self.synced and self.sync_re.search(text):
            self.pending_read.append(("sync", "", ev))
            handled = True
        if self.snap_re is not None:
            m = self.snap_re.search(text)
            if m:
                label = m.group(1) if m.groups() else str(len(self.summary.snapshots))
                self.pending_read.append(("snapshot", label, ev))
                handled = True
        self.summary.applied["marker (acted on)" if handled else "marker"] += 1

    def _run_pending(self, ev: TraceEvent) -> None:
        todo, self.pending_read = self.pending_read, []
        for what, label, mark in todo:
            if what == "sync":
                self.sync(mark)
            else:
                self.snapshot(label, mark)

    def snapshot(self, label: str, ev: TraceEvent | None = None) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
        self.summary.snapshots.append(safe)
        if self.opts.out:
            Path(self.opts.out, f"slabinfo.{safe}").write_text(self.k.slabinfo())
            Path(self.opts.out, f"buddyinfo.{safe}").write_text(self.k.buddyinfo())

    def action(self, text: str, ev: TraceEvent | None = None) -> None:
        """Run an administrative action: ``slabinfo-write LINE``, ``shrink CACHE``, ``reap [CPU]``,
        ``drop-caches``, ``snapshot LABEL``."""
        where = f"line {ev.lineno}" if ev is not None else "action"
        verb, _, arg = text.strip().partition(" ")
        k = self.k
        cpu = k.cpu
        if verb == "slabinfo-write":
            res = k.slabinfo_write(arg.strip() + "\n", cpu=cpu)
            self.summary.actions.append(f"{where}: slabinfo-write {arg.strip()!r} -> {res}")
        elif verb == "shrink":
            c = k.find_cache(arg.strip())
            if c is None:
                raise ReplayError(f"{where}: action 'shrink {arg.strip()}': no such cache")
            k.kmem_cache_shrink(c, cpu=cpu)
            self.summary.actions.append(f"{where}: shrink {c.name}")
        elif verb == "reap":
            target = int(arg) if arg.strip() else cpu
            k.run_cache_reap(target)
            self.summary.actions.append(f"{where}: reap on CPU {target}")
        elif verb == "drop-caches":
            for c in list(k.slab_caches):
                k.kmem_cache_shrink(c, cpu=cpu)
            self.summary.actions.append(f"{where}: drop-caches (every cache shrunk)")
        elif verb == "snapshot":
            self.snapshot(arg.strip() or "action", ev)
        else:
            raise ReplayError(f"{where}: unknown action {verb!r} (slabinfo-write, shrink, reap, drop-caches, snapshot)")

    def sync(self, ev: TraceEvent | None = None) -> None:
        """Make the model agree with a real /proc/slabinfo: missing objects become placeholders,
        missing slabs are grown empty, surplus empty slabs are released."""
        self.synced = True
        path = self.opts.start_slabinfo
        if not path:
            return
        from .slabinfo_parse import parse_slabinfo  # noqa: PLC0415
        try:
            real = parse_slabinfo(Path(path).read_text())
        except OSError as e:
            raise ReplayError(f"{path}: cannot read: {e.strerror}") from None
        k = self.k
        report: dict[str, Any] = {"caches": 0, "placeholders": 0, "slabs_grown": 0, "slabs_released": 0,
                                  "surplus_objects": 0, "unknown_caches": []}
        from ..mm.slabinfo import get_slabinfo  # noqa: PLC0415
        for name, row in real.items():
            c = k.find_cache(name)
            if c is None:
                report["unknown_caches"].append(name)
                continue
            report["caches"] += 1
            pool = self.placeholder.setdefault(c, [])
            # /proc/slabinfo gives the shared arrays' fill (sharedavail): match it first
            mine = get_slabinfo(c)
            if "sharedavail" in row and mine.sharedavail != row["sharedavail"]:
                report["shared_adjusted"] = report.get("shared_adjusted", 0) + abs(
                    self._match_shared(c, pool, row["sharedavail"] - mine.sharedavail))
            mine = get_slabinfo(c)
            deficit = row["active_objs"] - mine.active_objs
            made = self._placeholders(c, deficit, sync=True)
            pool.extend(made)
            report["placeholders"] += len(made)
            if deficit < 0 and pool:
                # objects of unknown identity (see _align_array) that the kernel does not count: free them
                release = min(-deficit, len(pool))
                self._release_pool(c, pool, release)
                report["pool_released"] = report.get("pool_released", 0) + release
                deficit += release
            if deficit < 0:
                # more objects sit in the model's per-CPU arrays than the kernel counts as active: the
                # kernel had given them back to their slabs; free the oldest entries, CPU by CPU
                released = self._drain_cpu_arrays(c, -deficit)
                report["array_objects_freed"] = report.get("array_objects_freed", 0) + released
                deficit += released
            if deficit < 0:
                report["surplus_objects"] += -deficit
            mine = get_slabinfo(c)
            extra = row["num_slabs"] - mine.num_slabs
            node = c.node[k.numa_node]
            if node is None:
                continue
            while extra > 0:
                page = cache_grow_begin(c, c.allocflags | 0xCC0, k.numa_node)
                if page is None:
                    break
                cache_grow_end(c, page)
                extra -= 1
                report["slabs_grown"] += 1
            # surplus slabs may be on any node: the local one first, then the others
            others = [n for n in c.node if n is not None and n is not node]
            for n in [node, *others]:
                if extra < 0:
                    released = drain_freelist(c, n, -extra)
                    report["slabs_released"] += released
                    extra += released
            for n in [node, *others]:
                if extra < 0:
                    # the counts agree but the model spreads its objects over more slabs: re-pack the
                    # objects it knows only as kernel pointers (their slab in the kernel is unknown)
                    packed = self._repack(c, n, -extra)
                    report["slabs_repacked"] = report.get("slabs_repacked", 0) + packed
                    extra += packed
        self.summary.sync = report

    def _repack(self, cachep: KmemCache, n: Any, want: int) -> int:
        """Empty up to ``want`` of the emptiest partial slabs by moving their allocated objects (mapped
        kernel pointers and pool objects, never array objects) into free slots of fuller slabs, then
        release the emptied slabs.  Returns the number of slabs released."""
        from ..mm.slab.grow import slabs_destroy  # noqa: PLC0415
        from ..mm.slab.node import free_block  # noqa: PLC0415
        k = self.k
        off = cachep.obj_offset if k.debug else 0
        in_arrays = {o for ac in cachep.cpu_cache for o in ac.entry}
        for nn in cachep.node:
            if nn is not None and nn.shared is not None:
                in_arrays.update(nn.shared.entry)
            for a in (nn.alien or ()) if nn is not None else ():
                if a is not None:
                    in_arrays.update(a.entry)
        owner: dict[int, int] = {m - off: kp for kp, m in self.kmap.items() if self.kcache.get(kp) is cachep}
        pool = self.placeholder.setdefault(cachep, [])
        pooled = {p - off for p in pool}
        partial = sorted(n.slabs_partial, key=lambda pg: pg.active)
        released = 0
        for donor in partial:
            if released >= want:
                break
            fl = donor.fl
            free_idx = set(fl[donor.active:cachep.num])
            objs = [donor.s_mem + i * cachep.size for i in range(cachep.num) if i not in free_idx]
            if any(o in in_arrays or (o not in owner and o not in pooled) for o in objs):
                continue
            room = sum(cachep.num - pg.active for pg in n.slabs_partial if pg is not donor)
            if room < len(objs):
                break
            for o in objs:
                target = next(pg for pg in n.slabs_partial if pg is not donor and pg.active < cachep.num)
                new = slab_get_obj(cachep, target)
                n.free_objects -= 1
                fixup_slab_list(cachep, n, target)
                if o in owner:
                    kp = owner.pop(o)
                    self.kmap[kp] = new + off
                    owner[new] = kp
                else:
                    pool[pool.index(o + off)] = new + off
                    pooled.discard(o)
                    pooled.add(new)
                lst: list[Any] = []
                free_block(cachep, [o], 1, donor.nid, lst)
                cachep.stats.num_active += 1  # a move, not a free
                slabs_destroy(cachep, lst)
            if donor.active == 0 and donor.on_list is n.slabs_free:
                list_del(donor)
                n.free_slabs -= 1
                n.total_slabs -= 1
                n.free_objects -= cachep.num
                from ..mm.slab.grow import slab_destroy  # noqa: PLC0415
                slab_destroy(cachep, donor)
                released += 1
            elif donor.on_list is None:
                released += 1  # free_block already trimmed it
        return released

    def _match_shared(self, cachep: KmemCache, pool: list[int], delta: int) -> int:
        """Grow (delta > 0, with pool objects of the array's node) or shrink (delta < 0, oldest entries
        back to their slabs) the shared arrays by ``delta`` objects in all; returns the change made."""
        from ..mm.slab.grow import slabs_destroy  # noqa: PLC0415
        from ..mm.slab.node import free_block  # noqa: PLC0415
        k = self.k
        off = cachep.obj_offset if k.debug else 0
        done = 0
        nodes = [n for n in cachep.node if n is not None and n.shared is not None]
        if delta < 0:
            for n in sorted(nodes, key=lambda n: -len(n.shared.entry)):  # type: ignore[union-attr]
                sh = n.shared
                assert sh is not None
                take = min(-delta - done, len(sh.entry))
                if take > 0:
                    lst: list[Any] = []
                    free_block(cachep, sh.entry, take, n.nid, lst)
                    del sh.entry[:take]
                    slabs_destroy(cachep, lst)
                    done += take
            return -done
        for n in nodes:
            sh = n.shared
            assert sh is not None
            i = len(pool) - 1
            while done < delta and i >= 0 and len(sh.entry) < sh.limit:
                page = k.page_of(pool[i] - off)
                if page is not None and page.nid == n.nid:
                    sh.entry.insert(0, pool.pop(i) - off)
                    done += 1
                i -= 1
        return done

    def _drain_cpu_arrays(self, cachep: KmemCache, count: int) -> int:
        """Give back up to ``count`` of the oldest per-CPU array objects to their slabs."""
        from ..mm.slab.grow import slabs_destroy  # noqa: PLC0415
        from ..mm.slab.node import free_block  # noqa: PLC0415
        k = self.k
        done = 0
        for cpu, ac in sorted(enumerate(cachep.cpu_cache), key=lambda x: -len(x[1].entry)):
            take = min(count - done, len(ac.entry))
            if take <= 0:
                continue
            lst: list[Any] = []
            free_block(cachep, ac.entry, take, k.cpu_to_node[cpu], lst)
            del ac.entry[:take]
            slabs_destroy(cachep, lst)
            done += take
        return done

    def _release_pool(self, cachep: KmemCache, pool: list[int], count: int) -> None:
        """Give ``count`` pool objects back to their slabs (straight to the node, as free_block does)."""
        from ..mm.slab.grow import slabs_destroy  # noqa: PLC0415
        from ..mm.slab.node import free_block  # noqa: PLC0415
        k = self.k
        off = cachep.obj_offset if k.debug else 0
        by_node: dict[int, list[int]] = {}
        for _ in range(count):
            obj = pool.pop() - off
            page = k.page_of(obj)
            by_node.setdefault(page.nid if page is not None else k.numa_node, []).append(obj)
        for nid, objs in by_node.items():
            lst: list[Any] = []
            free_block(cachep, objs, len(objs), nid, lst)
            slabs_destroy(cachep, lst)

    def check(self) -> None:
        """The machine's invariants, plus the replay's own: every pool object is allocated in its
        slab, sits in no array, appears once, and stands for no mapped kernel pointer."""
        from ..mm.errors import SlabCorruptionError  # noqa: PLC0415
        self.k.check()
        mapped = set(self.kmap.values())
        for c, pool in self.placeholder.items():
            off = c.obj_offset if self.k.debug else 0
            seen: set[int] = set()
            in_arrays = {o for ac in c.cpu_cache for o in ac.entry}
            for n in c.node:
                if n is not None:
                    if n.shared is not None:
                        in_arrays.update(n.shared.entry)
                    for a in n.alien or ():
                        if a is not None:
                            in_arrays.update(a.entry)
            for p in pool:
                obj = p - off
                if p in seen:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} twice")
                seen.add(p)
                if obj in in_arrays:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is also in an array")
                if p in mapped:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is also mapped to a kernel pointer")
                page = self.k.page_of(obj)
                if page is None or page.slab_cache is not c or page.fl is None:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is not in a slab of its cache")
                idx = (obj - page.s_mem) // c.size
                if idx in page.fl[page.active:c.num]:
                    raise SlabCorruptionError(f"{c.name}: pool object {p:#x} is free in its slab")

    # ---- the loop ------------------------------------------------------------------------------------
    def start_boot(self, head: list[TraceEvent]) -> None:
        """Decide how the machine boots: along the trace when the trace shows the boot (the manifest's
        directives are then placed where the trace shows them), else completely before the first event."""
        if self.booted:
            return
        self.booted = True
        shows_boot = any(
            (ev.kind == FUNC and ev.parent == "kmem_cache_init_late")
            or (ev.kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_ALLOC_NODE) and ev.name == "kmem_cache"
                and site_function(ev.call_site) in ("kmem_cache_create_usercopy", "create_cache"))
            for ev in head)
        self.shows_boot = shows_boot
        self.directive_mode = self.mb.has_directives and shows_boot
        self.boot_policies = shows_boot and self.k.numa_multi
        if not self.directive_mode:
            self.k.boot_complete()
            self.mb.run_all()
        if shows_boot:
            self.early_timers = [(n, n.next_reap) for c in self.k.slab_caches for n in c.node if n is not None]
            self.pre_trace_pages = {page.pfn for c in self.k.slab_caches for n in c.node if n is not None
                                    for lst in (n.slabs_full, n.slabs_partial, n.slabs_free) for page in lst}

    # A /proc/slabinfo write is seen twice: the function tracer's slabinfo_write line when the kernel
    # tunes the cache, and later the marker that an --action turns into the model's write.  Events in
    # between are held back (at most HOLD_LIMIT) so the model's write can happen where the kernel's did.
    HOLD_LIMIT = 20_000

    # ---- interrupts between an allocation and its event ----------------------------------------------
    # kmem_cache_alloc() and kmalloc() emit their event after local_irq_restore(): an interrupt (and the
    # softirqs run on its way out) can come between the allocation and its line, so the trace shows
    # the interrupt's events first although the allocation was done before them.  Two things tell:
    # the function tracer's cache_alloc_refill before the interrupt (see _feed_in_order), and, for an
    # allocation the CPU's array satisfied, the object it returned: an array hands out its newest
    # object, so when the interrupt freed objects of the cache onto this CPU's array and the
    # allocation's object is not the last of them, the allocation came first, and the replay moves it
    # before the interrupt's first event of that cache.  To see the allocation, the events from an
    # interrupt's first line until the interrupted task's next line are held back (at most
    # IRQ_WINDOW_LIMIT; a trace without the irq-info column has no interrupt lines and holds nothing).
    IRQ_WINDOW_LIMIT = 4096

    def _event_cache(self, ev: TraceEvent) -> KmemCache | None:
        """The model's cache of an allocation or free of the trace, when the event or the pointer tells."""
        k = self.k
        kind = ev.kind
        if kind == KMALLOC:
            return k.kmalloc_slab(ev.bytes_req, ev.gfp)
        if kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_FREE) and ev.name:
            return k.find_cache(ev.name)
        if kind in (KFREE, KMEM_CACHE_FREE):
            return self.kcache.get(ev.ptr)
        return None

    def feed(self, ev: TraceEvent) -> None:
        """Replay one event (subclasses see each event once here, in the trace's order)."""
        kind = ev.kind
        cpu = ev.cpu
        if (kind <= KMEM_CACHE_FREE and not ev.irq and self.flush_race is None and cpu not in self.flush_open
                and cpu not in self.refill_seen and not self.irq_buf and self.irq_hold is None
                and not self.reap_watches and self.held is None and cpu not in self.refill_open):
            # nothing is held back and the event starts no hold: what the ordering stages
            # (_feed_flush_order, _feed_irq, _feed_in_order, _feed_ordered, _feed_held) come down to
            self.task_pid[cpu] = ev.pid
            if self.fast_path and (self._alloc_fast(ev) if kind <= KMEM_CACHE_ALLOC_NODE else self._free_fast(ev)):
                return
            self._feed(ev)
            return
        self._feed_flush_order(ev)

    # A free's event is written after the free, and its function-tracer lines come before it: the
    # cache_flusharray line says when the free moved a batch of its CPU's array to the node (the
    # node's shared array, or free_block to the slabs), under the node's list_lock.  A refill on
    # another CPU of the node takes from the same shared array and slabs under that lock.  When the
    # refill's cache_alloc_refill line comes after a flush line whose free event has not come yet,
    # the flush went first; if the allocation's event is nevertheless written before the free's,
    # and the free is of the allocation's cache, the free is replayed first.  The events from the
    # allocation's on are held back until the flushing CPU's next event (at most FLUSH_RACE_LIMIT).
    FLUSH_RACE_LIMIT = 256

    def _feed_flush_order(self, ev: TraceEvent) -> None:
        race = self.flush_race
        if race is not None:
            cpu, alloc, held = race
            if ev.cpu != cpu or ev.kind > KMEM_CACHE_FREE:
                held.append(ev)
                if len(held) > self.FLUSH_RACE_LIMIT:
                    self._release_flush_race()
                return
            self.flush_race = None
            self.flush_open.pop(cpu, None)
            cachep = self._event_cache(ev) if ev.kind >= KFREE else None
            if cachep is not None and cachep is self._event_cache(alloc):
                self.summary.followed["frees whose flush came before another CPU's refill"] += 1
                self._feed_flush_order(ev)
                for e in held:
                    self._feed_flush_order(e)
            else:
                for e in held:
                    self._feed_flush_order(e)
                self._feed_flush_order(ev)
            return
        kind = ev.kind
        if kind == FUNC:
            text = ev.text
            if text == "cache_flusharray":
                self.flush_open[ev.cpu] = ev.lineno
            elif text == "cache_alloc_refill":
                self.refill_seen[ev.cpu] = ev.lineno
        elif kind <= KMEM_CACHE_FREE:
            opened = self.flush_open
            if opened:
                opened.pop(ev.cpu, None)
            if kind <= KMEM_CACHE_ALLOC_NODE and self.refill_seen:
                line = self.refill_seen.pop(ev.cpu, None)
                if line is not None and opened and kind in (KMALLOC, KMEM_CACHE_ALLOC):
                    to_node = self.k.cpu_to_node
                    node = to_node[ev.cpu % self.cpus]
                    for cpu, fline in opened.items():
                        if fline < line and to_node[cpu % self.cpus] == node:
                            self.flush_race = (cpu, ev, [ev])
                            return
        self._feed_irq(ev)

    def _release_flush_race(self) -> None:
        """Replay the events held back for a free whose event did not come, in their order (they may
        start another such hold)."""
        assert self.flush_race is not None
        cpu, _, held = self.flush_race
        self.flush_race = None
        self.flush_open.pop(cpu, None)
        for e in held:
            self._feed_flush_order(e)

    def _feed_irq(self, ev: TraceEvent) -> None:
        kind = ev.kind
        if (kind <= KMEM_CACHE_FREE and not ev.irq and not self.irq_buf and self.irq_hold is None
                and not self.reap_watches and self.held is None and ev.cpu not in self.refill_open):
            # nothing is held back and the event starts no hold: what the stages below would do
            # (_feed_in_order, _feed_ordered, _feed_held) comes down to this
            self.task_pid[ev.cpu] = ev.pid
            if self.fast_path and (self._alloc_fast(ev) if kind <= KMEM_CACHE_ALLOC_NODE else self._free_fast(ev)):
                return
            self._feed(ev)
            return
        buf = self.irq_buf
        if kind >= MM_PAGE_ALLOC:  # page allocator events, markers, function-tracer lines
            if buf:
                buf.append(ev)
            else:
                self._feed_in_order(ev)
            return
        cpu = ev.cpu
        windows = self.irq_windows
        if ev.irq:
            if cpu not in windows and self.task_pid.get(cpu) == ev.pid:
                windows[cpu] = len(buf)
            if buf or cpu in windows:
                buf.append(ev)
                if len(buf) > self.IRQ_WINDOW_LIMIT:
                    self._release_irq_buf()
            else:
                self._feed_in_order(ev)
            return
        self.task_pid[cpu] = ev.pid
        start = windows.pop(cpu, None)
        if start is not None and kind in (KMALLOC, KMEM_CACHE_ALLOC) and ev.ptr:
            at = self._alloc_before_irq(ev, buf, start)
            if at is not None:
                buf.insert(at, ev)
                self.summary.followed["allocations done before an interrupt whose events came first"] += 1
                if not windows:
                    self._release_irq_buf()
                return
        if buf:
            buf.append(ev)
            if not windows:
                self._release_irq_buf()
        else:
            self._feed_in_order(ev)

    def _alloc_before_irq(self, ev: TraceEvent, buf: list[TraceEvent], start: int) -> int | None:
        """Where in ``buf`` the task's allocation ``ev`` was really done (None: where it is)."""
        cachep = self._event_cache(ev)
        if cachep is None:
            return None
        cpu = ev.cpu
        node = self.k.cpu_to_node[cpu % self.cpus]
        first = None
        last_free = None
        freed: set[int] = set()
        for i in range(start, len(buf)):
            e = buf[i]
            if e.cpu != cpu or e.kind > KMEM_CACHE_FREE or not e.irq:
                continue
            if self._event_cache(e) is not cachep:
                continue
            if first is None:
                first = i
            if e.kind >= KFREE:
                if self.k.numa_multi and self._kernel_node(e.ptr) != node:
                    continue  # a remote object goes to an alien cache, not to this CPU's array
                last_free = e.ptr
                freed.add(e.ptr)
            else:
                last_free = None
        if first is None or last_free is None or ev.ptr in freed:
            return None
        return first

    def _release_irq_buf(self) -> None:
        """Replay the events held back for interrupts, in their (corrected) order."""
        buf, self.irq_buf = self.irq_buf, []
        self.irq_windows.clear()
        for e in buf:
            self._feed_in_order(e)

    def _feed_in_order(self, ev: TraceEvent) -> None:
        """Replay ``ev``, in the order the kernel did what the events stand for.

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
        hold = self.irq_hold
        if hold is not None:
            cpu, ctx, pid, held = hold
            if ev.cpu != cpu or ev.irq > ctx:
                held.append(ev)
                if len(held) >= self.HOLD_LIMIT:
                    self._release_irq_hold()
                return
            self.irq_hold = None
            self.refill_open.pop(cpu, None)
            if ev.kind <= KMEM_CACHE_ALLOC_NODE and ev.irq == ctx and ev.pid == pid:
                self.summary.followed["allocations whose event came after an interrupt's"] += 1
                self._feed_ordered(ev)
                for e in held:
                    self._feed_in_order(e)
            else:
                for e in held:
                    self._feed_in_order(e)
                self._feed_in_order(ev)
            return
        refill = self.refill_open
        if ev.kind == FUNC and ev.text == "cache_alloc_refill":
            refill[ev.cpu] = [ev.irq, ev.pid, False]
        elif refill and ev.cpu in refill:
            state = refill[ev.cpu]
            if ev.irq > state[0]:
                if not state[2]:
                    self.irq_hold = (ev.cpu, state[0], state[1], [ev])
                    return
            elif ev.kind == FUNC:
                if ev.parent == "cache_alloc_refill" and ev.text in ("cache_grow_begin", "cache_grow_end"):
                    state[2] = ev.text == "cache_grow_begin"
            elif ev.kind < MM_PAGE_ALLOC or ev.kind > MM_PAGE_FREE_BATCHED:
                del refill[ev.cpu]  # the allocation, or whatever the refill's context did next
        self._feed_ordered(ev)

    def _release_irq_hold(self, to_end: bool = False) -> None:
        """Replay the events held back for an allocation whose event did not come, in their order
        (``to_end``: and those of any hold they start, as the end of the input does)."""
        while self.irq_hold is not None:
            cpu, _, _, held = self.irq_hold
            self.irq_hold = None
            self.refill_open.pop(cpu, None)
            for e in held:
                self._feed_in_order(e)
            if not to_end:
                break

    def _feed_ordered(self, ev: TraceEvent) -> None:
        watches = self.reap_watches
        if watches:
            for cpu, w in list(watches.items()):
                if not w.observe(ev):
                    self.reap_drains[w.lineno] = w
                    del watches[cpu]
            if watches or (ev.kind == FUNC and ev.text == "cache_reap"):
                self._hold_for_reap(ev)
                return
            self._release_reap_hold()
        elif ev.kind == FUNC and ev.text == "cache_reap":
            self._hold_for_reap(ev)
            return
        self._feed_held(ev)

    def _hold_for_reap(self, ev: TraceEvent) -> None:
        """Hold ``ev`` back while cache_reap runs are being counted (see reapwatch)."""
        if ev.kind == FUNC:
            if ev.text == "cache_reap":
                self.reap_watches[ev.cpu] = ReapWatch(ev, len(self.k.slab_caches))
            elif ev.text == "drain_array":
                self.traced_drain_array = True
            elif ev.text == "drain_array_locked":
                self.traced_drain_locked = True
            elif ev.text == "kmem_freepages":
                self.traced_freepages = True
        hold = self.reap_hold
        hold.append(ev)
        if len(hold) >= self.HOLD_LIMIT:
            self._close_reap_watches(full=True)

    def _close_reap_watches(self, full: bool) -> None:
        """End the runs still being collected and replay the held events.  When the hold is ``full``,
        a run with no drain_array line in all that time gave up; when the input ends (or is flushed),
        a run with nothing after its cache_reap line is not known to have given up."""
        for w in self.reap_watches.values():
            if full or w.drains or w.seen:
                self.reap_drains[w.lineno] = w
        self.reap_watches.clear()
        self._release_reap_hold()

    def flush(self) -> None:
        """Replay the events held back so far (as the end of the input would)."""
        while self.flush_race is not None:
            self._release_flush_race()
        if self.irq_buf:
            self._release_irq_buf()
        if self.irq_hold is not None:
            self._release_irq_hold(to_end=True)
        if self.reap_hold:
            self._close_reap_watches(full=False)
        if self.held is not None:
            self._release_held()

    def _release_reap_hold(self) -> None:
        """The cache_reap runs are over: the model runs each at its first line, in the events' order."""
        hold, self.reap_hold = self.reap_hold, []
        for ev in hold:
            self._feed_held(ev)

    def _feed_held(self, ev: TraceEvent) -> None:
        held = self.held
        if held is not None:
            held.append(ev)
            if ev.kind == MARK or len(held) >= self.HOLD_LIMIT:
                self._release_held()
            return
        kind = ev.kind
        if kind <= KMEM_CACHE_ALLOC_NODE:
            if self.fast_path and self._alloc_fast(ev):
                return
        elif kind <= KMEM_CACHE_FREE:
            if self.fast_path and self._free_fast(ev):
                return
        elif kind == FUNC and ev.text == "slabinfo_write" and self.action_res:
            self.held = [ev]
            return
        self._feed(ev)

    # ---- the fast paths ------------------------------------------------------------------------------
    # Most events of a trace are an allocation that the per-CPU array satisfies or a free of an object
    # the replay knows.  For those, _alloc_fast and _free_fast do in one function what _feed -> _alloc /
    # _free -> kmalloc / kfree ... would do, with the same effects in the same order.  Each first checks,
    # without changing anything, that the event needs none of the general code's special cases; if one
    # does, it returns False and feed() runs the general code (_feed), which then sees exactly the
    # state it would have seen.  tests/trace/test_fast_path.py replays traces with and without them.
    fast_path = True  # False: every event goes through _feed (the tests compare both)

    def _alloc_fast(self, ev: TraceEvent) -> bool:
        """_feed() -> _alloc() of an ordinary allocation that hits the per-CPU array, in one piece.

        Short-cuts ``_cpu``/``set_cpu``, ``_align_array``, ``kmalloc`` -> ``__do_kmalloc`` ->
        ``kmalloc_slab`` -> ``slab_alloc`` -> ``____cache_alloc``'s hit -> ``_post_alloc`` (and the
        ``_node`` and ``kmem_cache_alloc`` variants), the ``event_hook`` call and ``_record_alloc``.
        Taken only when: the trace clock does not move (no ``_clock``), the call site is not one of the
        model's own allocations (``_ALLOC_SITES``) and no /proc/slabinfo read is awaited (no pairing, no
        ``_run_pending``), the CPU exists and is online (no remapping, no ``_bring_up``), no mempolicy on
        this CPU and no spreading (``slab_alloc`` goes straight to ``____cache_alloc``), nothing
        is explained, no debug checks, the kernel's event hook is the replay's own (which ignores calls
        without an ``internal`` tag), the kernel did not show a refill on this CPU (``kernel_refilled``),
        the cache is known, and its array on this CPU holds an object.  While the boot's interleave
        policies apply (``boot_policies``), the events of pids 0 and 1 take the general code; for any
        other task ``_task_policy`` only removes this CPU's policy, which is done here too; with no
        policy on this CPU, ``slab_alloc`` -> ``__do_cache_alloc`` ends in the same ``____cache_alloc``
        hit (a policy on another CPU changes nothing there).  With a non-empty array and no
        kernel refill, ``_align_array`` changes nothing (it would only create an empty placeholder
        pool, which nothing can tell from no pool)."""
        k = self.k
        kptr = ev.ptr
        cpu = ev.cpu
        if (not kptr or not 0 <= cpu < self.cpus or self.pending_read or k.explain is not None
                or k.debug or k.cpuset_slab_spread or k.event_hook is not self._hook
                or cpu in self.kernel_refilled or (self.directive_mode and cpu not in k.online_cpus)
                or (self.clock == "seconds" and int(ev.ts * self.hz) > k.jiffies)):
            return False
        call_site = ev.call_site
        plain = _PLAIN_ALLOC_SITES.get(call_site)
        if plain is None:
            plain = _plain_alloc_site(call_site)
        if not plain:
            return False
        if self.boot_policies and ev.pid in (0, 1):
            return False
        # the general code sets the CPU from here on, whatever follows (set_cpu() changes nothing else)
        if cpu != k.cpu:
            k.set_cpu(cpu)
        if self.boot_policies:
            k.policies.pop(cpu, None)  # _task_policy() of a task other than pids 0 and 1: the local policy
        if k.policies and cpu in k.policies:
            return False  # a mempolicy on this CPU: slab_alloc() may go to alternate_node_alloc()
        node = k.numa_node
        kind = ev.kind
        cachep: KmemCache | int | None
        if kind <= KMALLOC_NODE:  # kmalloc, kmalloc_node
            if ev.bytes_req <= 0:
                return False
            cachep = kmalloc_slab(k, ev.bytes_req, ev.gfp)  # None (too large) or ZERO_SIZE_PTR: general code
            if cachep is None or isinstance(cachep, int):
                return False
        else:
            name = ev.name
            if not name:
                return False
            cachep = k.find_cache(name)
            if cachep is None:
                return False
        if kind & 1:  # the _node variants: slab_alloc_node() takes the array only for the local node
            nodeid = ev.node if ev.node < k.nr_node_ids else -1
            if nodeid == -1:
                nodeid = node
            if nodeid != node or nodeid >= len(cachep.node) or cachep.node[nodeid] is None:
                return False
        cpu_cache = cachep.cpu_cache
        if not cpu_cache:
            return False
        ac = cpu_cache[cpu]
        entry = ac.entry
        if not entry:
            return False
        # -- from here on, the effects of the general code, in its order --
        self.evno += 1
        # ____cache_alloc(): the per-CPU hit
        ac.touched = 1
        cachep.stats.allochit += 1
        paths = cachep.paths
        paths.alloc_hit += 1
        mptr = entry.pop()
        # _post_alloc()
        paths.alloc += 1
        flags = ev.gfp
        if (flags & _GFP_ZERO or k.config.init_on_alloc) and slab_want_init_on_alloc(cachep, flags):
            k.memory.memset(mptr, 0, cachep.object_size)
        if kind <= KMALLOC_NODE:
            # _alloc() names the cache of a kmalloc'd object after its page (Kernel.virt_to_cache)
            page = k.mem_map.pages.get((mptr - PAGE_OFFSET) >> PAGE_SHIFT)
            if page is not None and page.compound_head & 1:
                page = k.mem_map.compound_head(page)
            cachep = page.slab_cache if page is not None else None
        self.summary.applied[KIND_NAMES[kind]] += 1
        # _record_alloc(): a pointer the replay believes live goes through the general code
        kmap = self.kmap
        if kptr in kmap:
            self._record_alloc(ev, mptr, cachep)
            return True
        kmap[kptr] = mptr
        if cachep is not None:
            self.kcache[kptr] = cachep
            self.kpage_cache[kptr >> 12] = cachep
        if self.ptrmap is not None:
            self.ptrmap.write(f"{self.evno},{kptr:x},{mptr:x},{KIND_NAMES[kind]},{cachep.name if cachep else ''}\n")
        return True

    def _free_fast(self, ev: TraceEvent) -> bool:
        """_feed() -> _free() of a known object that is not one of the model's own structures, in one piece.

        Short-cuts ``_cpu``/``set_cpu``, ``_do_free``, ``kfree`` (or ``kmem_cache_free`` ->
        ``cache_from_obj``) -> ``__cache_free`` -> ``___cache_free``, and the ``event_hook`` call; a free
        that does not hit this CPU's array (alien, flush) still runs ``___cache_free`` itself.  Taken
        only when: the trace clock does not move, the call site is not one of the model's own frees
        (``_FREE_SITES``), the CPU exists and is online, nothing is explained, no debug checks, the
        event hook is the replay's own, the kernel pointer is mapped to a model object that is not
        paired with a model structure, the object's page is a slab page, and for a
        ``kmem_cache_free`` the cache the trace names is the one the object lives in (else
        ``_do_free`` has a note to write)."""
        k = self.k
        kptr = ev.ptr
        cpu = ev.cpu
        if (kptr <= 16 or not 0 <= cpu < self.cpus or k.explain is not None or k.debug or k.event_hook is not self._hook
                or (self.directive_mode and cpu not in k.online_cpus)
                or (self.clock == "seconds" and int(ev.ts * self.hz) > k.jiffies)):
            return False
        call_site = ev.call_site
        plain = _PLAIN_FREE_SITES.get(call_site)
        if plain is None:
            plain = _plain_free_site(call_site)
        if not plain:
            return False
        # the general code sets the CPU from here on, whatever follows (set_cpu() changes nothing else)
        if cpu != k.cpu:
            k.set_cpu(cpu)
        kmap = self.kmap
        mptr = kmap.get(kptr)
        if mptr is None or mptr in self.internal_rev:
            return False
        page = k.mem_map.pages.get((mptr - PAGE_OFFSET) >> PAGE_SHIFT)
        if page is None:
            return False
        if page.compound_head & 1:
            page = k.mem_map.compound_head(page)
        if not page.flags & _PG_SLAB:
            return False
        c = page.slab_cache  # virt_to_cache()
        if c is None:
            return False
        kind = ev.kind
        if kind == KMEM_CACHE_FREE:
            cachep = self.kcache.get(kptr)
            if ev.name:
                named = k.find_cache(ev.name)
                if named is not None:
                    cachep = named
            if cachep is not None and cachep is not c:
                return False
        # -- from here on, the effects of the general code, in its order --
        self.evno += 1
        del kmap[kptr]
        self.kcache.pop(kptr, None)
        ac = c.cpu_cache[cpu]
        entry = ac.entry
        if (not k.sk_memalloc_socks and not k.config.init_on_free and (not k.numa_multi or page.nid == k.numa_node)
                and len(entry) < ac.limit
                and not (k.config.CONFIG_SLAB_FREELIST_HARDENED and entry and entry[-1] == mptr)):
            # ___cache_free(): a local free with room in the array (its own fast case, inlined)
            c.paths.free += 1
            c.stats.freehit += 1
            c.paths.free_hit += 1
            entry.append(mptr)
        else:
            _cache_free(c, mptr, 0)  # ___cache_free()
        self.summary.applied[KIND_NAMES[kind]] += 1
        return True

    def _release_held(self) -> None:
        """The marker after a slabinfo_write arrived (or the hold is full): if an --action turns it into a
        slabinfo-write, run that first, at the kernel's moment, then the held events."""
        held, self.held = self.held or [], None
        last = held[-1]
        early = None
        if last.kind == MARK:
            for rx, act in self.action_res:
                m = rx.search(last.text)
                if m:
                    try:
                        expanded = m.expand(act)
                    except (re.error, IndexError):
                        break  # reported when the marker itself is handled
                    if expanded.strip().startswith("slabinfo-write "):
                        early = expanded
                    break
        for ev in held:
            if early is not None and ev is held[0]:
                self._feed(ev)
                self.k.set_cpu(self._cpu(ev))
                self.action(early, ev)
                self.summary.notes.append(f"line {ev.lineno}: {early!r} applied where the kernel's slabinfo_write "
                                          f"ran (its marker is line {last.lineno})")
                self.early_action = (last.lineno, early)
                continue
            self._feed(ev)

    def _feed(self, ev: TraceEvent) -> None:
        self.evno += 1
        kind = ev.kind
        try:
            # _clock()'s test inlined: the clock moves on at most once per jiffy of the trace
            if self.clock == "seconds" and int(ev.ts * self.hz) > self.k.jiffies:
                self._clock(ev)
            if kind <= KMEM_CACHE_ALLOC_NODE:
                self._alloc(ev)
            elif kind <= KMEM_CACHE_FREE:
                self._free(ev)
            elif kind == FUNC:
                self._func(ev)
            elif kind == MARK:
                self._mark(ev)
            elif kind in (MM_PAGE_ALLOC, MM_PAGE_FREE, MM_PAGE_FREE_BATCHED):
                self.summary.skipped["page allocator event (the model makes its own)"] += 1
            else:
                self.summary.skipped["event kind not replayed"] += 1
        except KernelBug as e:
            raise ReplayError(f"line {ev.lineno}: the kernel would BUG() here: {e}") from e

    def run(self, events: Iterable[TraceEvent], clock: str | None = None) -> ReplaySummary:
        """Replay every event; ``clock`` is ``seconds`` or ``counter`` (guessed from the first events)."""
        it = iter(events)
        head: list[TraceEvent] = []
        if clock is None:
            for ev in it:
                head.append(ev)
                if len(head) >= 4096:
                    break
            integral = all(ev.ts == int(ev.ts) for ev in head)
            clock = "counter" if head and integral and any(ev.ts for ev in head) else "seconds"
        else:
            for ev in it:
                head.append(ev)
                if len(head) >= 4096:
                    break
        self.clock = clock
        self.start_boot(head)
        feed = self.feed
        progress = self.on_progress
        n = 0
        sample = self.on_sample
        every = self.sample_every
        for ev in head:
            feed(ev)
            n += 1
            if sample is not None and every > 0 and not n % every:
                sample(self, ev)
        if sample is not None and every > 0:
            for ev in it:
                feed(ev)
                n += 1
                if not n % every:
                    sample(self, ev)
                if progress is not None and not n & 0xFFFF:
                    progress(n, ev.lineno)
        else:
            for ev in it:
                feed(ev)
                n += 1
                if progress is not None and not n & 0xFFFF:
                    progress(n, ev.lineno)
        self.summary.events = n
        self.finish()
        return self.summary

    def finish(self) -> None:
        self.flush()
        if not self.booted:
            self.start_boot([])
        if self.pending_read:
            self._run_pending(self.pending_read[-1][2])
        if self.directive_mode:
            self.mb.finish()
        for group, q in self.pending_model.items():
            if q:
                self.summary.internal[group + " model only"] += len(q)
        for group, q in self.pending_trace.items():
            if q:
                self.summary.internal[group + " trace only"] += len(q)
        if self.ptrmap is not None:
            self.ptrmap.close()
            self.ptrmap = None


__all__ = ["ReplayError", "ReplayOptions", "ReplaySummary", "Replayer", "site_function"]

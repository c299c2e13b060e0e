"""The slabs a 6.12 kernel held before its trace began, as the trace reveals them, and their copy in the model.

A trace that starts during boot shows objects of slabs the kernel allocated before it: their pages were never
allocated in the trace (no ``mm_page_alloc`` of the slab's first page frame before the object shows up).
Such a slab's address is the object's rounded down to the slab's size (the buddy allocator aligns blocks to
their size).  For each object of it, the first event the trace has says what it was when tracing began:

- a free: the object was in use (it is paired with a model object from the start, in ``kmap``);
- an allocation: it was free, and the order of these first allocations is the order of the slab's free list
  (SLUB pops free lists from the head, and objects freed later go in front of what remains, so the objects
  first handed out after tracing began leave in the order the free list had them);
- nothing: an object in use that the trace never frees (a long-lived one).

Which list each slab was on follows from the function tracer: a CPU's first allocation of a cache that is not
preceded by ``___slab_alloc`` on that CPU came from its cpu slab (that slab becomes the CPU's cpu slab, its free
objects the CPU freelist).  The other slabs with free objects go on their node's partial list in the order the
kernel first takes objects from them, arranged so that get_partial_node()'s batches (the first slab for the
CPU, the next cpu_partial_slabs/2 + 1 onto the per-CPU partial list, which hands them out last-in first) give
that order; slabs without free objects are full, on no list.  Slabs the trace never shows (all their objects
in use and never freed in the trace) are what the kernel's /proc/slabinfo counts beyond the model at the sync
snapshot (see :func:`kslab.trace.replay_slub.fidelity.replay_capture`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from ...mm.config import PAGE_SIZE
from ...mm.e820 import qemu_node_ranges
from ...mm.page import PAGE_OFFSET, PAGE_SHIFT
from ...mm.slub.adopt import adopt_cpu_slab, adopt_partial_slab, adopt_slab, object_address
from ...mm.slub.geometry import oo_objects, oo_order
from ...mm.slub.kmalloc import kmalloc_slab
from ...mm.slub.machine import SlubKernel
from ...mm.slub.slab import Slab
from ...mm.slub.slub_def import KMALLOC_MAX_CACHE_SIZE, KmemCache
from ..events import FREE_KINDS, FUNC, KMALLOC_NODE, KMEM_CACHE_ALLOC_NODE, MM_PAGE_ALLOC, TraceEvent
from ..replay.boot import TaskPolicies
from ..replay.sites import site_function

#: the function-tracer entry that says an allocation took the slow path
SLOW_ALLOC: Final = "___slab_alloc"
#: the allocation of an exec (the kernel's binprm)
EXEC_SITE: Final = "alloc_bprm"


@dataclass(slots=True, eq=False)
class KSlab:
    """A kernel slab older than the trace: its address and node, which objects the trace first saw freed
    (``live``, index -> kernel pointer) and first saw allocated (``free``, in that order), and when."""

    cache: KmemCache
    base: int
    nid: int
    live: dict[int, int] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)
    first_alloc: int = -1
    closed: bool = False


@dataclass(slots=True, eq=False)
class PreTrace:
    """What the trace reveals of the kernel's slabs before it began: every such slab by address, and each
    CPU's first allocation of each cache (its slab's address, and whether it took the slow path)."""

    slabs: dict[int, KSlab] = field(default_factory=dict)
    cpu_first: dict[tuple[str, int], tuple[int, bool]] = field(default_factory=dict)
    #: kfree of a pointer no slab of the trace holds yet: its first event, kept until the slab shows up
    orphan_frees: dict[int, int] = field(default_factory=dict)
    #: the trace shows kernel_init() exec'ing /init (pid 1's alloc_bprm): before that, pids 0 and 1 ran with
    #: the boot's interleave policy (see kslab.trace.replay.boot.TaskPolicies)
    init_exec: bool = False


def slab_span(s: KmemCache) -> int:
    return PAGE_SIZE << oo_order(s.oo)


def kernel_node_of(k: SlubKernel) -> Callable[[int], int]:
    """The node of a traced kernel address, from the machine's physical layout (qemu's, as the captures');
    -1 outside it."""
    ranges = [(lo, hi, nid) for nid, rs in enumerate(qemu_node_ranges(k.config)) for lo, hi in rs]

    def kernel_node(addr: int) -> int:
        pfn = (addr - PAGE_OFFSET) >> PAGE_SHIFT
        return next((nid for lo, hi, nid in ranges if lo <= pfn < hi), -1)
    return kernel_node


def object_index(s: KmemCache, base: int, ptr: int) -> int:
    """The index of ``ptr`` in the slab at ``base`` (-1: not an object's address)."""
    off = ptr - base - s.red_left_pad
    if off < 0 or off % s.size or off // s.size >= oo_objects(s.oo):
        return -1
    return off // s.size


class Scanner:
    """One pass over a trace gathering its :class:`PreTrace`."""

    def __init__(self, k: SlubKernel) -> None:
        self.k = k
        self.pre = PreTrace()
        self.seen: set[int] = set()          # kernel pointers whose first event was taken
        self.cache_of: dict[int, KmemCache] = {}  # live kernel pointer -> its cache (for kfree)
        self.new_pages: set[int] = set()     # pfns the trace allocated
        self.slow: dict[int, bool] = {}      # CPU -> a ___slab_alloc is pending
        self.seq = 0
        self.kernel_node = kernel_node_of(k)

    def cache_of_alloc(self, ev: TraceEvent) -> KmemCache | None:
        if ev.kind <= KMALLOC_NODE:
            if ev.bytes_req > KMALLOC_MAX_CACHE_SIZE or ev.bytes_alloc > KMALLOC_MAX_CACHE_SIZE:
                return None
            return kmalloc_slab(self.k.sl, ev.bytes_req, ev.gfp)
        return self.k.find_cache(ev.name or "")

    def event(self, ev: TraceEvent) -> None:
        kind = ev.kind
        self.seq += 1
        if kind == FUNC:
            if ev.text == SLOW_ALLOC:
                self.slow[ev.cpu] = True
        elif kind == MM_PAGE_ALLOC:
            self.new_pages.add(ev.pfn)
            reused = self.pre.slabs.get(PAGE_OFFSET + (ev.pfn << PAGE_SHIFT))
            if reused is not None:
                reused.closed = True
        elif kind <= KMEM_CACHE_ALLOC_NODE:
            slow = self.slow.pop(ev.cpu, False)
            if ev.pid == 1 and not self.pre.init_exec and site_function(ev.call_site) == EXEC_SITE:
                self.pre.init_exec = True
            s = self.cache_of_alloc(ev)
            if s is None or not ev.ptr:
                return
            self.cache_of[ev.ptr] = s
            key = (s.name, ev.cpu)
            base = ev.ptr & ~(slab_span(s) - 1)
            if key not in self.pre.cpu_first:
                self.pre.cpu_first[key] = (base, slow)
            self.first(s, ev.ptr, base, False)
        elif kind in FREE_KINDS:
            s = self.cache_of.pop(ev.ptr, None)
            if s is None and ev.name:
                s = self.k.find_cache(ev.name)
            if s is None:
                if ev.ptr > 16 and ev.ptr not in self.seen:
                    self.seen.add(ev.ptr)
                    self.pre.orphan_frees[ev.ptr] = self.seq
                return
            self.first(s, ev.ptr, ev.ptr & ~(slab_span(s) - 1), True)

    def first(self, s: KmemCache, ptr: int, base: int, freed: bool) -> None:
        """The first event of ``ptr`` (an object of ``s``) places it in its pre-trace slab, if it has one."""
        if ptr in self.seen:
            return
        self.seen.add(ptr)
        slab = self.pre.slabs.get(base)
        if slab is None:
            if (base - PAGE_OFFSET) >> PAGE_SHIFT in self.new_pages:
                return
            slab = self.pre.slabs[base] = KSlab(s, base, max(self.kernel_node(base), 0))
        if slab.closed or slab.cache is not s:
            return
        i = object_index(s, base, ptr)
        if i < 0:
            return
        if freed:
            slab.live[i] = ptr
        else:
            if slab.first_alloc < 0:
                slab.first_alloc = self.seq
            slab.free.append(i)

    def finish(self) -> PreTrace:
        """The frees of pointers of no known cache go to the pre-trace slab that holds them, if any."""
        for ptr in self.pre.orphan_frees:
            for order in range(0, 11):
                slab = self.pre.slabs.get(ptr & ~((PAGE_SIZE << order) - 1))
                if slab is not None and slab_span(slab.cache) == PAGE_SIZE << order:
                    i = object_index(slab.cache, slab.base, ptr)
                    if i >= 0 and i not in slab.live and i not in slab.free and not slab.closed:
                        slab.live[i] = ptr
                    break
        return self.pre


def scan_pretrace(k: SlubKernel, events: Iterable[TraceEvent]) -> PreTrace:
    """The :class:`PreTrace` of a whole trace (``k`` names the caches: a booted machine, not changed)."""
    sc = Scanner(k)
    for ev in events:
        sc.event(ev)
    return sc.finish()


def partial_order(slabs: list[KSlab], cpu_partial_slabs: int) -> list[KSlab]:
    """The node partial list that get_partial_node() hands out in the order of ``slabs``: each batch is the
    slab for the CPU, then cpu_partial_slabs/2 + 1 slabs pushed onto the per-CPU partial list (so in reverse)."""
    out: list[KSlab] = []
    i = 0
    batch = cpu_partial_slabs // 2 + 1 if cpu_partial_slabs else 0
    while i < len(slabs):
        out.append(slabs[i])
        out.extend(reversed(slabs[i + 1:i + 1 + batch]))
        i += 1 + batch
    return out


def adopt_pretrace(k: SlubKernel, pre: PreTrace) -> dict[int, int]:
    """Give the model a copy of every pre-trace slab (see the module docstring); returns the pairing of the
    kernel's objects in use in them with the model's (kernel pointer -> model pointer)."""
    kmap: dict[int, int] = {}
    by_cache: dict[str, list[KSlab]] = {}
    for ks in pre.slabs.values():
        if ks.live or ks.free:
            by_cache.setdefault(ks.cache.name, []).append(ks)
    cpu_of: dict[int, int] = {}  # id(KSlab) -> the CPU it is the cpu slab of
    for (_, on), (base, slow) in sorted(pre.cpu_first.items(), key=lambda kv: kv[0][1]):
        first = pre.slabs.get(base)
        if not slow and first is not None and first.free and not first.closed and id(first) not in cpu_of:
            cpu_of[id(first)] = on
    for name, group in by_cache.items():
        found = k.find_cache(name)  # (the scan's machine is another one: its caches are not ``k``'s)
        if found is None:
            continue
        s = found
        partial: dict[int, list[tuple[KSlab, Slab]]] = {}
        for ks in sorted(group, key=lambda x: x.base):
            slab = adopt_slab(k.a, s, ks.nid, 0, ks.free)
            if slab is None:
                continue
            for i, kptr in ks.live.items():
                kmap[kptr] = object_address(s, slab, i)
            cpu = cpu_of.get(id(ks))
            if cpu is not None and s.cpu_slab[cpu].slab is None:
                adopt_cpu_slab(k.a, s, slab, cpu)
            elif ks.free:
                partial.setdefault(slab.nid, []).append((ks, slab))
        for pairs in partial.values():
            pairs.sort(key=lambda p: p[0].first_alloc)
            model = {id(ks): slab for ks, slab in pairs}
            for ks in partial_order([ks for ks, _ in pairs], s.cpu_partial_slabs):
                adopt_partial_slab(s, model[id(ks)])
    return kmap


def adopt_full_slabs(k: SlubKernel, extra: dict[tuple[str, int], int]) -> None:
    """``extra[(cache name, node)]`` full slabs of each cache on that node: slabs whose objects are all in
    use and never show in the trace."""
    for (name, nid), n in sorted(extra.items()):
        s = k.find_cache(name)
        if s is None:
            continue
        for _ in range(n):
            if adopt_slab(k.a, s, nid, 0, []) is None:
                break


def boot_policies(k: SlubKernel, pre: PreTrace) -> TaskPolicies | None:
    """The boot tasks' interleave policy of a machine with several nodes, when the trace shows the boot up to
    kernel_init()'s exec of /init (SLAB's replay follows the same rule: kslab.trace.replay.boot.TaskPolicies);
    in SLUB it decides the node of the new slabs those tasks allocate."""
    if not pre.init_exec or k.nr_node_ids < 2:
        return None
    pol = TaskPolicies(k, kernel_node_of(k))
    pol.active = True
    return pol

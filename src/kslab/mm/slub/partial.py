"""Slabs in and out of a cache: new_slab, discard_slab, deactivate_slab, the per-CPU partial list
(put_cpu_partial and its drain __put_partials), the CPU flushes and shrinking (mm/slub.c, 6.12).

Every function takes a :class:`SlubMM` (the page allocator, the object memory, the CPU partial switch and
the model's record of live slabs by their first page frame) and the CPU it runs on, whose kmem_cache_cpu
takes the SLUB_STATS counts.  The debug caches' own paths are in ``debug_paths``; the model leaves out
pfmemalloc slabs, memcg and KASAN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from ..explain import Explain
from ..gfp import GFP_CONSTRAINT_MASK, GFP_RECLAIM_MASK
from ..page import PG_slab
from ..page_alloc import PageAllocator
from .debug_check import DebugMemory
from .debug_paths import check_objects_of, setup_slab_debug
from .fastpath import allocate_slab, get_freepointer, next_tid, set_freepointer, stat
from .flags import SLAB_CONSISTENCY_CHECKS, SLAB_TYPESAFE_BY_RCU
from .geometry import kmem_cache_debug, oo_objects, oo_order
from .node import DEACTIVATE_TO_HEAD, DEACTIVATE_TO_TAIL, add_partial, dec_slabs_node, node_nr_slabs, remove_partial
from .slab import NUMA_NO_NODE, KmemCacheCpu, ObjectMemory, Slab, StatItem
from .slub_def import KmemCache

KERNEL_SYMBOLS_612 = ("new_slab", "__free_slab", "free_slab", "discard_slab", "deactivate_slab", "__put_partials",
                      "put_partials_cpu", "put_cpu_partial", "flush_slab", "__flush_cpu_slab", "flush_cpu_slab",
                      "has_cpu_slab", "flush_all", "__kmem_cache_do_shrink", "__kmem_cache_shrink",
                      "slub_percpu_partial", "slub_set_percpu_partial", "slub_get_cpu_partial", "interleave_nodes")

SHRINK_PROMOTE_MAX: Final = 32
#: the mode of an interleave memory policy (MemPolicy.mode)
INTERLEAVE: Final = "interleave"


def _no_cycles() -> int:
    return 0


class Interleave(Protocol):
    """A task's memory policy as the page allocator reads it (kslab.mm.kernel.MemPolicy has this shape)."""

    mode: str
    nodes: tuple[int, ...]
    il_prev: int


def interleave_nodes(pol: Interleave) -> int:
    """mm/mempolicy.c interleave_nodes(): the policy's next node after ``il_prev`` (wrapping), which it takes."""
    nodes = sorted(pol.nodes)
    nxt = next((n for n in nodes if n > pol.il_prev), nodes[0])
    pol.il_prev = nxt
    return nxt


@dataclass(slots=True, eq=False)
class SlubMM:
    """What the slow paths work on besides the cache: the buddy allocator, object memory, whether
    CONFIG_SLUB_CPU_PARTIAL is on, the live slabs by head pfn (virt_to_slab), the slabs of
    SLAB_TYPESAFE_BY_RCU caches waiting for their grace period, get_cycles() for get_any_partial, and the
    decision recorder of ``kslab explain`` (None: off; the paths only append steps to it), and the bytes and
    records of the debug caches (``dbg``), and the
    memory policy of the task running on each CPU (none: the local one)."""

    pa: PageAllocator
    mem: ObjectMemory = field(default_factory=ObjectMemory)
    cpu_partial: bool = True
    slabs: dict[int, Slab] = field(default_factory=dict)
    rcu_free: list[tuple[Slab, int]] = field(default_factory=list)
    get_cycles: Callable[[], int] = _no_cycles
    explain: Explain | None = None
    dbg: DebugMemory = field(default_factory=DebugMemory)
    policies: dict[int, Interleave] = field(default_factory=dict)


def slub_percpu_partial(c: KmemCacheCpu) -> Slab | None:
    return c.partial


def slub_set_percpu_partial(c: KmemCacheCpu, p: Slab) -> None:
    """Pop ``p`` (the first per-CPU partial slab) off the list."""
    c.partial = p.next


def slub_get_cpu_partial(s: KmemCache) -> int:
    return s.cpu_partial_slabs


def kmem_cache_has_cpu_partial(mm: SlubMM, s: KmemCache) -> bool:
    """CONFIG_SLUB_CPU_PARTIAL and not a debug cache."""
    return mm.cpu_partial and not kmem_cache_debug(s)


def new_slab(mm: SlubMM, s: KmemCache, flags: int, node: int, cpu: int) -> Slab | None:
    """allocate_slab with the reclaim and constraint bits of ``flags``; the model notes the slab by pfn.
    Without a node, the pages come from the node the task's interleave policy gives (alloc_slab_page's
    folio_alloc() follows the task's mempolicy; a request for a node does not)."""
    pol = mm.policies.get(cpu) if node == NUMA_NO_NODE else None
    if pol is not None and pol.mode == INTERLEAVE and pol.nodes:
        node = interleave_nodes(pol)
    slab = allocate_slab(mm.pa, mm.mem, s, s.cpu_slab[cpu], flags & (GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK),
                         node, cpu)
    if slab is not None:
        mm.slabs[slab.page.pfn] = slab
        if kmem_cache_debug(s):
            setup_slab_debug(mm.dbg, s, slab)
    ex = mm.explain
    if ex is not None:
        if slab is None:
            ex.step("allocate_slab", "failed", cache=s.name, order=oo_order(s.oo), min_order=oo_order(s.min),
                    node=node)
        elif slab.order == oo_order(s.oo):
            ex.step("allocate_slab", "oo", cache=s.name, order=slab.order, objects=slab.objects, pfn=slab.page.pfn,
                    node=slab.nid, addr=slab.address, size=s.size)
        else:
            ex.step("allocate_slab", "fallback", cache=s.name, order=slab.order, objects=slab.objects,
                    pfn=slab.page.pfn, node=slab.nid, oo_order=oo_order(s.oo), oo_objects=oo_objects(s.oo))
    return slab


def __free_slab(mm: SlubMM, slab: Slab, cpu: int) -> None:
    """Clear PG_slab and give the pages back to the buddy allocator."""
    del mm.slabs[slab.page.pfn]
    mm.dbg.slabs.pop(slab.page.pfn, None)
    slab.page.flags &= ~(1 << PG_slab)
    mm.pa.free_pages(slab.page, slab.order, cpu)


def free_slab(mm: SlubMM, s: KmemCache, slab: Slab, cpu: int) -> None:
    """The pages go back now, or after a grace period for SLAB_TYPESAFE_BY_RCU (held in ``mm.rcu_free``
    until :func:`rcu_barrier`)."""
    if mm.explain is not None:
        mm.explain.step("free_slab", "rcu" if s.flags & SLAB_TYPESAFE_BY_RCU else "now", cache=s.name,
                        pfn=slab.page.pfn, order=slab.order)
    if s.flags & SLAB_CONSISTENCY_CHECKS:
        check_objects_of(mm, s, slab)
    if s.flags & SLAB_TYPESAFE_BY_RCU:
        mm.rcu_free.append((slab, cpu))
    else:
        __free_slab(mm, slab, cpu)


def rcu_barrier(mm: SlubMM) -> None:
    """Every pending rcu_free_slab callback runs."""
    pending, mm.rcu_free = mm.rcu_free, []
    for slab, cpu in pending:
        __free_slab(mm, slab, cpu)


def discard_slab(mm: SlubMM, s: KmemCache, slab: Slab, cpu: int) -> None:
    dec_slabs_node(s, slab.nid, slab.objects)
    free_slab(mm, s, slab, cpu)


def deactivate_slab(mm: SlubMM, s: KmemCache, slab: Slab, freelist: int, cpu: int) -> None:
    """A former cpu slab leaves the CPU: its CPU freelist goes in front of the slab's own (remote frees),
    the slab is unfrozen, then discarded when empty and the node has min_partial partial slabs, put on the
    node's partial list when it has free objects (at the tail if it had remote frees), else left full."""
    c = s.cpu_slab[cpu]
    n = s.node[slab.nid]
    tail = DEACTIVATE_TO_HEAD
    if slab.freelist:
        stat(c, StatItem.DEACTIVATE_REMOTE_FREES)
        tail = DEACTIVATE_TO_TAIL
    free_delta = 0
    freelist_tail = 0
    it = freelist
    while it:
        freelist_tail = it
        free_delta += 1
        it = get_freepointer(mm.mem, s, it)
    slab.frozen = False
    if freelist_tail:
        slab.inuse -= free_delta
        set_freepointer(mm.mem, s, freelist_tail, slab.freelist)
        slab.freelist = freelist
    ex = mm.explain
    if ex is not None:
        key = ("empty" if not slab.inuse and n.nr_partial >= s.min_partial else
               ("to_tail" if tail == DEACTIVATE_TO_TAIL else "to_head") if slab.freelist else "full")
        ex.step("deactivate_slab", key, cache=s.name, pfn=slab.page.pfn, returned=free_delta,
                remote=tail == DEACTIVATE_TO_TAIL, inuse=slab.inuse, objects=slab.objects, node=slab.nid,
                nr_partial=n.nr_partial, min_partial=s.min_partial)
    if not slab.inuse and n.nr_partial >= s.min_partial:
        stat(c, StatItem.DEACTIVATE_EMPTY)
        discard_slab(mm, s, slab, cpu)
        stat(c, StatItem.FREE_SLAB)
    elif slab.freelist:
        add_partial(n, slab, tail)
        stat(c, tail)
    else:
        stat(c, StatItem.DEACTIVATE_FULL)


def __put_partials(mm: SlubMM, s: KmemCache, partial_slab: Slab | None, cpu: int) -> None:
    """A chain of per-CPU partial slabs to their nodes' partial lists (tail), except the empty ones of a node
    that already has min_partial partial slabs: those are discarded afterwards, last one first."""
    c = s.cpu_slab[cpu]
    to_discard: list[Slab] = []
    while partial_slab is not None:
        slab = partial_slab
        partial_slab = slab.next
        slab.next = None
        n = s.node[slab.nid]
        empty = not slab.inuse and n.nr_partial >= s.min_partial
        if mm.explain is not None:
            mm.explain.step("__put_partials", "discard" if empty else "to_node", cache=s.name, pfn=slab.page.pfn,
                            inuse=slab.inuse, objects=slab.objects, node=slab.nid, nr_partial=n.nr_partial,
                            min_partial=s.min_partial)
        if empty:
            to_discard.insert(0, slab)
        else:
            add_partial(n, slab, DEACTIVATE_TO_TAIL)
            stat(c, StatItem.FREE_ADD_PARTIAL)
    for slab in to_discard:
        stat(c, StatItem.DEACTIVATE_EMPTY)
        discard_slab(mm, s, slab, cpu)
        stat(c, StatItem.FREE_SLAB)


def put_partials_cpu(mm: SlubMM, s: KmemCache, c: KmemCacheCpu, cpu: int) -> None:
    """All of a CPU's partial slabs to the node lists (put_partials for the current CPU is the same)."""
    partial_slab = slub_percpu_partial(c)
    c.partial = None
    if partial_slab is not None:
        __put_partials(mm, s, partial_slab, cpu)


def put_cpu_partial(mm: SlubMM, s: KmemCache, slab: Slab, drain: bool, cpu: int) -> None:
    """``slab`` goes at the head of the CPU's partial list, whose head counts its slabs in ``slabs``; with
    ``drain``, a list already holding cpu_partial_slabs moves to the node lists first (CPU_PARTIAL_DRAIN)."""
    c = s.cpu_slab[cpu]
    oldslab = c.partial
    slab_to_put = None
    slabs = 0
    if oldslab is not None:
        if drain and oldslab.slabs >= s.cpu_partial_slabs:
            slab_to_put, oldslab = oldslab, None
        else:
            slabs = oldslab.slabs
    slab.slabs = slabs + 1
    slab.next = oldslab
    c.partial = slab
    if mm.explain is not None:
        mm.explain.step("put_cpu_partial", "drain" if slab_to_put is not None else "put", cache=s.name,
                        pfn=slab.page.pfn, slabs=slab.slabs, drained=0 if slab_to_put is None else slab_to_put.slabs,
                        limit=s.cpu_partial_slabs, drain_asked=drain)
    if slab_to_put is not None:
        __put_partials(mm, s, slab_to_put, cpu)
        stat(c, StatItem.CPU_PARTIAL_DRAIN)


def flush_slab(mm: SlubMM, s: KmemCache, c: KmemCacheCpu, cpu: int) -> None:
    """The CPU gives up its cpu slab (deactivate_slab) and counts CPUSLAB_FLUSH."""
    slab, freelist = c.slab, c.freelist
    c.slab, c.freelist = None, 0
    c.tid = next_tid(c.tid)
    if slab is not None:
        deactivate_slab(mm, s, slab, freelist, cpu)
        stat(c, StatItem.CPUSLAB_FLUSH)


def __flush_cpu_slab(mm: SlubMM, s: KmemCache, cpu: int) -> None:
    """A dead CPU's cpu slab and partial slabs (slub_cpu_dead); the stats go to that CPU's counters."""
    c = s.cpu_slab[cpu]
    flush_slab(mm, s, c, cpu)
    put_partials_cpu(mm, s, c, cpu)


def flush_cpu_slab(mm: SlubMM, s: KmemCache, cpu: int) -> None:
    """The flush work run on ``cpu``: its cpu slab, if any, then its partial slabs."""
    c = s.cpu_slab[cpu]
    if mm.explain is not None:
        partial = c.partial.slabs if c.partial is not None else 0
        mm.explain.step("flush_cpu_slab", "flush", cache=s.name, cpu=cpu,
                        pfn=c.slab.page.pfn if c.slab is not None else 0, partial=partial)
    if c.slab is not None:
        flush_slab(mm, s, c, cpu)
    put_partials_cpu(mm, s, c, cpu)


def has_cpu_slab(s: KmemCache, cpu: int) -> bool:
    c = s.cpu_slab[cpu]
    return c.slab is not None or slub_percpu_partial(c) is not None


def flush_all(mm: SlubMM, s: KmemCache) -> None:
    """flush_all_cpus_locked: flush_cpu_slab on every CPU that has a cpu slab or partial slabs, in CPU
    order (the model runs the queued works one after the other)."""
    for cpu in range(len(s.cpu_slab)):
        if has_cpu_slab(s, cpu):
            flush_cpu_slab(mm, s, cpu)


def __kmem_cache_do_shrink(mm: SlubMM, s: KmemCache, cpu: int) -> int:
    """Per node: discard the empty partial slabs, move the slabs with at most SHRINK_PROMOTE_MAX free objects
    to the head of the list, fullest first; 1 if some node still has slabs."""
    ret = 0
    for node, n in enumerate(s.node):
        discard: list[Slab] = []
        promote: list[list[Slab]] = [[] for _ in range(SHRINK_PROMOTE_MAX)]
        for slab in list(n.partial):
            free = slab.objects - slab.inuse
            if free == slab.objects:
                remove_partial(n, slab)
                dec_slabs_node(s, node, slab.objects)
                discard.insert(0, slab)
            elif free <= SHRINK_PROMOTE_MAX:
                n.partial.remove(slab)
                promote[free - 1].insert(0, slab)
        for i in range(SHRINK_PROMOTE_MAX - 1, -1, -1):
            n.partial[:0] = promote[i]
        if mm.explain is not None:
            mm.explain.step("__kmem_cache_do_shrink", "node", cache=s.name, node=node, discarded=len(discard),
                            promoted=sum(len(p) for p in promote), nr_partial=n.nr_partial,
                            head=[slab.page.pfn for slab in n.partial[:8]])
        for slab in discard:
            free_slab(mm, s, slab, cpu)
        if node_nr_slabs(n):
            ret = 1
    return ret


def __kmem_cache_shrink(mm: SlubMM, s: KmemCache, cpu: int) -> int:
    """kmem_cache_shrink: flush every CPU, then shrink the node lists."""
    if mm.explain is not None:
        mm.explain.step("__kmem_cache_shrink", "entry", cache=s.name, cpu=cpu,
                        cpus=[i for i in range(len(s.cpu_slab)) if has_cpu_slab(s, i)])
    flush_all(mm, s)
    return __kmem_cache_do_shrink(mm, s, cpu)

"""The slow paths of allocation and free: ___slab_alloc with get_partial_node / get_any_partial, and
__slab_free (mm/slub.c, 6.12), for caches without debugging.

The model runs one CPU at a time, so the kernel's retries after a lost cmpxchg or a preemption
(``reread_slab``, the cpu slab found set again at ``retry_load_slab``) never happen and are left out.
Every node has memory (slab_nodes is every node) and no slab is pfmemalloc.
"""

from __future__ import annotations

from ..gfp import __GFP_THISNODE, GFP_NOWAIT
from .debug_paths import alloc_single_from_new_slab, alloc_single_from_partial, free_to_partial_list, track_alloc
from .fastpath import get_freepointer, next_tid, node_match, set_freepointer, stat
from .geometry import kmem_cache_debug
from .node import DEACTIVATE_TO_TAIL, KmemCacheNode, add_partial, inc_slabs_node, remove_partial
from .partial import (
    SlubMM,
    __put_partials,
    deactivate_slab,
    discard_slab,
    kmem_cache_has_cpu_partial,
    new_slab,
    put_cpu_partial,
    slub_get_cpu_partial,
    slub_percpu_partial,
    slub_set_percpu_partial,
)
from .slab import NUMA_NO_NODE, KmemCacheCpu, Slab, StatItem
from .slub_def import KmemCache

KERNEL_SYMBOLS_612 = ("get_freelist", "freeze_slab", "get_partial_node", "get_any_partial", "get_partial",
                      "___slab_alloc", "__slab_free", "numa_mem_id")


def numa_mem_id(mm: SlubMM, cpu: int) -> int:
    """The CPU's node (every node has memory)."""
    return mm.pa.config.cpu_to_node(cpu)


def get_freelist(s: KmemCache, slab: Slab) -> int:
    """Take the slab's whole freelist for the CPU: all objects count as in use, and the slab stays frozen
    only if there was a freelist."""
    freelist = slab.freelist
    slab.freelist = 0
    slab.inuse = slab.objects
    slab.frozen = freelist != 0
    return freelist


def freeze_slab(s: KmemCache, slab: Slab) -> int:
    """Like get_freelist for a slab off the node partial list, which always ends frozen."""
    freelist = slab.freelist
    slab.freelist = 0
    slab.inuse = slab.objects
    slab.frozen = True
    return freelist


def get_partial_node(mm: SlubMM, s: KmemCache, n: KmemCacheNode, cpu: int) -> Slab | None:
    """The first slab of the node's partial list for the CPU (ALLOC_FROM_PARTIAL), and the following ones onto
    the CPU's partial list (CPU_PARTIAL_NODE, never draining) until more than cpu_partial_slabs/2 moved."""
    ex = mm.explain
    if not n.nr_partial:
        if ex is not None:
            ex.step("get_partial_node", "empty", cache=s.name, node=s.node.index(n))
        return None
    c = s.cpu_slab[cpu]
    partial = None
    partial_slabs = 0
    if kmem_cache_debug(s):
        for slab in list(n.partial):
            obj = alloc_single_from_partial(mm, s, n, slab, mm.dbg.request or s.object_size)
            if obj:
                mm.dbg.object = obj
                return slab
        return None
    for slab in list(n.partial):
        if ex is not None:
            ex.step("get_partial_node", "take" if partial is None else "to_cpu_partial", cache=s.name,
                    pfn=slab.page.pfn, free=slab.objects - slab.inuse, objects=slab.objects, node=slab.nid,
                    nr_partial=n.nr_partial, moved=partial_slabs + 1, limit=slub_get_cpu_partial(s))
        remove_partial(n, slab)
        if partial is None:
            partial = slab
            stat(c, StatItem.ALLOC_FROM_PARTIAL)
            if slub_get_cpu_partial(s) == 0:
                break
        else:
            put_cpu_partial(mm, s, slab, False, cpu)
            stat(c, StatItem.CPU_PARTIAL_NODE)
            partial_slabs += 1
            if partial_slabs > slub_get_cpu_partial(s) // 2:
                break
    return partial


def get_any_partial(mm: SlubMM, s: KmemCache, flags: int, cpu: int) -> Slab | None:
    """Partial slabs of the nodes in zonelist order from the CPU's node, from a node only when it has more than
    min_partial; tried only when get_cycles() % 1024 is at most remote_node_defrag_ratio."""
    ex = mm.explain
    cycles = mm.get_cycles() if s.remote_node_defrag_ratio else 0
    if not s.remote_node_defrag_ratio or cycles % 1024 > s.remote_node_defrag_ratio:
        if ex is not None:
            ex.step("get_any_partial", "ratio", cache=s.name, ratio=s.remote_node_defrag_ratio, cycles=cycles % 1024)
        return None
    for nid in mm.pa.zonelist_nodes(numa_mem_id(mm, cpu), flags):
        n = s.node[nid]
        if ex is not None:
            ex.step("get_any_partial", "try" if n.nr_partial > s.min_partial else "skip", cache=s.name, node=nid,
                    nr_partial=n.nr_partial, min_partial=s.min_partial, ratio=s.remote_node_defrag_ratio,
                    cycles=cycles % 1024)
        if n.nr_partial > s.min_partial:
            slab = get_partial_node(mm, s, n, cpu)
            if slab is not None:
                return slab
    return None


def get_partial(mm: SlubMM, s: KmemCache, node: int, flags: int, cpu: int) -> Slab | None:
    """The node asked for (the CPU's for NUMA_NO_NODE), then any node unless __GFP_THISNODE binds the request."""
    searchnode = numa_mem_id(mm, cpu) if node == NUMA_NO_NODE else node
    slab = get_partial_node(mm, s, s.node[searchnode], cpu)
    if slab is not None or (node != NUMA_NO_NODE and flags & __GFP_THISNODE):
        if slab is None and mm.explain is not None:
            mm.explain.step("get_partial", "thisnode", cache=s.name, node=node)
        return slab
    return get_any_partial(mm, s, flags, cpu)


def _load_freelist(mm: SlubMM, s: KmemCache, c: KmemCacheCpu, freelist: int) -> int:
    """The ``load_freelist`` label: the first object is returned, the rest becomes the CPU freelist."""
    c.freelist = get_freepointer(mm.mem, s, freelist)
    c.tid = next_tid(c.tid)
    if mm.explain is not None:
        mm.explain.step("___slab_alloc", "load_freelist", cache=s.name, obj=freelist, next=c.freelist, tid=c.tid)
    return freelist


def _new_objects(mm: SlubMM, s: KmemCache, gfpflags: int, node: int, cpu: int) -> int:
    """The ``new_objects`` label: a node partial slab (frozen), else a new slab (ALLOC_SLAB); a request for a
    node first tries that node only (GFP_NOWAIT | __GFP_THISNODE), then anywhere. 0 when out of memory."""
    c = s.cpu_slab[cpu]
    ex = mm.explain
    try_thisnode = True
    while True:
        pc_flags = gfpflags
        if node != NUMA_NO_NODE and not gfpflags & __GFP_THISNODE and try_thisnode:
            pc_flags = GFP_NOWAIT | __GFP_THISNODE
        if ex is not None:
            ex.step("___slab_alloc", "new_objects", cache=s.name, node=node, thisnode=pc_flags != gfpflags)
        slab = get_partial(mm, s, node, pc_flags, cpu)
        if slab is not None and kmem_cache_debug(s):
            obj = mm.dbg.object
            if ex is not None:
                ex.step("___slab_alloc", "debug_partial", cache=s.name, pfn=slab.page.pfn, obj=obj,
                        inuse=slab.inuse, objects=slab.objects)
            track_alloc(mm, s, obj)
            return obj
        if slab is not None:
            freelist = freeze_slab(s, slab)
            if ex is not None:
                ex.step("___slab_alloc", "from_partial", cache=s.name, pfn=slab.page.pfn, obj=freelist,
                        node=slab.nid)
            break
        slab = new_slab(mm, s, pc_flags, node, cpu)
        if slab is None:
            if node != NUMA_NO_NODE and not gfpflags & __GFP_THISNODE and try_thisnode:
                if ex is not None:
                    ex.step("___slab_alloc", "thisnode_failed", cache=s.name, node=node)
                try_thisnode = False
                continue
            if ex is not None:
                ex.step("___slab_alloc", "oom", cache=s.name, node=node)
            return 0
        stat(c, StatItem.ALLOC_SLAB)
        if kmem_cache_debug(s):
            obj = alloc_single_from_new_slab(mm, s, slab, mm.dbg.request or s.object_size)
            if not obj:
                continue
            if ex is not None:
                ex.step("___slab_alloc", "debug_new_slab", cache=s.name, pfn=slab.page.pfn, obj=obj,
                        objects=slab.objects, node=slab.nid)
            track_alloc(mm, s, obj)
            return obj
        if ex is not None:
            ex.step("___slab_alloc", "new_slab", cache=s.name, pfn=slab.page.pfn, objects=slab.objects,
                    obj=slab.freelist, node=slab.nid)
        freelist = slab.freelist
        slab.freelist = 0
        slab.inuse = slab.objects
        slab.frozen = True
        inc_slabs_node(s, slab.nid, slab.objects)
        break
    c.slab = slab
    return _load_freelist(mm, s, c, freelist)


def ___slab_alloc(mm: SlubMM, s: KmemCache, gfpflags: int, node: int, cpu: int) -> int:
    """An object when the CPU freelist cannot give one (ALLOC_SLOWPATH): the cpu slab's own free objects (remote
    frees, ALLOC_REFILL), else a per-CPU partial slab on the right node (CPU_PARTIAL_ALLOC; the others met on
    the way go to their node lists), else a node partial slab or a new slab. 0 when out of memory."""
    c = s.cpu_slab[cpu]
    stat(c, StatItem.ALLOC_SLOWPATH)
    ex = mm.explain
    slab = c.slab
    if slab is not None:
        if not node_match(slab, node):
            stat(c, StatItem.ALLOC_NODE_MISMATCH)
            if ex is not None:
                ex.step("___slab_alloc", "node_mismatch", cache=s.name, pfn=slab.page.pfn, slab_node=slab.nid,
                        node=node)
            freelist = c.freelist
            c.slab, c.freelist = None, 0
            c.tid = next_tid(c.tid)
            deactivate_slab(mm, s, slab, freelist, cpu)
        else:
            freelist = c.freelist
            if freelist:
                if ex is not None:
                    ex.step("___slab_alloc", "cpu_freelist", cache=s.name, pfn=slab.page.pfn, obj=freelist)
                return _load_freelist(mm, s, c, freelist)
            remote = slab.objects - slab.inuse
            freelist = get_freelist(s, slab)
            if freelist:
                stat(c, StatItem.ALLOC_REFILL)
                if ex is not None:
                    ex.step("___slab_alloc", "refill", cache=s.name, pfn=slab.page.pfn, nr=remote, obj=freelist)
                return _load_freelist(mm, s, c, freelist)
            c.slab = None
            c.tid = next_tid(c.tid)
            stat(c, StatItem.DEACTIVATE_BYPASS)
            if ex is not None:
                ex.step("___slab_alloc", "bypass", cache=s.name, pfn=slab.page.pfn, objects=slab.objects)
    elif ex is not None:
        ex.step("___slab_alloc", "no_cpu_slab", cache=s.name, cpu=cpu)
    while (slab := slub_percpu_partial(c)) is not None:
        slub_set_percpu_partial(c, slab)
        if node_match(slab, node):
            c.slab = slab
            if ex is not None:
                ex.step("___slab_alloc", "cpu_partial", cache=s.name, pfn=slab.page.pfn,
                        free=slab.objects - slab.inuse, objects=slab.objects, left=c.partial.slabs if c.partial else 0)
            freelist = get_freelist(s, slab)
            assert freelist, "a per-CPU partial slab without free objects"
            stat(c, StatItem.CPU_PARTIAL_ALLOC)
            return _load_freelist(mm, s, c, freelist)
        if ex is not None:
            ex.step("___slab_alloc", "cpu_partial_other_node", cache=s.name, pfn=slab.page.pfn, slab_node=slab.nid,
                    node=node)
        slab.next = None
        __put_partials(mm, s, slab, cpu)
    return _new_objects(mm, s, gfpflags, node, cpu)


def _slab_free_key(was_frozen: bool, cpu_partial: bool, prior: int, inuse: int, n: KmemCacheNode | None,
                   on_node_partial: bool, min_partial: int) -> str:
    """The branch __slab_free takes, named for ``kslab explain`` (decided by the same values as below)."""
    if n is None:
        if was_frozen:
            return "frozen"
        if cpu_partial and not prior:
            return "to_cpu_partial"
        return "stays"
    if prior and not on_node_partial:
        return "on_cpu_partial"
    if not inuse and n.nr_partial >= min_partial:
        return "discard"
    if not cpu_partial and not prior:
        return "add_partial"
    return "keep_partial"


def __slab_free(mm: SlubMM, s: KmemCache, slab: Slab, head: int, tail: int, cnt: int, cpu: int) -> None:
    """Free ``cnt`` objects (``head``..``tail``, chained) to a slab that is not the CPU's cpu slab
    (FREE_SLOWPATH): a frozen slab only takes them (FREE_FROZEN); a full one goes to the CPU's partial list
    (CPU_PARTIAL_FREE, draining it when full); an emptied slab on its node's partial list is discarded when the
    node has min_partial partial slabs (FREE_REMOVE_PARTIAL, FREE_SLAB); a slab on a per-CPU partial list
    stays there."""
    c = s.cpu_slab[cpu]
    stat(c, StatItem.FREE_SLOWPATH)
    if kmem_cache_debug(s):
        free_to_partial_list(mm, s, slab, head, tail, cnt, cpu)
        return
    cpu_partial = kmem_cache_has_cpu_partial(mm, s)
    prior = slab.freelist
    set_freepointer(mm.mem, s, tail, prior)
    was_frozen = slab.frozen
    inuse = slab.inuse - cnt
    n = None
    on_node_partial = False
    if (not inuse or not prior) and not was_frozen and (not cpu_partial or prior):
        n = s.node[slab.nid]
        on_node_partial = slab.node_partial
    slab.freelist = head
    slab.inuse = inuse
    ex = mm.explain
    if ex is not None:
        key = _slab_free_key(was_frozen, cpu_partial, prior, inuse, n, on_node_partial, s.min_partial)
        ex.step("__slab_free", key, cache=s.name, pfn=slab.page.pfn, nr=cnt, inuse=inuse, objects=slab.objects,
                node=slab.nid, nr_partial=s.node[slab.nid].nr_partial, min_partial=s.min_partial, obj=head,
                prior=bool(prior))
    if n is None:
        if was_frozen:
            stat(c, StatItem.FREE_FROZEN)
        elif cpu_partial and not prior:
            put_cpu_partial(mm, s, slab, True, cpu)
            stat(c, StatItem.CPU_PARTIAL_FREE)
        return
    if prior and not on_node_partial:
        return
    if not inuse and n.nr_partial >= s.min_partial:
        if prior:
            remove_partial(n, slab)
            stat(c, StatItem.FREE_REMOVE_PARTIAL)
        stat(c, StatItem.FREE_SLAB)
        discard_slab(mm, s, slab, cpu)
        return
    if not cpu_partial and not prior:
        add_partial(n, slab, DEACTIVATE_TO_TAIL)
        stat(c, StatItem.FREE_ADD_PARTIAL)

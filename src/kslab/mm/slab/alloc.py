"""The allocation paths.

Mirrors mm/slab.c: ``____cache_alloc``, ``cache_alloc_refill``, ``alloc_block``,
``transfer_objects``, ``cache_alloc_pfmemalloc``, ``____cache_alloc_node``, ``fallback_alloc``,
``alternate_node_alloc``, ``__do_cache_alloc``, ``slab_alloc``, ``slab_alloc_node``,
``kmem_cache_alloc``, ``kmem_cache_alloc_node``, ``kmem_cache_alloc_bulk``.
"""

from __future__ import annotations

from ..gfp import __GFP_NOFAIL, __GFP_NOWARN, __GFP_RECLAIM, __GFP_THISNODE, __GFP_ZERO
from ..page import Page
from ..slab_def import (
    BATCHREFILL_LIMIT,
    SLAB_MEM_SPREAD,
    SLAB_POISON,
    SLAB_TYPESAFE_BY_RCU,
    ArrayCache,
    KmemCache,
    KmemCacheNode,
)
from . import debug
from .grow import cache_grow_begin, cache_grow_end, fixup_slab_list, slab_get_obj
from .hits import array_alloc_hit
from .node import get_first_slab

KERNEL_SYMBOLS = ("gfp_exact_node", "transfer_objects", "alloc_block", "cache_alloc_refill", "____cache_alloc",
                  "cache_alloc_pfmemalloc", "____cache_alloc_node", "fallback_alloc", "alternate_node_alloc",
                  "mempolicy_slab_node", "__do_cache_alloc", "slab_want_init_on_alloc", "slab_alloc",
                  "slab_alloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node", "kmem_cache_alloc_bulk")


def gfp_exact_node(flags: int) -> int:
    return (flags | __GFP_THISNODE | __GFP_NOWARN) & ~(__GFP_RECLAIM | __GFP_NOFAIL)


def transfer_objects(to: ArrayCache, frm: ArrayCache, max_: int) -> int:
    """Move the top ``nr`` entries of ``frm`` onto ``to`` (order kept)."""
    nr = min(len(frm.entry), max_, to.limit - len(to.entry))
    if nr <= 0:
        return 0
    src = frm.entry
    to.entry.extend(src[len(src) - nr:])
    del src[len(src) - nr:]
    return nr


def alloc_block(cachep: KmemCache, ac: ArrayCache, page: Page, batchcount: int) -> int:
    """Move objects from ``page`` into ``ac`` until the slab or the batch runs out."""
    num = cachep.num
    stats = cachep.stats
    entry = ac.entry
    fl = page.fl
    assert fl is not None
    s_mem = page.s_mem
    size = cachep.size
    if cachep.k.explain is not None:
        node_lists = cachep.node[page.nid]
        src = ("partial" if node_lists is not None and page.on_list is node_lists.slabs_partial
               else "free" if node_lists is not None and page.on_list is node_lists.slabs_free else "new")
        cachep.k.explain.step("alloc_block", "take", cache=cachep.name, pfn=page.pfn, active=page.active, num=num,
                              batch=batchcount, src=src)
    while page.active < num:
        if batchcount == 0:
            return -1  # the kernel's post-decrement leaves -1 when the batch ran out first
        batchcount -= 1
        stats.num_allocations += 1
        stats.num_active += 1
        if stats.num_active > stats.high_mark:
            stats.high_mark = stats.num_active
        entry.append(s_mem + size * fl[page.active])
        page.active += 1
    return batchcount


def cache_alloc_pfmemalloc(cachep: KmemCache, n: KmemCacheNode, flags: int) -> int:
    from ..gfp import __GFP_MEMALLOC, __GFP_NOMEMALLOC  # noqa: PLC0415
    # gfp_pfmemalloc_allowed(): __GFP_NOMEMALLOC is checked first and always wins
    if not flags & __GFP_MEMALLOC or flags & __GFP_NOMEMALLOC:
        return 0
    node = cachep.node[cachep.k.numa_node]
    assert node is not None
    page = get_first_slab(node, True, True)
    if page is None:
        return 0
    obj = slab_get_obj(cachep, page)
    node.free_objects -= 1
    fixup_slab_list(cachep, node, page)
    return obj


def cache_alloc_refill(cachep: KmemCache, flags: int) -> int:
    """Refill this CPU's empty array from the shared array, the node's slabs, or a new slab."""
    k = cachep.k
    node = k.numa_node
    ac = cachep.cpu_cache[k.cpu]
    batchcount = ac.batchcount
    ex = k.explain
    if not ac.touched and batchcount > BATCHREFILL_LIMIT:
        batchcount = BATCHREFILL_LIMIT
    n = cachep.node[node]
    if n is None or ac.entry:
        k.bug(f"kernel BUG at mm/slab.c: cache_alloc_refill: {cachep.name}: array not empty or no node {node}",
              "cache_alloc_refill")
    if ex is not None:
        ex.step("cache_alloc_refill", "refill", cache=cachep.name, batch=batchcount, touched=ac.touched,
                free_objects=n.free_objects, shared=len(n.shared.entry) if n.shared else -1)
    shared = n.shared
    hooks = k.replay_hooks
    if hooks.race_grow is cachep:
        # another CPU's new slab reached the node after this CPU looked: it found nothing (a replay
        # follows the interleaving of CPUs that a trace shows; see ReplayHooks.race_grow)
        hooks.race_grow = None
        if ex is not None:
            ex.step("cache_alloc_refill", "raced", cache=cachep.name, free_objects=n.free_objects)
    elif n.free_objects or (shared is not None and shared.entry):
        if shared is not None and transfer_objects(ac, shared, batchcount):
            shared.touched = 1
            cachep.paths.refill_shared += 1
            if ex is not None:
                ex.step("cache_alloc_refill", "refill_shared", cache=cachep.name, nr=len(ac.entry),
                        shared=len(shared.entry))
        else:
            partial = n.slabs_partial
            free = n.slabs_free
            while batchcount > 0:
                page = partial.lru_next
                if page is partial:
                    n.free_touched = 1
                    page = free.lru_next
                    if page is free:
                        break
                    n.free_slabs -= 1
                if k.sk_memalloc_socks:
                    page = _valid_first(n, page)
                    if page is None:
                        break
                batchcount = alloc_block(cachep, ac, page, batchcount)
                fixup_slab_list(cachep, n, page)
            n.free_objects -= len(ac.entry)
            if ac.entry:
                cachep.paths.refill_slab += 1
                cachep.paths.refill_objects += len(ac.entry)
                if ex is not None:
                    ex.step("cache_alloc_refill", "refill_slabs", cache=cachep.name, nr=len(ac.entry),
                            free_objects=n.free_objects)
    if not ac.entry:
        if k.sk_memalloc_socks:
            obj = cache_alloc_pfmemalloc(cachep, n, flags)
            if obj:
                return obj
        if ex is not None:
            ex.step("cache_alloc_refill", "must_grow", cache=cachep.name, node=node)
        page = cache_grow_begin(cachep, gfp_exact_node(flags), node)
        ac = cachep.cpu_cache[k.cpu]
        if not ac.entry and page is not None:
            alloc_block(cachep, ac, page, batchcount)
        cache_grow_end(cachep, page)
        if not ac.entry:
            return 0
    ac.touched = 1
    return ac.entry.pop()


def _valid_first(n: KmemCacheNode, page: Page) -> Page | None:
    from .node import get_valid_first_slab  # noqa: PLC0415
    return get_valid_first_slab(n, page, False)


def ____cache_alloc(cachep: KmemCache, flags: int) -> int:
    """Per-CPU fast path: pop the hottest object, or refill."""
    k = cachep.k
    ac = cachep.cpu_cache[k.cpu]
    if ac.entry:
        obj = array_alloc_hit(cachep, ac)
        if k.explain is not None:
            k.explain.step("____cache_alloc", "alloc_hit", cache=cachep.name, obj=obj, avail=len(ac.entry))
        return obj
    cachep.stats.allocmiss += 1
    cachep.paths.alloc_miss += 1
    if k.explain is not None:
        k.explain.step("____cache_alloc", "alloc_miss", cache=cachep.name)
    return cache_alloc_refill(cachep, flags)


def ____cache_alloc_node(cachep: KmemCache, flags: int, nodeid: int) -> int:
    """Take one object straight from ``nodeid``'s slabs (bypassing the per-CPU array)."""
    k = cachep.k
    n = cachep.node[nodeid]
    if n is None:
        k.bug(f"kernel BUG at mm/slab.c: ____cache_alloc_node: {cachep.name} has no node {nodeid}",
              "____cache_alloc_node")
    cachep.paths.node_alloc += 1
    page = get_first_slab(n, False, k.sk_memalloc_socks)
    if page is not None:
        st = cachep.stats
        st.node_allocs += 1
        st.num_active += 1
        if st.num_active > st.high_mark:
            st.high_mark = st.num_active
        obj = slab_get_obj(cachep, page)
        n.free_objects -= 1
        fixup_slab_list(cachep, n, page)
        if k.explain is not None:
            k.explain.step("____cache_alloc_node", "node_alloc", cache=cachep.name, node=nodeid, obj=obj)
        return obj
    page = cache_grow_begin(cachep, gfp_exact_node(flags), nodeid)
    obj = slab_get_obj(cachep, page) if page is not None else 0
    cache_grow_end(cachep, page)
    return obj or fallback_alloc(cachep, flags)


def mempolicy_slab_node(cachep: KmemCache) -> int:
    k = cachep.k
    node = k.numa_node
    pol = k.current_policy()
    if pol is None or k.in_interrupt:
        return node
    return pol.slab_node(k, node)


def fallback_alloc(cachep: KmemCache, flags: int) -> int:
    """Try every node with free objects in zonelist order, then grow with the caller's flags."""
    k = cachep.k
    if flags & __GFP_THISNODE:
        return 0
    cachep.paths.fallback_alloc += 1
    if k.explain is not None:
        k.explain.step("fallback_alloc", "fallback", cache=cachep.name)
    for _ in range(4):
        for nid in k.page_alloc.zonelist_nodes(mempolicy_slab_node(cachep), flags):
            n = cachep.node[nid] if nid < len(cachep.node) else None
            if n is not None and n.free_objects:
                obj = ____cache_alloc_node(cachep, gfp_exact_node(flags), nid)
                if obj:
                    return obj
        page = cache_grow_begin(cachep, flags, k.numa_node)
        cache_grow_end(cachep, page)
        if page is None:
            return 0
        obj = ____cache_alloc_node(cachep, gfp_exact_node(flags), page.nid)
        if obj:
            return obj
    return 0


def alternate_node_alloc(cachep: KmemCache, flags: int) -> int:
    k = cachep.k
    if k.in_interrupt or flags & __GFP_THISNODE:
        return 0
    nid_here = k.numa_node
    nid_alloc = nid_here
    if k.cpuset_slab_spread and cachep.flags & SLAB_MEM_SPREAD:
        nid_alloc = k.cpuset_slab_spread_node()
    elif k.current_policy() is not None:
        nid_alloc = mempolicy_slab_node(cachep)
    if nid_alloc != nid_here:
        cachep.paths.alternate_node_alloc += 1
        if k.explain is not None:
            k.explain.step("alternate_node_alloc", "alternate", cache=cachep.name, node=nid_alloc, here=nid_here)
        return ____cache_alloc_node(cachep, flags, nid_alloc)
    return 0


def __do_cache_alloc(cachep: KmemCache, flags: int) -> int:
    k = cachep.k
    if k.topo.numa:
        if k.current_policy() is not None or k.cpuset_slab_spread:
            obj = alternate_node_alloc(cachep, flags)
            if obj:
                return obj
        obj = ____cache_alloc(cachep, flags)
        if not obj:
            obj = ____cache_alloc_node(cachep, flags, k.numa_node)
        return obj
    return ____cache_alloc(cachep, flags)


def slab_want_init_on_alloc(cachep: KmemCache, flags: int) -> bool:
    if cachep.k.config.init_on_alloc:
        if cachep.ctor:
            return False
        if cachep.flags & (SLAB_TYPESAFE_BY_RCU | SLAB_POISON):
            return bool(flags & __GFP_ZERO)
        return True
    return bool(flags & __GFP_ZERO)


def _post_alloc(cachep: KmemCache, objp: int, flags: int, caller: int) -> int:
    k = cachep.k
    if not objp:
        cachep.paths.alloc_failed += 1
        if k.explain is not None:
            k.explain.step("slab_alloc", "failed", cache=cachep.name)
        return 0
    cachep.paths.alloc += 1
    if k.debug:
        objp = debug.cache_alloc_debugcheck_after(cachep, flags, objp, caller)
    # slab_want_init_on_alloc() is false unless __GFP_ZERO or init_on_alloc: skip the call then
    if (flags & __GFP_ZERO or k.config.init_on_alloc) and slab_want_init_on_alloc(cachep, flags):
        k.memory.memset(objp, 0, cachep.object_size)
        if k.explain is not None:
            k.explain.step("slab_alloc", "init_on_alloc", cache=cachep.name, obj=objp, object_size=cachep.object_size)
    if k.explain is not None:
        k.explain.step("slab_alloc", "done", cache=cachep.name, obj=objp)
    return objp


def slab_alloc(cachep: KmemCache, flags: int, caller: int = 0) -> int:
    """Allocate one object on the current CPU; 0 (NULL) on failure."""
    k = cachep.k
    if k.explain is None:
        if not k.policies and not k.cpuset_slab_spread:
            # The common case, with __do_cache_alloc() (no mempolicy, no spreading: no
            # alternate_node_alloc) and ____cache_alloc()'s per-CPU hit inlined.
            ac = cachep.cpu_cache[k.cpu]
            if ac.entry:
                return _post_alloc(cachep, array_alloc_hit(cachep, ac), flags, caller)
    else:
        k.explain.step("slab_alloc", "entry", cache=cachep.name, flags=flags, cpu=k.cpu, node=k.numa_node)
    objp = __do_cache_alloc(cachep, flags)
    return _post_alloc(cachep, objp, flags, caller)


def slab_alloc_node(cachep: KmemCache, flags: int, nodeid: int, caller: int = 0) -> int:
    k = cachep.k
    if nodeid == -1:
        nodeid = k.numa_node
    if k.explain is None and nodeid == k.numa_node and nodeid < len(cachep.node) and cachep.node[nodeid] is not None:
        # the local node: ____cache_alloc()'s per-CPU hit inlined
        ac = cachep.cpu_cache[k.cpu]
        if ac.entry:
            return _post_alloc(cachep, array_alloc_hit(cachep, ac), flags, caller)
    if k.explain is not None:
        k.explain.step("slab_alloc_node", "entry", cache=cachep.name, flags=flags, cpu=k.cpu, node=nodeid,
                       here=k.numa_node)
    if nodeid >= len(cachep.node) or nodeid < 0 or cachep.node[nodeid] is None:
        ptr = fallback_alloc(cachep, flags)
    else:
        ptr = 0
        if nodeid == k.numa_node:
            ptr = ____cache_alloc(cachep, flags)
        if not ptr:
            ptr = ____cache_alloc_node(cachep, flags, nodeid)
    return _post_alloc(cachep, ptr, flags, caller)


def kmem_cache_alloc(cachep: KmemCache, flags: int, caller: int = 0, internal: str = "") -> int:
    ret = slab_alloc(cachep, flags, caller)
    k = cachep.k
    if k.event_hook is not None:
        k.event_hook("kmem_cache_alloc", cachep, ret, cachep.object_size, flags, -1, internal)
    return ret


def kmem_cache_alloc_node(cachep: KmemCache, flags: int, nodeid: int, caller: int = 0, internal: str = "") -> int:
    ret = slab_alloc_node(cachep, flags, nodeid, caller)
    k = cachep.k
    if k.event_hook is not None:
        k.event_hook("kmem_cache_alloc_node", cachep, ret, cachep.object_size, flags, nodeid, internal)
    return ret


def kmem_cache_alloc_bulk(cachep: KmemCache, flags: int, size: int, p: list[int], caller: int = 0) -> int:
    """Allocate ``size`` objects into ``p``; on failure free what was taken and return 0."""
    from .free import kmem_cache_free  # noqa: PLC0415
    got: list[int] = []
    for _ in range(size):
        objp = __do_cache_alloc(cachep, flags)
        if not objp:
            for o in got:
                kmem_cache_free(cachep, o)
            return 0
        got.append(_post_alloc(cachep, objp, flags, caller))
    p.extend(got)
    return size


"""The free paths, every branch of the seed's walk through ``kfree``.

Mirrors mm/slab.c: ``kfree``, ``kmem_cache_free``, ``__cache_free``, ``___cache_free``,
``cache_free_alien``, ``__cache_free_alien``, ``__drain_alien_cache``, ``__free_one``,
``cache_flusharray``, ``cache_free_pfmemalloc``, ``kmem_cache_free_bulk``, ``kfree_bulk``;
mm/slab.h: ``cache_from_obj``, ``virt_to_cache``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..page import Page, PG_active, PG_slab, virt_to_pfn
from ..slab_def import ZERO_SIZE_PTR, ArrayCache, KmemCache
from . import debug
from .alloc import transfer_objects
from .geometry import slab_want_init_on_free
from .grow import slabs_destroy
from .hits import count_free_hit, count_free_miss
from .node import free_block

if TYPE_CHECKING:
    from ..kernel import Kernel

KERNEL_SYMBOLS = ("virt_to_cache", "cache_from_obj", "__free_one", "__drain_alien_cache", "__cache_free_alien",
                  "cache_free_alien", "cache_flusharray", "cache_free_pfmemalloc", "___cache_free", "__cache_free",
                  "kmem_cache_free", "kfree", "kmem_cache_free_bulk", "kfree_bulk")


def virt_to_cache(k: Kernel, objp: int) -> KmemCache | None:
    """The cache of a slab object, or None (with the kernel's one-time warning) for a non-slab page."""
    page = k.mem_map.virt_to_head_page(objp)
    ex = k.explain
    if ex is not None:
        raw = k.mem_map.virt_to_page(objp)
        if raw is None:
            ex.step("virt_to_head_page", "free_page", obj=objp, pfn=virt_to_pfn(objp))
        elif raw.compound_head & 1:
            assert page is not None  # a tail page always has its head (MemMap.compound_head)
            ex.step("compound_head", "tail", obj=objp, pfn=raw.pfn, word=raw.compound_head, head_pfn=page.pfn,
                    order=page.compound_order)
        else:
            ex.step("compound_head", "head", obj=objp, pfn=raw.pfn, word=raw.compound_head,
                    order=raw.compound_order)
    if page is None or not page.flags & (1 << PG_slab):
        k.warn_once("virt_to_cache", "virt_to_cache: Object is not a Slab page!", objp,
                    kind="not_slab", check="virt_to_cache")
        if k.explain is not None:
            k.explain.step("virt_to_cache", "not_slab", obj=objp)
        return None
    if ex is not None:
        ex.step("virt_to_cache", "slab_page", obj=objp, pfn=page.pfn, order=page.compound_order,
                cache=page.slab_cache.name if page.slab_cache is not None else None)
    return page.slab_cache


def cache_from_obj(s: KmemCache, x: int) -> KmemCache | None:
    k = s.k
    if not k.config.CONFIG_SLAB_FREELIST_HARDENED:
        return s
    cachep = virt_to_cache(k, x)
    if cachep is not None and cachep is not s:
        from .debug import last_user  # noqa: PLC0415
        k.warn(f"cache_from_obj: Wrong slab cache. {s.name} but object is from {cachep.name}", x,
               kind="wrong_cache", check="cache_from_obj", cachep=cachep,
               last_user=last_user(cachep, x - cachep.obj_offset))
    return cachep


def __free_one(ac: ArrayCache, objp: int, cachep: KmemCache) -> bool:
    """Push ``objp``; with FREELIST_HARDENED drop an immediate second free of the same pointer."""
    entry = ac.entry
    k = cachep.k
    if k.config.CONFIG_SLAB_FREELIST_HARDENED and entry and entry[-1] == objp:
        # WARN_ON_ONCE() has no text of its own: the kernel prints only where it fired
        k.warn_once("__free_one", f"WARNING: CPU: {k.cpu} at mm/slab.c:596 __free_one", objp + cachep.obj_offset,
                    kind="double_free", check="__free_one", cachep=cachep)
        cachep.paths.hardened_drop += 1
        if k.explain is not None:
            k.explain.step("__free_one", "hardened_drop", cache=cachep.name, obj=objp)
        return False
    entry.append(objp)
    if k.explain is not None:
        k.explain.step("__free_one", "push", cache=cachep.name, obj=objp, avail=len(entry), limit=ac.limit,
                       node=ac.node)
    return True


def __drain_alien_cache(cachep: KmemCache, ac: ArrayCache, node: int, lst: list[Page]) -> None:
    """Empty an alien array into its home node: its shared array first, then free_block."""
    n = cachep.node[node]
    assert n is not None
    if ac.entry:
        moved = 0
        if n.shared is not None:
            moved = transfer_objects(n.shared, ac, ac.limit)
        rest = len(ac.entry)
        cachep.paths.alien_drained_objects += moved + rest
        if cachep.k.explain is not None:
            cachep.k.explain.step("__drain_alien_cache", "alien_drain", cache=cachep.name, node=node,
                                  to_shared=moved, to_slabs=rest)
        free_block(cachep, ac.entry, rest, node, lst)
        ac.entry.clear()


def __cache_free_alien(cachep: KmemCache, objp: int, node: int, page_node: int) -> int:
    k = cachep.k
    n = cachep.node[node]
    assert n is not None
    cachep.stats.node_frees += 1
    cachep.paths.alien_free += 1
    lst: list[Page] = []
    ex = k.explain
    alien = n.alien[page_node] if n.alien is not None else None
    if alien is not None:
        if len(alien.entry) == alien.limit:
            cachep.stats.node_overflow += 1
            cachep.paths.alien_overflow += 1
            if ex is not None:
                ex.step("__cache_free_alien", "alien_overflow", cache=cachep.name, node=node, page_node=page_node,
                        avail=len(alien.entry), limit=alien.limit)
            __drain_alien_cache(cachep, alien, page_node, lst)
        elif ex is not None:
            ex.step("__cache_free_alien", "alien_stage", cache=cachep.name, node=node, page_node=page_node,
                    avail=len(alien.entry), limit=alien.limit)
        __free_one(alien, objp, cachep)
        slabs_destroy(cachep, lst)
    else:
        cachep.paths.alien_direct += 1
        if ex is not None:
            ex.step("__cache_free_alien", "alien_direct", cache=cachep.name, page_node=page_node)
        free_block(cachep, [objp], 1, page_node, lst)
        slabs_destroy(cachep, lst)
    return 1


def cache_free_alien(cachep: KmemCache, objp: int) -> int:
    k = cachep.k
    page = k.mem_map.virt_to_head_page(objp)
    page_node = page.nid if page is not None else k.numa_node
    node = k.numa_node
    if node == page_node:
        if k.explain is not None:
            k.explain.step("cache_free_alien", "local", cache=cachep.name, obj=objp, node=node, page_node=page_node)
        return 0
    if k.explain is not None:
        k.explain.step("cache_free_alien", "alien", cache=cachep.name, obj=objp, node=node, page_node=page_node)
    return __cache_free_alien(cachep, objp, node, page_node)


def cache_flusharray(cachep: KmemCache, ac: ArrayCache) -> None:
    """The per-CPU array is full: move its ``batchcount`` oldest objects to the shared array if it
    has room, else back to their slabs with free_block."""
    k = cachep.k
    batchcount = ac.batchcount
    node = k.numa_node
    n = cachep.node[node]
    assert n is not None
    lst: list[Page] = []
    ex = k.explain
    shared = n.shared
    done = False
    if shared is not None:
        room = shared.limit - len(shared.entry)
        if room:
            if batchcount > room:
                batchcount = room
            shared.entry.extend(ac.entry[:batchcount])
            cachep.paths.flush_shared += 1
            cachep.paths.flush_shared_objects += batchcount
            if ex is not None:
                ex.step("cache_flusharray", "flush_shared", cache=cachep.name, room=room, nr=batchcount,
                        shared=len(shared.entry), limit=shared.limit)
            done = True
        elif ex is not None:
            ex.step("cache_flusharray", "shared_full", cache=cachep.name, limit=shared.limit)
    elif ex is not None:
        ex.step("cache_flusharray", "no_shared", cache=cachep.name)
    if not done:
        cachep.paths.flush_free_block += 1
        cachep.paths.flush_free_block_objects += batchcount
        if ex is not None:
            ex.step("cache_flusharray", "flush_free_block", cache=cachep.name, nr=batchcount)
        free_block(cachep, ac.entry, batchcount, node, lst)
    # STATS: max_freeable = number of free slabs on this node after the flush
    nfree = len(n.slabs_free)
    if nfree > cachep.stats.max_freeable:
        cachep.stats.max_freeable = nfree
    del ac.entry[:batchcount]
    if ex is not None:
        ex.step("cache_flusharray", "slide", cache=cachep.name, nr=batchcount, avail=len(ac.entry), limit=ac.limit)
    slabs_destroy(cachep, lst)


def cache_free_pfmemalloc(cachep: KmemCache, page: Page, objp: int) -> None:
    lst: list[Page] = []
    cachep.paths.pfmemalloc_free += 1
    free_block(cachep, [objp], 1, page.nid, lst)
    slabs_destroy(cachep, lst)


def ___cache_free(cachep: KmemCache, objp: int, caller: int) -> None:
    k = cachep.k
    ac = cachep.cpu_cache[k.cpu]
    ex = k.explain
    if ex is None and not k.debug and not k.sk_memalloc_socks:
        config = k.config
        if not config.init_on_free:
            # The common case (no explain, no debug, no init_on_free, no pfmemalloc), with
            # cache_free_alien()'s local test and __free_one()'s push inlined.
            cachep.paths.free += 1
            if k.numa_multi:
                page = k.mem_map.virt_to_head_page(objp)
                page_node = page.nid if page is not None else k.numa_node
                if page_node != k.numa_node:
                    __cache_free_alien(cachep, objp, k.numa_node, page_node)
                    return
            entry = ac.entry
            if len(entry) < ac.limit:
                count_free_hit(cachep)
            else:
                count_free_miss(cachep)
                cache_flusharray(cachep, ac)
            if config.CONFIG_SLAB_FREELIST_HARDENED and entry and entry[-1] == objp:
                __free_one(ac, objp, cachep)  # the hardened check's warning
            else:
                entry.append(objp)
            return
    if k.config.init_on_free and slab_want_init_on_free(k, cachep):
        k.memory.memset(objp, 0, cachep.object_size)
        if ex is not None:
            ex.step("___cache_free", "init_on_free", cache=cachep.name, obj=objp, object_size=cachep.object_size,
                    size=cachep.size)
    if ex is not None and k.config.init_on_free and not slab_want_init_on_free(k, cachep):
        ex.step("___cache_free", "init_on_free_skip", cache=cachep.name, ctor=bool(cachep.ctor),
                flags=cachep.flags)
    if k.debug:
        objp = debug.cache_free_debugcheck(cachep, objp, caller)
        if ex is not None:
            ex.step("___cache_free", "debugcheck", cache=cachep.name, obj=objp)
    cachep.paths.free += 1
    if ex is not None and not k.numa_multi:
        ex.step("___cache_free", "one_node", cache=cachep.name, nodes=len(k.topo.online_nodes))
    if k.numa_multi and cache_free_alien(cachep, objp):
        return
    if len(ac.entry) < ac.limit:
        count_free_hit(cachep)
        if ex is not None:
            ex.step("___cache_free", "freehit", cache=cachep.name, obj=objp, avail=len(ac.entry), limit=ac.limit)
    else:
        count_free_miss(cachep)
        if ex is not None:
            ex.step("___cache_free", "freemiss", cache=cachep.name, obj=objp, avail=len(ac.entry), limit=ac.limit)
        cache_flusharray(cachep, ac)
    if k.sk_memalloc_socks:
        page = k.mem_map.virt_to_head_page(objp)
        if page is not None and page.flags & (1 << PG_active):
            if ex is not None:
                ex.step("___cache_free", "pfmemalloc", cache=cachep.name, obj=objp, pfn=page.pfn, node=page.nid)
            cache_free_pfmemalloc(cachep, page, objp)
            return
    __free_one(ac, objp, cachep)


def __cache_free(cachep: KmemCache, objp: int, caller: int) -> None:
    if cachep.k.explain is not None:
        cachep.k.explain.step("__cache_free", "hooks", cache=cachep.name, obj=objp)
    ___cache_free(cachep, objp, caller)


def kmem_cache_free(cachep: KmemCache, objp: int, caller: int = 0, internal: str = "") -> None:
    """Free ``objp`` to ``cachep`` (the trace event comes after the free)."""
    k = cachep.k
    if not objp:
        k.bug(f"BUG: kernel NULL pointer dereference: kmem_cache_free({cachep.name}, NULL)", "kmem_cache_free")
    if k.explain is not None:
        k.explain.step("kmem_cache_free", "entry", cache=cachep.name, obj=objp, cpu=k.cpu, node=k.numa_node)
    real = cache_from_obj(cachep, objp)
    if real is None:
        return
    if k.explain is not None:
        k.explain.step("kmem_cache_free", "enter", cache=real.name, obj=objp)
    __cache_free(real, objp, caller)
    if k.event_hook is not None:
        k.event_hook("kmem_cache_free", real, objp, 0, 0, -1, internal)


def kfree(k: Kernel, objp: int, caller: int = 0, internal: str = "") -> None:
    """Free a kmalloc'd (or any slab) object; NULL and ZERO_SIZE_PTR are ignored after the event."""
    if k.event_hook is not None:
        k.event_hook("kfree", None, objp, 0, 0, -1, internal)
    ex = k.explain
    if ex is not None:
        ex.step("kfree", "entry", obj=objp, cpu=k.cpu, node=k.numa_node)
    if objp <= ZERO_SIZE_PTR:
        if ex is not None:
            ex.step("kfree", "null", obj=objp)
        return
    if k.debug:
        debug.kfree_debugcheck(k, objp)
    if ex is None:
        # nothing to explain: virt_to_cache() and __cache_free() inlined for a slab page
        page = k.mem_map.virt_to_head_page(objp)
        if page is not None and page.flags & (1 << PG_slab):
            c = page.slab_cache
            if c is not None:
                ___cache_free(c, objp, caller)
            return
    c = virt_to_cache(k, objp)
    if c is None:
        return
    if ex is not None:
        ex.step("kfree", "enter", cache=c.name, obj=objp)
    __cache_free(c, objp, caller)


def kmem_cache_free_bulk(s: KmemCache | None, size: int, p: list[int], k: Kernel | None = None,
                         caller: int = 0) -> None:
    for objp in p[:size]:
        if s is None:
            assert k is not None  # kfree_bulk() passes the kernel
            c = virt_to_cache(k, objp)
        else:
            c = cache_from_obj(s, objp)
        if c is None:
            continue
        __cache_free(c, objp, caller)


def kfree_bulk(k: Kernel, size: int, p: list[int], caller: int = 0) -> None:
    kmem_cache_free_bulk(None, size, p, k, caller)

"""Slab management and growth: pages in, objects laid out, pages out.

Mirrors mm/slab.c: ``kmem_getpages``, ``kmem_freepages``, ``alloc_slabmgmt``, ``cache_init_objs``,
``slab_get_obj``, ``slab_put_obj``, ``cache_grow_begin``, ``cache_grow_end``, ``slab_destroy``,
``slabs_destroy``, ``kmem_rcu_free``, ``index_to_obj``, ``obj_to_index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import PAGE_SIZE
from ..errors import KernelBug
from ..gfp import (
    __GFP_HARDWALL,
    __GFP_NOWARN,
    __GFP_THISNODE,
    __GFP_ZERO,
    GFP_CONSTRAINT_MASK,
    GFP_RECLAIM_MASK,
    GFP_SLAB_BUG_MASK,
    show_gfp_flags,
)
from ..list import list_del
from ..page import Page, PG_active, PG_slab
from ..slab_def import CFLGS_OBJFREELIST_SLAB, CFLGS_OFF_SLAB, SLAB_RECLAIM_ACCOUNT, SLAB_TYPESAFE_BY_RCU, KmemCache
from . import debug, freelist_random

if TYPE_CHECKING:
    from ..slab_def import KmemCacheNode

KERNEL_SYMBOLS = ("kmem_getpages", "kmem_freepages", "alloc_slabmgmt", "cache_init_objs", "index_to_obj",
                  "obj_to_index", "slab_get_obj", "slab_put_obj", "cache_grow_begin", "cache_grow_end",
                  "fixup_slab_list", "slab_destroy", "slabs_destroy", "kmem_rcu_free", "kmalloc_fix_flags")


def index_to_obj(cachep: KmemCache, page: Page, idx: int) -> int:
    return page.s_mem + cachep.size * idx


def obj_to_index(cachep: KmemCache, page: Page, obj: int) -> int:
    """reciprocal_divide(obj - s_mem, reciprocal_buffer_size): exact floor division here."""
    return (obj - page.s_mem) // cachep.size


def kmalloc_fix_flags(cachep: KmemCache, flags: int) -> int:
    invalid = flags & GFP_SLAB_BUG_MASK
    flags &= ~GFP_SLAB_BUG_MASK
    cachep.k.printk(f"Unexpected gfp: {invalid:#x} ({show_gfp_flags(invalid)}). Fixing up to gfp: {flags:#x} "
                    f"({show_gfp_flags(flags)}). Fix your code!")
    return flags


def kmem_getpages(cachep: KmemCache, flags: int, nodeid: int) -> Page | None:
    """Allocate the pages of one slab from the buddy allocator and mark them PG_slab."""
    k = cachep.k
    flags |= cachep.allocflags
    page = k.page_alloc.alloc_pages_node(nodeid, flags, cachep.gfporder, k.cpu)
    if page is None:
        if k.config.CONFIG_DEBUG_SLAB and not flags & __GFP_NOWARN:
            debug.slab_out_of_memory(cachep, flags, nodeid)
        return None
    nbytes = PAGE_SIZE << cachep.gfporder
    k.page_alloc.mod_node_page_state(
        page.nid, "NR_SLAB_RECLAIMABLE_B" if cachep.flags & SLAB_RECLAIM_ACCOUNT else "NR_SLAB_UNRECLAIMABLE_B",
        nbytes)
    page.flags |= 1 << PG_slab
    if k.sk_memalloc_socks and k.page_alloc.page_is_pfmemalloc(page):
        page.flags |= 1 << PG_active
    if k.explain is not None:
        k.explain.step("kmem_getpages", "pages", cache=cachep.name, pfn=page.pfn, order=cachep.gfporder,
                       node=page.nid, counter="NR_SLAB_RECLAIMABLE_B" if cachep.flags & SLAB_RECLAIM_ACCOUNT
                       else "NR_SLAB_UNRECLAIMABLE_B", bytes=nbytes)
    return page


def kmem_freepages(cachep: KmemCache, page: Page) -> None:
    """Give a slab's pages back to the buddy allocator."""
    k = cachep.k
    if not page.flags & (1 << PG_slab):
        raise KernelBug("kernel BUG at mm/slab.c: kmem_freepages: page is not PageSlab", function="kmem_freepages",
                        cache=cachep.name)
    page.flags &= ~((1 << PG_slab) | (1 << PG_active))
    page.active = -1  # page_mapcount_reset
    page.slab_cache = None
    page.mapping = None
    page.fl = None
    nbytes = PAGE_SIZE << cachep.gfporder
    k.page_alloc.mod_node_page_state(
        page.nid, "NR_SLAB_RECLAIMABLE_B" if cachep.flags & SLAB_RECLAIM_ACCOUNT else "NR_SLAB_UNRECLAIMABLE_B",
        -nbytes)
    if k.explain is not None:
        k.explain.step("kmem_freepages", "free_pages", cache=cachep.name, pfn=page.pfn, order=cachep.gfporder,
                       node=page.nid, counter="NR_SLAB_RECLAIMABLE_B" if cachep.flags & SLAB_RECLAIM_ACCOUNT
                       else "NR_SLAB_UNRECLAIMABLE_B", bytes=nbytes)
    k.memory.forget(page.pfn, cachep.gfporder)
    k.page_alloc.free_pages(page, cachep.gfporder, k.cpu)


def alloc_slabmgmt(cachep: KmemCache, page: Page, colour_off: int, local_flags: int, nodeid: int) -> int | None:
    """Place the freelist and the first object.  Returns the freelist address, 0 for an
    objfreelist slab (set by cache_init_objs), or None when an off-slab freelist cannot be had."""
    addr = page.address
    page.s_mem = addr + colour_off
    page.active = 0
    if cachep.flags & CFLGS_OBJFREELIST_SLAB:
        return 0
    if cachep.flags & CFLGS_OFF_SLAB:
        from . import alloc  # noqa: PLC0415 - alloc <-> grow recursion, as in the kernel
        fc = cachep.freelist_cache
        assert fc is not None
        obj = alloc.kmem_cache_alloc_node(fc, local_flags & ~GFP_CONSTRAINT_MASK, nodeid, internal="alloc_slabmgmt")
        if not obj:
            return None
        page.fl_obj = obj
        return obj
    return addr + (PAGE_SIZE << cachep.gfporder) - cachep.freelist_size


def cache_init_objs(cachep: KmemCache, page: Page) -> None:
    """Lay out a new slab: the freelist shuffled (CONFIG_SLAB_FREELIST_RANDOM) or fl[i] = i, constructors,
    debug state."""
    num = cachep.num
    k = cachep.k
    if k.debug:
        debug.cache_init_objs_debug(cachep, page)
    if not (k.config.CONFIG_SLAB_FREELIST_RANDOM and freelist_random.shuffle_freelist(cachep, page)):
        if cachep.flags & CFLGS_OBJFREELIST_SLAB:
            page.freelist = page.s_mem + cachep.size * (num - 1) + cachep.obj_offset
        page.fl = bytearray(range(num))
    if not k.debug and cachep.ctor is not None and callable(cachep.ctor):
        for i in range(num):
            cachep.ctor(page.s_mem + cachep.size * i)


def slab_get_obj(cachep: KmemCache, page: Page) -> int:
    fl = page.fl
    assert fl is not None
    obj = page.s_mem + cachep.size * fl[page.active]
    page.active += 1
    return obj


def slab_put_obj(cachep: KmemCache, page: Page, objp: int) -> None:
    objnr = (objp - page.s_mem) // cachep.size
    fl = page.fl
    assert fl is not None
    if cachep.k.debug:
        debug.check_slab_put_obj(cachep, page, objp, objnr)
    page.active -= 1
    if cachep.k.explain is not None:
        cachep.k.explain.step("slab_put_obj", "put", cache=cachep.name, obj=objp, pfn=page.pfn, s_mem=page.s_mem,
                              size=cachep.size, objnr=objnr, active=page.active)
    if page.freelist is None:  # objfreelist slab that was full: this object now hosts the indices
        page.freelist = objp + cachep.obj_offset
        if cachep.k.explain is not None:
            cachep.k.explain.step("slab_put_obj", "objfreelist", cache=cachep.name, obj=objp, pfn=page.pfn,
                                  freelist=page.freelist)
    fl[page.active] = objnr


def fixup_slab_list(cachep: KmemCache, n: KmemCacheNode, page: Page) -> None:
    """Move a slab that was just allocated from to the head of slabs_full or slabs_partial."""
    list_del(page)
    if page.active == cachep.num:
        n.slabs_full.add(page)
        if cachep.flags & CFLGS_OBJFREELIST_SLAB:
            if cachep.k.debug:
                debug.fixup_objfreelist_debug(cachep, page)
            page.freelist = None
        if cachep.k.explain is not None:
            cachep.k.explain.step("fixup_slab_list", "full", cache=cachep.name, pfn=page.pfn, active=page.active,
                                  num=cachep.num, objfreelist=bool(cachep.flags & CFLGS_OBJFREELIST_SLAB))
    else:
        n.slabs_partial.add(page)
        if cachep.k.explain is not None:
            cachep.k.explain.step("fixup_slab_list", "partial", cache=cachep.name, pfn=page.pfn, active=page.active,
                                  num=cachep.num)


def cache_grow_begin(cachep: KmemCache, flags: int, nodeid: int) -> Page | None:
    """Get pages for one new slab and initialise it (not yet on any list)."""
    k = cachep.k
    if flags & GFP_SLAB_BUG_MASK:
        flags = kmalloc_fix_flags(cachep, flags)
    if cachep.ctor and flags & __GFP_ZERO:
        k.warn_once("cache_grow_begin:ctor+zero", f"WARNING: mm/slab.c cache_grow_begin: {cachep.name} has a "
                    "constructor and __GFP_ZERO was requested")
    local_flags = flags & (GFP_CONSTRAINT_MASK | GFP_RECLAIM_MASK)
    ex = k.explain
    node: int | None = nodeid
    if k.replay_hooks.grow_outcomes:  # a replay: where the kernel's grow got pages (ReplayHooks.grow_outcomes)
        node = k.replay_hooks.grow_node(k.cpu, nodeid, bool(local_flags & __GFP_THISNODE))
    page = kmem_getpages(cachep, local_flags, node) if node is not None else None
    if page is None:
        cachep.paths.grow_failed += 1
        if ex is not None:
            ex.step("cache_grow_begin", "grow_fail", cache=cachep.name, order=cachep.gfporder, node=nodeid)
        return None
    n = cachep.node[page.nid]
    assert n is not None
    offset = 0
    if cachep.colour:
        n.colour_next += 1
        if n.colour_next >= cachep.colour:
            n.colour_next = 0
        offset = n.colour_next * cachep.colour_off
    elif n.colour_next:
        n.colour_next = 0
    freelist = alloc_slabmgmt(cachep, page, offset, local_flags & ~(__GFP_THISNODE | __GFP_HARDWALL), page.nid)
    if freelist is None:
        kmem_freepages(cachep, page)
        cachep.paths.grow_failed += 1
        return None
    page.slab_cache = cachep
    page.freelist = freelist or None
    cache_init_objs(cachep, page)
    cachep.paths.grow += 1
    if ex is not None:
        # with FREELIST_RANDOM the narration says the freelist was shuffled (shuffle_freelist's own step)
        shuffled = {"shuffled": cachep.num >= 2} if k.config.CONFIG_SLAB_FREELIST_RANDOM else {}
        ex.step("cache_grow_begin", "grow", cache=cachep.name, pfn=page.pfn, order=cachep.gfporder, node=page.nid,
                colour=offset, num=cachep.num, addr=page.address, placement=cachep.placement, **shuffled)
    return page


def cache_grow_end(cachep: KmemCache, page: Page | None) -> None:
    """Put a new slab on its node's lists and count its free objects."""
    if page is None:
        return
    n = cachep.node[page.nid]
    assert n is not None
    n.total_slabs += 1
    if cachep.k.explain is not None:  # free_objects is raised below, after the list placement
        cachep.k.explain.step("cache_grow_end", "grow_end", cache=cachep.name, pfn=page.pfn, active=page.active,
                              num=cachep.num, total_slabs=n.total_slabs,
                              free_objects=n.free_objects + cachep.num - page.active)
    if not page.active:
        n.slabs_free.add_tail(page)
        n.free_slabs += 1
    else:
        fixup_slab_list(cachep, n, page)
    cachep.stats.grown += 1
    n.free_objects += cachep.num - page.active


def kmem_rcu_free(cachep: KmemCache, page: Page) -> None:
    page.rcu_pending = False
    kmem_freepages(cachep, page)


def slab_destroy(cachep: KmemCache, page: Page) -> None:
    """Free one detached slab: debug checks, pages (now or after a grace period), off-slab freelist."""
    k = cachep.k
    fl_obj = page.fl_obj
    if k.debug:
        debug.slab_destroy_debugcheck(cachep, page)
    cachep.paths.slabs_destroyed += 1
    if k.explain is not None:
        k.explain.step("slab_destroy", "slab_destroy", cache=cachep.name, pfn=page.pfn, order=cachep.gfporder,
                       rcu=bool(cachep.flags & SLAB_TYPESAFE_BY_RCU))
    if cachep.flags & SLAB_TYPESAFE_BY_RCU:
        page.rcu_pending = True
        k.call_rcu(kmem_rcu_free, cachep, page)
    else:
        kmem_freepages(cachep, page)
    if cachep.flags & CFLGS_OFF_SLAB and fl_obj:
        from . import free  # noqa: PLC0415
        fc = cachep.freelist_cache
        assert fc is not None
        page.fl_obj = 0
        if k.explain is not None:
            k.explain.step("slab_destroy", "off_slab_freelist", cache=cachep.name, freelist_cache=fc.name,
                           obj=fl_obj)
        free.kmem_cache_free(fc, fl_obj, internal="slab_destroy")


def slabs_destroy(cachep: KmemCache, lst: list[Page]) -> None:
    """Destroy the slabs that free_block/drain detached, in list order (the last trimmed first)."""
    if lst and cachep.k.explain is not None:
        cachep.k.explain.step("slabs_destroy", "destroy", cache=cachep.name, nr=len(lst), pfns=[p.pfn for p in lst])
    while lst:
        slab_destroy(cachep, lst.pop(0))

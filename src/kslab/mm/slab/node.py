"""The per-node slab lists: picking a slab, returning objects, trimming and draining free slabs.

Mirrors mm/slab.c: ``get_first_slab``, ``get_valid_first_slab``, ``free_block``, ``drain_freelist``.
"""

from __future__ import annotations

from ..list import list_del
from ..page import Page, PG_active
from ..slab_def import KmemCache, KmemCacheNode
from .grow import slab_destroy, slab_put_obj

KERNEL_SYMBOLS = ("get_first_slab", "get_valid_first_slab", "free_block", "drain_freelist")


def get_valid_first_slab(n: KmemCacheNode, page: Page | None, pfmemalloc: bool) -> Page | None:
    """Skip slabs made from memory reserves when the caller may not use them (sk_memalloc_socks)."""
    if page is None or not page.flags & (1 << PG_active):
        return page
    if pfmemalloc:
        return page
    if n.free_objects > n.free_limit:
        page.flags &= ~(1 << PG_active)
        return page
    list_del(page)
    if not page.active:
        n.slabs_free.add_tail(page)
        n.free_slabs += 1
    else:
        n.slabs_partial.add_tail(page)
    for cand in n.slabs_partial:
        if not cand.flags & (1 << PG_active):
            return cand
    n.free_touched = 1
    for cand in n.slabs_free:
        if not cand.flags & (1 << PG_active):
            n.free_slabs -= 1
            return cand
    return None


def get_first_slab(n: KmemCacheNode, pfmemalloc: bool, sk_memalloc_socks: bool = False) -> Page | None:
    """First partial slab, else the most recently freed free slab (counted as not free at once)."""
    page = n.slabs_partial.lru_next
    if page is n.slabs_partial:
        n.free_touched = 1
        page = n.slabs_free.lru_next
        if page is n.slabs_free:
            page = None
        else:
            n.free_slabs -= 1
    if sk_memalloc_socks:
        page = get_valid_first_slab(n, page, pfmemalloc)
    # A list link is typed Any (the sentinel or a Page); the ``is`` tests above leave a Page or None,
    # a narrowing mypy cannot express.
    return page  # type: ignore[no-any-return]


def free_block(cachep: KmemCache, objpp: list[int], nr: int, node: int, lst: list[Page]) -> None:
    """Return ``objpp[0:nr]`` to their slabs on ``node``; detach the coldest free slabs beyond
    free_limit onto ``lst`` (each at its head, so they are destroyed in reverse order)."""
    n = cachep.node[node]
    assert n is not None
    k = cachep.k
    mem_map = k.mem_map.pages
    num = cachep.num
    stats = cachep.stats
    cachep.paths.free_block_calls += 1
    n.free_objects += nr
    if k.explain is not None:
        k.explain.step("free_block", "entry", cache=cachep.name, nr=nr, node=node, free_objects=n.free_objects)
    slabs_free = n.slabs_free
    slabs_partial = n.slabs_partial
    for i in range(nr):
        objp = objpp[i]
        page = mem_map.get((objp - 0xFFFF888000000000) >> 12)
        if page is None or (page.slab_cache is not cachep and page.compound_head & 1 == 0):
            k.bug_bad_free(cachep, objp, "free_block")
        if page.compound_head & 1:
            page = k.mem_map.compound_head(page)
        if k.explain is not None:
            was = ("full" if page.on_list is n.slabs_full else "partial" if page.on_list is slabs_partial
                   else "free" if page.on_list is slabs_free else "none")
        list_del(page)
        slab_put_obj(cachep, page, objp)
        stats.num_active -= 1
        if not page.active:
            slabs_free.add(page)
            n.free_slabs += 1
            if k.explain is not None:
                k.explain.step("free_block", "to_free", cache=cachep.name, obj=objp, pfn=page.pfn, was=was,
                               active=page.active, num=num)
        else:
            slabs_partial.add_tail(page)
            if k.explain is not None:
                k.explain.step("free_block", "to_partial", cache=cachep.name, obj=objp, pfn=page.pfn, was=was,
                               active=page.active, num=num)
    ex = k.explain
    if ex is not None:
        ex.step("free_block", "free_block", cache=cachep.name, nr=nr, node=node, free_objects=n.free_objects,
                free_limit=n.free_limit)
    while n.free_objects > n.free_limit and slabs_free:
        n.free_objects -= num
        page = slabs_free.lru_prev
        list_del(page)
        lst.insert(0, page)
        n.free_slabs -= 1
        n.total_slabs -= 1
        cachep.paths.slabs_trimmed += 1
        if ex is not None:
            ex.step("free_block", "trim", cache=cachep.name, pfn=page.pfn, free_objects=n.free_objects + num,
                    free_limit=n.free_limit, num=num)


def drain_freelist(cachep: KmemCache, n: KmemCacheNode, tofree: int) -> int:
    """Destroy up to ``tofree`` empty slabs, coldest (tail of slabs_free) first."""
    nr_freed = 0
    while nr_freed < tofree and n.slabs_free:
        page = n.slabs_free.lru_prev
        list_del(page)
        n.free_slabs -= 1
        n.total_slabs -= 1
        n.free_objects -= cachep.num
        slab_destroy(cachep, page)
        nr_freed += 1
    return nr_freed

"""Small public helpers through which a replay of a real trace makes the model hold what the kernel held:
objects taken straight from the slabs (placeholders for objects older than the trace), objects moved
between slabs, empty slabs released, array entries given back, node timers placed.

Each keeps the model's counters consistent the way the kernel's own paths do (slab_get_obj() with
fixup_slab_list(), free_block() with slabs_destroy()); kslab.trace.replay calls them and never writes a
field of an mm structure itself.
"""

from __future__ import annotations

from ..list import list_del
from ..page import Page
from ..slab_def import ArrayCache, KmemCache, KmemCacheNode
from .grow import cache_grow_begin, cache_grow_end, fixup_slab_list, slab_destroy, slab_get_obj, slabs_destroy
from .node import free_block


def first_slab_for_adoption(n: KmemCacheNode, allowed: set[int] | None) -> Page | None:
    """A slab to take an object from without an allocation: a partial one (among the pfns ``allowed``
    unless None), else a free one, counted off the node's free slabs (get_first_slab()'s order, without
    its free_touched: the kernel did not take this object now)."""
    for page in n.slabs_partial:
        if allowed is None or page.pfn in allowed:
            return page
    first = n.slabs_free.lru_next
    if first is n.slabs_free:
        return None
    n.free_slabs -= 1
    slab: Page = first
    return slab


def adopt_obj(cachep: KmemCache, n: KmemCacheNode, page: Page) -> int:
    """Take an object of ``page`` as allocated (slab_get_obj(), the node's and the cache's counts,
    fixup_slab_list()), as cache_alloc_refill() does, without a per-CPU array in between."""
    obj = slab_get_obj(cachep, page)
    n.free_objects -= 1
    cachep.stats.num_active += 1
    fixup_slab_list(cachep, n, page)
    return obj


def adopt_objects(cachep: KmemCache, n: KmemCacheNode, node: int, count: int, allowed: set[int] | None,
                  offset: int = 0) -> list[int]:
    """Take up to ``count`` objects as allocated, one after the other (see adopt_obj), from slabs of
    first_slab_for_adoption() (``allowed``, grown to include each slab used), growing a slab on ``node``
    when there is none; fewer when the slabs run out.  Returns the objects (plus ``offset``)."""
    objs: list[int] = []
    for _ in range(count):
        page = first_slab_for_adoption(n, allowed)
        if page is None:
            page = cache_grow_begin(cachep, cachep.allocflags | 0xCC0, node)
            if page is None:
                break
            cache_grow_end(cachep, page)
            page = first_slab_for_adoption(n, allowed)
            if page is None:
                break
        if allowed is not None:
            allowed.add(page.pfn)
        obj = slab_get_obj(cachep, page)
        n.free_objects -= 1
        cachep.stats.num_active += 1
        fixup_slab_list(cachep, n, page)
        objs.append(obj + offset)
    return objs


def move_obj(cachep: KmemCache, n: KmemCacheNode, target: Page, obj: int, nid: int) -> int:
    """Move the allocated object ``obj`` (on node ``nid``) into a free slot of ``target``: taken there,
    given back to its own slab (free_block()); the cache's active count is unchanged.  Returns the new
    object."""
    new = slab_get_obj(cachep, target)
    n.free_objects -= 1
    fixup_slab_list(cachep, n, target)
    lst: list[Page] = []
    free_block(cachep, [obj], 1, nid, lst)
    cachep.stats.num_active += 1  # a move, not a free
    slabs_destroy(cachep, lst)
    return new


def release_free_slab(cachep: KmemCache, n: KmemCacheNode, page: Page) -> None:
    """Take the free slab ``page`` off the node and destroy it (drain_freelist() for one slab)."""
    list_del(page)
    n.free_slabs -= 1
    n.total_slabs -= 1
    n.free_objects -= cachep.num
    slab_destroy(cachep, page)


def free_oldest(cachep: KmemCache, ac: ArrayCache, count: int, nid: int) -> None:
    """Give the ``count`` oldest entries of ``ac`` back to their slabs on node ``nid`` (free_block()),
    as drain_array_locked() does."""
    lst: list[Page] = []
    free_block(cachep, ac.entry, count, nid, lst)
    del ac.entry[:count]
    slabs_destroy(cachep, lst)


def free_objects(cachep: KmemCache, objs: list[int], nid: int) -> None:
    """Give allocated objects of node ``nid`` straight back to their slabs (free_block())."""
    lst: list[Page] = []
    free_block(cachep, objs, len(objs), nid, lst)
    slabs_destroy(cachep, lst)


def array_take_all(ac: ArrayCache) -> list[int]:
    """Empty the array: its objects, oldest first, are the caller's (allocated) from now on."""
    objs = list(ac.entry)
    ac.entry.clear()
    return objs


def array_push(ac: ArrayCache, obj: int, oldest: bool = False) -> None:
    """Put the allocated object ``obj`` into the array, as its newest entry (or its oldest)."""
    if oldest:
        ac.entry.insert(0, obj)
    else:
        ac.entry.append(obj)


def set_next_reap(n: KmemCacheNode, jiffies: int) -> None:
    """The node's reap timer (next_reap) expires at ``jiffies``."""
    n.next_reap = jiffies


def adopt_from_slab(cachep: KmemCache, n: KmemCacheNode, page: Page, count: int, offset: int = 0) -> list[int]:
    """Take the next ``count`` objects of ``page`` (in its freelist's order) as allocated, as
    cache_alloc_refill() takes them from the slab it chose (a free slab counted off the node's free slabs,
    as get_first_slab() does), without a per-CPU array in between.  Returns the objects (plus ``offset``)."""
    if page.on_list is n.slabs_free:
        n.free_slabs -= 1
    objs: list[int] = []
    for _ in range(min(count, cachep.num - page.active)):
        objs.append(adopt_obj(cachep, n, page) + offset)
    return objs


def grow_stand_in(cachep: KmemCache, nodeid: int) -> Page | None:
    """Grow an empty slab on ``nodeid`` (cache_grow_begin() and cache_grow_end(), GFP_KERNEL), standing for
    one the traced kernel had before the trace began; None when no pages are left."""
    page = cache_grow_begin(cachep, cachep.allocflags | 0xCC0, nodeid)
    if page is None:
        return None
    cache_grow_end(cachep, page)
    return page

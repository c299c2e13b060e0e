"""The per-CPU array's hit bookkeeping (STATS_INC_ALLOCHIT/FREEHIT/FREEMISS, ac->touched and the per-path
counters), written once here and called by ____cache_alloc(), slab_alloc() and slab_alloc_node()
(alloc.py), ___cache_free() (free.py) and the replay's fast paths (trace/replay/fastpath.py).

The public names are stable (other callers build on them): ``array_alloc_hit``,
``array_alloc_hit_counted``, ``count_free_hit``, ``count_free_miss``, ``array_free_hit``."""

from __future__ import annotations

from ..slab_def import ArrayCache, KmemCache


def array_alloc_hit(cachep: KmemCache, ac: ArrayCache) -> int:
    """____cache_alloc()'s hit: the array's newest object, with STATS_INC_ALLOCHIT and ac->touched."""
    ac.touched = 1
    cachep.stats.allochit += 1
    cachep.paths.alloc_hit += 1
    return ac.entry.pop()


def array_alloc_hit_counted(cachep: KmemCache, ac: ArrayCache) -> int:
    """slab_alloc() of a hit: array_alloc_hit() and _post_alloc()'s count of a successful allocation
    (written out rather than calling array_alloc_hit(): the replay's fast path calls it at every
    allocation, and a nested call costs it about 2 %)."""
    ac.touched = 1
    cachep.stats.allochit += 1
    paths = cachep.paths
    paths.alloc_hit += 1
    paths.alloc += 1
    return ac.entry.pop()


def count_free_hit(cachep: KmemCache) -> None:
    """___cache_free() found room in the CPU's array: STATS_INC_FREEHIT."""
    cachep.stats.freehit += 1
    cachep.paths.free_hit += 1


def count_free_miss(cachep: KmemCache) -> None:
    """___cache_free() found the CPU's array full (it flushes a batch first): STATS_INC_FREEMISS."""
    cachep.stats.freemiss += 1
    cachep.paths.free_miss += 1


def array_free_hit(cachep: KmemCache, ac: ArrayCache, objp: int) -> None:
    """___cache_free() of a local object with room in the array: its count, count_free_hit() (written out,
    as in array_alloc_hit_counted()), and the push on the array."""
    cachep.stats.freehit += 1
    paths = cachep.paths
    paths.free += 1
    paths.free_hit += 1
    ac.entry.append(objp)

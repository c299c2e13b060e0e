"""The SLUB model's invariants, checked over every cache (what mm/slub.c's validate_slab_cache and
the counters' definitions promise, for caches without debugging).

For every live slab: its own free list and, for a cpu slab, the CPU's free list are objects of the slab,
each at most once; ``inuse`` is ``objects`` minus the slab's own free objects; a slab is frozen exactly when it
is some CPU's cpu slab; a slab on a node partial list is unfrozen, has free objects and is on its node; the
head of a per-CPU partial list counts the list in ``slabs``; the node counters count the node's slabs.
"""

from __future__ import annotations

from ..errors import SlabCorruptionError
from .allocator import SlubAllocator
from .fastpath import get_freepointer
from .slab import Slab
from .slub_def import KmemCache


def _chain(a: SlubAllocator, s: KmemCache, obj: int, slab: Slab) -> list[int]:
    """The objects of a free list from ``obj``, stopping with an error at one outside ``slab`` or a loop."""
    out: list[int] = []
    start = slab.address + s.red_left_pad
    while obj:
        if not start <= obj < start + slab.objects * s.size or (obj - start) % s.size:
            raise SlabCorruptionError(f"{s.name}: free pointer {obj:#x} outside slab {slab.address:#x}")
        if len(out) > slab.objects:
            raise SlabCorruptionError(f"{s.name}: free list of slab {slab.address:#x} loops")
        out.append(obj)
        obj = get_freepointer(a.mm.mem, s, obj)
    return out


def _fail(s: KmemCache, slab: Slab, what: str) -> SlabCorruptionError:
    return SlabCorruptionError(f"{s.name}: slab {slab.address:#x}: {what}")


def check_cache(a: SlubAllocator, s: KmemCache, slabs: list[Slab]) -> None:
    """The invariants of one cache over its live ``slabs``."""
    cpu_of = {id(c.slab): c for c in s.cpu_slab if c.slab is not None}
    for slab in slabs:
        own = _chain(a, s, slab.freelist, slab)
        c = cpu_of.get(id(slab))
        extra = _chain(a, s, c.freelist, slab) if c is not None else []
        if len(set(own + extra)) != len(own) + len(extra):
            raise _fail(s, slab, "an object is free twice")
        if slab.inuse != slab.objects - len(own):
            raise _fail(s, slab, f"inuse {slab.inuse}, but {len(own)} of {slab.objects} objects on its free list")
        if slab.frozen != (c is not None):
            raise _fail(s, slab, "frozen" if slab.frozen else "a cpu slab that is not frozen")
    for nid, n in enumerate(s.node):
        if n.nr_partial != len(n.partial) or len({id(x) for x in n.partial}) != len(n.partial):
            raise SlabCorruptionError(f"{s.name}: node {nid}: nr_partial {n.nr_partial}, list of {len(n.partial)}")
        for x in n.partial:
            if not x.node_partial or x.frozen or x.nid != nid or not x.freelist:
                raise _fail(s, x, f"on node {nid}'s partial list but frozen, full or of another node")
        mine = [x for x in slabs if x.nid == nid]
        if n.nr_slabs != len(mine) or n.total_objects != sum(x.objects for x in mine):
            raise SlabCorruptionError(f"{s.name}: node {nid}: nr_slabs {n.nr_slabs}/total_objects "
                                      f"{n.total_objects}, but {len(mine)} slabs live")
    for cpu, c in enumerate(s.cpu_slab):
        parts: list[Slab] = []
        p = c.partial
        while p is not None and len(parts) <= len(slabs):
            parts.append(p)
            p = p.next
        if parts and parts[0].slabs != len(parts):
            raise SlabCorruptionError(f"{s.name}: CPU {cpu}: partial list of {len(parts)} slabs, head says "
                                      f"{parts[0].slabs}")
        if any(x.frozen or x.node_partial or not x.freelist for x in parts):
            raise SlabCorruptionError(f"{s.name}: CPU {cpu}: a per-CPU partial slab frozen, full or on a node list")


def check_slub(a: SlubAllocator) -> None:
    """Every cache's invariants; raises SlabCorruptionError naming the cache and the slab."""
    by_cache: dict[int, list[Slab]] = {}
    for slab in a.mm.slabs.values():
        by_cache.setdefault(id(slab.slab_cache), []).append(slab)
    for s in a.sl.slab_caches:
        check_cache(a, s, by_cache.get(id(s), []))

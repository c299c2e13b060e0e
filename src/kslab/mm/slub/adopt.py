"""Small public helpers through which a replay of a real trace makes the SLUB model hold slabs the kernel held
before its trace began: a slab with given objects in use and a given free list, left full, made a CPU's cpu
slab, or put on its node's partial list.

Each keeps the model's counters the way the kernel's own paths do (allocate_slab() and inc_slabs_node() for
the new slab, the ``load_freelist`` step of ___slab_alloc() for a cpu slab, add_partial() for a node partial
slab); kslab.trace.replay_slub calls them and never writes a field of an mm structure itself.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..gfp import GFP_KERNEL
from .allocator import SlubAllocator
from .fastpath import set_freepointer
from .geometry import oo_objects
from .node import DEACTIVATE_TO_TAIL, add_partial, inc_slabs_node
from .partial import new_slab
from .slab import Slab
from .slub_def import KmemCache


def object_address(s: KmemCache, slab: Slab, index: int) -> int:
    """The address of object ``index`` of ``slab`` (after the left red zone); a kslab helper."""
    return slab.address + s.red_left_pad + index * s.size


def adopt_slab(a: SlubAllocator, s: KmemCache, node: int, cpu: int, free_order: list[int]) -> Slab | None:
    """A new slab of ``s`` on ``node`` (from the page allocator, as new_slab() takes one for ``cpu``) whose free
    objects are those of ``free_order`` (object indices), chained in that order, and every other object in use;
    on no list and not frozen, counted in its node's slabs. None when the page allocator has no pages; a
    ConfigError for an index outside the slab or given twice. A kslab helper (allocate_slab() with the objects'
    state of a slab older than the trace)."""
    objects = oo_objects(s.oo)
    if len(set(free_order)) != len(free_order) or any(not 0 <= i < objects for i in free_order):
        raise ConfigError(f"{s.name}: free objects {free_order} do not fit a slab of {objects}")
    slab = new_slab(a.mm, s, GFP_KERNEL, node, cpu)
    if slab is None:
        return None
    free_order = [i for i in free_order if i < slab.objects]  # (a slab of the fallback order holds fewer)
    addrs = [object_address(s, slab, i) for i in free_order]
    for obj, nxt in zip(addrs, [*addrs[1:], 0], strict=False):
        set_freepointer(a.mm.mem, s, obj, nxt)
    slab.freelist = addrs[0] if addrs else 0
    slab.inuse = slab.objects - len(addrs)
    slab.frozen = False
    inc_slabs_node(s, slab.nid, slab.objects)
    return slab


def adopt_cpu_slab(a: SlubAllocator, s: KmemCache, slab: Slab, cpu: int) -> None:
    """``slab`` (just adopted, on no list) becomes ``cpu``'s cpu slab with its whole free list as the CPU's
    freelist, as ___slab_alloc()'s ``load_freelist`` leaves a slab it froze (without taking an object);
    a ConfigError when the CPU has a cpu slab already."""
    c = s.cpu_slab[cpu]
    if c.slab is not None:
        raise ConfigError(f"{s.name}: CPU {cpu} has a cpu slab already")
    c.freelist, slab.freelist = slab.freelist, 0
    slab.inuse = slab.objects
    slab.frozen = True
    c.slab = slab


def adopt_partial_slab(s: KmemCache, slab: Slab) -> None:
    """``slab`` (just adopted, with free objects) goes at the tail of its node's partial list (add_partial())."""
    if not slab.freelist:
        raise ConfigError(f"{s.name}: a slab without free objects cannot be partial")
    add_partial(s.node[slab.nid], slab, DEACTIVATE_TO_TAIL)

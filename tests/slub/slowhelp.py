"""Helpers for the SLUB slow-path tests: an allocator on a small machine, stats, and the model's invariants."""

from __future__ import annotations

from slubhelp import boot

from kslab.mm.config import MachineConfig
from kslab.mm.page import MemMap
from kslab.mm.page_alloc import PageAllocator
from kslab.mm.slub.allocator import SlubAllocator
from kslab.mm.slub.fastpath import get_freepointer
from kslab.mm.slub.slab import Slab, StatItem
from kslab.mm.slub.slub_def import KmemCache


def allocator(cpus: int = 1, nodes: int = 1, **options: object) -> SlubAllocator:
    """SLUB booted with ``options`` (SlubConfig fields) and its allocator on a 256M machine."""
    sl = boot(cpus, nodes, **options)
    pa = PageAllocator(MachineConfig.build(cpus=cpus, nodes=nodes, mem="256M"), MemMap())
    return SlubAllocator(sl, pa)


def cache(a: SlubAllocator, name: str) -> KmemCache:
    return next(s for s in a.sl.slab_caches if s.name == name)


def st(s: KmemCache, item: StatItem, cpu: int | None = None) -> int:
    """A SLUB_STATS counter, of one CPU or summed over all (as /sys/kernel/slab prints the total)."""
    if cpu is not None:
        return s.cpu_slab[cpu].stat[item]
    return sum(c.stat[item] for c in s.cpu_slab)


def chain(a: SlubAllocator, s: KmemCache, obj: int) -> list[int]:
    out = []
    while obj:
        out.append(obj)
        obj = get_freepointer(a.mm.mem, s, obj)
    return out


def cpu_partials(s: KmemCache, cpu: int) -> list[Slab]:
    out = []
    p = s.cpu_slab[cpu].partial
    while p is not None:
        out.append(p)
        p = p.next
    return out


def objects_of(s: KmemCache, slab: Slab) -> list[int]:
    start = slab.address + s.red_left_pad
    return [start + i * s.size for i in range(slab.objects)]


def check_invariants(a: SlubAllocator, s: KmemCache, live: set[int]) -> None:
    """Every slab of the cache: its free objects (its own freelist, and the CPU freelist of a cpu slab) and the
    live ones are its objects, each once; inuse, frozen, node_partial and the node counters agree."""
    slabs = [slab for slab in a.mm.slabs.values() if slab.slab_cache is s]
    cpu_of = {id(c.slab): c for c in s.cpu_slab if c.slab is not None}
    seen: set[int] = set()
    for slab in slabs:
        own = chain(a, s, slab.freelist)
        c = cpu_of.get(id(slab))
        extra = chain(a, s, c.freelist) if c is not None else []
        objs = set(objects_of(s, slab))
        mine = {o for o in live if o in objs}
        assert sorted(own + extra + list(mine)) == sorted(objs)
        assert slab.inuse == slab.objects - len(own)
        assert slab.frozen == (c is not None)
        seen |= objs
    assert live <= seen
    for nid, n in enumerate(s.node):
        assert n.nr_partial == len(n.partial) == len({id(x) for x in n.partial})
        assert all(x.node_partial and not x.frozen and x.nid == nid and x.freelist for x in n.partial)
        mine = [x for x in slabs if x.nid == nid]
        assert n.nr_slabs == len(mine) and n.total_objects == sum(x.objects for x in mine)
    on_lists = {id(x) for n in s.node for x in n.partial}
    assert {id(x) for x in slabs if x.node_partial} == on_lists
    for cpu in range(len(s.cpu_slab)):
        parts = cpu_partials(s, cpu)
        assert not parts or parts[0].slabs == len(parts)
        assert all(not x.frozen and not x.node_partial and x.freelist for x in parts)

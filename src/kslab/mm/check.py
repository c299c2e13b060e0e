"""The model's invariants, checked on demand (tests call it after every step).

Raises :class:`SlabCorruptionError` naming the first broken invariant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import SlabCorruptionError
from .page import PG_slab

if TYPE_CHECKING:
    from .kernel import Kernel
    from .slab_def import KmemCache

KERNEL_SYMBOLS = ("check",)


def _fail(msg: str) -> None:
    raise SlabCorruptionError(msg)


def _check_random_seq(k: Kernel, cachep: KmemCache) -> None:
    """CONFIG_SLAB_FREELIST_RANDOM: a cache's random_seq is a permutation of its objects, kept in a live
    kmalloc object big enough for it (cache_random_seq_create)."""
    seq = cachep.random_seq
    if seq is None:
        return
    if not k.config.CONFIG_SLAB_FREELIST_RANDOM:
        _fail(f"{cachep.name}: a random_seq without CONFIG_SLAB_FREELIST_RANDOM")
    if sorted(seq) != list(range(cachep.num)):
        _fail(f"{cachep.name}: random_seq is not a permutation of its {cachep.num} objects")
    holder = k.virt_to_cache(cachep.random_seq_addr)
    if holder is None or holder.size < 4 * cachep.num:
        _fail(f"{cachep.name}: random_seq at {cachep.random_seq_addr:#x} is not in a kmalloc object of "
              f"{4 * cachep.num} bytes or more")


def check(k: Kernel) -> None:
    slab_pages = 0
    for cachep in k.slab_caches:
        name = cachep.name
        _check_random_seq(k, cachep)
        in_arrays: set[int] = set()
        arrays = [("cpu", ac) for ac in cachep.cpu_cache]
        for n in cachep.node:
            if n is None:
                continue
            if n.shared is not None:
                arrays.append(("shared", n.shared))
            for alc in n.alien or ():
                if alc is not None:
                    arrays.append(("alien", alc))
        for kind, ac in arrays:
            if len(ac.entry) > ac.limit:
                _fail(f"{name}: {kind} array holds {len(ac.entry)} > limit {ac.limit}")
            for o in ac.entry:
                if o in in_arrays and not k.config.CONFIG_DEBUG_SLAB:
                    # a double free the kernel would not catch leaves two copies: report it as corruption
                    _fail(f"{name}: object {o:#x} is in the arrays twice (undetected double free)")
                in_arrays.add(o)
        for nid, n in enumerate(cachep.node):
            if n is None:
                continue
            free_objects = 0
            lists = ((n.slabs_full, "full"), (n.slabs_partial, "partial"), (n.slabs_free, "free"))
            total = 0
            for head, label in lists:
                count = 0
                for page in head:
                    count += 1
                    if page.slab_cache is not cachep:
                        _fail(f"{name}: slab pfn {page.pfn} on node {nid} list {label} belongs to another cache")
                    if not page.flags & (1 << PG_slab):
                        _fail(f"{name}: slab pfn {page.pfn} is not PageSlab")
                    if page.nid != nid:
                        _fail(f"{name}: slab pfn {page.pfn} of node {page.nid} is on node {nid}'s lists")
                    a = page.active
                    want = "full" if a == cachep.num else ("free" if a == 0 else "partial")
                    if not 0 <= a <= cachep.num:
                        _fail(f"{name}: slab pfn {page.pfn} has active {a}")
                    if want != label:
                        _fail(f"{name}: slab pfn {page.pfn} with active {a}/{cachep.num} is on slabs_{label}")
                    fl = page.fl
                    if fl is None:
                        _fail(f"{name}: slab pfn {page.pfn} has no freelist")
                        continue
                    free_idx = fl[a:cachep.num]
                    if len(set(free_idx)) != len(free_idx):
                        _fail(f"{name}: slab pfn {page.pfn} has a free index twice in its freelist")
                    for idx in free_idx:
                        obj = page.s_mem + idx * cachep.size
                        if obj in in_arrays:
                            _fail(f"{name}: object {obj:#x} is both in an array cache and free in its slab")
                    free_objects += cachep.num - a
                    slab_pages += 1 << cachep.gfporder
                if count != len(head):
                    _fail(f"{name}: node {nid} slabs_{label} length {len(head)} != {count} entries")
                total += count
            if n.total_slabs != total:
                _fail(f"{name}: node {nid} total_slabs {n.total_slabs} != {total} slabs on its lists")
            if n.free_slabs != len(n.slabs_free):
                _fail(f"{name}: node {nid} free_slabs {n.free_slabs} != {len(n.slabs_free)} on slabs_free")
            if n.free_objects != free_objects:
                _fail(f"{name}: node {nid} free_objects {n.free_objects} != {free_objects} counted in its slabs")
    # pages: every PageSlab head page in the mem map is on some cache's list (or waits for RCU)
    pa = k.page_alloc
    if hasattr(pa, "check"):
        pa.check()
    counted = 0
    for page in k.mem_map.pages.values():
        if page.flags & (1 << PG_slab) and not page.rcu_pending:
            c = page.slab_cache
            counted += 1 << (c.gfporder if c is not None else 0)
    if counted != slab_pages:
        _fail(f"{counted} pages are PageSlab but {slab_pages} are on slab lists (a slab is lost or listed twice)")

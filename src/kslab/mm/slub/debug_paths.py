"""The paths of caches with debugging (kmem_cache_debug: slab_debug= or debug flags at creation; mm/slub.c, 6.12).

Such a cache never has a cpu slab or per-CPU partial slabs: every allocation goes through ___slab_alloc to
``alloc_single_from_partial`` (one object off a node partial slab, under the node's lock) or
``alloc_single_from_new_slab``, every free through __slab_free to ``free_to_partial_list``; each object is
checked on the way (``alloc_debug_processing``, ``free_debug_processing``: SLAB_CONSISTENCY_CHECKS) and its red
zones, poison and tracking record rewritten.  A new slab's bytes are set up by ``setup_slab_debug`` and
``setup_object_debug``; ``free_slab`` checks every object of a slab it frees (SLAB_CONSISTENCY_CHECKS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import PAGE_SIZE
from .debug_check import (
    POISON_INUSE,
    SLUB_RED_ACTIVE,
    SLUB_RED_INACTIVE,
    TRACK_ALLOC,
    TRACK_FREE,
    DebugMemory,
    check_object,
    check_slab,
    check_valid_pointer,
    consistency_checks_on,
    init_object,
    init_tracking,
    object_err,
    on_freelist,
    set_track,
    slab_err,
    slab_fix,
    slab_pad_check,
)
from .fastpath import get_freepointer, set_freepointer, stat
from .flags import __OBJECT_POISON, SLAB_POISON, SLAB_RED_ZONE, SLAB_STORE_USER
from .geometry import slub_debug_orig_size
from .node import DEACTIVATE_TO_HEAD, DEACTIVATE_TO_TAIL, KmemCacheNode, add_partial, dec_slabs_node, inc_slabs_node
from .node import remove_partial as _remove_partial
from .slab import ObjectMemory, Slab, StatItem
from .slub_def import KmemCache

if TYPE_CHECKING:
    from .partial import SlubMM

KERNEL_SYMBOLS_612 = ("setup_object_debug", "setup_slab_debug", "alloc_consistency_checks", "alloc_debug_processing",
                      "free_consistency_checks", "free_debug_processing", "alloc_single_from_partial",
                      "alloc_single_from_new_slab", "free_to_partial_list", "set_orig_size")


def setup_object_debug(dm: DebugMemory, s: KmemCache, slab: Slab, obj: int) -> None:
    if not s.flags & (SLAB_STORE_USER | SLAB_RED_ZONE | __OBJECT_POISON):
        return
    init_object(dm, s, slab, obj, SLUB_RED_INACTIVE)
    init_tracking(dm, s, obj)


def setup_slab_debug(dm: DebugMemory, s: KmemCache, slab: Slab) -> None:
    """A new debug slab's bytes: 0x5a everywhere with SLAB_POISON (zero otherwise), then each object set up."""
    size = PAGE_SIZE << slab.order
    dm.slabs[slab.page.pfn] = bytearray([POISON_INUSE]) * size if s.flags & SLAB_POISON else bytearray(size)
    start = slab.address + (s.red_left_pad if s.flags & SLAB_RED_ZONE else 0)
    for i in range(slab.objects):
        setup_object_debug(dm, s, slab, start + i * s.size)


def set_orig_size(dm: DebugMemory, s: KmemCache, obj: int, orig_size: int) -> None:
    if slub_debug_orig_size(s):
        dm.orig_size[obj] = orig_size


def alloc_consistency_checks(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, obj: int) -> bool:
    if not check_slab(dm, s, slab):
        return False
    if not check_valid_pointer(s, slab, obj):
        object_err(dm, mem, s, slab, obj, "Freelist Pointer check fails")
        return False
    return check_object(dm, mem, s, slab, obj, SLUB_RED_INACTIVE)


def alloc_debug_processing(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, obj: int,
                           orig_size: int) -> bool:
    """The checks of an object about to be handed out; on failure the slab is given up (all objects used,
    frozen) and the allocation fails."""
    if consistency_checks_on(s) and not alloc_consistency_checks(dm, mem, s, slab, obj):
        slab_fix(dm, s, "Marking all objects used")
        slab.inuse = slab.objects
        slab.freelist = 0
        slab.frozen = True
        return False
    set_orig_size(dm, s, obj, orig_size)
    init_object(dm, s, slab, obj, SLUB_RED_ACTIVE)
    return True


def alloc_single_from_partial(mm: SlubMM, s: KmemCache, n: KmemCacheNode, slab: Slab, orig_size: int) -> int:
    """One object off a node partial slab, which leaves the list when it fills (or fails its checks)."""
    obj = slab.freelist
    slab.freelist = get_freepointer(mm.mem, s, obj)
    slab.inuse += 1
    if not alloc_debug_processing(mm.dbg, mm.mem, s, slab, obj, orig_size):
        _remove_partial(n, slab)
        return 0
    if slab.inuse == slab.objects:
        _remove_partial(n, slab)
    return obj


def alloc_single_from_new_slab(mm: SlubMM, s: KmemCache, slab: Slab, orig_size: int) -> int:
    """One object of a new slab, which goes to the head of its node's partial list (unless that filled it)."""
    obj = slab.freelist
    slab.freelist = get_freepointer(mm.mem, s, obj)
    slab.inuse = 1
    if not alloc_debug_processing(mm.dbg, mm.mem, s, slab, obj, orig_size):
        return 0
    n = s.node[slab.nid]
    if slab.inuse != slab.objects:
        add_partial(n, slab, DEACTIVATE_TO_HEAD)
    inc_slabs_node(s, slab.nid, slab.objects)
    return obj


def free_consistency_checks(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, obj: int) -> bool:
    if not check_valid_pointer(s, slab, obj):
        slab_err(dm, s, slab, f"Invalid object pointer 0x{obj:x}")
        return False
    if on_freelist(dm, mem, s, slab, obj):
        object_err(dm, mem, s, slab, obj, "Object already free")
        return False
    if not check_object(dm, mem, s, slab, obj, SLUB_RED_ACTIVE):
        return False
    if s is not slab.slab_cache:
        object_err(dm, mem, s, slab, obj, "page slab pointer corrupt.")
        return False
    return True


def free_debug_processing(dm: DebugMemory, mem: ObjectMemory, s: KmemCache, slab: Slab, head: int, tail: int,
                          bulk_cnt: int) -> tuple[bool, int]:
    """The checks of the objects ``head``..``tail`` about to be freed, each re-poisoned and tracked; (whether
    they may be freed, how many there are)."""
    obj = head
    cnt = 0
    ok = False
    if consistency_checks_on(s) and not check_slab(dm, s, slab):
        slab_fix(dm, s, f"Object at 0x{obj:x} not freed")
        return False, bulk_cnt
    if slab.inuse < bulk_cnt:
        slab_err(dm, s, slab, f"Slab has {slab.inuse} allocated objects but {bulk_cnt} are to be freed\n")
        slab_fix(dm, s, f"Object at 0x{obj:x} not freed")
        return False, bulk_cnt
    while True:
        cnt += 1
        if cnt > bulk_cnt:
            break
        if consistency_checks_on(s) and not free_consistency_checks(dm, mem, s, slab, obj):
            slab_fix(dm, s, f"Object at 0x{obj:x} not freed")
            return False, bulk_cnt
        if s.flags & SLAB_STORE_USER:
            set_track(dm, obj, TRACK_FREE)
        init_object(dm, s, slab, obj, SLUB_RED_INACTIVE)
        if obj == tail:
            ok = True
            break
        obj = get_freepointer(mem, s, obj)
    if cnt != bulk_cnt:
        slab_err(dm, s, slab, f"Bulk free expected {bulk_cnt} objects but found {cnt}\n")
        bulk_cnt = cnt
    if not ok:
        slab_fix(dm, s, f"Object at 0x{obj:x} not freed")
    return ok, bulk_cnt


def free_to_partial_list(mm: SlubMM, s: KmemCache, slab: Slab, head: int, tail: int, bulk_cnt: int,
                         cpu: int) -> None:
    """__slab_free of a debug cache: under the node's lock, the checked objects go back to the slab, which
    joins the partial list's tail when it was full, and is discarded when empty beyond min_partial."""
    from .partial import free_slab  # noqa: PLC0415
    n = s.node[slab.nid]
    c = s.cpu_slab[cpu]
    ok, cnt = free_debug_processing(mm.dbg, mm.mem, s, slab, head, tail, bulk_cnt)
    slab_free = None
    if ok:
        prior = slab.freelist
        slab.inuse -= cnt
        set_freepointer(mm.mem, s, tail, prior)
        slab.freelist = head
        if slab.inuse == 0 and n.nr_partial >= s.min_partial:
            slab_free = slab
        if not prior:
            if slab_free is None:
                add_partial(n, slab, DEACTIVATE_TO_TAIL)
                stat(c, StatItem.FREE_ADD_PARTIAL)
        elif slab_free is not None:
            _remove_partial(n, slab)
            stat(c, StatItem.FREE_REMOVE_PARTIAL)
    if mm.explain is not None:
        mm.explain.step("free_to_partial_list", "freed" if ok else "refused", cache=s.name, pfn=slab.page.pfn,
                        nr=cnt, inuse=slab.inuse, node=slab.nid, nr_partial=n.nr_partial, min_partial=s.min_partial,
                        discard=slab_free is not None)
    if slab_free is not None:
        dec_slabs_node(s, slab.nid, slab.objects)
        stat(c, StatItem.FREE_SLAB)
        free_slab(mm, s, slab, cpu)


def check_objects_of(mm: SlubMM, s: KmemCache, slab: Slab) -> None:
    """free_slab with SLAB_CONSISTENCY_CHECKS: the slab's padding, then every object checked as a free one."""
    slab_pad_check(mm.dbg, s, slab)
    start = slab.address + (s.red_left_pad if s.flags & SLAB_RED_ZONE else 0)
    for i in range(slab.objects):
        check_object(mm.dbg, mm.mem, s, slab, start + i * s.size, SLUB_RED_INACTIVE)


def track_alloc(mm: SlubMM, s: KmemCache, obj: int) -> None:
    """___slab_alloc's set_track(TRACK_ALLOC) for a debug cache's object."""
    if s.flags & SLAB_STORE_USER:
        set_track(mm.dbg, obj, TRACK_ALLOC)

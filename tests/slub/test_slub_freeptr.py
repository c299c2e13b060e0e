"""calculate_sizes (mm/slub.c, 6.12): where the free pointer goes, and what debugging adds to the object."""

from __future__ import annotations

import pytest
from slubhelp import boot

from kslab.mm.slub.flags import (
    __CMPXCHG_DOUBLE,
    __OBJECT_POISON,
    SLAB_HWCACHE_ALIGN,
    SLAB_POISON,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TYPESAFE_BY_RCU,
)
from kslab.mm.slub.geometry import freeptr_outside_object, get_info_end
from kslab.mm.slub.slab_common import kmem_cache_create
from kslab.mm.slub.slub_def import SIZEOF_TRACK, KmemCache


def create(size: int, flags: int = 0, ctor: bool = False, align: int = 0, freeptr_offset: int = -1,
           slab_debug: str | None = None) -> KmemCache:
    sl = boot(slab_debug=slab_debug, slab_nomerge=True)  # a cache of its own, never an alias
    s = kmem_cache_create(sl, "test", size, align, flags, ctor, freeptr_offset=freeptr_offset)
    assert s is not None and s.name == "test", "expected a cache of its own"
    return s


@pytest.mark.parametrize(("size", "offset"), [(200, 96), (8, 0), (16, 8), (20, 8), (72, 32), (1304, 648)])
def test_plain_cache_keeps_the_pointer_mid_object(size: int, offset: int) -> None:
    s = create(size)
    assert s.offset == offset
    assert not freeptr_outside_object(s)
    assert s.inuse == (size + 7) & ~7
    assert get_info_end(s) == s.inuse


def test_ctor_moves_the_pointer_after_the_object() -> None:
    s = create(576, ctor=True)
    assert (s.offset, s.inuse, s.size) == (576, 576, 584)
    assert freeptr_outside_object(s) and get_info_end(s) == 584


def test_rcu_moves_the_pointer_after_the_object() -> None:
    s = create(96, SLAB_TYPESAFE_BY_RCU)
    assert (s.offset, s.size) == (96, 104)


def test_rcu_with_freeptr_offset_keeps_it_and_the_size() -> None:
    s = create(176, SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN, freeptr_offset=144)
    assert (s.offset, s.inuse, s.size, s.align) == (144, 176, 192, 64)


def test_freeptr_offset_needs_rcu_an_aligned_offset_inside_the_object() -> None:
    sl = boot()
    for flags, off in ((0, 144), (SLAB_TYPESAFE_BY_RCU, 176), (SLAB_TYPESAFE_BY_RCU, 12)):
        assert kmem_cache_create(sl, f"bad-{flags}-{off}", 176, 0, flags, freeptr_offset=off) is None
    assert sum("failed with error -22" in m for m in sl.dmesg) == 3


def test_poison_moves_the_pointer_and_poisons_the_object() -> None:
    s = create(64, SLAB_POISON)
    assert (s.offset, s.size) == (64, 72)
    assert s.flags & __OBJECT_POISON
    with_ctor = create(64, SLAB_POISON, ctor=True)
    assert not with_ctor.flags & __OBJECT_POISON
    rcu = create(64, SLAB_POISON | SLAB_TYPESAFE_BY_RCU)
    assert not rcu.flags & __OBJECT_POISON


def test_red_zone_adds_a_word_and_a_left_pad() -> None:
    s = create(64, SLAB_RED_ZONE)
    # 64 + 8 (right red zone); pointer mid-object; + 8 after; + left pad 8
    assert (s.inuse, s.offset, s.red_left_pad, s.size) == (72, 32, 8, 88)
    unaligned = create(60, SLAB_RED_ZONE)  # the word of slack is the red zone
    assert (unaligned.inuse, unaligned.size) == (64, 80)


def test_red_zone_on_a_tiny_object_moves_the_pointer() -> None:
    s = create(4, SLAB_RED_ZONE)
    assert s.offset == s.inuse == 8
    assert s.size == 8 + 8 + 8 + 8


def test_red_left_pad_follows_the_alignment() -> None:
    s = create(100, SLAB_RED_ZONE, align=64)
    assert s.red_left_pad == 64
    assert s.size % 64 == 0


def test_store_user_adds_two_tracks_and_no_cmpxchg() -> None:
    s = create(64, SLAB_STORE_USER)
    assert s.size == 64 + 2 * SIZEOF_TRACK
    assert not s.flags & __CMPXCHG_DOUBLE
    assert create(64).flags & __CMPXCHG_DOUBLE


def test_kmalloc_cache_with_store_user_keeps_the_request_size() -> None:
    sl = boot(slab_debug="U,kmalloc-64")
    k64 = sl.kmalloc_caches[0][6]
    assert k64 is not None and k64.name == "kmalloc-64"
    # 64 + two tracks + the original size, rounded up to the cache's alignment (64)
    assert (k64.size, k64.align) == (192, 64)
    assert k64.size == (64 + 2 * SIZEOF_TRACK + 8 + 63) & ~63
    zu = boot(slab_debug="ZU,kmalloc-64").kmalloc_caches[0][6]
    assert zu is not None and zu.offset == zu.inuse == 72  # red zone + orig_size: the pointer goes after
    assert zu.red_left_pad == 64 and zu.size == 256  # 72 + 8 + 64 + 8 + 8, left pad 64, aligned to 64


def test_full_debugging_of_every_cache() -> None:
    sl = boot(slab_debug="")
    s = kmem_cache_create(sl, "dbg", 64, 0, 0)
    assert s is not None
    # F Z P U: inuse 72, pointer after (poison), 2 tracks, right word, left pad
    assert (s.inuse, s.offset, s.size, s.cpu_partial, s.cpu_partial_slabs) == (72, 72, 72 + 8 + 64 + 8 + 8, 0, 0)

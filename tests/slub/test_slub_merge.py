"""find_mergeable / slab_unmergeable / __kmem_cache_alias and the sysfs names (mm/slab_common.c, mm/slub.c, 6.12)."""

from __future__ import annotations

import pytest
from slubhelp import boot

from kslab.mm.slub.flags import (
    SLAB_CACHE_DMA,
    SLAB_HWCACHE_ALIGN,
    SLAB_KMALLOC,
    SLAB_NO_MERGE,
    SLAB_NOLEAKTRACE,
    SLAB_PANIC,
    SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TRACE,
    SLAB_TYPESAFE_BY_RCU,
)
from kslab.mm.slub.init import create_unique_id, sysfs_slab_name
from kslab.mm.slub.slab_common import Unmergeable, kmem_cache_create, slab_unmergeable
from kslab.mm.slub.slub_def import AliasRecord, Slub


def test_merges_into_the_oldest_fitting_cache(sl: Slub) -> None:
    s = kmem_cache_create(sl, "fs_cache", 56, 0, SLAB_HWCACHE_ALIGN | SLAB_PANIC)
    assert s is not None and s.name == "kmalloc-64"
    assert (s.refcount, s.object_size, s.inuse, s.aliases) == (2, 64, 64, ["fs_cache"])
    assert sl.log[-1] == AliasRecord("fs_cache", "kmalloc-64", 64, 64, 64, 2)


def test_alias_grows_object_size_and_inuse(sl: Slub) -> None:
    own = kmem_cache_create(sl, "a", 44, 0, 0)  # 48-byte stride, no kmalloc-48
    assert own is not None and own.name == "a" and own.size == 48
    b = kmem_cache_create(sl, "b", 47, 0, 0)
    assert b is own and (own.object_size, own.inuse, own.refcount) == (47, 48, 2)


def test_a_word_of_difference_is_too_much(sl: Slub) -> None:
    # 48 rounds to 48: kmalloc-64 is 16 bytes larger, so a cache of its own
    s = kmem_cache_create(sl, "x48", 48, 0, 0)
    assert s is not None and s.name == "x48"
    # 57..64 fits kmalloc-64
    t = kmem_cache_create(sl, "x57", 57, 0, 0)
    assert t is not None and t.name == "kmalloc-64"


def test_alignment_must_divide_the_target_stride(sl: Slub) -> None:
    # 96 bytes aligned to 64: stride 128, so kmalloc-96 is too small and kmalloc-128 takes it
    s = kmem_cache_create(sl, "a64", 96, 64, 0)
    assert s is not None and s.name == "kmalloc-128"
    # stride 72 aligned 8 does not fit kmalloc-96 (24 bytes larger): own cache; then 80 bytes at align 16
    # (stride 80) does not divide 72 and is larger: own cache
    assert kmem_cache_create(sl, "s72", 72, 0, 0).name == "s72"  # type: ignore[union-attr]
    assert kmem_cache_create(sl, "s80", 80, 16, 0).name == "s80"  # type: ignore[union-attr]
    assert kmem_cache_create(sl, "s72b", 72, 8, 0).name == "s72"  # type: ignore[union-attr]
    assert kmem_cache_create(sl, "s72c", 72, 16, 0).name == "s80"  # type: ignore[union-attr]


def test_merge_same_flags_must_agree(sl: Slub) -> None:
    assert kmem_cache_create(sl, "r", 192, 0, SLAB_RECLAIM_ACCOUNT).name == "kmalloc-rcl-192"  # type: ignore[union-attr]
    assert kmem_cache_create(sl, "d", 192, 0, SLAB_CACHE_DMA).name == "dma-kmalloc-192"  # type: ignore[union-attr]
    assert kmem_cache_create(sl, "n", 192, 0, 0).name == "kmalloc-192"  # type: ignore[union-attr]


@pytest.mark.parametrize("flag", [SLAB_RED_ZONE, SLAB_POISON, SLAB_STORE_USER, SLAB_TRACE, SLAB_TYPESAFE_BY_RCU,
                                  SLAB_NOLEAKTRACE, SLAB_NO_MERGE])
def test_never_merge_flags_refuse_both_ways(sl: Slub, flag: int) -> None:
    s = kmem_cache_create(sl, "nm", 64, 0, flag)
    assert s is not None and s.name == "nm"
    assert slab_unmergeable(sl, s) is Unmergeable.NEVER_MERGE_FLAGS
    again = kmem_cache_create(sl, "nm2", 64, 0, flag)
    assert again is not None and again.name == "nm2"


def test_ctor_refuses_both_ways(sl: Slub) -> None:
    s = kmem_cache_create(sl, "c", 64, 0, 0, ctor=True)
    assert s is not None and s.name == "c" and slab_unmergeable(sl, s) is Unmergeable.CTOR
    assert kmem_cache_create(sl, "c2", 64, 0, 0).name == "kmalloc-64"  # type: ignore[union-attr]


def test_boot_caches_are_never_targets(sl: Slub) -> None:
    assert sl.kmem_cache_node is not None and slab_unmergeable(sl, sl.kmem_cache_node) is Unmergeable.BOOT
    assert sl.kmem_cache is not None and sl.kmem_cache.refcount == -1
    s = kmem_cache_create(sl, "k256", 256, 0, SLAB_HWCACHE_ALIGN)  # kmem_cache's 256-byte stride is not used
    assert s is not None and s.name == "kmalloc-256"


def test_usercopy_window_only_with_hardened_usercopy() -> None:
    plain = boot()
    assert kmem_cache_create(plain, "u", 4096, 0, 0, usersize=4096).name == "kmalloc-4k"  # type: ignore[union-attr]
    hard = boot(CONFIG_HARDENED_USERCOPY=True)
    k4 = hard.kmalloc_caches[0][12]
    assert k4 is not None and slab_unmergeable(hard, k4) is Unmergeable.USERCOPY  # kmalloc usersize = size
    u = kmem_cache_create(hard, "u", 4096, 0, 0, useroffset=0, usersize=4096)
    assert u is not None and u.name == "u" and u.usersize == 4096


def test_slab_nomerge() -> None:
    sl = boot(slab_nomerge=True)
    s = kmem_cache_create(sl, "x", 64, 0, 0)
    assert s is not None and s.name == "x" and slab_unmergeable(sl, s) is Unmergeable.SLAB_NOMERGE


def test_flags_not_permitted_fail(sl: Slub) -> None:
    assert kmem_cache_create(sl, "bad", 64, 0, 1 << 20) is None
    assert sl.dmesg[-1] == "__kmem_cache_create_args(bad) failed with error -22"


def test_slab_kmalloc_is_a_permitted_flag(sl: Slub) -> None:
    s = kmem_cache_create(sl, "km", 40, 0, SLAB_KMALLOC)
    assert s is not None and s.flags & SLAB_KMALLOC


@pytest.mark.parametrize(("name", "sysfs"), [("kmalloc-64", ":0000064"), ("kmalloc-rcl-192", ":a-0000192"),
                                             ("dma-kmalloc-96", ":d-0000096"), ("kmem_cache", "kmem_cache"),
                                             ("kmem_cache_node", "kmem_cache_node")])
def test_sysfs_names(sl: Slub, name: str, sysfs: str) -> None:
    s = next(c for c in sl.slab_caches if c.name == name)
    assert sysfs_slab_name(sl, s) == sysfs


def test_sysfs_name_of_debugged_and_consistency_checked_caches() -> None:
    sl = boot(slab_debug="F,kmalloc-64")
    s = sl.kmalloc_caches[0][6]
    assert s is not None and create_unique_id(s) == ":F-0000064"
    assert sysfs_slab_name(sl, s) == ":F-0000064"  # F alone is not a SLAB_NEVER_MERGE flag
    o = boot(slab_debug="ZO")
    k64, k4k = o.kmalloc_caches[0][6], o.kmalloc_caches[0][12]
    assert k64 is not None and k64.flags & SLAB_RED_ZONE and k64.red_left_pad == 64
    # the red zone would raise kmalloc-4k's minimum order: 'O' drops it, and the cache gets a plain layout
    assert k4k is not None and not k4k.flags & SLAB_RED_ZONE and (k4k.size, k4k.offset) == (4096, 2048)
    assert k4k.red_left_pad == 4096  # the second calculate_sizes leaves the first pass's pad, as the kernel does
    assert slab_unmergeable(o, k4k) is None
    assert sysfs_slab_name(o, k4k) == "kmalloc-4k"  # yet with 'O' and metadata flags sysfs uses its name

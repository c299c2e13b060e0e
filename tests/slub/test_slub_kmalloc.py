"""The kmalloc caches of 6.12 (mm/slab_common.c): names, order of creation, size classes, types."""

from __future__ import annotations

import pytest
from slubhelp import boot

from kslab.mm.gfp import __GFP_DMA, __GFP_RECLAIMABLE, GFP_KERNEL
from kslab.mm.slub.flags import SLAB_CACHE_DMA, SLAB_KMALLOC, SLAB_RECLAIM_ACCOUNT
from kslab.mm.slub.init import slab_late_init
from kslab.mm.slub.kmalloc import __kmalloc_index, kmalloc_info, kmalloc_slab, kmalloc_type
from kslab.mm.slub.slub_def import CreateRecord, KmallocCacheType, SlabState, Slub

SIZES = ["96", "192", "8", "16", "32", "64", "128", "256", "512", "1k", "2k", "4k", "8k"]


def test_creation_order(sl: Slub) -> None:
    created = [r.name for r in sl.log if isinstance(r, CreateRecord)]
    expected = ["kmem_cache_node", "kmem_cache"]
    for prefix in ("kmalloc-", "kmalloc-rcl-", "dma-kmalloc-"):
        expected += [prefix + s for s in SIZES]
    assert created == expected


def test_flags_and_alignment(sl: Slub) -> None:
    rows = {r.name: r for r in sl.log if isinstance(r, CreateRecord)}
    assert (rows["kmalloc-96"].align, rows["kmalloc-96"].flags, rows["kmalloc-96"].via) == (32, SLAB_KMALLOC,
                                                                                             "kmalloc")
    assert rows["kmalloc-rcl-8k"].flags == SLAB_KMALLOC | SLAB_RECLAIM_ACCOUNT
    assert rows["dma-kmalloc-192"].align == 64 and rows["dma-kmalloc-192"].flags == SLAB_KMALLOC | SLAB_CACHE_DMA
    assert rows["kmem_cache"].via == "boot" and rows["kmem_cache"].size == 200


def test_kmem_cache_size_follows_the_nodes() -> None:
    two = boot(4, 2)
    assert two.kmem_cache is not None and two.kmem_cache.object_size == 208


def test_kmalloc_info_names() -> None:
    assert kmalloc_info[1] == (96, ("kmalloc-96", "kmalloc-rcl-96", "dma-kmalloc-96"))
    assert kmalloc_info[10][1][0] == "kmalloc-1k"
    assert kmalloc_info[21] == (2097152, ("kmalloc-2M", "kmalloc-rcl-2M", "dma-kmalloc-2M"))


@pytest.mark.parametrize(("size", "index"), [(0, 0), (1, 3), (8, 3), (9, 4), (64, 6), (65, 1), (96, 1), (97, 7),
                                             (128, 7), (129, 2), (192, 2), (193, 8), (8192, 13), (8193, 14)])
def test_kmalloc_index(size: int, index: int) -> None:
    assert __kmalloc_index(size) == index


@pytest.mark.parametrize(("size", "name"), [(1, "kmalloc-8"), (24, "kmalloc-32"), (72, "kmalloc-96"),
                                            (100, "kmalloc-128"), (136, "kmalloc-192"), (200, "kmalloc-256"),
                                            (1025, "kmalloc-2k"), (8192, "kmalloc-8k")])
def test_kmalloc_slab(sl: Slub, size: int, name: str) -> None:
    s = kmalloc_slab(sl, size, GFP_KERNEL)
    assert s is not None and s.name == name


def test_kmalloc_type() -> None:
    assert kmalloc_type(GFP_KERNEL) is KmallocCacheType.KMALLOC_NORMAL
    assert kmalloc_type(GFP_KERNEL | __GFP_RECLAIMABLE) is KmallocCacheType.KMALLOC_RECLAIM
    assert kmalloc_type(GFP_KERNEL | __GFP_DMA | __GFP_RECLAIMABLE) is KmallocCacheType.KMALLOC_DMA


def test_kmalloc_slab_by_type(sl: Slub) -> None:
    assert kmalloc_slab(sl, 40, __GFP_RECLAIMABLE).name == "kmalloc-rcl-64"  # type: ignore[union-attr]
    assert kmalloc_slab(sl, 40, __GFP_DMA).name == "dma-kmalloc-64"  # type: ignore[union-attr]


def test_slab_state(sl: Slub) -> None:
    assert sl.slab_state is SlabState.UP
    slab_late_init(sl)
    assert sl.slab_state is SlabState.FULL

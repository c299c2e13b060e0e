"""Cache geometry (spec §2.4-§2.8, §12.1, §12.2), kmalloc size classes, boot order and merging.

Every expected number below was worked out by hand from the spec's rules (and checked against
mm/slab.c / mm/slab_common.c); none is read back from the model.
"""

from __future__ import annotations

import pytest
from slabhelp import boot, slabinfo_lines

from kslab.mm.gfp import __GFP_COMP, __GFP_DMA, __GFP_RECLAIMABLE, GFP_DMA
from kslab.mm.slab import kmalloc as km
from kslab.mm.slab.geometry import calculate_alignment, reciprocal_divide, reciprocal_value
from kslab.mm.slab_def import (
    CFLGS_OBJFREELIST_SLAB,
    CFLGS_OFF_SLAB,
    SLAB_ACCOUNT,
    SLAB_CACHE_DMA,
    SLAB_HWCACHE_ALIGN,
    SLAB_NOLEAKTRACE,
    SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT,
    SLAB_RED_ZONE,
    SLAB_STORE_USER,
    SLAB_TYPESAFE_BY_RCU,
)


def ctor(_obj: int) -> None:
    pass


# ---- §12.1 summary table ----------------------------------------------------------------------------
# name, object_size, align, size, num, order, placement, colour_off, colour, limit, batch, shared
KMALLOC_ROWS = [
    ("kmalloc-32", 32, 32, 32, 124, 0, "on-slab", 64, 0, 120, 60, 8),
    ("kmalloc-64", 64, 64, 64, 64, 0, "objfreelist", 64, 0, 120, 60, 8),
    ("kmalloc-96", 96, 64, 128, 32, 0, "objfreelist", 64, 0, 120, 60, 8),
    ("kmalloc-128", 128, 128, 128, 32, 0, "objfreelist", 128, 0, 120, 60, 8),
    ("kmalloc-192", 192, 64, 192, 21, 0, "objfreelist", 64, 1, 120, 60, 8),
    ("kmalloc-256", 256, 256, 256, 16, 0, "objfreelist", 256, 0, 120, 60, 8),
    ("kmalloc-512", 512, 512, 512, 8, 0, "objfreelist", 512, 0, 54, 27, 8),
    ("kmalloc-1k", 1024, 1024, 1024, 4, 0, "objfreelist", 1024, 0, 54, 27, 8),
    ("kmalloc-2k", 2048, 2048, 2048, 2, 0, "objfreelist", 2048, 0, 24, 12, 8),
    ("kmalloc-4k", 4096, 4096, 4096, 1, 0, "objfreelist", 4096, 0, 24, 12, 8),
    ("kmalloc-8k", 8192, 8192, 8192, 1, 1, "objfreelist", 8192, 0, 8, 4, 0),
    ("kmalloc-16k", 16384, 16384, 16384, 1, 2, "objfreelist", 16384, 0, 8, 4, 0),
    ("kmalloc-32k", 32768, 32768, 32768, 1, 3, "objfreelist", 32768, 0, 8, 4, 0),
    ("kmalloc-64k", 65536, 65536, 65536, 1, 4, "objfreelist", 65536, 0, 8, 4, 0),
    ("kmalloc-128k", 131072, 131072, 131072, 1, 5, "objfreelist", 131072, 0, 8, 4, 0),
    ("kmalloc-256k", 262144, 262144, 262144, 1, 6, "objfreelist", 262144, 0, 1, 1, 0),
    ("kmalloc-512k", 524288, 524288, 524288, 1, 7, "objfreelist", 524288, 0, 1, 1, 0),
    ("kmalloc-1M", 1048576, 1048576, 1048576, 1, 8, "objfreelist", 1048576, 0, 1, 1, 0),
    ("kmalloc-2M", 2097152, 2097152, 2097152, 1, 9, "objfreelist", 2097152, 0, 1, 1, 0),
    ("kmalloc-4M", 4194304, 4194304, 4194304, 1, 10, "objfreelist", 4194304, 0, 1, 1, 0),
]


@pytest.fixture(scope="module")
def smp():
    return boot(cpus=2)


def _by_name(k, name):
    for c in k.slab_caches:
        if c.name == name:
            return c
    raise KeyError(name)


def _check_row(k, c, row):
    _, object_size, align, size, num, order, placement, colour_off, colour, limit, batch, shared = row
    got = (c.object_size, c.align, c.size, c.num, c.gfporder, c.placement, c.colour_off, c.colour,
           c.limit, c.batchcount, c.shared)
    assert got == (object_size, align, size, num, order, placement, colour_off, colour, limit, batch, shared)
    assert c.freelist_size == num
    if placement == "off-slab":
        assert c.flags & CFLGS_OFF_SLAB and not c.flags & CFLGS_OBJFREELIST_SLAB
    elif placement == "objfreelist":
        assert c.flags & CFLGS_OBJFREELIST_SLAB and not c.flags & CFLGS_OFF_SLAB
        assert c.freelist_cache is None
    else:
        assert not c.flags & (CFLGS_OFF_SLAB | CFLGS_OBJFREELIST_SLAB)
        assert c.freelist_cache is None
    assert c.reciprocal_buffer_size == reciprocal_value(size)


@pytest.mark.parametrize("row", KMALLOC_ROWS, ids=[r[0] for r in KMALLOC_ROWS])
def test_kmalloc_geometry(smp, row):
    k = smp
    c = _by_name(k, row[0])
    _check_row(k, c, row)
    assert c.allocflags == __GFP_COMP
    # rcl and dma twins: same geometry, different page flags (spec §12.1 last paragraph)
    suffix = row[0][len("kmalloc-"):]
    rcl = _by_name(k, "kmalloc-rcl-" + suffix)
    dma = _by_name(k, "dma-kmalloc-" + suffix)
    _check_row(k, rcl, row)
    _check_row(k, dma, row)
    assert rcl.allocflags == __GFP_COMP | __GFP_RECLAIMABLE
    assert rcl.flags & SLAB_RECLAIM_ACCOUNT
    assert dma.allocflags == __GFP_COMP | GFP_DMA
    # every kmalloc cache, dma ones included, carries usersize = size (slab_common.c create_kmalloc_caches)
    assert c.usersize == row[1] and rcl.usersize == row[1] and dma.usersize == row[1]
    assert c.refcount == 1


def test_kmalloc_slabinfo_columns(smp):
    """§12.1: `kmalloc-32 … 32 124 1 : tunables 120 60 8` etc."""
    lines = {ln.name: ln for ln in slabinfo_lines(smp)}
    for name, _os, _al, size, num, order, *_rest in KMALLOC_ROWS:
        ln = lines[name]
        limit, batch, shared = _rest[-3:]
        assert (ln.objsize, ln.objperslab, ln.pagesperslab) == (size, num, 1 << order)
        assert (ln.limit, ln.batchcount, ln.sharedfactor) == (limit, batch, shared)


def test_kmem_cache_geometry(smp):
    """kmem_cache (no FREELIST_RANDOM): object_size 136 + 8 = 144, size 192, 21/slab, objfreelist, colour 1."""
    c = smp.kmem_cache
    assert c.name == "kmem_cache"
    assert (c.object_size, c.align, c.size, c.num, c.gfporder, c.placement, c.colour_off, c.colour) == (
        144, 64, 192, 21, 0, "objfreelist", 64, 1)
    assert (c.limit, c.batchcount, c.shared) == (120, 60, 8)
    assert c.refcount == -1


# private caches of §12.1: name, size, align, flags, ctor -> row
PRIVATE_ROWS = [
    ("x", 200, 0, SLAB_HWCACHE_ALIGN, None, (200, 64, 256, 16, 0, "objfreelist", 64, 0, 120, 60, 8)),
    ("x_ctor", 200, 0, SLAB_HWCACHE_ALIGN, ctor, (200, 64, 256, 16, 0, "off-slab", 64, 0, 120, 60, 8)),
    ("x_rcu", 200, 0, SLAB_HWCACHE_ALIGN | SLAB_TYPESAFE_BY_RCU, None,
     (200, 64, 256, 16, 0, "off-slab", 64, 0, 120, 60, 8)),
    ("y200", 200, 0, 0, None, (200, 8, 200, 20, 0, "objfreelist", 64, 1, 120, 60, 8)),
    ("c8", 8, 0, 0, None, (8, 8, 16, 240, 0, "on-slab", 64, 0, 120, 60, 8)),
    ("c3000", 3000, 0, 0, None, (3000, 8, 3000, 2, 1, "objfreelist", 64, 34, 24, 12, 8)),
    ("c5000", 5000, 0, 0, None, (5000, 8, 5000, 1, 1, "objfreelist", 64, 49, 8, 4, 0)),
    # a 64-byte cache with a ctor: on-slab, 63 per slab (spec §14)
    ("t64ctor", 64, 0, 0, ctor, (64, 8, 64, 63, 0, "on-slab", 64, 0, 120, 60, 8)),
    # SLAB_NOLEAKTRACE forbids off-slab: x + ctor becomes on-slab: 4096 // 257 = 15, left 241, colour 3
    ("x_ctor_nlt", 200, 0, SLAB_HWCACHE_ALIGN | SLAB_NOLEAKTRACE, ctor,
     (200, 64, 256, 15, 0, "on-slab", 64, 3, 120, 60, 8)),
]


@pytest.mark.parametrize("name,size,align,flags,fn,row", PRIVATE_ROWS, ids=[r[0] for r in PRIVATE_ROWS])
def test_private_cache_geometry(name, size, align, flags, fn, row):
    k = boot(cpus=2, slab_nomerge=True)
    c = k.kmem_cache_create(name, size, align, flags, fn)
    assert c is not None and c.name == name
    _check_row(k, c, (name, *row))
    if c.placement == "off-slab":
        assert c.freelist_cache is k.kmalloc_caches[0][5]  # kmalloc-32 holds the 16-byte freelists
    assert c.allocflags == __GFP_COMP


def test_x_slabinfo_line():
    k = boot(cpus=2)
    k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    ln = slabinfo_lines(k)[0]
    assert ln.name == "x"
    assert (ln.objsize, ln.objperslab, ln.pagesperslab, ln.limit, ln.batchcount, ln.sharedfactor) == (
        256, 16, 1, 120, 60, 8)


def test_too_big_cache_fails():
    """size > 4 MiB: no order 0..10 holds one object: -E2BIG (-7) and NULL."""
    k = boot()
    assert k.kmem_cache_create("huge", (4 << 20) + 8) is None
    assert "kmem_cache_create(huge) failed with error -7" in k.dmesg


def test_single_cpu_has_no_shared():
    k = boot(cpus=1)
    assert (k.kmalloc_caches[0][5].limit, k.kmalloc_caches[0][5].batchcount, k.kmalloc_caches[0][5].shared) == (
        120, 60, 0)
    c = k.kmem_cache_create("y", 3000)
    assert (c.limit, c.batchcount, c.shared) == (24, 12, 0)


# ---- §12.2 variants -----------------------------------------------------------------------------------

def _geom(c):
    return (c.size, c.num, c.gfporder, c.placement)


def test_init_on_free_variants():
    k = boot(cpus=2, init_on_free=True, slab_nomerge=True)
    km32 = k.kmalloc_caches[0][5]
    assert _geom(km32) == (32, 124, 0, "on-slab")
    assert _geom(k.kmalloc_caches[0][6]) == (64, 63, 0, "on-slab")  # left 1
    assert _geom(k.kmalloc_caches[0][1]) == (128, 32, 0, "off-slab")
    assert k.kmalloc_caches[0][1].freelist_cache is km32
    assert _geom(k.kmalloc_caches[0][7]) == (128, 31, 0, "on-slab")  # left 97
    assert _geom(k.kmalloc_caches[0][2]) == (192, 21, 0, "on-slab")
    assert k.kmalloc_caches[0][2].colour == 0  # left 43 < 64
    for i in range(8, 23):
        c = k.kmalloc_caches[0][i]
        assert c.placement == "off-slab", c.name
        assert c.freelist_cache is km32, c.name
        assert c.num == max(1, 4096 // c.size) if c.size <= 4096 else c.num == 1
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert _geom(x) == (256, 16, 0, "off-slab")
    y = k.kmem_cache_create("y", 200, 0, 0)
    assert _geom(y) == (200, 20, 0, "on-slab")
    assert y.colour == 1  # left 76 // 64
    z = k.kmem_cache_create("z", 3000, 0, 0)
    assert _geom(z) == (3000, 2, 1, "on-slab")
    e = k.kmem_cache_create("e", 8, 0, 0)
    assert _geom(e) == (16, 240, 0, "on-slab")
    # the quirk: even a RCU or ctor-less cache refuses objfreelist; the kmem_cache itself too
    assert k.kmem_cache.placement != "objfreelist"


def test_debug_slab_variants():
    k = boot(cpus=2, CONFIG_DEBUG_SLAB=True)
    for i in (5, 6, 1, 7, 2, 8, 9, 10):
        c = k.kmalloc_caches[0][i]
        assert c.flags & SLAB_POISON, c.name
        assert not c.flags & (SLAB_RED_ZONE | SLAB_STORE_USER), c.name
        assert c.obj_offset == 0
        assert (c.limit, c.batchcount) == (32, 16), c.name
    assert _geom(k.kmalloc_caches[0][5]) == (32, 124, 0, "on-slab")
    assert _geom(k.kmalloc_caches[0][6]) == (64, 64, 0, "objfreelist")
    assert _geom(k.kmalloc_caches[0][1]) == (128, 32, 0, "objfreelist")
    assert _geom(k.kmalloc_caches[0][2]) == (192, 21, 0, "objfreelist")
    assert (k.kmalloc_caches[0][11].limit, k.kmalloc_caches[0][11].batchcount) == (24, 12)  # 2k unchanged
    assert (k.kmalloc_caches[0][13].limit, k.kmalloc_caches[0][13].batchcount) == (8, 4)  # 8k unchanged
    assert (k.kmalloc_caches[0][22].limit, k.kmalloc_caches[0][22].batchcount) == (1, 1)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert _geom(x) == (256, 16, 0, "objfreelist")
    assert x.flags & SLAB_POISON and not x.flags & SLAB_RED_ZONE
    assert (x.limit, x.batchcount, x.shared) == (32, 16, 8)
    y = k.kmem_cache_create("y", 200, 0, 0)
    assert _geom(y) == (224, 18, 0, "objfreelist")
    assert y.colour == 1 and y.obj_offset == 8
    assert y.flags & (SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_POISON) == SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_POISON
    z = k.kmem_cache_create("z", 3000, 0, 0)
    assert _geom(z) == (3024, 2, 1, "objfreelist")
    assert (z.limit, z.batchcount) == (24, 12)
    e = k.kmem_cache_create("e", 8, 0, 0)
    assert _geom(e) == (32, 124, 0, "on-slab")
    assert e.obj_offset == 8
    r = k.kmem_cache_create("r", 200, 0, SLAB_TYPESAFE_BY_RCU)
    # RCU: no forced POISON, red zone + user (align 8): 200+24 = 224; never objfreelist -> off-slab
    # off-slab refused: left 64 >= num 18; on-slab 4096 // 225 = 18
    assert not r.flags & SLAB_POISON
    assert (r.size, r.num, r.placement) == (224, 18, "on-slab")


def test_slab_max_order_0_variants():
    k = boot(cpus=2, slab_max_order=0)
    z = k.kmem_cache_create("z", 3000, 0, 0)
    assert _geom(z) == (3000, 1, 0, "objfreelist")
    assert z.colour == 1096 // 64
    for row in KMALLOC_ROWS:
        c = _by_name(k, row[0])
        assert (c.size, c.num, c.gfporder) == (row[3], row[4], row[5]), c.name
    assert _geom(k.kmem_cache_create("y", 200)) == (200, 20, 0, "objfreelist")
    assert _geom(k.kmem_cache_create("e", 8)) == (16, 240, 0, "on-slab")


# ---- calculate_alignment and reciprocal division ----------------------------------------------------

@pytest.mark.parametrize("flags,align,size,want", [
    (SLAB_HWCACHE_ALIGN, 0, 200, 64),
    (SLAB_HWCACHE_ALIGN, 0, 33, 64),
    (SLAB_HWCACHE_ALIGN, 0, 32, 32),
    (SLAB_HWCACHE_ALIGN, 0, 17, 32),
    (SLAB_HWCACHE_ALIGN, 0, 16, 16),
    (SLAB_HWCACHE_ALIGN, 0, 9, 16),
    (SLAB_HWCACHE_ALIGN, 0, 8, 8),
    (SLAB_HWCACHE_ALIGN, 0, 1, 8),
    (SLAB_HWCACHE_ALIGN, 128, 40, 128),
    (SLAB_HWCACHE_ALIGN, 8, 96, 64),
    (0, 0, 200, 8),
    (0, 4, 200, 8),
    (0, 12, 200, 16),
    (0, 64, 10, 64),
    (0, 4096, 8, 4096),
])
def test_calculate_alignment(flags, align, size, want):
    assert calculate_alignment(flags, align, size) == want


def test_calculate_alignment_line_128():
    assert calculate_alignment(SLAB_HWCACHE_ALIGN, 0, 100, 128) == 128
    assert calculate_alignment(SLAB_HWCACHE_ALIGN, 0, 64, 128) == 64
    assert calculate_alignment(SLAB_HWCACHE_ALIGN, 0, 65, 128) == 128


def test_reciprocal_value_by_hand():
    # d = 64: l = 6, m = 2^32*(64-64)/64 + 1 = 1, sh1 = 1, sh2 = 5
    assert reciprocal_value(64) == (1, 1, 5)
    # d = 192: l = 8, m = floor(2^32 * 64 / 192) + 1 = 1431655766
    assert reciprocal_value(192) == (1431655766, 1, 7)
    # d = 200: l = 8, m = floor(2^32 * 56 / 200) + 1 = 1202590843
    assert reciprocal_value(200) == (1202590843, 1, 7)
    # d = 1: l = 0, m = 2^32*(1-1)/1 + 1 = 1, sh1 = 0, sh2 = 0
    assert reciprocal_value(1) == (1, 0, 0)


SIZES_USED = sorted({r[3] for r in KMALLOC_ROWS} | {16, 200, 224, 256, 3000, 3024, 5000, 1960, 8192})


@pytest.mark.parametrize("d", SIZES_USED)
def test_reciprocal_divide_exhaustive(d):
    """obj_to_index's reciprocal division equals floor division for every offset inside a slab."""
    r = reciprocal_value(d)
    span = max(d, 4096) * 2
    if span <= 65536:
        for a in range(span):
            assert reciprocal_divide(a, r) == a // d, (a, d)
    else:
        for i in range(0, (8 << 20) // d + 1):
            for a in (i * d, i * d + 1, i * d + d - 1):
                assert reciprocal_divide(a, r) == a // d, (a, d)


# ---- kmalloc_index / kmalloc_slab (§2.8) ---------------------------------------------------------------

KMALLOC_TABLE = [
    (1, 5, "kmalloc-32"), (8, 5, "kmalloc-32"), (16, 5, "kmalloc-32"), (24, 5, "kmalloc-32"),
    (32, 5, "kmalloc-32"), (33, 6, "kmalloc-64"), (64, 6, "kmalloc-64"), (65, 1, "kmalloc-96"),
    (96, 1, "kmalloc-96"), (97, 7, "kmalloc-128"), (128, 7, "kmalloc-128"), (129, 2, "kmalloc-192"),
    (192, 2, "kmalloc-192"), (193, 8, "kmalloc-256"), (256, 8, "kmalloc-256"), (257, 9, "kmalloc-512"),
    (512, 9, "kmalloc-512"), (513, 10, "kmalloc-1k"), (1024, 10, "kmalloc-1k"), (1025, 11, "kmalloc-2k"),
    (2048, 11, "kmalloc-2k"), (2049, 12, "kmalloc-4k"), (4096, 12, "kmalloc-4k"), (4097, 13, "kmalloc-8k"),
    (8192, 13, "kmalloc-8k"), (16384, 14, "kmalloc-16k"), (16385, 15, "kmalloc-32k"),
    (32768, 15, "kmalloc-32k"), (65536, 16, "kmalloc-64k"), (131072, 17, "kmalloc-128k"),
    (131073, 18, "kmalloc-256k"), (262144, 18, "kmalloc-256k"), (524288, 19, "kmalloc-512k"),
    (1 << 20, 20, "kmalloc-1M"), ((1 << 20) + 1, 21, "kmalloc-2M"), (2 << 20, 21, "kmalloc-2M"),
    (4 << 20, 22, "kmalloc-4M"),
]


@pytest.mark.parametrize("size,index,name", KMALLOC_TABLE)
def test_kmalloc_index_and_slab(smp, size, index, name):
    assert km.kmalloc_index(size) == index
    assert km.kmalloc_slab(smp, size, 0).name == name
    assert km.kmalloc_slab(smp, size, __GFP_RECLAIMABLE).name == name.replace("kmalloc-", "kmalloc-rcl-")
    assert km.kmalloc_slab(smp, size, __GFP_DMA | __GFP_RECLAIMABLE).name == "dma-" + name


def test_kmalloc_index_edges(smp):
    assert km.kmalloc_index(0) == 0
    assert km.kmalloc_slab(smp, 0, 0) == 16  # ZERO_SIZE_PTR
    assert km.kmalloc_slab(smp, (4 << 20) + 1, 0) is None
    assert smp.kmalloc_slab((4 << 20) + 1, 0) is None
    # every size up to 4 KiB, against the rule of spec §2.8 written out here
    def want(size):
        for limit, index in ((32, 5), (64, 6), (96, 1), (128, 7), (192, 2)):
            if size <= limit:
                return index
        return (size - 1).bit_length()

    for size in range(1, 4097):
        assert km.kmalloc_index(size) == want(size), size
        assert km.kmalloc_slab(smp, size, 0) is smp.kmalloc_caches[0][want(size)], size
    assert smp.size_index == [5, 5, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2]


# ---- boot order of /proc/slabinfo (§2.9) -------------------------------------------------------------

SIZES = ["32", "64", "96", "128", "192", "256", "512", "1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k",
         "256k", "512k", "1M", "2M", "4M"]


def test_boot_creation_order():
    k = boot(cpus=2)
    big = SIZES[6:]  # 512 ... 4M
    oldest_first = (["kmem_cache", "kmalloc-128", "kmalloc-32", "kmalloc-64", "kmalloc-96", "kmalloc-192",
                     "kmalloc-256"] + ["kmalloc-" + s for s in big]
                    + ["kmalloc-rcl-" + s for s in ("32", "64", "96", "128", "192", "256")]
                    + ["kmalloc-rcl-" + s for s in big]
                    + ["dma-kmalloc-" + s for s in ("96", "192", "32", "64", "128", "256")]
                    + ["dma-kmalloc-" + s for s in big])
    assert len(oldest_first) == 61  # kmem_cache + 3 x 20 kmalloc caches
    names = [ln.name for ln in slabinfo_lines(k)]
    assert names == list(reversed(oldest_first))
    c = k.kmem_cache_create("newest", 100)
    assert c is not None
    assert slabinfo_lines(k)[0].name == "newest"


# ---- merging (§2.2) -----------------------------------------------------------------------------------

def test_merge_alias_basic():
    k = boot(cpus=2)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN)
    assert a.name == "a" and a.refcount == 1
    b = k.kmem_cache_create("b", 250, 0, SLAB_HWCACHE_ALIGN)
    assert b is a
    assert a.refcount == 2
    assert a.object_size == 250  # max of the requested (unaligned) sizes
    c = k.kmem_cache_create("c", 249, 0, 0)  # align 8, size 256: 256 - 256 < 8, 64 % 8 == 0
    assert c is a and a.refcount == 3 and a.object_size == 250
    names = [ln.name for ln in slabinfo_lines(k)]
    assert "a" in names and "b" not in names and "c" not in names
    # a 240-byte request: 256 - 240 >= 8, no merge
    d = k.kmem_cache_create("d", 240, 0, 0)
    assert d is not a and d.size == 240
    # destroying an alias only drops the refcount
    k.kmem_cache_destroy(b)
    assert a.refcount == 2 and "a" in [ln.name for ln in slabinfo_lines(k)]
    # ksize of an aliased cache's object is the largest object_size
    p = k.kmem_cache_alloc(a)
    assert k.ksize(p) == 250


def test_merge_oldest_wins_and_alignment():
    k = boot(cpus=2)
    old = k.kmem_cache_create("old", 256, 0, 0)
    assert old.align == 8 and old.size == 256
    new = k.kmem_cache_create("new", 256, 256, 0)  # old.align 8 < 256: not a target
    assert new is not old and new.align == 256
    assert k.kmem_cache_create("q", 256, 0, 0) is old  # both qualify: the oldest wins
    assert k.kmem_cache_create("q2", 256, 256, 0) is new  # only "new" is aligned enough
    assert k.kmem_cache_create("q3", 256, 128, 0) is new


@pytest.mark.parametrize("flag", [SLAB_NOLEAKTRACE, SLAB_TYPESAFE_BY_RCU])
def test_never_merge_request(flag):
    k = boot(cpus=2)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN)
    b = k.kmem_cache_create("b", 200, 0, SLAB_HWCACHE_ALIGN | flag)
    assert b is not a and a.refcount == 1
    # and a cache created with a never-merge flag is not a target later
    k2 = boot(cpus=2)
    r = k2.kmem_cache_create("r", 200, 0, SLAB_HWCACHE_ALIGN | flag)
    s = k2.kmem_cache_create("s", 200, 0, SLAB_HWCACHE_ALIGN)
    assert s is not r and r.refcount == 1


def test_merge_same_flags():
    k = boot(cpus=2)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN)
    b = k.kmem_cache_create("b", 200, 0, SLAB_HWCACHE_ALIGN | SLAB_RECLAIM_ACCOUNT)
    assert b is not a
    c = k.kmem_cache_create("c", 200, 0, SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT)
    assert c is not a and c is not b
    assert k.kmem_cache_create("d", 200, 0, SLAB_HWCACHE_ALIGN | SLAB_RECLAIM_ACCOUNT) is b


def test_ctor_usersize_block_merge():
    k = boot(cpus=2)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN, ctor)
    b = k.kmem_cache_create("b", 200, 0, SLAB_HWCACHE_ALIGN)
    assert b is not a  # a has a ctor: not a target
    c = k.kmem_cache_create("c", 200, 0, SLAB_HWCACHE_ALIGN, ctor)
    assert c is not b and c is not a  # a request with a ctor never merges
    u = k.kmem_cache_create("u", 200, 0, SLAB_HWCACHE_ALIGN, None, useroffset=0, usersize=16)
    assert u is not b and b.refcount == 1  # usersize != 0: no alias attempt
    v = k.kmem_cache_create("v", 200, 0, SLAB_HWCACHE_ALIGN)
    assert v is b  # u (usersize) is not a target; b is older anyway


def test_kmalloc_and_kmem_cache_never_targets():
    k = boot(cpus=2)
    for name, size, flags in (("k64", 64, 0), ("k32", 32, SLAB_HWCACHE_ALIGN), ("k192", 192, SLAB_HWCACHE_ALIGN),
                              ("k4096", 4096, 0)):
        c = k.kmem_cache_create(name, size, 0, flags)
        assert c.name == name
        assert c.refcount == 1
    # a DMA request does not alias dma-kmalloc-* either (usersize = size there too)
    d = k.kmem_cache_create("kdma64", 64, 64, SLAB_CACHE_DMA)
    assert d.name == "kdma64" and d.refcount == 1
    for row in KMALLOC_ROWS:
        assert _by_name(k, row[0]).refcount == 1
        assert _by_name(k, "dma-" + row[0]).refcount == 1
    assert k.kmem_cache.refcount == -1


def test_nomerge_options():
    k = boot(cpus=2, slab_nomerge=True)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.kmem_cache_create("b", 200, 0, SLAB_HWCACHE_ALIGN) is not a
    k = boot(cpus=2, CONFIG_DEBUG_SLAB=True)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.kmem_cache_create("b", 200, 0, SLAB_HWCACHE_ALIGN) is not a  # a is POISONed: unmergeable


def test_non_power_of_two_alignment_uses_mask_align():
    """ALIGN() is (x + a - 1) & ~(a - 1) even for a = 24: 40 stays 40, 48 becomes 64."""
    k = boot(cpus=2, slab_nomerge=True)
    a = k.kmem_cache_create("a24", 40, 24, 0)
    # size 40: objfreelist refused (102 > 40), off-slab refused (freelist caches too big), on-slab 4096 // 41
    assert (a.align, a.size, a.num, a.gfporder, a.placement, a.colour_off, a.colour) == (
        24, 40, 99, 0, "on-slab", 64, 0)
    b = k.kmem_cache_create("b24", 48, 24, 0)
    assert (b.align, b.size, b.num, b.placement) == (24, 64, 63, "on-slab")
    # find_mergeable rounds the same way
    k2 = boot(cpus=2)
    s48 = k2.kmem_cache_create("s48", 48, 48, 0)  # ALIGN(48, 48) = (48 + 47) & ~47 = 80
    assert s48.size == 80 and s48.align == 48
    # request (48, 24): size ALIGN(48, 24) = 64; 80 & ~23 = 64 != 80 (and 80 - 64 >= 8): no alias
    r = k2.kmem_cache_create("r", 48, 24, 0)
    assert r is not s48 and s48.refcount == 1 and r.size == 64


def test_create_flag_checks():
    k = boot(cpus=2)
    assert k.kmem_cache_create("bad", 100, 0, 0x1) is None
    assert "kmem_cache_create(bad) failed with error -22" in k.dmesg
    # debug flags are accepted but masked away without CONFIG_DEBUG_SLAB
    c = k.kmem_cache_create("rz", 100, 0, SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)
    assert c is not None and not c.flags & (SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER)
    assert (c.size, c.obj_offset) == (104, 0)
    # with CONFIG_DEBUG_SLAB they stay
    kd = boot(cpus=2, CONFIG_DEBUG_SLAB=True)
    d = kd.kmem_cache_create("rz", 100, 0, SLAB_RED_ZONE)
    assert d.flags & SLAB_RED_ZONE and d.obj_offset == 8 and d.size == 104 + 24


def test_reclaim_account_takes_first_fit():
    """SLAB_RECLAIM_ACCOUNT: the first order holding an object wins, whatever the waste."""
    k = boot(cpus=2)
    r = k.kmem_cache_create("r3000", 3000, 0, SLAB_RECLAIM_ACCOUNT)
    # order 0: num 1, left 1096 (> 512 would normally move on to order 1)
    assert (r.size, r.num, r.gfporder, r.placement, r.colour) == (3000, 1, 0, "objfreelist", 1096 // 64)
    assert r.allocflags == __GFP_COMP | __GFP_RECLAIMABLE
    before = k.page_alloc.node_page_state(0, "NR_SLAB_RECLAIMABLE_B")
    k.kmem_cache_alloc(r)
    assert k.page_alloc.node_page_state(0, "NR_SLAB_RECLAIMABLE_B") == before + 4096

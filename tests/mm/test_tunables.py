"""Tunables: free_limit formulas (spec §3.3), do_tune_cpucache through /proc/slabinfo writes (§3.2, §3.4)."""

from __future__ import annotations

import pytest
from slabhelp import ac, boot, cols, line, node

from kslab.mm.slab_def import SLAB_HWCACHE_ALIGN

EINVAL = -22
ENOMEM = -12


def _free_limits(c):
    return [n.free_limit for n in c.node]


# ---- free_limit ----------------------------------------------------------------------------------------

def test_free_limit_one_cpu_numa():
    """1-CPU NUMA build: no CPU in node 0's mask during init_late, so boot caches keep batch + num;
    caches created after boot get (1 + 1) * batch + num."""
    k = boot(cpus=1)
    km = k.kmalloc_caches[0]
    assert _free_limits(km[5]) == [60 + 124]
    assert _free_limits(km[6]) == [60 + 64]
    assert _free_limits(km[2]) == [60 + 21]
    assert _free_limits(km[12]) == [12 + 1]
    assert _free_limits(km[13]) == [4 + 1]
    assert _free_limits(km[22]) == [1 + 1]
    assert _free_limits(k.kmem_cache) == [60 + 21]
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert _free_limits(x) == [2 * 60 + 16]
    big = k.kmem_cache_create("big", 8192)
    assert _free_limits(big) == [2 * 4 + 1]


def test_free_limit_one_cpu_non_numa():
    """Non-NUMA build: cpumask_of_node is the online mask (boot CPU): 2 * batch + num already at boot."""
    k = boot(cpus=1, CONFIG_NUMA=False)
    assert _free_limits(k.kmalloc_caches[0][5]) == [2 * 60 + 124]
    assert _free_limits(k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)) == [2 * 60 + 16]


def test_free_limit_four_cpus():
    """4 CPUs, 1 node: boot caches 4 * batch + num (last prepare step saw 3 CPUs), later (4 + 1) * batch + num."""
    k = boot(cpus=4)
    km = k.kmalloc_caches[0]
    assert _free_limits(km[5]) == [364]
    assert _free_limits(km[6]) == [304]
    assert _free_limits(km[2]) == [261]
    assert _free_limits(km[12]) == [49]
    assert _free_limits(km[13]) == [17]
    assert _free_limits(km[22]) == [5]
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert _free_limits(x) == [316]
    # re-tuning a boot cache now recomputes with all four CPUs in the mask
    assert k.slabinfo_write("kmalloc-32 120 60 8") == len("kmalloc-32 120 60 8")
    assert _free_limits(km[5]) == [5 * 60 + 124]
    # a CPU going away subtracts one batchcount
    k.cpu_down(3)
    assert _free_limits(x) == [316 - 60]
    assert _free_limits(km[6]) == [304 - 60]


def test_free_limit_four_cpus_two_nodes():
    """CPUs 0-1 on node 0, 2-3 on node 1: each node ends with 2 CPUs in its mask."""
    k = boot(cpus=4, nodes=2)
    km = k.kmalloc_caches[0]
    assert _free_limits(km[5]) == [2 * 60 + 124, 2 * 60 + 124]
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert _free_limits(x) == [3 * 60 + 16, 3 * 60 + 16]


# ---- slabinfo_write / do_tune_cpucache -------------------------------------------------------------

def _fill_arrays(k, c, n_alloc, n_free, cpu=0):
    objs = [k.kmem_cache_alloc(c, cpu=cpu) for _ in range(n_alloc)]
    for o in objs[:n_free]:
        k.kmem_cache_free(c, o, cpu=cpu)
    return objs[n_free:]


def test_valid_write_retunes_and_drains():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)  # 16 per slab, 120/60/8
    objs = [k.kmem_cache_alloc(x) for _ in range(64)]  # 4 full slabs (refills of 16 each), ac0 empty
    assert cols(k, "x") == (64, 64, 4, 4, 0)
    assert ac(x, 0) == []
    for o in objs[:40]:
        k.kmem_cache_free(x, o)
    assert len(ac(x, 0)) == 40
    assert cols(k, "x") == (64, 64, 4, 4, 0)  # objects in arrays count as active
    old_arrays = x.cpu_cache
    ret = k.slabinfo_write("x 32 16 4")
    assert ret == len("x 32 16 4")
    assert (x.limit, x.batchcount, x.shared) == (32, 16, 4)
    assert x.cpu_cache is not old_arrays
    for a in x.cpu_cache:
        assert (a.limit, a.batchcount, a.avail, a.touched) == (32, 16, 0, 0)
    assert node(x).shared.limit == 4 * 16 and node(x).shared.avail == 0
    ln = line(k, "x")
    assert (ln.limit, ln.batchcount, ln.sharedfactor) == (32, 16, 4)
    # 40 objects went back to their slabs: 24 active; old free_limit 3*60+16 = 196 allowed all slabs to stay
    assert ln.slabdata == (24, 64, 2, 4, 0)
    assert node(x).free_limit == 3 * 16 + 16


def test_write_unchanged_values_still_drains_shared():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    objs = [k.kmem_cache_alloc(x) for _ in range(128)]  # 8 full slabs
    for o in objs:
        k.kmem_cache_free(x, o)  # 120 in ac0 fill it, the 121st free flushes 60 to shared
    assert cols(k, "x") == (128, 128, 8, 8, 60)
    assert len(ac(x, 0)) == 68
    assert k.slabinfo_write("x 120 60 8") == len("x 120 60 8")
    # 128 free objects > free_limit 196? no: all 8 slabs stay, all empty
    assert cols(k, "x") == (0, 128, 0, 8, 0)


def test_write_uses_old_free_limit_for_cpu_arrays():
    """do_tune_cpucache frees the old per-CPU arrays before init_cache_node recomputes free_limit."""
    k = boot(cpus=1)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert node(x).free_limit == 136
    objs = [k.kmem_cache_alloc(x) for _ in range(128)]  # 8 full slabs, ac empty
    assert ac(x, 0) == []
    for o in objs[:120]:
        k.kmem_cache_free(x, o)
    assert len(ac(x, 0)) == 120
    assert k.slabinfo_write("x 10 5 0") > 0
    # 120 free objects <= old limit 136: no slab released although the new limit is 2*5+16 = 26
    assert cols(k, "x") == (8, 128, 1, 8, 0)
    assert node(x).free_limit == 26


@pytest.mark.parametrize("text", ["x 0 0 0", "x 0 1 0", "x 10 0 0", "x 10 11 0", "x 10 5 -1", "x -5 1 0"])
def test_invalid_values_silently_accepted(text):
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    _fill_arrays(k, x, 16, 8)
    arrays = x.cpu_cache
    before = cols(k, "x")
    assert k.slabinfo_write(text) == len(text)
    assert (x.limit, x.batchcount, x.shared) == (120, 60, 8)
    assert x.cpu_cache is arrays and len(ac(x, 0)) == 8
    assert cols(k, "x") == before


def test_batchcount_equal_limit_accepted():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write("x 7 7 0") == 7
    assert (x.limit, x.batchcount, x.shared) == (7, 7, 0)
    assert node(x).shared is None
    assert line(k, "x").sharedfactor == 0


@pytest.mark.parametrize("text", ["nosuchcache 10 5 1", "x", "x 10 5", "x10 5 1", "x a b c", "X 10 5 1"])
def test_einval(text):
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write(text) == EINVAL
    assert (x.limit, x.batchcount, x.shared) == (120, 60, 8)


def test_too_long_write():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    text = "x 10 5 1" + " " * 121
    assert len(text) == 129
    assert k.slabinfo_write(text) == EINVAL
    assert x.limit == 120
    ok = "x 10 5 1" + " " * 120  # exactly 128 bytes: accepted, trailing blanks ignored
    assert k.slabinfo_write(ok) == 128
    assert (x.limit, x.batchcount, x.shared) == (10, 5, 1)


def test_trailing_text_and_extra_blanks():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write("x   20   10   2 whatever\n") == len("x   20   10   2 whatever\n")
    assert (x.limit, x.batchcount, x.shared) == (20, 10, 2)


def test_enomem_limit_too_big():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write("x 4095 1 0") == ENOMEM
    assert (x.limit, x.batchcount, x.shared) == (120, 60, 8)
    assert k.slabinfo_write("x 4094 1 0") == len("x 4094 1 0")  # 16 + 8*4094 = 32 KiB fits
    assert x.limit == 4094


def test_write_tunes_newest_of_duplicates():
    k = boot(cpus=2, slab_nomerge=True)
    a = k.kmem_cache_create("dup", 200, 0, SLAB_HWCACHE_ALIGN)
    b = k.kmem_cache_create("dup", 200, 0, SLAB_HWCACHE_ALIGN)
    assert a is not b
    assert k.slabinfo_write("dup 16 8 0") == len("dup 16 8 0")
    assert (b.limit, b.batchcount, b.shared) == (16, 8, 0)
    assert (a.limit, a.batchcount, a.shared) == (120, 60, 8)


def test_alias_name_is_unknown_to_slabinfo_write():
    k = boot(cpus=2)
    a = k.kmem_cache_create("a", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.kmem_cache_create("alias", 200, 0, SLAB_HWCACHE_ALIGN) is a
    assert k.slabinfo_write("alias 16 8 0") == EINVAL
    assert a.limit == 120


def test_shared_zero_removes_shared_array_after_emptying():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    objs = [k.kmem_cache_alloc(x) for _ in range(128)]
    for o in objs:
        k.kmem_cache_free(x, o)
    assert node(x).shared.avail == 60
    assert k.slabinfo_write("x 120 60 0") > 0
    assert node(x).shared is None
    assert cols(k, "x") == (0, 128, 0, 8, 0)


def test_retune_keeps_alien_arrays():
    k = boot(cpus=2, nodes=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    alien = node(x, 0).alien[1]
    assert alien.limit == 12 and alien.batchcount == 0xBAADF00D
    assert node(x, 0).alien[0] is None
    assert k.slabinfo_write("x 1 1 0") > 0
    assert node(x, 0).alien[1] is alien and alien.limit == 12
    # a cache created with limit 1 gets alien arrays of limit 1
    big = k.kmem_cache_create("big", 300000)
    assert big.limit == 1 and node(big, 0).alien[1].limit == 1


# ---- the kernel's sscanf(" %d %d %d") --------------------------------------------------------------

@pytest.mark.parametrize("text", ["x +10 5 1", "x 10 5 --1", "x 10 5 +1", "x 10,5,1", "x 10abc 5 1", "x - 5 1"])
def test_sscanf_rejects(text):
    """vsscanf accepts one leading '-' only; a field that does not start a number ends the scan."""
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    assert k.slabinfo_write(text) == EINVAL
    assert (x.limit, x.batchcount, x.shared) == (120, 60, 8)


@pytest.mark.parametrize("text,want", [
    ("x 10 5 1junk", (10, 5, 1)),  # anything after the third number is ignored
    ("x\t 10 5 1", None),  # the name ends at the first space only: "x\t" is not a cache
    ("x 10\t5\n1", (10, 5, 1)),
    ("x 4294967306 5 1", (10, 5, 1)),  # the value is stored in an int: 2^32 + 10 -> 10
    ("x 10 5 4294967295", None),  # -> -1: shared < 0, silently ignored
])
def test_sscanf_accepts(text, want):
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    ret = k.slabinfo_write(text)
    if want is None and "\t" in text.split(" ")[0]:
        assert ret == EINVAL
        return
    assert ret == len(text)
    assert (x.limit, x.batchcount, x.shared) == (want or (120, 60, 8))


def test_enomem_for_shared_array_keeps_new_tunables():
    """A shared array over 4 MiB cannot be kmalloc'd: -ENOMEM, but nothing is rolled back."""
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    old_shared = node(x).shared
    old_limit = node(x).free_limit
    text = "x 100 50 20000"  # 20000 * 50 entries * 8 bytes > 4 MiB
    assert k.slabinfo_write(text) == ENOMEM
    assert (x.limit, x.batchcount, x.shared) == (100, 50, 20000)
    assert all(a.limit == 100 and a.batchcount == 50 for a in x.cpu_cache)
    # setup_kmem_cache_node failed before init_cache_node: old shared array and free_limit remain
    assert node(x).shared is old_shared and node(x).shared.limit == 480
    assert node(x).free_limit == old_limit
    assert line(k, "x").sharedfactor == 20000
    k.check()


def test_free_limit_two_cpus_non_numa():
    """Non-NUMA: the online mask; CPU 1's prepare step still sees one CPU: 2 * batch + num for boot caches."""
    k = boot(cpus=2, CONFIG_NUMA=False)
    assert _free_limits(k.kmalloc_caches[0][5]) == [2 * 60 + 124]
    assert _free_limits(k.kmem_cache) == [2 * 60 + 21]
    assert _free_limits(k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)) == [3 * 60 + 16]

"""/proc/slabinfo, byte for byte (spec §8.1, §8.2) against hand-made golden files.

The golden files hold the header and the newest lines: the test's own caches, then the
dma-kmalloc-* and kmalloc-rcl-* caches, which nothing touches during boot (all zero, tunables
from §3.1).  The kmalloc-* lines below them depend on boot-time side allocations and are not
part of the golden text.
"""

from __future__ import annotations

import pathlib

from slabhelp import boot

import goldens
from kslab.mm.slab_def import SLAB_HWCACHE_ALIGN
from kslab.mm.slabinfo import get_slabinfo

GOLDEN = pathlib.Path(__file__).parent / "golden"


def _prefix(text: str, nlines: int) -> str:
    return "".join(text.splitlines(keepends=True)[:nlines])


def test_prod_golden_two_cpus():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    for _ in range(20):
        assert k.kmem_cache_alloc(x)
    long = k.kmem_cache_create("this_is_a_long_cache_name", 1000)
    assert long is not None and long.name == "this_is_a_long_cache_name"
    want = (GOLDEN / "slabinfo_prod_2cpu.txt").read_text()
    got = k.slabinfo()
    goldens.assert_same_text(want, _prefix(got, want.count("\n")), "slabinfo golden prefix")
    # the rest of the file: every line ends with a newline, nothing after the oldest cache
    assert got.endswith("\n") and got.splitlines()[-1].startswith("kmem_cache ")
    assert len(got.splitlines()) == 2 + 63


def test_debug_golden_one_cpu():
    k = boot(cpus=1, CONFIG_DEBUG_SLAB=True)
    t = k.kmem_cache_create("t", 64)
    objs = [k.kmem_cache_alloc(t) for _ in range(3)]
    k.kmem_cache_free(t, objs[0])
    want = (GOLDEN / "slabinfo_debug_1cpu.txt").read_text()
    got = k.slabinfo()
    goldens.assert_same_text(want, _prefix(got, want.count("\n")), "slabinfo golden prefix")


def test_header_lines_exact():
    prod = boot().slabinfo().splitlines(keepends=True)
    assert prod[0] == "slabinfo - version: 2.1\n"
    assert prod[1] == ("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
                       " : tunables <limit> <batchcount> <sharedfactor>"
                       " : slabdata <active_slabs> <num_slabs> <sharedavail>\n")
    dbg = boot(CONFIG_DEBUG_SLAB=True).slabinfo().splitlines(keepends=True)
    assert dbg[0] == "slabinfo - version: 2.1 (statistics)\n"
    assert dbg[1] == ("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
                      " : tunables <limit> <batchcount> <sharedfactor>"
                      " : slabdata <active_slabs> <num_slabs> <sharedavail>"
                      " : globalstat <listallocs> <maxobjs> <grown> <reaped> <error> <maxfreeable> <nodeallocs>"
                      " <remotefrees> <alienoverflow> : cpustat <allochit> <allocmiss> <freehit> <freemiss>\n")


def test_column_widths_and_exact_name_width():
    k = boot(cpus=2)
    k.kmem_cache_create("seventeen_chars_x", 200, 0, SLAB_HWCACHE_ALIGN)  # exactly 17: no padding
    k.kmem_cache_create("s", 8)
    lines = k.slabinfo().splitlines()
    assert lines[2] == ("s                      0      0     16  240    1 : tunables  120   60    8"
                        " : slabdata      0      0      0")
    assert lines[3] == ("seventeen_chars_x      0      0    256   16    1 : tunables  120   60    8"
                        " : slabdata      0      0      0")


def test_get_slabinfo_counts_arrays_as_active():
    k = boot(cpus=2)
    x = k.kmem_cache_create("x", 200, 0, SLAB_HWCACHE_ALIGN)
    p = k.kmem_cache_alloc(x)  # refill of 16 from a new slab: 15 stay in ac0
    d = get_slabinfo(x)
    assert (d.active_objs, d.num_objs, d.objsize, d.objperslab, d.pagesperslab) == (16, 16, 256, 16, 1)
    assert (d.limit, d.batchcount, d.sharedfactor, d.active_slabs, d.num_slabs, d.sharedavail) == (
        120, 60, 8, 1, 1, 0)
    k.kmem_cache_free(x, p)
    assert get_slabinfo(x).active_objs == 16
    k.kmem_cache_shrink(x)
    d = get_slabinfo(x)
    assert (d.active_objs, d.num_objs, d.active_slabs, d.num_slabs) == (0, 0, 0, 0)


def test_boot_golden_one_cpu():
    """The whole file right after boot on 1 CPU (no shared or alien arrays): only kmem_cache (60 structs of
    kmalloc caches, 21 per slab) and kmalloc-128 (59 + 2 kmem_cache_node structures) hold objects."""
    k = boot(cpus=1)
    goldens.assert_same_text((GOLDEN / "slabinfo_boot_1cpu.txt").read_text(), k.slabinfo(), "slabinfo_boot_1cpu.txt")

"""SLUB debug caches (slab_debug=, 6.12): the paths without a cpu slab, the bytes SLUB_DEBUG writes, the checks
on alloc and free and the report lines they print (mm/slub.c: alloc_single_from_partial/new_slab,
free_to_partial_list, init_object, check_object, on_freelist, print_trailer)."""

from __future__ import annotations

import pytest

from kslab.cli import main
from kslab.mm.config import MachineConfig
from kslab.mm.errors import ConfigError
from kslab.mm.slub.debug_check import NOT_TAINTED, POISON_END, POISON_FREE, POISON_INUSE, SLUB_RED_ACTIVE
from kslab.mm.slub.debug_check import SLUB_RED_INACTIVE as INACTIVE
from kslab.mm.slub.machine import SlubKernel
from kslab.mm.slub.slab import StatItem
from kslab.mm.slub.slub_def import KmemCache

CALLER = 0xFFFFFFFF81234567


def machine(debug: str = "FZPU,kmalloc-64", cpus: int = 1) -> SlubKernel:
    return SlubKernel(MachineConfig.build(cpus=cpus, nodes=1, mem="256M"), cmdline=f"slab_debug={debug}")


def kcache(k: SlubKernel, name: str) -> KmemCache:
    s = k.find_cache(name)
    assert s is not None
    return s


def stat(s: KmemCache, item: StatItem) -> int:
    return sum(c.stat[item] for c in s.cpu_slab)


def report(k: SlubKernel, start: int) -> list[str]:
    return k.dmesg[start:]


def test_geometry_with_full_debugging_follows_calculate_sizes():
    """kmalloc-64 (natural alignment 64): left red zone ALIGN(8, 64) = 64, the object, a red zone word (the
    object fills its words), the free pointer after it (poison), two tracks, the kmalloc size, a padding word:
    64 + 64 + 8 + 8 + 64 + 8 + 8 = 224, aligned to 64 -> 256."""
    s = kcache(machine(), "kmalloc-64")
    assert (s.object_size, s.inuse, s.offset, s.red_left_pad, s.size) == (64, 72, 72, 64, 256)
    assert s.cpu_partial == 0 and s.cpu_partial_slabs == 0  # no per-CPU partial slabs for debug caches
    other = kcache(machine(), "kmalloc-128")
    assert (other.size, other.red_left_pad) == (128, 0)


def test_debug_caches_have_no_cpu_slab_and_every_path_is_slow():
    k = machine()
    s = kcache(k, "kmalloc-64")
    objs = [k.kmalloc(64) for _ in range(20)]
    assert all(c.slab is None and c.freelist == 0 and c.partial is None for c in s.cpu_slab)
    assert stat(s, StatItem.ALLOC_FASTPATH) == 0 and stat(s, StatItem.ALLOC_SLOWPATH) == 20
    # 16 objects a slab: the first filled and left the partial list, the second is on it
    assert stat(s, StatItem.ALLOC_SLAB) == 2 and s.node[0].nr_partial == 1
    for p in objs:
        k.kfree(p)
    assert stat(s, StatItem.FREE_FASTPATH) == 0 and stat(s, StatItem.FREE_SLOWPATH) == 20
    # the full slab's first free puts it at the tail of the list (FREE_ADD_PARTIAL); empty slabs stay below
    # min_partial
    assert stat(s, StatItem.FREE_ADD_PARTIAL) == 1 and stat(s, StatItem.FREE_SLAB) == 0
    assert s.node[0].nr_partial == 2 and not [x for x in k.dmesg if x.startswith("BUG")]
    k.check()


def test_bytes_of_a_free_and_an_allocated_object():
    k = machine()
    s = kcache(k, "kmalloc-64")
    p = k.kmalloc(40)
    nxt = p + s.size  # the next object, still free
    left = s.red_left_pad
    assert k.read(nxt - left, left) == bytes([INACTIVE]) * left
    assert k.read(nxt, 64) == bytes([POISON_FREE]) * 63 + bytes([POISON_END])
    assert k.read(nxt + 64, 8) == bytes([INACTIVE]) * 8
    # allocated by kmalloc(40): poisoned up to the request, red zone (0xcc) from there to inuse
    assert k.read(p - left, left) == bytes([SLUB_RED_ACTIVE]) * left
    assert k.read(p, 40) == bytes([POISON_FREE]) * 39 + bytes([POISON_END])
    assert k.read(p + 40, 32) == bytes([SLUB_RED_ACTIVE]) * 32
    # the padding after the tracking data (0x5a)
    assert k.read(p + 152, 40) == bytes([POISON_INUSE]) * 40


def test_double_free_is_caught_and_refused():
    k = machine()
    s = kcache(k, "kmalloc-64")
    p = k.kmalloc(64, caller=CALLER)
    keep = k.kmalloc(64)
    k.kfree(p, caller=CALLER + 0x10)
    n = len(k.dmesg)
    k.kfree(p)
    lines = report(k, n)
    assert lines[:4] == ["=" * 77, f"BUG kmalloc-64 ({NOT_TAINTED}): Object already free", "-" * 77, ""]
    assert f"Allocated in 0x{CALLER:x} age=0 cpu=0 pid=0" in lines
    assert f"Freed in 0x{CALLER + 0x10:x} age=0 cpu=0 pid=0" in lines
    assert any(x.startswith(f"Object 0x{p:x} @offset=") for x in lines)
    assert lines[-1] == f"FIX kmalloc-64: Object at 0x{p:x} not freed"
    slab = k.a.virt_to_slab(p)
    assert slab is not None and slab.inuse == 1 and k.a.virt_to_slab(keep) is slab
    # the next report says the kernel is tainted
    n = len(k.dmesg)
    k.kfree(p)
    assert report(k, n)[1] == "BUG kmalloc-64 (Tainted: G    B             ): Object already free"
    assert stat(s, StatItem.FREE_SLOWPATH) == 3
    k.check()


def test_freeing_more_than_the_slab_holds():
    """A double free into a slab whose last object was already freed: free_debug_processing's count check."""
    k = machine()
    p = k.kmalloc(64)
    k.kfree(p)
    n = len(k.dmesg)
    k.kfree(p)
    lines = report(k, n)
    assert lines[1:3] == ["BUG kmalloc-64 (Not tainted): Slab has 0 allocated objects but 1 are to be freed", ""]
    assert lines[3] == "-" * 77 and lines[-1] == f"FIX kmalloc-64: Object at 0x{p:x} not freed"


def test_right_redzone_overwrite_on_free():
    k = machine()
    p = k.kmalloc(64)
    k.write(p + 64, b"\x41\x42")
    n = len(k.dmesg)
    k.kfree(p)
    lines = report(k, n)
    assert lines[0] == (f"[Right Redzone overwritten] 0x{p + 64:x}-0x{p + 65:x} @offset={p + 64 - (p & ~0xFFF)}. "
                        "First byte 0x41 instead of 0xcc")
    assert lines[2] == "BUG kmalloc-64 (Not tainted): Object corrupt"
    assert f"FIX kmalloc-64: Restoring Right Redzone 0x{p + 64:x}-0x{p + 65:x}=0xcc" in lines
    assert lines[-1] == f"FIX kmalloc-64: Object at 0x{p:x} not freed"
    assert k.read(p + 64, 2) == b"\xcc\xcc"  # restored
    assert any(x.startswith("Redzone  ") and "41 42 cc" in x for x in lines)


def test_kmalloc_redzone_between_the_request_and_the_object_size():
    k = machine()
    p = k.kmalloc(40)
    k.write(p + 40, b"\x00")
    n = len(k.dmesg)
    k.kfree(p)
    assert report(k, n)[0].startswith(f"[kmalloc Redzone overwritten] 0x{p + 40:x}-0x{p + 40:x} ")


def test_use_after_free_is_caught_when_the_object_is_allocated_again():
    k = machine()
    s = kcache(k, "kmalloc-64")
    p = k.kmalloc(64)
    k.kfree(p)
    k.write(p + 8, b"\x00" * 4)
    n = len(k.dmesg)
    q = k.kmalloc(64)
    lines = report(k, n)
    assert lines[0].startswith(f"[Poison overwritten] 0x{p + 8:x}-0x{p + 11:x} ")
    assert "First byte 0x0 instead of 0x6b" in lines[0]
    assert f"FIX kmalloc-64: Restoring Poison 0x{p + 8:x}-0x{p + 11:x}=0x6b" in lines
    assert lines[-1] == "FIX kmalloc-64: Marking all objects used"
    # the slab is given up (frozen, full) and the allocation comes from a new slab
    bad = k.a.virt_to_slab(p)
    assert bad is not None and bad.frozen and bad.inuse == bad.objects and bad.freelist == 0
    assert q and k.a.virt_to_slab(q) is not bad and stat(s, StatItem.ALLOC_SLAB) == 2


def test_invalid_pointer_free():
    k = machine()
    p = k.kmalloc(64)
    n = len(k.dmesg)
    k.kfree(p + 8)
    lines = report(k, n)
    assert lines[1] == f"BUG kmalloc-64 (Not tainted): Invalid object pointer 0x{p + 8:x}"
    assert lines[4].startswith("Slab 0x") and lines[-1] == f"FIX kmalloc-64: Object at 0x{p + 8:x} not freed"


def test_empty_slabs_beyond_min_partial_are_discarded_and_checked():
    k = machine()
    s = kcache(k, "kmalloc-64")
    per = 16
    objs = [k.kmalloc(64) for _ in range(per * (s.min_partial + 2))]
    for p in objs[::per]:
        k.kfree(p)  # every slab gets a free object: on the partial list
    assert s.node[0].nr_partial == s.min_partial + 2
    for p in objs[1:per]:
        k.kfree(p)  # the first slab empties while the node has more than min_partial partial slabs
    assert stat(s, StatItem.FREE_SLAB) == 1 and stat(s, StatItem.FREE_REMOVE_PARTIAL) == 1
    assert s.node[0].nr_partial == s.min_partial + 1
    assert not [x for x in k.dmesg if x.startswith("BUG")]
    k.check()


def test_only_the_listed_caches_are_debugged():
    k = machine("FZ,kmalloc-64")
    p = k.kmalloc(128)
    k.kfree(p)
    s = kcache(k, "kmalloc-128")
    assert stat(s, StatItem.FREE_FASTPATH) == 1
    with pytest.raises(ConfigError, match="not in a slab of a cache with debugging"):
        k.write(p, b"x")


def test_red_zone_only_has_no_poison():
    k = machine("Z,kmalloc-64")
    s = kcache(k, "kmalloc-64")
    p = k.kmalloc(64)
    assert s.offset == 32  # the free pointer stays inside the object: no poison, no tracking, object >= 8
    assert k.read(p + 64, 8) == bytes([SLUB_RED_ACTIVE]) * 8
    k.kfree(p)
    assert k.read(p + 64, 8) == bytes([INACTIVE]) * 8
    assert not [x for x in k.dmesg if x.startswith("BUG")]


def test_bulk_free_of_a_debug_cache():
    k = machine()
    s = kcache(k, "kmalloc-64")
    objs = k.kmem_cache_alloc_bulk(s, 20)
    assert len(objs) == 20 and stat(s, StatItem.ALLOC_SLOWPATH) == 20
    k.kmem_cache_free_bulk(s, objs)
    assert all(sl.inuse == 0 for sl in k.a.mm.slabs.values() if sl.slab_cache is s)
    assert not [x for x in k.dmesg if x.startswith("BUG")]
    k.check()


def test_slab_debug_on_the_command_line(capsys: pytest.CaptureFixture[str]):
    assert main(["slabinfo", "--allocator", "slub", "--slab-debug", "FZPU,kmalloc-64"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("kmalloc-64 "))
    assert row[3:5] == ["256", "16"]  # objsize and objperslab with full debugging
    assert main(["slabinfo", "--allocator", "slub", "--slab-debug"]) == 0
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.startswith("kmalloc-128 "))
    assert row[3] != "128"  # bare: every cache debugged
    assert main(["slabinfo", "--slab-debug", "FZ"]) == 1
    assert "--slab-debug: a SLUB boot option" in capsys.readouterr().err

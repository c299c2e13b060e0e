"""SLUB manifests and cache logs: parsing, errors naming file and line, and the boot from them."""

from __future__ import annotations

import pytest
from slubhelp import boot

from kslab.mm.slub.flags import SLAB_HWCACHE_ALIGN, SLAB_PANIC, SLAB_TYPESAFE_BY_RCU
from kslab.mm.slub.manifest import SlubManifestError, boot_slub, parse_cache_log, parse_flags, read_slub_manifest
from kslab.mm.slub.slub_def import AliasRecord, CreateRecord, GeometryRecord, SlubConfig

LOG = [
    "[    0.1] kslab-oracle: create name=filp size=176 align=0 flags=0x310 ctor=0 useroffset=0 usersize=0 "
    "freeptr_offset=144 via=create",
    "kslab-oracle: geometry name=filp object_size=176 size=192 align=64 flags=0x10310 order=0 objects=21 "
    "min_order=0 min_objects=21 offset=144 inuse=176 red_left_pad=0 min_partial=5 cpu_partial=120 "
    "cpu_partial_slabs=12",
    "unrelated dmesg line",
    "kslab-oracle: create name=fs_cache size=56 align=0 flags=0x110 ctor=0 useroffset=0 usersize=0 "
    "freeptr_offset=-1 via=create",
    "kslab-oracle: alias name=fs_cache target=kmalloc-64 target_size=64 object_size=64 inuse=64 refcount=2",
]


def test_parse_cache_log() -> None:
    recs = parse_cache_log(LOG, "x.log")
    assert [type(r) for r in recs] == [CreateRecord, GeometryRecord, CreateRecord, AliasRecord]
    c = recs[0]
    assert isinstance(c, CreateRecord) and (c.flags, c.freeptr_offset, c.via) == (0x310, 144, "create")


def test_boot_from_a_log_reproduces_it() -> None:
    sl = boot_slub(SlubConfig(), read_slub_manifest(LOG, "x.log"))
    kernel = parse_cache_log(LOG)
    model = [r for r in sl.log if isinstance(r, CreateRecord | AliasRecord | GeometryRecord)
             and r.name in ("filp", "fs_cache")]
    assert model == kernel


def test_text_manifest() -> None:
    lines = ["# name size align flags ctor useroffset usersize freeptr_offset",
             "filp 176 0 SLAB_HWCACHE_ALIGN|SLAB_PANIC|SLAB_TYPESAFE_BY_RCU 0 0 0 144",
             "foo 100 8 0x0 1   # a ctor", "bar 64 0 0 0 0 64"]
    m = read_slub_manifest(lines, "m.txt")
    assert m[0] == CreateRecord("filp", 176, 0, SLAB_HWCACHE_ALIGN | SLAB_PANIC | SLAB_TYPESAFE_BY_RCU, False, 0, 0,
                                144, "create")
    assert (m[1].ctor, m[1].freeptr_offset, m[2].usersize) == (True, -1, 64)
    sl = boot_slub(SlubConfig(), m)
    filp = next(s for s in sl.slab_caches if s.name == "filp")
    assert (filp.offset, filp.size) == (144, 192)


@pytest.mark.parametrize(("line", "reason"), [
    ("foo 64 0 0", "expected 'name size align flags ctor"),
    ("foo sixty 0 0 0", "must be numbers"),
    ("foo 0 0 0 0", "impossible size 0"),
    ("foo 64 3 0 0", "align 3 is not 0 or a power of two"),
    ("foo 64 0 SLAB_BOGUS 0", "unknown flag 'SLAB_BOGUS'"),
    ("foo 64 0 0 2", "ctor must be 0 or 1"),
])
def test_manifest_errors_name_file_and_line(line: str, reason: str) -> None:
    with pytest.raises(SlubManifestError) as e:
        read_slub_manifest(["# comment", line], "m.txt")
    assert str(e.value).startswith("m.txt:2: ") and reason in str(e.value)


def test_cache_log_errors() -> None:
    with pytest.raises(SlubManifestError, match=r"^c.log:1: create line without size="):
        parse_cache_log(["kslab-oracle: create name=x align=0"], "c.log")
    with pytest.raises(SlubManifestError, match=r"^c.log:2: bad number in alias line"):
        parse_cache_log(["", "kslab-oracle: alias name=x target=y target_size=z object_size=1 inuse=1 refcount=1"],
                        "c.log")


def test_parse_flags() -> None:
    assert parse_flags("0x2010") == 0x2010 and parse_flags("16") == 16 and parse_flags("0") == 0
    assert parse_flags("SLAB_PANIC | SLAB_HWCACHE_ALIGN") == SLAB_PANIC | SLAB_HWCACHE_ALIGN


def test_failed_creation_is_reported_not_dropped() -> None:
    sl = boot_slub(SlubConfig(), read_slub_manifest(["huge 16777216 0 0 0"]))
    assert sl.dmesg[-1] == "__kmem_cache_create_args(huge) failed with error -22"
    assert boot().dmesg == ["SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=1, Nodes=1"]

"""Cache manifests: the 5-field format, kernel creation logs, and caches taken from a /proc/slabinfo."""

from __future__ import annotations

from pathlib import Path

import pytest

from kslab.manifest import Create, Directive, ManifestError, boot_machine, parse_manifest, read_manifest
from kslab.mm.config import MachineConfig
from kslab.trace.slabinfo_parse import parse_slabinfo

DATA = Path(__file__).resolve().parents[1] / "src" / "kslab" / "data"
GEOMETRY = ("objsize", "objperslab", "pagesperslab", "limit", "batchcount", "sharedfactor")


def test_parse_manifest_lines_and_directives() -> None:
    entries = parse_manifest(["# comment", "dentry 192 8 0x160000 0", "@init_late",
                              "x 200 0 SLAB_HWCACHE_ALIGN|SLAB_PANIC 1", "@cpu_up 1", "y 40 8 0 0 0 40"])
    assert entries[0] == Create("dentry", 192, 8, 0x160000, False, 2)
    assert entries[1] == Directive("init_late", -1, 3)
    assert isinstance(entries[2], Create) and entries[2].flags == 0x42000 and entries[2].ctor
    assert entries[3] == Directive("cpu_up", 1, 5)
    assert isinstance(entries[4], Create) and entries[4].usersize == 40


def test_a_cpu_the_machine_does_not_have_never_comes_up() -> None:
    """A what-if on a smaller machine than the one whose creation log is the manifest."""
    k = boot_machine(MachineConfig.build(cpus=2), parse_manifest(["a 64 0 0 0", "@init_late", "@cpu_up 1",
                                                                  "@cpu_up 3", "b 96 0 0 0"]))
    assert k.topo.online_cpus == {0, 1} and k.find_cache("b") is not None
    assert any("@cpu_up 3 skipped" in line for line in k.dmesg)


@pytest.mark.parametrize("line,reason", [
    ("a 10 8 0", "expected 'name size align flags ctor"),
    ("a ten 8 0 0", "must be numbers"),
    ("a 10 3 0 0", "not 0 or a power of two"),
    ("a 10 8 SLAB_NOPE 0", "unknown flag 'SLAB_NOPE'"),
    ("a 10 8 0 2", "ctor must be 0 or 1"),
    ("@reboot", "unknown directive"),
    ("a 0 8 0 0", "impossible size 0"),
])
def test_bad_manifest_lines_name_file_and_line(line: str, reason: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(["ok 64 0 0 0", line], "caches.txt")
    assert str(e.value).startswith("caches.txt:2: ") and reason in str(e.value)


def test_creation_log_gives_the_kernels_caches_and_directives() -> None:
    entries = read_manifest(DATA / "oracle-R1-caches.log.xz")
    names = [e.name for e in entries if isinstance(e, Create)]
    assert "dentry" in names and "kmalloc-64" not in names
    assert any(isinstance(e, Directive) and e.what == "init_late" for e in entries)
    k = boot_machine(MachineConfig.build(cpus=1), entries)
    kernel = parse_slabinfo((DATA / "oracle-R1-slabinfo.0-start").read_text())
    model = parse_slabinfo(k.slabinfo())
    assert list(model) == list(kernel)  # the same caches, in the kernel's order (newest first)
    for name, row in kernel.items():
        assert {g: model[name][g] for g in GEOMETRY} == {g: row[g] for g in GEOMETRY}, name


def test_caches_from_a_slabinfo_reproduce_its_geometry() -> None:
    config = MachineConfig.build(cpus=1)
    entries = read_manifest(DATA / "oracle-R1-slabinfo.0-start", config)
    k = boot_machine(config, entries)
    kernel = parse_slabinfo((DATA / "oracle-R1-slabinfo.0-start").read_text())
    model = parse_slabinfo(k.slabinfo())
    assert set(model) == set(kernel)
    for name, row in kernel.items():
        for g in ("objsize", "objperslab", "pagesperslab"):
            assert model[name][g] == row[g], (name, g)

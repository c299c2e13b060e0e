"""/sys/kernel/slab as 6.12 prints it, against S3's files at its first snapshot (tests/slub/data): the file
set of a directory, the geometry and flag files of a booted model, and the count and SLUB_STATS files of a
model whose slabs are set to the kernel's figures."""

from __future__ import annotations

import pytest
from slubhelp import read_data
from test_slub_oracle import boot_run

from kslab.mm.config import MachineConfig
from kslab.mm.page import MemMap, Page
from kslab.mm.page_alloc import PageAllocator
from kslab.mm.slub.allocator import SlubAllocator
from kslab.mm.slub.node import DEACTIVATE_TO_TAIL, add_partial
from kslab.mm.slub.slab import Slab, StatItem
from kslab.mm.slub.sysfs import COUNT_ATTRS, SLAB_ATTRS, STAT_ATTRS, sysfs_dump, sysfs_lookup, sysfs_show


def kernel_files(name: str) -> dict[str, dict[str, str]]:
    """``/sys/kernel/slab/DIR/FILE:VALUE`` lines as {DIR: {FILE: VALUE}} (a DIR may hold a ``:``)."""
    out: dict[str, dict[str, str]] = {}
    for line in read_data(name):
        directory, tail = line.removeprefix("/sys/kernel/slab/").split("/", 1)
        attr, value = tail.split(":", 1)
        out.setdefault(directory, {})[attr] = value
    return out


KERNEL = {**kernel_files("S3-sysslab-0000064.0-start"), **kernel_files("S3-sysslab-named.0-start")}


def test_a_directory_has_the_kernels_files() -> None:
    assert set(KERNEL) == {":0000064", "kmem_cache", "sock_inode_cache"}
    for directory, files in KERNEL.items():
        assert set(SLAB_ATTRS) == set(files) - {"ctor"}, directory
    assert "ctor" in KERNEL["sock_inode_cache"]  # the constructor's symbol: left out by the model


@pytest.mark.parametrize("directory", sorted(KERNEL))
def test_geometry_and_flag_files_of_a_booted_model(directory: str) -> None:
    sl, _ = boot_run("S3")
    found = sysfs_lookup(sl, directory)
    assert found is not None and found[0] == directory
    s = found[1]
    fixed = [a for a in SLAB_ATTRS if a not in COUNT_ATTRS and a not in STAT_ATTRS]
    assert len(fixed) == 18
    model = {a: sysfs_show(s, a) for a in fixed}
    assert model == {a: KERNEL[directory][a] for a in fixed}


def test_links_lead_to_the_directory() -> None:
    sl, _ = boot_run("S3")
    for name in ("kmalloc-64", "anon_vma_chain", "fs_cache", "tcp_bind_bucket"):
        found = sysfs_lookup(sl, name)
        assert found is not None and found[0] == ":0000064"
    assert sysfs_lookup(sl, "no-such-cache") is None


def test_count_and_stats_files_print_as_the_kernel_prints_them() -> None:
    """kmalloc-64 of S3 (4 CPUs, nodes 0-1 and 2-3) set to the kernel's figures: node 0 has 1303 slabs, node 1
    1289 with one partial slab of 5 objects in use; every CPU has a cpu slab, CPU 1 one per-CPU partial slab
    (on node 1) and CPU 3 three; the SLUB_STATS counters per CPU as the kernel's files give them."""
    sl, _ = boot_run("S3")
    pa = PageAllocator(MachineConfig.build(cpus=4, nodes=2, mem="256M"), MemMap())
    a = SlubAllocator(sl, pa)
    s = next(x for x in sl.slab_caches if x.name == "kmalloc-64")
    kernel = KERNEL[":0000064"]
    n0, n1 = s.node
    n0.nr_slabs, n0.total_objects, n1.nr_slabs, n1.total_objects = 1303, 83392, 1289, 82496
    pfn = iter(range(1 << 18, 1 << 19))

    def slab(nid: int, inuse: int) -> Slab:
        page = Page(next(pfn))
        page.nid = nid
        return Slab(s, page, 0, 64, inuse=inuse, freelist=1 if inuse < 64 else 0)

    add_partial(n1, slab(1, 5), DEACTIVATE_TO_TAIL)
    for c in s.cpu_slab:
        c.slab = slab(0, 64)
    s.cpu_slab[1].partial = head = slab(1, 40)
    head.slabs = 1
    s.cpu_slab[3].partial = head = slab(0, 40)
    head.slabs = 3
    for si in StatItem:
        per_cpu = dict.fromkeys(range(4), 0)
        for word in kernel[si.name.lower()].split()[1:]:
            per_cpu[int(word[1:word.index("=")])] = int(word[word.index("=") + 1:])
        for cpu, c in enumerate(s.cpu_slab):
            c.stat[si] = per_cpu[cpu]
    for attr in sorted(COUNT_ATTRS | STAT_ATTRS):
        assert sysfs_show(s, attr) == kernel[attr], attr
    assert a.sl is sl


def test_dump_lines_have_the_captures_format() -> None:
    sl, _ = boot_run("S1")
    lines = sysfs_dump(sl)
    assert len(lines) == len({line.split("/")[4] for line in lines}) * len(SLAB_ATTRS)
    assert "/sys/kernel/slab/:0000064/slabs:0 N0=0" not in lines
    assert "/sys/kernel/slab/:0000064/slabs:0" in lines
    assert "/sys/kernel/slab/kmem_cache/aliases:0" in lines

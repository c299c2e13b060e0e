"""--allocator slub: the SLUB machine behind Kernel's entry points, and the CLI's slabinfo, buddyinfo and sysfs."""

from __future__ import annotations

import lzma
import shutil
import tempfile

import pytest
from slubhelp import DATA, read_data

from kslab.cli import main
from kslab.mm.config import MachineConfig
from kslab.mm.errors import ConfigError, SlabCorruptionError
from kslab.mm.slub.machine import SlubKernel


def test_entry_points_round_trip_and_keep_the_invariants() -> None:
    k = SlubKernel(MachineConfig.build(cpus=2, nodes=1, mem="256M"))
    s = k.find_cache("kmalloc-192")
    assert s is not None
    ptrs = [k.kmalloc(150, cpu=i % 2) for i in range(500)] + [k.kmem_cache_alloc(s, cpu=1) for _ in range(50)]
    assert len(set(ptrs)) == 550 and all(k.virt_to_cache(p) is s for p in ptrs)
    big = k.kmalloc(20000, cpu=0)
    assert k.virt_to_cache(big) is None
    k.check()
    for i, p in enumerate(ptrs):
        k.kfree(p, cpu=(i * 3) % 2)
    k.kfree(big, cpu=1)
    k.check()
    assert k.kmem_cache_shrink(s) == 0 and "slabs:0" in k.sysfs("kmalloc-192")


def test_a_created_cache_merges_and_is_found_by_its_alias() -> None:
    k = SlubKernel(MachineConfig.build(cpus=1, mem="256M"))
    s = k.kmem_cache_create("my_objects", 60, 0, 0)
    assert s is not None and s.name == "kmalloc-64" and k.find_cache("my_objects") is s
    own = k.kmem_cache_create("my_ctor_objects", 60, 0, 0, ctor=True)
    assert own is not None and own.name == "my_ctor_objects"
    p = k.kmem_cache_alloc(own, cpu=0)
    k.kmem_cache_free(own, p, cpu=0)
    assert k.sysfs("my_ctor_objects", "alloc_fastpath") == "0\n"
    assert k.sysfs("my_ctor_objects", "free_fastpath") == "1 C0=1\n"  # C0= even on 1 CPU (CONFIG_SMP)


def test_check_finds_a_broken_counter() -> None:
    k = SlubKernel(MachineConfig.build(cpus=1, mem="256M"))
    k.kmalloc(8, cpu=0)
    s = k.find_cache("kmalloc-8")
    assert s is not None
    s.node[0].nr_slabs += 1
    with pytest.raises(SlabCorruptionError, match="kmalloc-8: node 0"):
        k.check()


def test_slab_only_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="--debug-slab"):
        SlubKernel(MachineConfig.build(CONFIG_DEBUG_SLAB=True))


def test_slabinfo_command_prints_the_kernels_header_and_geometry(capsys: pytest.CaptureFixture[str]) -> None:
    kernel = read_data("S1-slabinfo.3-fork.kmalloc")
    assert main(["slabinfo", "--allocator", "slub", "--mem", "256M"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == kernel[:2]
    model = {line.split()[0]: line.split() for line in lines[2:]}
    for line in kernel[2:]:
        f = line.split()
        assert model[f[0]][3:6] == f[3:6], f[0]  # objsize, objperslab, pagesperslab
    names = list(model)  # newest first, as S1 lists them
    assert names[0] == "dma-kmalloc-8k" and names[-2:] == ["kmem_cache_node", "kmem_cache"]


def test_slabinfo_json_and_buddyinfo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slabinfo", "--allocator", "slub", "--mem", "256M", "--json"]) == 0
    assert '"name": "kmalloc-8"' in capsys.readouterr().out
    assert main(["buddyinfo", "--allocator", "slub", "--mem", "256M"]) == 0
    assert capsys.readouterr().out.startswith("Node 0, zone")


def test_sysfs_command(capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp, lzma.open(DATA / "S3-caches.log.xz", "rb") as src:
        log = f"{tmp}/caches.log"
        with open(log, "wb") as dst:
            shutil.copyfileobj(src, dst)
        args = ["--cpus", "4", "--nodes", "2", "--mem", "256M", "--caches", log]
        assert main(["sysfs", "kmalloc-64", "aliases", *args]) == 0
        assert capsys.readouterr().out == "7\n"
        assert main(["sysfs", *args]) == 0
        out = capsys.readouterr().out.splitlines()
        assert "kmalloc-64 -> :0000064" in out and "kmem_cache" in out
        assert main(["sysfs", "--all", *args]) == 0
        assert "/sys/kernel/slab/:0000064/remote_node_defrag_ratio:100" in capsys.readouterr().out.splitlines()
    assert main(["sysfs", "no-such-cache", "--mem", "256M"]) == 1
    assert "no such cache directory" in capsys.readouterr().err
    assert main(["sysfs", "kmalloc-64", "nofile", "--mem", "256M"]) == 1
    assert "/sys/kernel/slab/:0000064/nofile: no such file" in capsys.readouterr().err


def test_commands_without_slub_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geometry", "--size", "100", "--allocator", "slub"]) == 1
    assert "--allocator slub is not supported by this command yet" in capsys.readouterr().err

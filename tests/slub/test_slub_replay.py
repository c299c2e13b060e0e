"""The replay of 6.12 traces through the SLUB model (kslab.trace.replay_slub): pairing, the large kmalloc's two
events, reuse, snapshots at the capture's read points, bulk frees, placeholders, the fidelity figures and
``kslab replay --allocator slub``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kslab.cli import main
from kslab.mm.config import MachineConfig
from kslab.mm.slub.machine import SlubKernel
from kslab.mm.slub.slab import StatItem
from kslab.trace.ftrace import iter_events
from kslab.trace.replay_slub.engine import Applied, Skip, SlubReplay, placeholder_counts
from kslab.trace.replay_slub.fidelity import compare, per_cpu
from kslab.trace.slabinfo_parse import parse_slabinfo

HEAD = "# tracer: function\n#\n"
BASE = 0xFFFF888013000000


class T:
    """A 6.12 trace being written, one line per call (counter clock)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _line(self, cpu: int, text: str, pid: int = 1) -> None:
        self.lines.append(f"            task-{pid}       [{cpu:03d}] .....     {len(self.lines) + 1:8d}: {text}")

    def cache_alloc(self, ptr: int, name: str, size: int, cpu: int = 0, node: int = -1) -> T:
        self._line(cpu, f"kmem_cache_alloc: call_site=f+0x1/0x10 ptr={ptr:x} bytes_req={size} bytes_alloc={size} "
                        f"gfp_flags=GFP_KERNEL node={node} accounted=false name={name}")
        return self

    def kmalloc(self, ptr: int, size: int, alloc: int, cpu: int = 0, site: str = "f+0x1/0x10") -> T:
        self._line(cpu, f"kmalloc: call_site={site} ptr={ptr:x} bytes_req={size} bytes_alloc={alloc} "
                        "gfp_flags=GFP_KERNEL node=-1 accounted=false")
        return self

    def cache_free(self, ptr: int, name: str, cpu: int = 0, site: str = "g+0x1/0x10") -> T:
        self._line(cpu, f"kmem_cache_free: call_site={site} ptr={ptr:x} name={name}")
        return self

    def kfree(self, ptr: int, cpu: int = 0) -> T:
        self._line(cpu, f"kfree: call_site=g+0x1/0x10 ptr={ptr:x}")
        return self

    def grep_read(self, ptr: int) -> T:
        """grep reading a sysfs file: its seq_read_iter buffer (allocated and freed)."""
        self._line(0, f"kmalloc: call_site=seq_read_iter+0x1/0x10 ptr={ptr:x} bytes_req=4096 bytes_alloc=4096 "
                      "gfp_flags=GFP_KERNEL node=-1 accounted=false", pid=7)
        self.lines[-1] = self.lines[-1].replace("task-7", "grep-7")
        self._line(0, f"kfree: call_site=seq_release+0x1/0x10 ptr={ptr:x}", pid=7)
        self.lines[-1] = self.lines[-1].replace("task-7", "grep-7")
        return self

    def mark(self, text: str) -> T:
        self._line(0, f"tracing_mark_write: oracle: {text}")
        return self

    def func(self, fn: str, parent: str, cpu: int = 0) -> T:
        self._line(cpu, f"{fn} <-{parent}")
        return self

    def text(self) -> str:
        return HEAD + "\n".join(self.lines) + "\n"

    def replay(self, rep: SlubReplay | None = None) -> SlubReplay:
        rep = rep or SlubReplay(machine())
        return rep.run(iter_events(io.StringIO(self.text())))


def machine(cpus: int = 1) -> SlubKernel:
    return SlubKernel(MachineConfig.build(cpus=cpus, mem="256M"))


def test_objects_are_paired_and_freed_on_the_freeing_cpu() -> None:
    t = T().cache_alloc(BASE, "kmalloc-64", 64).kmalloc(BASE + 0x1000, 100, 128, cpu=1)
    t.cache_free(BASE, "kmalloc-64", cpu=1).kfree(BASE + 0x1000, cpu=1).kfree(BASE + 0x9000).kfree(0)
    rep = SlubReplay(machine(2))
    t.replay(rep)
    assert rep.applied["kmem_cache_alloc"] == rep.applied["kmalloc"] == 1
    assert rep.applied["kmem_cache_free"] == rep.applied["kfree"] == 1
    assert rep.skipped[Skip.FREE_UNKNOWN] == 1 and rep.skipped[Skip.FREE_NULL] == 1
    assert not rep.kmap and rep.cross.other_cpu == 1 and rep.cross.same_cpu == 1
    s = rep.k.find_cache("kmalloc-64")
    assert s is not None and s.cpu_slab[1].stat[StatItem.FREE_SLOWPATH] == 1  # CPU 1 does not own the slab
    rep.k.check()


def test_a_large_kmalloc_shows_twice_and_is_applied_once() -> None:
    big = BASE + 0x100000
    t = T().kmalloc(big, 20000, 20480, site="__kmalloc_noprof+0x1/0x10").kmalloc(big, 20000, 20480).kfree(big)
    rep = t.replay()
    assert rep.applied["kmalloc"] == 1 and rep.skipped[Skip.ALLOC_LIVE] == 1 and rep.applied["kfree"] == 1
    assert not rep.k.a.large


def test_reuse_and_layout() -> None:
    """The kernel gives the same address again after a free, and so does the model (LIFO freelist)."""
    t = T().cache_alloc(BASE + 0x40, "kmalloc-64", 64).cache_alloc(BASE + 0x80, "kmalloc-64", 64)
    t.cache_free(BASE + 0x80, "kmalloc-64").cache_alloc(BASE + 0x80, "kmalloc-64", 64)
    t.cache_free(BASE + 0x40, "kmalloc-64").cache_alloc(BASE + 0xC0, "kmalloc-64", 64)
    rep = t.replay()
    assert rep.reuse[True] == 1 and rep.reuse[False] == 0
    # the model's objects start at the slab's first byte: offsets 0x40 and 0x80 differ from the model's 0, 0x40
    assert rep.layout[True] + rep.layout[False] == 4


def test_snapshot_slabinfo_at_the_readers_seq_file_and_sysfs_at_the_end_marker() -> None:
    t = T().mark("snapshot 0-start begin").cache_alloc(BASE, "kmalloc-64", 64)
    t.cache_alloc(BASE + 0x100000, "seq_file", 120).cache_alloc(BASE + 0x40, "kmalloc-64", 64)
    t.mark("snapshot 0-start end").cache_alloc(BASE + 0x80, "kmalloc-64", 64).mark("phase 1 begin")
    k = machine()
    k.kmem_cache_create("seq_file", 120, 0, 0, ctor=True)  # a cache of its own, not merged
    rep = t.replay(SlubReplay(k))
    assert [s.name for s in rep.snapshots] == ["0-start"] and rep.skipped[Skip.MARK_OTHER] == 1
    snap = rep.snapshots[0]
    info = parse_slabinfo(snap.slabinfo)
    assert info["seq_file"]["num_slabs"] == 1 and info["kmalloc-64"]["num_slabs"] == 1
    assert "/sys/kernel/slab/:0000064/alloc_slowpath:1 C0=1" in snap.sysfs
    assert "/sys/kernel/slab/:0000064/alloc_fastpath:1 C0=1" in snap.sysfs  # at end: 2 allocations, not 3


def test_sysfs_files_take_their_values_when_grep_reads_them() -> None:
    """With the capture's directory order, each file's value is the model's when grep reads it: files in
    kernfs's readdir order (remote_node_defrag_ratio, free_frozen, total_objects, cpuslab_flush,
    alloc_fastpath, ...)."""
    t = T().mark("snapshot 0-start begin").mark("snapshot 0-start end")
    t.cache_alloc(BASE, "kmalloc-64", 64)
    for i in range(4):
        t.grep_read(BASE + 0x100000 + i * 0x1000)
        t.cache_alloc(BASE + 0x40 * (i + 1), "kmalloc-64", 64)
    t.grep_read(BASE + 0x200000)
    rep = SlubReplay(machine(), sysfs_plans={"0-start": [":0000064"]})
    t.replay(rep)
    assert rep.snapshots[0].sysfs == [
        "/sys/kernel/slab/:0000064/remote_node_defrag_ratio:100",
        "/sys/kernel/slab/:0000064/free_frozen:0",
        "/sys/kernel/slab/:0000064/total_objects:64 N0=64",
        "/sys/kernel/slab/:0000064/cpuslab_flush:0",
        "/sys/kernel/slab/:0000064/alloc_fastpath:4 C0=4",  # the allocations between the reads count
    ]


def test_a_bulk_free_frees_each_slabs_objects_in_one_call() -> None:
    t = T()
    objs = [BASE + i * 0x40 for i in range(70)]  # more than a slab of kmalloc-64 (64 objects)
    for p in objs:
        t.cache_alloc(p, "kmalloc-64", 64)
    t.func("kmem_cache_free_bulk", "mas_destroy")
    for p in objs[:3]:
        t.cache_free(p, "kmalloc-64", site="mas_destroy+0x1/0x10")
    t.func("__slab_free", "kmem_cache_free_bulk").cache_alloc(BASE + 0x10000, "kmalloc-64", 64)
    rep = t.replay()
    s = rep.k.find_cache("kmalloc-64")
    assert s is not None
    assert s.cpu_slab[0].stat[StatItem.FREE_SLOWPATH] == 1  # one detached freelist, one __slab_free
    assert rep.applied[Applied.BULK] == 1 and rep.applied["kmem_cache_free"] == 3
    rep.k.check()


def test_placeholders_stand_for_objects_from_before_the_trace() -> None:
    rep = SlubReplay(machine())
    rep.place({"kmalloc-64": 70, "no-such-cache": 3})
    assert len(rep.placeholders["kmalloc-64"]) == 70 and "no-such-cache" not in rep.placeholders
    assert sum(p % 4096 == 0x40 for p in rep.placeholders["kmalloc-64"]) == 2  # objects 1 and 65
    T().cache_free(BASE + 0x1040, "kmalloc-64").cache_free(BASE, "dentry").replay(rep)
    assert rep.applied["kmem_cache_free" + Applied.PLACEHOLDER_SUFFIX] == 1
    assert rep.skipped[Skip.FREE_UNKNOWN] == 1 and len(rep.placeholders["kmalloc-64"]) == 69
    assert sum(p % 4096 == 0x40 for p in rep.placeholders["kmalloc-64"]) == 1  # one at the freed offset went
    rep.k.check()


def test_placeholder_counts_from_the_kernels_slabinfo() -> None:
    rep = T().cache_alloc(BASE, "kmalloc-64", 64).cache_free(BASE + 0x40, "dentry").replay()
    kernel = parse_slabinfo(rep.k.slabinfo())
    kernel["kmalloc-64"]["active_objs"] += 10
    counts = placeholder_counts(rep, kernel)
    assert counts == {"kmalloc-64": 10, "dentry": 1}


def test_fidelity_counts_each_differing_cell(tmp_path: Path) -> None:
    t = T()
    for i, name in enumerate(("0-start", "1-files")):
        t.mark(f"snapshot {name} begin").cache_alloc(BASE + i * 0x40, "kmalloc-64", 64)
        t.mark(f"snapshot {name} end")
    rep = t.replay()
    for snap in rep.snapshots:
        (tmp_path / f"slabinfo.{snap.name}").write_text(snap.slabinfo)
        lines = list(snap.sysfs)
        if snap.name == "1-files":
            lines = [x.replace(":0000064/alloc_fastpath:1 C0=1", ":0000064/alloc_fastpath:3 C0=3") for x in lines]
        (tmp_path / f"sysslab.{snap.name}").write_text("\n".join(lines) + "\n")
    info = (tmp_path / "slabinfo.1-files").read_text().replace("kmalloc-64            64", "kmalloc-64            63")
    (tmp_path / "slabinfo.1-files").write_text(info)
    fid = compare(rep, tmp_path)
    assert fid.snapshots == ["0-start", "1-files"]
    assert fid.slabinfo.total - fid.slabinfo.equal == 1 and list(fid.slabinfo.diffs) == ["kmalloc-64"]
    assert fid.sysfs.equal == fid.sysfs.total > 0
    assert fid.stats.total - fid.stats.equal == 1 and fid.stats.diffs[":0000064/alloc_fastpath"] == 2
    assert per_cpu("151 C0=71 C3=2") == {0: 71, 3: 2}


def test_replay_command_with_allocator_slub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.txt"
    t = T().mark("snapshot 0-start begin").cache_alloc(BASE, "my_cache", 200).mark("snapshot 0-start end")
    trace.write_text(t.text())
    caches = tmp_path / "caches.manifest"
    caches.write_text("my_cache 200 0 0 1\n")
    out = tmp_path / "out"
    argv = ["replay", str(trace), "--allocator", "slub", "--caches", str(caches), "--mem", "256M", "--out", str(out)]
    assert main(argv) == 0
    res = capsys.readouterr()
    assert "my_cache" in res.out and "1 applied" not in res.err and "kslab replay (slub)" in res.err
    assert (out / "slabinfo.0-start").exists() and (out / "sysslab.0-start").exists()
    assert main(["sysfs", "my_cache", "objects", "--from-replay", str(trace), "--caches", str(caches),
                 "--mem", "256M"]) == 0
    # a 200-byte cache with a constructor: the free pointer after the object, 208 bytes, 19 a page; objects
    # counts the cpu slab's free objects as in use
    assert capsys.readouterr().out == "19 N0=19\n"
    assert main(["replay", str(trace), "--allocator", "slub", "--mem", "256M"]) == 1
    assert "--caches" in capsys.readouterr().err

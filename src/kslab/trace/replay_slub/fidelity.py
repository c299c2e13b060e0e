"""How far a SLUB replay agrees with the kernel's own files at each snapshot of a capture.

Figures (each as equal cells / compared cells):
  - slabinfo: active_objs, num_objs, active_slabs, num_slabs of every cache in both /proc/slabinfo;
  - sysfs: the ``slabs``, ``partial`` and ``objects`` files (total and per-node split, as printed) of every
    /sys/kernel/slab directory in both;
  - stats: the growth of every SLUB_STATS counter between consecutive snapshots, per directory and CPU
    (also given over the cells where the kernel's or the model's growth is not 0);
  - reuse and layout, from the replay itself (see :mod:`.engine`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from ...mm.config import MachineConfig
from ...mm.slub.manifest import read_slub_manifest
from ...mm.slub.slub_def import CreateRecord
from ...mm.slub.sysfs import STAT_ATTRS
from ..slabinfo_parse import parse_slabinfo
from .engine import SlubReplay

SLABINFO_CELLS: Final = ("active_objs", "num_objs", "active_slabs", "num_slabs")
SYSFS_CELLS: Final = ("slabs", "partial", "objects")


@dataclass(slots=True)
class Figure:
    """Equal cells out of compared ones, and the differing cells' names (most different first, up to 20)."""

    equal: int = 0
    total: int = 0
    diffs: Counter[str] = field(default_factory=Counter)

    def add(self, same: bool, what: str, weight: int = 1) -> None:
        self.total += 1
        if same:
            self.equal += 1
        else:
            self.diffs[what] += weight

    @property
    def percent(self) -> float:
        return 100.0 * self.equal / self.total if self.total else 100.0

    def text(self) -> str:
        return f"{self.percent:6.2f} % ({self.equal}/{self.total})"


@dataclass(slots=True)
class Fidelity:
    run: str
    slabinfo: Figure = field(default_factory=Figure)
    sysfs: Figure = field(default_factory=Figure)
    stats: Figure = field(default_factory=Figure)
    stats_nonzero: Figure = field(default_factory=Figure)
    reuse: Figure = field(default_factory=Figure)
    layout: Figure = field(default_factory=Figure)
    snapshots: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Figure]:
        return {"slabinfo cells": self.slabinfo, "sysfs slabs/partial/objects": self.sysfs,
                "SLUB_STATS growth": self.stats, "SLUB_STATS growth (non-zero)": self.stats_nonzero,
                "reuse": self.reuse, "layout": self.layout}


def run_shape(run_dir: Path) -> MachineConfig:
    """The machine of a capture run, from its ``runs.json`` (two levels up) or its ``capture.txt``."""
    for runs in (run_dir.parent.parent / "runs.json", run_dir.parent / "runs.json"):
        if runs.exists():
            shape = json.loads(runs.read_text(encoding="utf-8")).get(run_dir.name)
            if shape:
                return MachineConfig.build(cpus=shape["cpus"], nodes=shape["nodes"], topology=shape["topology"],
                                           mem=shape["mem"])
    words = dict(w.split("=", 1) for w in (run_dir / "capture.txt").read_text(encoding="utf-8").split() if "=" in w)
    topo = words.get("topology", "none")
    nodes = len(topo.split(",")) if topo != "none" else 1
    return MachineConfig.build(cpus=int(words["cpus"]), nodes=nodes, topology=None if topo == "none" else topo,
                               mem=words.get("mem", "2G"))


def run_manifest(run_dir: Path) -> list[CreateRecord]:
    path = run_dir / "caches.log"
    return read_slub_manifest(path.read_text(encoding="utf-8").splitlines(), str(path))


def parse_sysslab(lines: list[str]) -> dict[str, dict[str, str]]:
    """``/sys/kernel/slab/DIR/FILE:VALUE`` lines as {DIR: {FILE: VALUE}}."""
    out: dict[str, dict[str, str]] = {}
    for line in lines:
        if not line.startswith("/sys/kernel/slab/"):
            continue
        directory, _, tail = line[len("/sys/kernel/slab/"):].partition("/")
        attr, _, value = tail.partition(":")
        out.setdefault(directory, {})[attr] = value
    return out


def sysfs_plans(run_dir: Path) -> dict[str, list[str]]:
    """Per snapshot, the /sys/kernel/slab directories in the order the capture's grep read them (the order of
    the directories' lines in its sysslab file)."""
    plans = {}
    for path in sorted(run_dir.glob("sysslab.*")):
        dirs: dict[str, None] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("/sys/kernel/slab/"):
                dirs[line[len("/sys/kernel/slab/"):].partition("/")[0]] = None
        plans[path.name.removeprefix("sysslab.")] = list(dirs)
    return plans


def per_cpu(value: str) -> dict[int, int]:
    """A SLUB_STATS file's ``total C0=n C1=n`` as {cpu: n} (absent CPUs are 0)."""
    out = {}
    for word in value.split()[1:]:
        cpu, _, n = word[1:].partition("=")
        out[int(cpu)] = int(n)
    return out


def compare(rep: SlubReplay, run_dir: Path) -> Fidelity:
    """The figures of a replay against the capture in ``run_dir``."""
    fid = Fidelity(run_dir.name)
    prev: tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]] | None = None
    for snap in rep.snapshots:
        kslab_path, ksys_path = run_dir / f"slabinfo.{snap.name}", run_dir / f"sysslab.{snap.name}"
        if not kslab_path.exists() or not ksys_path.exists():
            continue
        fid.snapshots.append(snap.name)
        kinfo = parse_slabinfo(kslab_path.read_text(encoding="utf-8"), str(kslab_path))
        minfo = parse_slabinfo(snap.slabinfo)
        for name, kv in kinfo.items():
            mv = minfo.get(name)
            for cell in SLABINFO_CELLS:
                fid.slabinfo.add(mv is not None and mv[cell] == kv[cell], name,
                                 abs(kv[cell] - (mv[cell] if mv else 0)) if cell == "num_slabs" else 0)
        ksys = parse_sysslab(ksys_path.read_text(encoding="utf-8").splitlines())
        msys = parse_sysslab(snap.sysfs)
        for directory, kfiles in ksys.items():
            mfiles = msys.get(directory, {})
            for cell in SYSFS_CELLS:
                fid.sysfs.add(mfiles.get(cell) == kfiles.get(cell), f"{directory}/{cell}")
        if prev is not None:
            _stats_growth(fid, prev, (ksys, msys))
        prev = (ksys, msys)
    fid.reuse.equal, fid.reuse.total = rep.reuse[True], rep.reuse[True] + rep.reuse[False]
    fid.layout.equal, fid.layout.total = rep.layout[True], rep.layout[True] + rep.layout[False]
    return fid


def _stats_growth(fid: Fidelity, before: tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]],
                  after: tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]) -> None:
    (k0, m0), (k1, m1) = before, after
    cpus = range(fid_cpus(k1))
    for directory, kfiles in k1.items():
        if directory not in k0 or directory not in m1 or directory not in m0:
            continue
        for attr in sorted(STAT_ATTRS):
            if attr not in kfiles:
                continue
            kd0, kd1 = per_cpu(k0[directory][attr]), per_cpu(kfiles[attr])
            md0, md1 = per_cpu(m0[directory][attr]), per_cpu(m1[directory][attr])
            for cpu in cpus:
                kg = kd1.get(cpu, 0) - kd0.get(cpu, 0)
                mg = md1.get(cpu, 0) - md0.get(cpu, 0)
                fid.stats.add(kg == mg, f"{directory}/{attr}", abs(kg - mg))
                if kg or mg:
                    fid.stats_nonzero.add(kg == mg, f"{directory}/{attr}", abs(kg - mg))


def fid_cpus(ksys: dict[str, dict[str, str]]) -> int:
    """The number of CPUs the kernel's SLUB_STATS files name (at least 1)."""
    top = 0
    for files in ksys.values():
        for cpu in per_cpu(files.get("alloc_fastpath", "0")):
            top = max(top, cpu + 1)
    return max(top, 1)


def replay_capture(run_dir: Path, *, sync_at: str = "0-start", use_cache: bool = True,
                   pretrace: bool = True) -> SlubReplay:
    """Replay a capture run with its sync.  With ``pretrace`` (the default) the model first gets a copy of
    the kernel's slabs older than the trace, as the trace reveals them (:mod:`.pretrace`).  Then a first pass
    up to the snapshot ``sync_at`` says what the kernel had beyond that: per cache, the slabs the kernel's
    /sys/kernel/slab ``slabs`` file counts on each node beyond the model's become full slabs (objects in use
    the trace never shows); without ``pretrace``, the kernel's active objects beyond the model's are
    allocated as placeholders in the model's boot order.  The second pass boots again, places all that, and
    replays the whole trace."""
    from ...mm.slub.machine import SlubKernel  # noqa: PLC0415
    from .engine import placeholder_counts, trace_events  # noqa: PLC0415
    from .pretrace import adopt_pretrace, boot_policies, scan_pretrace  # noqa: PLC0415
    trace = run_dir / "trace.txt.xz"
    if not trace.exists():
        trace = run_dir / "trace.txt"
    config, manifest = run_shape(run_dir), run_manifest(run_dir)
    pre = scan_pretrace(SlubKernel(config, manifest), trace_events(trace, use_cache)) if pretrace else None
    counts: dict[str, int] = {}
    extra: dict[tuple[str, int], int] = {}
    plans = sysfs_plans(run_dir)
    kernel, ksys = run_dir / f"slabinfo.{sync_at}", run_dir / f"sysslab.{sync_at}"
    if kernel.exists():
        first = SlubReplay(SlubKernel(config, manifest), stop_at=sync_at,
                           sysfs_plans=plans if pre is not None else {})
        if pre is not None:
            first.policies = boot_policies(first.k, pre)
            first.adopt(adopt_pretrace(first.k, pre))
        first.run(trace_events(trace, use_cache))
        if pre is None or not ksys.exists():
            counts = placeholder_counts(first, parse_slabinfo(kernel.read_text(encoding="utf-8"), str(kernel)))
        else:
            extra = missing_slabs(first, parse_sysslab(ksys.read_text(encoding="utf-8").splitlines()))
    rep = SlubReplay(SlubKernel(config, manifest), sysfs_plans=plans)
    if pre is not None:
        rep.policies = boot_policies(rep.k, pre)
        from .pretrace import adopt_full_slabs  # noqa: PLC0415
        adopt_full_slabs(rep.k, extra)
        rep.adopt(adopt_pretrace(rep.k, pre))
    rep.place(counts)
    return rep.run(trace_events(trace, use_cache))


def node_split(value: str) -> dict[int, int]:
    """A /sys/kernel/slab count file's ``total N0=n N1=n`` as {node: n} (no split: all on node 0)."""
    words = value.split()
    out = {int(w[1:].partition("=")[0]): int(w.partition("=")[2]) for w in words[1:] if w.startswith("N")}
    return out or ({0: int(words[0])} if words else {})


def missing_slabs(rep: SlubReplay, ksys: dict[str, dict[str, str]]) -> dict[tuple[str, int], int]:
    """Per (cache name, node), how many slabs the kernel's ``slabs`` file counts beyond the model's at the
    replay's last snapshot: the total the kernel has beyond the model, on the nodes where it has more (the
    nodes with the most first when the model has more on some other node)."""
    from ...mm.slub.sysfs import sysfs_dirs  # noqa: PLC0415
    msys = parse_sysslab(rep.snapshots[-1].sysfs if rep.snapshots else rep.k.sysfs_dump())
    dirs = sysfs_dirs(rep.k.sl)
    out: dict[tuple[str, int], int] = {}
    for directory, files in ksys.items():
        s = dirs.get(directory)
        if s is None or "slabs" not in files:
            continue
        mine_text = msys.get(directory, {}).get("slabs", "0")
        total = int(files["slabs"].split()[0]) - int(mine_text.split()[0])
        mine = node_split(mine_text)
        lacks = sorted(((n - mine.get(nid, 0), nid) for nid, n in node_split(files["slabs"]).items()), reverse=True)
        for lack, nid in lacks:
            take = min(lack, total)
            if take <= 0:
                break
            out[(s.name, nid)] = take
            total -= take
    return out

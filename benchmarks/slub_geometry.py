#!/usr/bin/env python3
"""Compare kslab's SLUB geometry and merging with a real Linux 6.12 kernel's, cache by cache.

For every run of the SLUB captures (runs.json: S1 1 CPU, S2 2 CPUs, S3 4 CPUs on 2 nodes) it boots the
model from a manifest of the kernel's ``create ... via=create`` lines of ``caches.log`` (the boot and
kmalloc caches are the model's own kmem_cache_init) on the run's machine shape, and compares
  - every ``geometry`` line: object_size, size (slab_size), order, objects per slab, free-pointer offset,
    min_partial, cpu_partial, cpu_partial_slabs (and, reported apart, align, flags, inuse, red_left_pad,
    min order/objects);
  - every ``alias`` line: the merge target (and the target's size, object_size, inuse, refcount after it);
  - the boot line ``SLUB: HWalign=64, Order=0-3, MinObjects=0, CPUs=4, Nodes=2`` of dmesg;
  - /sys/kernel/slab at the first snapshot: each cache's directory or link (``:0000064``, ``:a-0000192``) and
    each directory's object_size, slab_size, order, objs_per_slab, min_partial, cpu_partial, align, aliases.

    python3 benchmarks/slub_geometry.py [DIR] [-v]      (DIR: default $KSLAB_ORACLE_SLUB or
                                                          /work/shared/data/oracle-slub-6.12)

Prints per-run and per-field figures; exit status 0 only when every compared value matches (100 %).
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kslab.mm.slub.geometry import oo_objects, oo_order
from kslab.mm.slub.init import sysfs_slab_name
from kslab.mm.slub.manifest import boot_slub as boot
from kslab.mm.slub.manifest import parse_cache_log, read_slub_manifest
from kslab.mm.slub.options import apply_cmdline
from kslab.mm.slub.slub_def import AliasRecord, GeometryRecord, Slub, SlubConfig

DEFAULT = Path(os.environ.get("KSLAB_ORACLE_SLUB", "/work/shared/data/oracle-slub-6.12"))
MAIN = ("object_size", "size", "order", "objects", "offset", "min_partial", "cpu_partial", "cpu_partial_slabs")
ALSO = ("align", "flags", "inuse", "red_left_pad", "min_order", "min_objects")
ALIAS = ("target", "target_size", "object_size", "inuse", "refcount")
SYSFS = ("object_size", "slab_size", "order", "objs_per_slab", "min_partial", "cpu_partial", "align", "aliases")

SYSFS_LINE = re.compile(r"^/sys/kernel/slab/([^/]+)/([^/:]+):(.*)$")


class Tally:
    def __init__(self) -> None:
        self.ok: Counter[str] = Counter()
        self.total: Counter[str] = Counter()
        self.bad: list[str] = []

    def cmp(self, field: str, what: str, model: object, kernel: object) -> None:
        self.total[field] += 1
        if model == kernel:
            self.ok[field] += 1
        else:
            self.bad.append(f"{what}: {field} {model} != kernel {kernel}")


def compare_log(sl: Slub, kernel_log: list[object], t: Tally) -> None:
    model_geo = {r.name: r for r in sl.log if isinstance(r, GeometryRecord)}
    model_alias = {r.name: r for r in sl.log if isinstance(r, AliasRecord)}
    for r in kernel_log:
        if isinstance(r, GeometryRecord):
            m = model_geo.get(r.name)
            for f in MAIN + ALSO:
                t.cmp(f, r.name, getattr(m, f) if m else "(merged or missing)", getattr(r, f))
        elif isinstance(r, AliasRecord):
            a = model_alias.get(r.name)
            for f in ALIAS:
                t.cmp(f"alias {f}", r.name, getattr(a, f) if a else "(not merged)", getattr(r, f))
    for name in model_alias.keys() - {r.name for r in kernel_log if isinstance(r, AliasRecord)}:
        t.cmp("alias target", name, model_alias[name].target, "(not merged)")


def read_sysfs(d: Path, snap: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    links: dict[str, str] = {}
    for line in (d / f"sysslab-links.{snap}").read_text().splitlines():
        w = line.split()
        if len(w) >= 11 and w[-2] == "->":
            links[w[-3]] = w[-1]
        elif len(w) >= 9 and line.startswith("d"):
            links[w[-1]] = w[-1]
    files: dict[str, dict[str, str]] = {}
    for line in (d / f"sysslab.{snap}").read_text().splitlines():
        m = SYSFS_LINE.match(line)
        if m:
            files.setdefault(m.group(1), {})[m.group(2)] = (m.group(3).split() or [""])[0]
    return links, files


def model_sysfs(sl: Slub, s_name_of: dict[str, str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in sl.slab_caches:
        out[s_name_of[s.name]] = {
            "object_size": s.object_size, "slab_size": s.size, "order": oo_order(s.oo),
            "objs_per_slab": oo_objects(s.oo), "min_partial": s.min_partial, "cpu_partial": s.cpu_partial,
            "align": s.align, "aliases": 0 if s.refcount < 0 else s.refcount - 1}
    return out


def compare_sysfs(sl: Slub, d: Path, t: Tally) -> None:
    snaps = sorted(p.name.split(".", 1)[1] for p in d.glob("sysslab-links.*"))
    if not snaps:
        return
    links, files = read_sysfs(d, snaps[0])
    dir_of = {s.name: sysfs_slab_name(sl, s) for s in sl.slab_caches}
    for s in sl.slab_caches:
        for alias in s.aliases:
            dir_of[alias] = dir_of[s.name]
    for name, target in sorted(dir_of.items()):
        t.cmp("sysfs name", name, target, links.get(name, "(absent)"))
    for dirname, values in sorted(model_sysfs(sl, dir_of).items()):
        kernel = files.get(dirname, {})
        for f in SYSFS:
            t.cmp(f"sysfs {f}", dirname, str(values[f]), kernel.get(f, "(absent)"))


def run_one(d: Path, shape: dict[str, object]) -> Tally:
    lines = (d / "caches.log").read_text().splitlines()
    cpus, nodes = int(str(shape["cpus"])), int(str(shape["nodes"]))
    cfg = SlubConfig(nr_cpu_ids=cpus, num_present_cpus=cpus, nr_node_ids=nodes)
    if (d / "cmdline.txt").exists():
        cfg = apply_cmdline(cfg, (d / "cmdline.txt").read_text())
    sl = boot(cfg, read_slub_manifest(lines, str(d / "caches.log")))
    t = Tally()
    compare_log(sl, list(parse_cache_log(lines, str(d / "caches.log"))), t)
    compare_boot_line(sl, d, t)
    compare_sysfs(sl, d, t)
    return t


def compare_boot_line(sl: Slub, d: Path, t: Tally) -> None:
    if not (d / "dmesg.txt.xz").exists():
        return
    with lzma.open(d / "dmesg.txt.xz", "rt", errors="replace") as f:
        kernel = [line.rstrip("\n").split("] ", 1)[-1] for line in f if "SLUB: HWalign=" in line]
    model = [m for m in sl.dmesg if m.startswith("SLUB: HWalign=")]
    t.cmp("boot line", "dmesg", model, kernel)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("-v", "--verbose", action="store_true", help="list every mismatch")
    opts = ap.parse_args()
    runs_json = opts.dir / "runs.json"
    if not runs_json.exists():
        print(f"slub_geometry: {runs_json}: no runs.json (give the SLUB capture folder)", file=sys.stderr)
        return 2
    runs = json.loads(runs_json.read_text())
    grand_ok = grand_total = 0
    fields_ok: Counter[str] = Counter()
    fields_total: Counter[str] = Counter()
    for run, shape in runs.items():
        d = opts.dir / "slub" / run
        if not (d / "caches.log").exists():
            print(f"{run}: no caches.log in {d}", file=sys.stderr)
            return 2
        t = run_one(d, shape)
        ok, total = sum(t.ok.values()), sum(t.total.values())
        geo = t.total["size"]
        alias = t.total["alias target"]
        print(f"{run}: {ok}/{total} values equal ({100 * ok / total:.2f} %) over {geo} caches created, "
              f"{alias} merges, {t.total['sysfs name']} sysfs names")
        for b in t.bad[: None if opts.verbose else 10]:
            print("   " + b)
        if len(t.bad) > 10 and not opts.verbose:
            print(f"   ... {len(t.bad) - 10} more (-v)")
        grand_ok += ok
        grand_total += total
        fields_ok.update(t.ok)
        fields_total.update(t.total)
    print("per field: " + ", ".join(f"{f} {fields_ok[f]}/{n}" for f, n in fields_total.items()))
    pct = 100 * grand_ok / grand_total if grand_total else 0.0
    print(f"slub geometry: {grand_ok}/{grand_total} values equal the kernel's ({pct:.2f} %)")
    return 0 if grand_total and grand_ok == grand_total else 1


if __name__ == "__main__":
    sys.exit(main())

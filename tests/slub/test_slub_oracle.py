"""Differential: the model's cache log equals a real 6.12 kernel's (tests/slub/data, runs S1-S3), line by line,
and its /sys/kernel/slab names equal the kernel's links."""

from __future__ import annotations

import json

import pytest
from slubhelp import DATA, read_data

from kslab.mm.slub.geometry import oo_objects, oo_order
from kslab.mm.slub.init import sysfs_slab_name
from kslab.mm.slub.manifest import boot_slub, parse_cache_log, read_slub_manifest
from kslab.mm.slub.slub_def import AliasRecord, GeometryRecord, Slub, SlubConfig

RUNS = json.loads((DATA / "runs.json").read_text())


def boot_run(run: str) -> tuple[Slub, list[object]]:
    lines = read_data(f"{run}-caches.log.xz")
    shape = RUNS[run]
    cfg = SlubConfig(nr_cpu_ids=shape["cpus"], num_present_cpus=shape["cpus"], nr_node_ids=shape["nodes"])
    return boot_slub(cfg, read_slub_manifest(lines, run)), list(parse_cache_log(lines, run))


@pytest.mark.parametrize("run", sorted(RUNS))
def test_geometry_and_alias_lines_equal_the_kernel(run: str) -> None:
    sl, kernel = boot_run(run)
    model = {(type(r).__name__, r.name): r for r in sl.log if isinstance(r, GeometryRecord | AliasRecord)}
    wanted = [r for r in kernel if isinstance(r, GeometryRecord | AliasRecord)]
    assert len(wanted) > 150
    diffs = [f"kernel {r}\n model {model.get((type(r).__name__, r.name))}" for r in wanted
             if model.get((type(r).__name__, r.name)) != r]
    assert not diffs, "\n".join(diffs[:10])


@pytest.mark.parametrize("run", sorted(RUNS))
def test_whole_log_in_order(run: str) -> None:
    sl, kernel = boot_run(run)
    assert sl.log == kernel


def test_sysfs_links() -> None:
    sl, _ = boot_run("S3")
    links: dict[str, str] = {}
    for line in read_data("S3-sysslab-links.0-start.xz"):
        w = line.split()
        if "->" in w:
            links[w[-3]] = w[-1]
        elif line.startswith("d"):
            links[w[-1]] = w[-1]
    dir_of = {s.name: sysfs_slab_name(sl, s) for s in sl.slab_caches}
    for s in sl.slab_caches:
        dir_of.update(dict.fromkeys(s.aliases, dir_of[s.name]))
    wrong = {n: (d, links.get(n)) for n, d in dir_of.items() if links.get(n) != d}
    assert not wrong
    assert len(dir_of) == 158


def test_sysfs_geometry_after_every_merge() -> None:
    """object_size, slab_size, order, objs_per_slab, min_partial, cpu_partial, align and aliases of every
    /sys/kernel/slab directory of S3 at its first snapshot (object_size and aliases as the merges left them)."""
    sl, _ = boot_run("S3")
    kernel: dict[str, dict[str, str]] = {}
    for line in read_data("S3-sysslab-geometry.0-start.xz"):
        path, value = line.rsplit(":", 1)
        _, _, _, _, directory, name = path.split("/")
        kernel.setdefault(directory, {})[name] = value
    model = {}
    for s in sl.slab_caches:
        model[sysfs_slab_name(sl, s)] = {
            "object_size": str(s.object_size), "slab_size": str(s.size), "order": str(oo_order(s.oo)),
            "objs_per_slab": str(oo_objects(s.oo)), "min_partial": str(s.min_partial),
            "cpu_partial": str(s.cpu_partial), "align": str(s.align),
            "aliases": str(0 if s.refcount < 0 else s.refcount - 1)}
    assert len(kernel) == 93
    assert model == kernel

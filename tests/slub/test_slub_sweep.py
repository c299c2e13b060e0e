"""kslab sweep --vary allocator=slab,slub: one trace through SLAB and SLUB, the figures both have in one table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_slub_replay import BASE, T

from kslab.cli import main
from kslab.cli.sweep import parse_vary


def _trace(tmp_path: Path) -> tuple[Path, Path]:
    """Ten kmalloc(64) on CPU 0, freed on CPU 1 (every free remote), then ten more on CPU 1 freed there."""
    t = T()
    for i in range(10):
        t.kmalloc(BASE + 0x40 * i, 64, 64, cpu=0)
    for i in range(10):
        t.kfree(BASE + 0x40 * i, cpu=1)
    for i in range(10):
        t.kmalloc(BASE + 0x1000 + 0x40 * i, 64, 64, cpu=1)
    for i in range(10):
        t.kfree(BASE + 0x1000 + 0x40 * i, cpu=1)
    trace = tmp_path / "trace.txt"
    trace.write_text(t.text())
    caches = tmp_path / "none.manifest"
    caches.write_text("# no caches beyond the boot ones\n")
    return trace, caches


def test_vary_allocator_values_are_checked() -> None:
    assert parse_vary(["allocator=slab,slub"]) == [("allocator", ["slab", "slub"])]
    with pytest.raises(ValueError, match="'slob' is not an allocator"):
        parse_vary(["allocator=slab,slob"])


def test_sweep_slab_against_slub(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, caches = _trace(tmp_path)
    out = tmp_path / "sweep.json"
    rc = main(["sweep", str(trace), "--caches", str(caches), "--cpus", "2", "--mem", "256M", "--jobs", "1",
               "--vary", "allocator=slab,slub", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "allocator=slab" in text and "allocator=slub" in text and "fast%" in text and "xcpu_frees" in text
    slab, slub = json.loads(out.read_text())["results"]
    assert slab["label"] == "allocator=slab" and slub["label"] == "allocator=slub"
    # the trace's frees on another CPU, counted by both
    assert slab["cross_cpu_frees"] == slub["cross_cpu_frees"] == 10
    # SLUB: the first allocation on each CPU is slow (a new slab), the other nine come off the CPU freelist; the
    # ten remote frees go slow (not CPU 1's cpu slab), the ten local ones fast
    assert slub["fast"] == 9 + 9 + 10 and slub["allocs_and_frees"] == 40
    assert slub["fast_share"] == pytest.approx(70.0)
    assert slub["stats"]["alloc_fastpath"] == 18 and slub["stats"]["free_slowpath"] == 10
    assert slub["slabs"] >= 1 and slub["memory_kib"] == 4 * slub["pages"]
    assert slub["paths"] == {}
    # SLAB: its per-CPU array hits out of the allocations and frees counted from the trace's first event
    assert slab["allocs_and_frees"] >= 40 and 0 < slab["fast"] <= slab["allocs_and_frees"]
    assert slab["paths"]["alloc"] >= 20 and slab["slabs"] >= 1


def test_a_slub_run_without_a_cache_log_is_an_error_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, _ = _trace(tmp_path)
    rc = main(["sweep", str(trace), "--cpus", "2", "--mem", "256M", "--jobs", "1", "--vary", "allocator=slub"])
    text = capsys.readouterr().out
    assert rc == 1
    assert re.search(r"allocator=slub\s+error", text) and "--caches caches.log" in text

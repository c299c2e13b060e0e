"""kslab stats TRACE --allocator slub: the same trace through SLAB and SLUB, side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_slub_replay import BASE, T

from kslab.cli import main
from kslab.report.whatif import AllocatorFigures, render_whatif


def test_whatif_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ten kmalloc(64) on CPU 0 freed on CPU 1: SLUB takes the first allocation slowly (a new slab) and the
    other nine from the CPU freelist; every free is remote to CPU 1's (empty) cpu slab, so all go slow."""
    t = T()
    for i in range(10):
        t.kmalloc(BASE + 0x40 * i, 64, 64, cpu=0)
    for i in range(10):
        t.kfree(BASE + 0x40 * i, cpu=1)
    trace = tmp_path / "trace.txt"
    trace.write_text(t.text())
    caches = tmp_path / "none.manifest"
    caches.write_text("# no caches beyond the boot ones\n")
    argv = ["stats", str(trace), "--allocator", "slub", "--caches", str(caches), "--cpus", "2", "--mem", "256M"]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["whatif"]
    assert d["slub"]["fast"] == 9 and d["slub"]["allocs_and_frees"] == 20 and d["slub"]["cross_cpu_frees"] == 10
    # SLAB's count also has the model's own allocations (array caches, kmem_cache structures) of the replay's boot
    assert d["slab"]["allocs_and_frees"] >= 20 and d["slab"]["cross_cpu_frees"] == 10
    assert d["slub"]["slabs"] >= 1 and d["slab"]["slabs"] >= 1
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fast-path share" in out and "frees on another CPU (trace)" in out


def test_render_difference_column() -> None:
    a = AllocatorFigures("slab", 80, 10, 40, 100, 90, 100, 3)
    b = AllocatorFigures("slub", 90, 8, 32, 120, 50, 100, 3)
    text = render_whatif(a, b)
    assert "slabs" in text and "-2" in text and "-40.0%" in text


def test_whatif_needs_a_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--allocator", "slub"]) == 1
    assert "give a 6.12 trace" in capsys.readouterr().err

"""kslab report TRACE --allocator slub: the page opens with SLAB and SLUB side by side on the same trace."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_slub_sweep import _trace

from kslab.cli import main

DATA_RE = re.compile(r'<script type="application/json" id="kslab-data">(.*?)</script>', re.S)


def test_report_has_the_side_by_side_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace, caches = _trace(tmp_path)
    out = tmp_path / "whatif.html"
    argv = ["report", str(trace), "--allocator", "slub", "--caches", str(caches), "--cpus", "2", "--mem", "256M",
            "-q", "-o", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    page = out.read_text()
    assert '<section id="sec-whatif" hidden>' in page and "whatifResult" in page
    m = DATA_RE.search(page)
    assert m
    w = json.loads(m.group(1))["whatif"]
    assert w["columns"] == ["figure", "slab", "slub", "difference"]
    rows = {r[0]: r[1:] for r in w["rows"]}
    assert set(rows) >= {"slabs", "memory in slabs (KiB)", "fast-path share (%)", "frees on another CPU (trace)"}
    assert rows["frees on another CPU (trace)"] == [10, 10, 0]
    assert rows["fast-path share (%)"][1] == 70.0
    assert all(r[3] == pytest.approx(r[2] - r[1]) for r in w["rows"])
    # the same inputs give the same bytes
    assert main([*argv, "--force"]) == 0
    assert out.read_text() == page


def test_report_without_the_slub_side_has_no_table(tmp_path: Path) -> None:
    trace, _ = _trace(tmp_path)
    out = tmp_path / "slab.html"
    assert main(["report", str(trace), "--cpus", "2", "--mem", "256M", "-q", "-o", str(out)]) == 0
    m = DATA_RE.search(out.read_text())
    assert m and "whatif" not in json.loads(m.group(1))


def test_report_slub_needs_a_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["report", "--allocator", "slub", "-o", str(tmp_path / "x.html")]) == 1
    assert "give a 6.12 trace" in capsys.readouterr().err

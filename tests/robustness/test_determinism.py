"""Determinism: the same input and options give byte-identical outputs (the final /proc/slabinfo, the JSON
summary, the statistics, the HTML report), in one process and across processes with different hash seeds.

The JSON summary's ``seconds`` and ``events_per_second`` are the replay's wall-clock time and are left out of
the comparison: they are the only fields that may differ."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kslab.tools.fuzz import random_trace, run_cli

SRC = Path(__file__).resolve().parents[2] / "src"
DATA = Path(__file__).resolve().parent.parent / "trace" / "data"
TIMING = ("seconds", "events_per_second")


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic trace with frees, reuse, markers, reaps on 4 CPUs (no malformed lines)."""
    p = tmp_path_factory.mktemp("det") / "synthetic.txt"
    p.write_bytes(random_trace(random.Random(11), 1500, wild=0.0))
    return str(p)


def without_timing(path: Path) -> dict[str, object]:
    d = json.loads(path.read_text())
    for key in TIMING:
        d.pop(key)
    return d  # type: ignore[no-any-return]


def outputs(trace: str, folder: Path, tag: str) -> dict[str, object]:
    machine = ["--cpus", "4", "--nodes", "2", "--skip-bad"]
    rc, slabinfo, err = run_cli(["replay", trace, *machine, "-q", "--json", str(folder / f"{tag}.json"),
                                 "--snapshot-on", r"snapshot (\S+) begin", "--out", str(folder / f"snaps-{tag}")])
    assert rc == 0, err
    rc, stats, err = run_cli(["stats", trace, *machine, "-q", "--json", "--alloc", "--caller", "--slab"])
    assert rc == 0, err
    rc, _, err = run_cli(["report", trace, *machine, "-q", "-o", str(folder / f"{tag}.html"), "--samples", "50"])
    assert rc == 0, err
    snaps = {p.name: p.read_bytes() for p in sorted((folder / f"snaps-{tag}").iterdir())}
    return {"slabinfo": slabinfo, "summary": without_timing(folder / f"{tag}.json"), "stats": stats,
            "report": (folder / f"{tag}.html").read_bytes(), "snapshots": snaps}


def test_same_outputs_twice_in_one_process(trace: str, tmp_path: Path) -> None:
    a = outputs(trace, tmp_path, "a")
    b = outputs(trace, tmp_path, "b")
    assert a["snapshots"], "the trace has snapshot markers"
    for key in a:
        assert a[key] == b[key], key


def run_process(args: list[str], hashseed: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "kslab", *args], env=env, capture_output=True, timeout=300, check=True)


def test_same_outputs_in_processes_with_different_hash_seeds(trace: str, tmp_path: Path) -> None:
    results = []
    for seed in ("1", "4242"):
        j = tmp_path / f"bundled-{seed}.json"
        html = tmp_path / f"report-{seed}.html"
        bundled = run_process(["replay", "--json", str(j), "-q"], seed)  # the bundled real trace, synced
        replay = run_process(["replay", trace, "--cpus", "3", "--nodes", "3", "--mem", "96M", "-q", "--skip-bad"], seed)
        run_process(["report", str(DATA / "oracle-R2-counter.txt"), "--cpus", "2", "-q", "-o", str(html)], seed)
        results.append((bundled.stdout, without_timing(j), replay.stdout, html.read_bytes()))
    assert results[0][2].startswith(b"slabinfo - version: 2.1")
    assert results[0] == results[1]

"""``kslab replay`` takes the columnar parser and the lean loop by default (cli/replay_lean.py); the outputs are
the same as with ``--no-fast-path`` (every event through the general code) and with the pure-Python parser
(``KSLAB_PURE=1``): stdout, the warnings on stderr, the ``--json`` summary and the ``--ptr-map`` file."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kslab.cli import main, replay_lean
from kslab.trace.synth import write_trace

TEST_DATA = Path(__file__).resolve().parents[1] / "trace" / "data"
TRACES = sorted(TEST_DATA.glob("*.txt"))
TIMING = re.compile(r"in [0-9.]+ s")


def replay(capsys: Any, tmp_path: Path, name: str, args: list[str]) -> dict[str, Any]:
    """What one `kslab replay` leaves: stdout, stderr (timing masked), the JSON summary, the ptr-map."""
    out = tmp_path / name
    out.mkdir()
    assert main(["replay", *args, "--json", str(out / "s.json"), "--ptr-map", str(out / "ptr.csv"), "-v"]) == 0
    cap = capsys.readouterr()
    summary = json.loads((out / "s.json").read_text())
    for key in ("seconds", "events_per_second"):
        summary.pop(key)
    return {"stdout": cap.out, "stderr": TIMING.sub("in - s", re.sub(r"\(\d+ events/s\)", "", cap.err)),
            "summary": summary, "ptr-map": (out / "ptr.csv").read_text()}


def three_ways(capsys: Any, tmp_path: Path, monkeypatch: Any, args: list[str]) -> list[dict[str, Any]]:
    """The default (lean loop, compiled parser when built), the pure parser, and --no-fast-path."""
    calls: list[int] = []
    real = replay_lean.run_chunks

    def counting(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(replay_lean, "run_chunks", counting)
    default = replay(capsys, tmp_path, "default", args)
    assert calls == [1]  # the lean loop ran
    with monkeypatch.context() as m:
        m.setenv("KSLAB_PURE", "1")
        pure = replay(capsys, tmp_path, "pure", args)
    assert calls == [1, 1]
    general = replay(capsys, tmp_path, "general", [*args, "--no-fast-path"])
    assert calls == [1, 1]  # not with --no-fast-path
    return [default, pure, general]


@pytest.mark.parametrize("trace", TRACES, ids=[p.stem for p in TRACES])
def test_test_traces_same_every_way(capsys: Any, tmp_path: Path, monkeypatch: Any, trace: Path) -> None:
    default, pure, general = three_ways(capsys, tmp_path, monkeypatch, [str(trace)])
    assert default["summary"]["applied"]
    assert default == pure == general


def test_bundled_trace_same_every_way(capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    default, pure, general = three_ways(capsys, tmp_path, monkeypatch, [])
    assert "cells" in default["stdout"] or default["stdout"]
    assert default == pure == general


def test_synthetic_numa_trace_same_every_way(capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    text = io.StringIO()
    write_trace(text, 20_000, seed=5, cpus=4, nodes=2, event_gap_us=60.0)
    trace = tmp_path / "synth.txt"
    trace.write_text(text.getvalue())
    default, pure, general = three_ways(capsys, tmp_path, monkeypatch, [str(trace), "--cpus", "4", "--nodes", "2"])
    assert sum(default["summary"]["applied"].values()) > 10_000
    assert default == pure == general


def test_markers_counted_and_warned_the_same(capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """--snapshot-on / --action regexes that never match are reported the same way by the lean path."""
    args = [str(TRACES[0]), "--snapshot-on", r"no such marker (\S+)", "--out", str(tmp_path / "snaps"),
            "--action", "never=>drop-caches"]
    default, pure, general = three_ways(capsys, tmp_path, monkeypatch, args)
    assert "never matched" in default["stderr"]
    assert default == pure == general

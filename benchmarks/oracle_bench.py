"""Issue 14's benchmarks on the real oracle traces (``benchmarks/run.py`` runs them; each in its own process).

* ``e2e_oracle``: ``kslab replay`` of prod R2, prod R3, debug R2 and debug R3 (``--quick``: prod R2 only) as
  text files (decompressed beforehand into ``--data-dir``), with the replay-fidelity check's options but no
  ``--ptr-map`` (the CLI's default path: the columnar parser and the lean loop where the tree has them), in
  one process one after the other: the compiled parser, the pure-Python one (``KSLAB_PURE=1``), and the
  floor in the same run (read the same file line by line, split each line, one dict operation).  With
  ``--src`` of an older tree, that tree's ``kslab replay`` (whatever its default is).
* ``e2e_oracle_ptrmap``: the same for prod R2 with ``--ptr-map`` (what the pointer map file costs).
* ``model_oracle``: the model alone on prod R2, pre-parsed and held: ``Replayer.run`` over a list of
  TraceEvents, and (when the tree has it) ``run_chunks`` over a list of ColumnChunks, against the floor of one
  dict lookup and one list append per event over the same rows.
"""

# ruff: noqa: PLC0415  (imports inside the benchmarks: each child process loads what it measures, after --src)

from __future__ import annotations

import argparse
import contextlib
import io
import lzma
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _oracle(a: argparse.Namespace) -> Path:
    d = Path(a.oracle)
    if not d.is_dir():
        raise SystemExit(f"{d}: no oracle traces (give --oracle)")
    return d


def _checks(oracle: Path) -> Any:
    checks = oracle.parent.parent / "checks"
    if str(checks) not in sys.path:
        sys.path.insert(0, str(checks))
    os.environ.setdefault("KSLAB_ORACLE", str(oracle))
    import _oracle
    return _oracle


def trace_text(a: argparse.Namespace, flavor: str, run: str) -> Path:
    """The oracle trace decompressed into the data folder (made once)."""
    src = _oracle(a) / flavor / run / "trace.txt.xz"
    p = Path(a.data_dir) / f"oracle-{flavor}-{run}.txt"
    if not p.exists() or p.stat().st_mtime < src.stat().st_mtime:
        tmp = p.with_suffix(".tmp")
        with lzma.open(src, "rb") as f, open(tmp, "wb") as out:
            while block := f.read(1 << 24):
                out.write(block)
        tmp.replace(p)
    return p


def replay_args(a: argparse.Namespace, flavor: str, run: str, out: Path, ptr_map: bool = False) -> list[str]:
    """`kslab replay` arguments of the replay-fidelity check for one oracle run (text trace, no --ptr-map)."""
    oracle = _oracle(a)
    helpers = _checks(oracle)
    d = oracle / flavor / run
    manifest = out / "caches.manifest"
    if not manifest.exists():
        manifest.write_text(helpers.manifest_from_caches_log(d / "caches.log"))
    args = [str(trace_text(a, flavor, run)), *helpers.machine_args(run, flavor == "debug"),
            "--caches", str(manifest), "--reap", "trace", "--start-slabinfo", str(d / "slabinfo.0-start"),
            "--sync-on", "snapshot 0-start begin", "--action", r"retune written: (.*)=>slabinfo-write \1",
            "--snapshot-on", r"snapshot (\S+) begin", "--out", str(out), "-q", "--no-slabinfo",
            "--json", str(out / "summary.json")]
    if ptr_map:
        args += ["--ptr-map", str(out / "ptrmap.csv")]
    return args


def _replay_once(args: list[str]) -> tuple[int, float]:
    """(events, seconds) of one in-process `kslab replay` (its modules imported beforehand: with
    PYTHONDONTWRITEBYTECODE, as on this machine, importing them compiles them, ~0.3 s that no replay repeats)."""
    import importlib
    import json

    from kslab.cli import main
    for mod in ("kslab.cli.replay", "kslab.cli.replay_lean", "kslab.cli.replay_state", "kslab.trace.replay",
                "kslab.trace.columns", "kslab.trace.cscan", "kslab.trace.replay.columnar", "kslab.report.compare",
                "kslab.trace.slabinfo_parse", "kslab.manifest", "kslab.mm.slabinfo"):
        with contextlib.suppress(ImportError):  # an older tree
            importlib.import_module(mod)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(["replay", *args])
    dt = time.perf_counter() - t0
    if rc:
        raise SystemExit(f"kslab replay failed ({rc})")
    out = Path(args[args.index("--json") + 1])
    return int(json.loads(out.read_text())["events"]), dt


def _e2e_rows(a: argparse.Namespace, runs: list[tuple[str, str]], ptr_map: bool) -> dict[str, Any]:
    from run import floor_split_lines
    rows: dict[str, Any] = {}
    total_events = 0
    total_s = 0.0
    floor_total = 0.0
    for flavor, run in runs:
        with tempfile.TemporaryDirectory(prefix="kslab-bench-") as tmp:
            args = replay_args(a, flavor, run, Path(tmp), ptr_map)
            lines, floor_s = min((floor_split_lines(Path(args[0])) for _ in range(2)), key=lambda x: x[1])
            row: dict[str, Any] = {"lines": lines, "floor_lines_per_s": int(lines / floor_s)}
            for engine in ("compiled", "pure"):
                old = os.environ.get("KSLAB_PURE")
                if engine == "pure":
                    os.environ["KSLAB_PURE"] = "1"
                try:
                    events, dt = _replay_once(args)
                finally:
                    if old is None:
                        os.environ.pop("KSLAB_PURE", None)
                    else:
                        os.environ["KSLAB_PURE"] = old
                row[engine] = {"events": events, "seconds": round(dt, 3), "events_per_s": int(events / dt),
                               "x_floor": round(dt / floor_s, 2)}
                if engine == "compiled":
                    total_events += events
                    total_s += dt
                    floor_total += floor_s
            rows[f"{flavor}-{run}"] = row
    return {"runs": rows, "events": total_events, "seconds": total_s, "floor_seconds": floor_total}


def bench_e2e_oracle(a: argparse.Namespace) -> dict[str, Any]:
    """End to end on the oracle traces (see the module docstring)."""
    from run import result
    runs = [("prod", "R2")] if a.quick else [("prod", "R2"), ("prod", "R3"), ("debug", "R2"), ("debug", "R3")]
    r = _e2e_rows(a, runs, ptr_map=False)
    return result("e2e_oracle", r["events"], r["seconds"], r["floor_seconds"], runs=r["runs"],
                  compiled_available=_compiled())


def bench_e2e_oracle_ptrmap(a: argparse.Namespace) -> dict[str, Any]:
    """End to end on prod R2 with --ptr-map."""
    from run import result
    r = _e2e_rows(a, [("prod", "R2")], ptr_map=True)
    return result("e2e_oracle_ptrmap", r["events"], r["seconds"], r["floor_seconds"], runs=r["runs"],
                  compiled_available=_compiled())


def _compiled() -> bool:
    try:
        from kslab.trace.columns import compiled_available
    except ImportError:
        return False
    return compiled_available()


def bench_model_oracle(a: argparse.Namespace) -> dict[str, Any]:
    """The model alone on prod R2, pre-parsed (see the module docstring)."""
    import argparse as ap_mod
    import gc

    from run import result

    from kslab.cli.replay import make_replayer, register
    from kslab.trace.ftrace import iter_events
    with tempfile.TemporaryDirectory(prefix="kslab-bench-") as tmp:
        args = replay_args(a, "prod", "R2", Path(tmp))
        parser = ap_mod.ArgumentParser()
        register(parser.add_subparsers())
        ns = parser.parse_args(["replay", *args])
        events = list(iter_events(args[0]))
        floor_s = min(_floor_rows([ev.ptr for ev in events]) for _ in range(3))
        extra: dict[str, Any] = {}
        best = None
        for _ in range(a.repeat if not a.quick else 1):
            rep = make_replayer(ns)
            gc.collect()
            t0 = time.perf_counter()
            rep.run(events)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        assert best is not None
        extra["events_objects"] = {"events_per_s": int(len(events) / best), "x_floor": round(best / floor_s, 2)}
        try:
            from kslab.trace.columns import iter_chunks
            from kslab.trace.replay.columnar import run_chunks
        except ImportError:
            run_chunks = None
        col_best = None
        if run_chunks is not None:
            del events
            chunks = list(iter_chunks(args[0]))
            n = sum(len(c) for c in chunks)
            floor_s = min(_floor_rows([p for c in chunks for p in c.ptr]) for _ in range(3))
            for _ in range(a.repeat if not a.quick else 1):
                rep = make_replayer(ns)
                gc.collect()
                t0 = time.perf_counter()
                run_chunks(rep, chunks)
                dt = time.perf_counter() - t0
                col_best = dt if col_best is None else min(col_best, dt)
            assert col_best is not None
            extra["columns"] = {"events_per_s": int(n / col_best), "x_floor": round(col_best / floor_s, 2)}
            return result("model_oracle", n, col_best, floor_s, **extra)
        return result("model_oracle", len(events), best, floor_s, **extra)


def _floor_rows(ptrs: list[int]) -> float:
    """Seconds of one dict lookup and one list append per row."""
    d: dict[int, int] = {}
    out: list[int] = []
    get = d.get
    append = out.append
    t0 = time.perf_counter()
    for p in ptrs:
        get(p)
        append(p)
    return time.perf_counter() - t0


BENCHES = {"e2e_oracle": bench_e2e_oracle, "e2e_oracle_ptrmap": bench_e2e_oracle_ptrmap,
           "model_oracle": bench_model_oracle}

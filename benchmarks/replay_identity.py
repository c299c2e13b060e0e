#!/usr/bin/env python3
"""Check that two source trees give byte-identical replay results.

    python3 benchmarks/replay_identity.py OLD_SRC NEW_SRC [--runs prod-R1,debug-R3,bundled,...]
                                          [--old-out DIR] [--jobs 2]

OLD_SRC and NEW_SRC are ``src`` folders (e.g. ``/work/base/src`` and ``src``).  For every run, ``python3 -m
kslab replay`` is executed once with ``PYTHONPATH=OLD_SRC`` and once with ``PYTHONPATH=NEW_SRC`` and every
output is compared byte for byte:

* each oracle run of ``$KSLAB_ORACLE`` (default ``../shared/data/oracle-5.10``; prod and debug R1-R3) with
  exactly the arguments ``../shared/checks/replay-fidelity`` uses (the manifest made from ``caches.log``,
  ``--reap trace``, ``--start-slabinfo``, ``--sync-on``, ``--action``, ``--snapshot-on``, ``--out``,
  ``--ptr-map``) plus ``--json``: the slabinfo snapshots, ``ptrmap.csv``, the JSON summary, stdout, stderr;
* the bundled trace (``kslab replay --json``, no trace);
* the traces in ``tests/trace/data`` (``kslab replay TRACE --json``).

The only things masked are the wall-clock figures (``seconds`` and ``events_per_second`` of the JSON summary,
and the same figures in the summary's first line on stderr) and the output folder's own path.
One line per run: ``identical (N files)`` or the first differing file and line.  The exit status is 1 on any
difference.  ``--old-out DIR`` keeps OLD_SRC's outputs in DIR and reuses them when they are there (the
base tree then runs only once); the runs go ``--jobs`` at a time (default 2).

Modes of NEW_SRC's runs (issue 14: the lean loop on and off, compiled and pure): ``--new-arg ARG`` (repeatable)
adds ARG to NEW_SRC's command lines (e.g. ``--new-arg=--no-fast-path``), ``--new-env KEY=VALUE`` (repeatable)
sets an environment variable for them (e.g. ``--new-env KSLAB_PURE=1``: the pure-Python parser).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("KSLAB_ORACLE", ROOT.parent.parent / "shared" / "data" / "oracle-5.10"))
if not DATA.is_dir():
    DATA = Path("/work/shared/data/oracle-5.10")
TEST_DATA = ROOT / "tests" / "trace" / "data"
# the oracle helpers (machine shape of each run, the manifest from caches.log), as the fidelity check uses them
CHECKS = Path(os.environ.get("KSLAB_CHECKS", DATA.parent.parent / "checks"))
TIMING = re.compile(r"in [0-9.]+ s( \([0-9]+ events/s\))?")


@dataclass
class Run:
    name: str
    args: list[str]  # after `kslab replay`; "{OUT}" stands for the run's output folder


def oracle_runs() -> list[Run]:
    sys.path.insert(0, str(CHECKS))
    os.environ.setdefault("KSLAB_ORACLE", str(DATA))
    from _oracle import machine_args, run_dirs  # noqa: PLC0415
    runs = []
    for flavor, run, d in run_dirs():
        runs.append(Run(f"{flavor}-{run}", [
            str(d / "trace.txt.xz"), *machine_args(run, flavor == "debug"),
            "--caches", "{OUT}/caches.manifest", "--reap", "trace",
            "--start-slabinfo", str(d / "slabinfo.0-start"), "--sync-on", "snapshot 0-start begin",
            "--action", r"retune written: (.*)=>slabinfo-write \1",
            "--snapshot-on", r"snapshot (\S+) begin", "--out", "{OUT}",
            "--ptr-map", "{OUT}/ptrmap.csv", "--json", "{OUT}/summary.json"]))
    return runs


def prepare(run: Run, out: Path) -> None:
    """Files a run reads from its output folder (the oracle runs' manifest)."""
    if run.name.startswith(("prod-", "debug-")):
        from _oracle import manifest_from_caches_log  # noqa: PLC0415
        flavor, r = run.name.split("-", 1)
        (out / "caches.manifest").write_text(manifest_from_caches_log(DATA / flavor / r / "caches.log"))


def all_runs() -> list[Run]:
    runs = oracle_runs()
    runs.append(Run("bundled", ["--json", "{OUT}/summary.json"]))
    for p in sorted(TEST_DATA.glob("*.txt")):
        runs.append(Run(f"test-{p.stem}", [str(p), "--json", "{OUT}/summary.json"]))
    return runs


def execute(src: Path, run: Run, out: Path, extra: list[str] | None = None, env_extra: dict[str, str] | None = None
            ) -> None:
    """Run ``kslab replay`` for ``run`` from ``src`` into ``out`` (stdout, stderr and the exit status kept), with
    the arguments ``extra`` added and the environment variables ``env_extra`` set."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    prepare(run, out)
    args = [a.replace("{OUT}", str(out)) for a in run.args]
    env = dict(os.environ, PYTHONPATH=str(src.resolve()), **(env_extra or {}))
    done = subprocess.run([sys.executable, "-m", "kslab", "replay", *args, *(extra or [])], capture_output=True,
                          env=env,
                          cwd=str(out), timeout=3600)
    (out / "_stdout").write_bytes(done.stdout)
    (out / "_stderr").write_bytes(done.stderr)
    (out / "_status").write_text(f"{done.returncode}\n")
    (out / "_done").write_text("")


def normalised(path: Path, out: Path) -> list[bytes]:
    """The lines of an output file, the wall-clock figures and the output folder's path masked."""
    data = path.read_bytes().replace(str(out).encode(), b"{OUT}")
    if path.name == "summary.json":
        d = json.loads(data)
        d.pop("seconds", None)
        d.pop("events_per_second", None)
        data = (json.dumps(d, indent=1, sort_keys=True) + "\n").encode()
    elif path.name == "_stderr":
        data = TIMING.sub("in - s (- events/s)", data.decode(errors="surrogateescape")).encode(
            errors="surrogateescape")
    return data.splitlines(keepends=True)


def compare(old: Path, new: Path) -> str | None:
    """None when every file agrees, else a line saying where the first difference is."""
    names = sorted({p.name for p in old.iterdir()} | {p.name for p in new.iterdir()})
    names.remove("_done")
    for name in names:
        a, b = old / name, new / name
        if not a.exists() or not b.exists():
            return f"{name}: only in {'NEW' if b.exists() else 'OLD'}"
        la, lb = normalised(a, old), normalised(b, new)
        for i, (x, y) in enumerate(zip(la, lb, strict=False), 1):
            if x != y:
                return f"{name} line {i}: OLD {x[:120]!r} NEW {y[:120]!r}"
        if len(la) != len(lb):
            return f"{name}: OLD has {len(la)} lines, NEW {len(lb)}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old_src", type=Path)
    ap.add_argument("new_src", type=Path)
    ap.add_argument("--runs", help="comma-separated run names (default: all): prod-R1 ... debug-R3, bundled, "
                                   "test-<file stem>")
    ap.add_argument("--old-out", type=Path, help="keep OLD_SRC's outputs here and reuse them")
    ap.add_argument("--new-out", type=Path, help="keep NEW_SRC's outputs here (default: a temporary folder)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--new-arg", action="append", default=[], metavar="ARG",
                    help="an argument added to NEW_SRC's command lines (repeatable), e.g. --new-arg=--no-fast-path")
    ap.add_argument("--new-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an environment variable for NEW_SRC's runs (repeatable), e.g. KSLAB_PURE=1")
    opts = ap.parse_args()
    new_env = dict(kv.split("=", 1) for kv in opts.new_env)
    runs = all_runs()
    if opts.runs:
        wanted = opts.runs.split(",")
        unknown = set(wanted) - {r.name for r in runs}
        if unknown:
            ap.error(f"unknown runs: {', '.join(sorted(unknown))} (known: {', '.join(r.name for r in runs)})")
        runs = [r for r in runs if r.name in wanted]
    tmp = Path(tempfile.mkdtemp(prefix="kslab-identity-"))
    old_root = opts.old_out or tmp / "old"
    new_root = opts.new_out or tmp / "new"

    def one(run: Run) -> str:
        old, new = old_root / run.name, new_root / run.name
        if opts.old_out is None or not (old / "_done").exists():
            execute(opts.old_src, run, old)
        execute(opts.new_src, run, new, opts.new_arg, new_env)
        diff = compare(old, new)
        n = len(list(old.iterdir())) - 1
        return f"{run.name}: identical ({n} files)" if diff is None else f"{run.name}: DIFFERENT: {diff}"

    bad = 0
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        for line in pool.map(one, runs):
            print(line, flush=True)
            bad += "DIFFERENT" in line
    if opts.new_out is None:
        shutil.rmtree(new_root, ignore_errors=True)
    if opts.old_out is None:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(runs) - bad}/{len(runs)} runs identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

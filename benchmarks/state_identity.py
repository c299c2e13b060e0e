#!/usr/bin/env python3
"""Check that a replay continued from a saved state gives what a replay in one go gives, on the oracle runs.

    python benchmarks/state_identity.py [--oracle ../shared/data/oracle-5.10] [--checks ../shared/checks]
                                        [--at REGEX] [prod/R2 debug/R3 ...]

For each run: ``kslab replay`` with the replay-fidelity check's options (without --ptr-map, which a state
excludes) in one go; then the same with ``--save-state FILE --save-state-on REGEX`` (default: the marker that
starts the run's second snapshot); then ``--from-state FILE``.  The final /proc/slabinfo, the snapshots written
to --out and the --json summaries (without the timing fields) must be byte-identical.  Not a test (minutes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kslab(args: list[str], out: Path) -> float:
    t0 = time.perf_counter()
    with open(out, "w") as f:
        subprocess.run([sys.executable, "-m", "kslab", "replay", *args, "-q"], check=True, stdout=f,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - t0


def summary(p: Path) -> dict[str, object]:
    d = json.loads(p.read_text())
    d.pop("seconds")
    d.pop("events_per_second")
    return d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--oracle", type=Path, default=ROOT.parent.parent / "shared" / "data" / "oracle-5.10")
    ap.add_argument("--checks", type=Path, default=ROOT.parent.parent / "shared" / "checks")
    ap.add_argument("--at", default=r"snapshot 1-files begin")
    ap.add_argument("runs", nargs="*", default=["prod/R2"])
    a = ap.parse_args()
    sys.path.insert(0, str(a.checks))
    from _oracle import machine_args, manifest_from_caches_log  # noqa: PLC0415
    bad = 0
    for name in a.runs:
        flavor, run = name.split("/")
        d = a.oracle / flavor / run
        tmp = Path(tempfile.mkdtemp(prefix="kslab-state-"))
        manifest = tmp / "caches.manifest"
        manifest.write_text(manifest_from_caches_log(d / "caches.log"))
        base = [str(d / "trace.txt.xz"), *machine_args(run, flavor == "debug"), "--caches", str(manifest),
                "--reap", "trace", "--start-slabinfo", str(d / "slabinfo.0-start"),
                "--sync-on", "snapshot 0-start begin", "--action", r"retune written: (.*)=>slabinfo-write \1",
                "--snapshot-on", r"snapshot (\S+) begin"]
        state = tmp / "state.pkl"
        t1 = kslab([*base, "--out", str(tmp / "one"), "--json", str(tmp / "one.json")], tmp / "one.txt")
        t2 = kslab([*base, "--out", str(tmp / "a"), "--json", str(tmp / "a.json"), "--save-state", str(state),
                    "--save-state-on", a.at], tmp / "a.txt")
        t3 = kslab([*base, "--out", str(tmp / "b"), "--json", str(tmp / "b.json"), "--from-state", str(state)],
                   tmp / "b.txt")
        same = [(tmp / "one.txt").read_bytes() == (tmp / "b.txt").read_bytes(),
                summary(tmp / "one.json") == summary(tmp / "b.json"),
                summary(tmp / "one.json") == summary(tmp / "a.json")]
        one = {p.name: p.read_bytes() for p in (tmp / "one").iterdir()}
        cont = {**{p.name: p.read_bytes() for p in (tmp / "a").iterdir()},
                **{p.name: p.read_bytes() for p in (tmp / "b").iterdir()}}
        same.append(one == cont)
        ok = all(same)
        bad += not ok
        print(f"{'ok' if ok else 'DIFFERENT'} {name}: slabinfo/summary/summary-of-saving-run/snapshots {same}; "
              f"one go {t1:.1f} s, to the marker and saving {t2:.1f} s, from the state {t3:.1f} s, "
              f"state {state.stat().st_size / 1e6:.1f} MB  ({tmp})", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

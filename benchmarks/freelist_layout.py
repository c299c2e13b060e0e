#!/usr/bin/env python3
"""CONFIG_SLAB_FREELIST_RANDOM: the layout figure of a capture, with the followed allocations apart.

    KSLAB_ORACLE=/work/captures/out python3 benchmarks/freelist_layout.py F2 [--json FILE]

``../shared/checks/replay-fidelity`` reports **layout**: the share of allocations where kslab's object sits
at the same byte offset inside its slab as the kernel's.  With ``--freelist-random`` the replay follows the
trace for some fresh objects (trace.replay.shuffle: while a cache's random_seq is being learnt, the first
object of each new slab, a slab shuffled by a per-slab PRNG, a mispredicted object, ...): those sit at the
kernel's offset because the model took the kernel's, not because it predicted it.  This script replays the
run exactly as the fidelity check does (same options, the manifest made from ``caches.log``, the same
pointer map), asks the replay what became of every fresh object (``ShuffleFollower.observer``), and splits
the layout figure by that: the allocations that are not a fresh slab's first hand-out (reuse, where layout
follows from the reuse order), the predicted ones, each kind of followed one, and the objects the model
could not match.  The last line is the figure of the check, and the same without the followed ones that
had nothing to be predicted from (learning, a slab's first object, per-slab PRNG and shared slabs); there a
mispredicted object counts as wrong even where the follow then put it at the kernel's offset.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kslab.cli import build_parser  # noqa: E402
from kslab.cli.replay import make_replayer, run_replay  # noqa: E402
from kslab.trace.replay.shuffle import FreshAlloc  # noqa: E402

CHECKS = Path(os.environ.get("KSLAB_CHECKS", "/work/shared/checks"))
NOT_FRESH = "not a fresh object (reused, or a slab the replay does not follow)"
#: fresh objects the model took from the trace, with nothing to predict them from (a mispredicted object is
#: followed too, but it was predicted: it stays in the figure, as a wrong one, wherever the follow put it)
FOLLOWED = (FreshAlloc.LEARNING, FreshAlloc.PRANDOM, FreshAlloc.START, FreshAlloc.SHARED)


def replay_args(run: str, out: Path) -> list[str]:
    sys.path.insert(0, str(CHECKS))
    from _oracle import machine_args, manifest_from_caches_log, run_dirs  # noqa: PLC0415
    for flavor, name, d in run_dirs():
        if name == run:
            (out / "caches.manifest").write_text(manifest_from_caches_log(d / "caches.log"))
            return ["replay", str(d / "trace.txt.xz"), *machine_args(name, flavor == "debug"),
                    "--caches", str(out / "caches.manifest"), "--reap", "trace",
                    "--start-slabinfo", str(d / "slabinfo.0-start"), "--sync-on", "snapshot 0-start begin",
                    "--action", r"retune written: (.*)=>slabinfo-write \1",
                    "--snapshot-on", r"snapshot (\S+) begin", "--out", str(out),
                    "--ptr-map", str(out / "ptrmap.csv"), "-q"]
    raise SystemExit(f"freelist_layout: no run {run!r} under $KSLAB_ORACLE ({os.environ.get('KSLAB_ORACLE')})")


def measure(run: str, out: Path) -> dict[str, object]:
    args = build_parser().parse_args(replay_args(run, out))
    from _oracle import parse_slabinfo, run_dirs  # noqa: PLC0415 - on the path since replay_args
    rep = make_replayer(args)
    if rep.shuffle is None:
        raise SystemExit(f"freelist_layout: run {run} is not replayed with --freelist-random")
    kinds: dict[int, str] = {}
    ptrs = rep.applier.ptrs
    rep.shuffle.observer = lambda kind: kinds.__setitem__(ptrs.evno, str(kind))
    run_replay(rep, args)
    d = next(d for _, name, d in run_dirs() if name == run)
    start = parse_slabinfo((d / "slabinfo.0-start").read_text())
    total: Counter[str] = Counter()
    good: Counter[str] = Counter()
    with (out / "ptrmap.csv").open() as f:
        for row in csv.DictReader(f):  # the rows the fidelity check counts, with its formula
            c = start.get(row.get("cache") or "")
            if c is None:
                continue
            size = c.values["pagesperslab"] * 4096
            kind = kinds.get(int(row["event"]), NOT_FRESH)
            total[kind] += 1
            good[kind] += int(row["kernel_ptr"], 16) % size == int(row["model_ptr"], 16) % size
    followed = sum(total[str(k)] for k in FOLLOWED)
    followed_good = sum(good[str(k)] for k in FOLLOWED)
    alls, allg = sum(total.values()), sum(good.values())
    allg -= good[str(FreshAlloc.MISPREDICTED)]  # wrong, even where the follow then took the kernel's offset
    total_good = allg + good[str(FreshAlloc.MISPREDICTED)]
    return {"run": run, "rows": {k: {"allocations": total[k], "same offset": good[k]} for k in sorted(total)},
            "layout": total_good / alls if alls else 0.0,
            "layout without the followed": (allg - followed_good) / (alls - followed) if alls > followed else 0.0,
            "followed": followed, "allocations": alls,
            "learned after": dict(rep.summary.freelist_learned)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--json", help="write the figures here too")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kslab-fl-layout-") as tmp:
        res = measure(opts.run, Path(tmp))
    rows = res["rows"]
    assert isinstance(rows, dict)
    for kind, r in sorted(rows.items(), key=lambda kv: -kv[1]["allocations"]):
        n, g = r["allocations"], r["same offset"]
        print(f"{n:9d}  {g / n:8.2%}  {kind}")
    print(f"{opts.run}: layout {res['layout']:.2%} of {res['allocations']} allocations; without the "
          f"{res['followed']} followed ones {res['layout without the followed']:.2%}")
    if opts.json:
        Path(opts.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

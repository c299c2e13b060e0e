#!/usr/bin/env python3
"""How faithfully kslab's SLUB model replays the Linux 6.12 SLUB captures (S1-S3), snapshot by snapshot.

For each run (a folder with trace.txt.xz, caches.log, slabinfo.* and sysslab.*) it boots the model from the
run's cache log on the run's machine, syncs with the kernel's /proc/slabinfo at the first snapshot (objects
allocated before tracing began become placeholders, see kslab.trace.replay_slub.fidelity.replay_capture),
replays the whole trace and prints, as equal/compared cells:
  - /proc/slabinfo active_objs, num_objs, active_slabs, num_slabs of every cache at every snapshot;
  - /sys/kernel/slab slabs, partial, objects (with their per-node split) of every directory;
  - SLUB_STATS growth between consecutive snapshots, per directory, counter and CPU (and over the cells
    where the kernel's or the model's growth is not 0);
  - reuse (an allocation of an address seen before gets the object that address had) and layout (the
    object's offset in its slab is the kernel's);
with the cells that differ most.

    python3 benchmarks/slub_replay_fidelity.py [DIR] [--run S1] [-v]
      (DIR: default $KSLAB_ORACLE_SLUB or /work/shared/data/oracle-slub-6.12; runs are DIR/slub/*)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from kslab.trace.replay_slub.fidelity import compare, replay_capture

DEFAULT = Path(os.environ.get("KSLAB_ORACLE_SLUB", "/work/shared/data/oracle-slub-6.12"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--run", action="append", help="only this run (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="the 10 most different cells of each figure")
    args = ap.parse_args()
    base = args.dir / "slub" if (args.dir / "slub").is_dir() else args.dir
    runs = sorted(p for p in base.iterdir() if (p / "caches.log").exists())
    if args.run:
        runs = [p for p in runs if p.name in args.run]
    if not runs:
        print(f"slub_replay_fidelity: no runs in {base}", file=sys.stderr)
        return 2
    for run_dir in runs:
        t = time.monotonic()
        rep = replay_capture(run_dir)
        rep.k.check()
        fid = compare(rep, run_dir)
        print(f"{run_dir.name}: {rep.events} events, snapshots {','.join(fid.snapshots)}, "
              f"{time.monotonic() - t:.0f} s, not applied: "
              + ", ".join(f"{n} {what}" for what, n in sorted(rep.skipped.items())))
        for name, fig in fid.figures().items():
            print(f"  {name:30s} {fig.text()}")
            if args.verbose and fig.diffs:
                print("      " + ", ".join(f"{what} ({n})" for what, n in fig.diffs.most_common(10)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

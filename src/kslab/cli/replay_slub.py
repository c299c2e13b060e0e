"""``kslab replay TRACE --allocator slub``: a Linux 6.12 trace through the SLUB model, from boot, with the
trace's cache log (``--caches caches.log``); snapshots of /proc/slabinfo and /sys/kernel/slab at each
``snapshot NAME begin`` marker into ``--out``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..trace.ftrace import ParseStats
from ..trace.replay.options import UnknownFree
from ..trace.replay_slub.engine import SlubReplay, replay_slub_trace
from ..trace.replay_slub.options import SlubReplayOptions
from .tracecheck import check_not_empty

#: replay options of the SLAB replay that the SLUB replay does not take (it replays from boot)
SLAB_REPLAY_ONLY = (("start_slabinfo", "--start-slabinfo"), ("sync_on", "--sync-on"), ("action", "--action"),
                    ("snapshot_on", "--snapshot-on"), ("ptr_map", "--ptr-map"))


def run_slub_replay(args: argparse.Namespace, trace: str) -> SlubReplay:
    """Boot the SLUB machine of the options and replay ``trace`` through it."""
    from .slub_machine import build_slub_machine  # noqa: PLC0415
    given = [opt for attr, opt in SLAB_REPLAY_ONLY if getattr(args, attr, None)]
    if given:
        raise ValueError(f"{', '.join(given)}: options of the SLAB replay; the SLUB replay runs from boot")
    if not getattr(args, "caches", None):
        raise ValueError("--allocator slub replay: give the trace's cache log with --caches caches.log")
    k = build_slub_machine(args)
    opts = SlubReplayOptions(out=getattr(args, "out", None),
                             unknown_free=getattr(args, "unknown_free", None) or UnknownFree.PLACEHOLDER,
                             use_cache=bool(getattr(args, "cache_parsed", False)))
    stats = ParseStats()
    rep = replay_slub_trace(k, trace, options=opts, stats=stats)
    check_not_empty(trace, stats)  # the SLAB replay's one-line error for a trace without events
    out = opts.out
    if out:
        where = Path(out)
        where.mkdir(parents=True, exist_ok=True)
        for snap in rep.snapshots:
            (where / f"slabinfo.{snap.name}").write_text(snap.slabinfo, encoding="utf-8")
            (where / f"sysslab.{snap.name}").write_text("".join(x + "\n" for x in snap.sysfs), encoding="utf-8")
    return rep


def summary(rep: SlubReplay) -> dict[str, Any]:
    fast, total = rep.fast_path_share()
    return {"allocator": "slub", "events": rep.events, "applied": dict(rep.applied), "skipped": dict(rep.skipped),
            "snapshots": [s.name for s in rep.snapshots], "reuse": [rep.reuse[True], sum(rep.reuse.values())],
            "layout": [rep.layout[True], sum(rep.layout.values())], "fast_path": [fast, total],
            "frees_same_cpu": rep.cross.same_cpu, "frees_other_cpu": rep.cross.other_cpu}


def run(args: argparse.Namespace) -> int:
    """The replay command's SLUB branch: the final /proc/slabinfo, a one-line summary on stderr."""
    if not args.trace:
        raise ValueError("--allocator slub replay: give a 6.12 trace (the bundled trace is a 5.10 SLAB one)")
    rep = run_slub_replay(args, args.trace)
    d = summary(rep)
    if args.json:
        Path(args.json).write_text(json.dumps(d, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if not args.no_slabinfo:
        sys.stdout.write(rep.k.slabinfo())
    if not args.quiet:
        skipped = sum(rep.skipped.values())
        sys.stderr.write(f"kslab replay (slub): {rep.events} events, {sum(rep.applied.values())} applied, "
                         f"{skipped} not applied, {len(rep.snapshots)} snapshots\n")
        if args.verbose:
            for what, n in sorted({**rep.applied, **rep.skipped}.items()):
                sys.stderr.write(f"  {n:9d}  {what}\n")
    return 0

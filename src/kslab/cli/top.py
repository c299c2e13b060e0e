"""kslab top: slabtop for the model: the caches after the replay of a trace, or after boot when no
trace is given.  Columns, summary and sort keys are procps slabtop's.

On a terminal (and without -o), the table is redrawn while the trace replays; otherwise (-o, or
stdout not a terminal) it is printed once, at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from typing import Any

from ..report.top import SORT_HELP, check_sort_key, render_top, top_dict
from ..trace.events import TraceEvent
from ..trace.replay import Replayer
from .common import build_machine
from .replay import add_replay_options, make_replayer, run_replay

EXAMPLES = r"""examples:
  kslab top                                        after boot: 1 CPU, 2 GiB, every kmalloc cache
  kslab top --cpus 4 --nodes 2 -s c -o             after boot, by cache size, printed once
  kslab top trace.txt.xz --cpus 2 --caches caches.log -s a
  kslab top trace.txt.xz --start-slabinfo slabinfo.start --sync-on 'snapshot start' -o --lines 20
  kslab top trace.txt.xz --json > top.json

sort keys (-s):
""" + "".join(f"  {item}\n" for item in SORT_HELP.split(", "))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("top", help="slabtop of the model: after a trace's replay, or after boot",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p, trace_help="trace file (.gz/.xz/.zst ok) or - for stdin; without it: the model after boot")
    g = p.add_argument_group("display")
    g.add_argument("-s", "--sort", default="o", metavar="KEY", help="slabtop sort key (default o); see below")
    g.add_argument("-o", "--once", action="store_true",
                   help="print once, at the end (the default when stdout is not a terminal)")
    g.add_argument("-n", "--lines", type=int, default=0, metavar="N", help="show the first N caches (default all)")
    g.add_argument("--every", type=int, default=2000, metavar="N",
                   help="live view: redraw every N events (default 2000; at most 5 times a second)")
    g.add_argument("--json", action="store_true", help="print the summary and the table as JSON")
    p.set_defaults(func=run)


class LiveView:
    """Redraws the table on the terminal while the replay runs."""

    def __init__(self, sort: str, trace: str) -> None:
        self.sort = sort
        self.trace = trace
        self.last = 0.0

    def __call__(self, rep: Replayer, ev: TraceEvent) -> None:
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        size = shutil.get_terminal_size()
        rows = max(1, size.lines - 10)
        head = f"kslab top - replaying, line {ev.lineno:,}, ts {ev.ts:.6f} (Ctrl-C to stop) - {self.trace}"
        text = render_top(rep.k, limit=rows, sort=self.sort)
        lines = [head[: size.columns], *(line[: size.columns] for line in text.splitlines())]
        sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
        sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    sort = check_sort_key(args.sort)
    if args.lines < 0:
        raise ValueError(f"--lines {args.lines}: must be 0 (all) or a positive number")
    if args.every <= 0:
        raise ValueError(f"--every {args.every}: must be a positive number of events")
    replay: dict[str, Any] | None = None
    if args.trace is None:
        given = [o for o, v in (("--start-slabinfo", args.start_slabinfo), ("--sync-on", args.sync_on),
                                ("--action", args.action), ("--snapshot-on", args.snapshot_on),
                                ("--ptr-map", args.ptr_map)) if v]
        if given:
            raise ValueError(f"{', '.join(given)}: replay options need a TRACE")
        k = build_machine(args)
    else:
        rep = make_replayer(args)
        live = not (args.once or args.json) and sys.stdout.isatty()
        if live:
            rep.on_sample = LiveView(sort, args.trace)
            rep.sample_every = args.every
        summary, stats, _ = run_replay(rep, args, progress=False if live else None)
        if live:
            sys.stdout.write("\x1b[H\x1b[2J")
        k = rep.k
        replay = {"trace": args.trace, "lines": stats.lines, "events": summary.events,
                  "applied": sum(summary.applied.values()), "skipped": sum(summary.skipped.values()),
                  "sync": summary.sync}
    if args.json:
        d = top_dict(k, args.lines, sort)
        d["replay"] = replay
        d["machine"] = {"cpus": k.nr_cpu_ids, "nodes": k.nr_node_ids}
        json.dump(d, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_top(k, args.lines, sort))
    return 0

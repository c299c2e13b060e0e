"""kslab top: slabtop for the model: the caches while a trace replays, or after boot when no trace is
given.  Columns, summary and sort keys are procps slabtop's.

On a terminal (and without -o or --json) it is a full-screen view that moves through the trace's time:
slabtop's keys sort, q quits, space refreshes; r runs and pauses the replay, . and , step an event on
and back, m and ] run to the next marker and snapshot, Enter shows what SLAB holds for the selected
cache (? lists every key; docs/top.md explains them).  Otherwise (-o, a pipe) the table is printed once,
after the whole replay.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..report.top import SORT_HELP, check_sort_key, render_top, top_dict
from .common import build_machine
from .replay import add_replay_options, make_replayer, run_replay

EXAMPLES = r"""examples:
  kslab top                                        after boot: 1 CPU, 2 GiB, every kmalloc cache
  kslab top --cpus 4 --nodes 2 -s c -o             after boot, by cache size, printed once
  kslab top trace.txt.xz --cpus 2 --caches caches.log -s a
  kslab top trace.txt.xz --start-slabinfo slabinfo.start --sync-on 'snapshot start' -o --lines 20
  kslab top trace.txt.xz --json > top.json
  kslab top trace.txt.xz --caches caches.log --start-slabinfo slabinfo.0-start --sync-on 'snapshot 0-start begin' \
        -d 1 --every 500 --paused          full screen: starts paused, one step of 500 events a second with r

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
    g.add_argument("-d", "--delay", type=int, default=None, metavar="SECS",
                   help="full screen: seconds between steps while the replay runs (slabtop's -d; default 3)")
    g.add_argument("--every", type=int, default=2000, metavar="N",
                   help="full screen: events per step (default 2000; + and - double and halve it)")
    g.add_argument("--paused", action="store_true", help="full screen: start paused (r runs)")
    g.add_argument("--snapshot-marker", metavar="REGEX", default=None,
                   help="full screen: the markers that are snapshots for ] and [, group 1 their label "
                        "(default: --snapshot-on's regex, else 'snapshot (\\S+) begin')")
    g.add_argument("--kernel-slabinfo", metavar="TEMPLATE",
                   help="full screen: the kernel's /proc/slabinfo at a snapshot, {label} its label (default: "
                        "slabinfo.LABEL, or PREFIXslabinfo.LABEL with PREFIX the trace's name up to a dash, "
                        "beside the trace)")
    g.add_argument("--json", action="store_true", help="print the summary and the table as JSON")
    p.set_defaults(func=run)


def check_display_options(args: argparse.Namespace) -> None:
    """slabtop's rules for -d and -o, and kslab's for the rest (a ValueError names the option)."""
    if args.lines < 0:
        raise ValueError(f"--lines {args.lines}: must be 0 (all) or a positive number")
    if args.every <= 0:
        raise ValueError(f"--every {args.every}: must be a positive number of events")
    if args.delay is not None:
        if args.once:
            raise ValueError("-d/--delay and -o/--once cannot be combined (as in slabtop)")
        if args.delay < 1:
            raise ValueError(f"-d/--delay {args.delay}: must be a positive number of seconds (as in slabtop)")


def run(args: argparse.Namespace) -> int:
    sort = check_sort_key(args.sort)
    check_display_options(args)
    replay: dict[str, Any] | None = None
    if args.trace is None:
        given = [o for o, v in (("--start-slabinfo", args.start_slabinfo), ("--sync-on", args.sync_on),
                                ("--action", args.action), ("--snapshot-on", args.snapshot_on),
                                ("--ptr-map", args.ptr_map)) if v]
        if given:
            raise ValueError(f"{', '.join(given)}: replay options need a TRACE")
    if not (args.once or args.json) and sys.stdout.isatty() and sys.stdin.isatty():
        from .top_run import run_full_screen  # noqa: PLC0415 - curses only where there is a terminal
        return run_full_screen(args, sort)
    if args.trace is None:
        k = build_machine(args)
    else:
        rep = make_replayer(args)
        summary, stats, _ = run_replay(rep, args)
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

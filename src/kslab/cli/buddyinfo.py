"""kslab buddyinfo: the model's /proc/buddyinfo after boot, or after the replay of a trace (--from-replay TRACE)."""

from __future__ import annotations

import argparse
import sys

from .common import machine_after
from .replay import add_replay_options
from .slub_machine import slub_machine_after, wants_slub

EXAMPLES = r"""examples:
  kslab buddyinfo                                        after boot (1 CPU, 2 GiB)
  kslab buddyinfo --mem 64G --cpus 8 --nodes 2           a bigger machine after boot
  kslab buddyinfo --from-replay bundled                  after the bundled real 5.10 trace
  kslab buddyinfo --from-replay trace.txt.xz --cpus 4 --caches caches.log --json
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("buddyinfo", help="print the model's /proc/buddyinfo after boot",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p, trace_help=argparse.SUPPRESS)
    p.add_argument("--from-replay", metavar="TRACE",
                   help="show the model after replaying TRACE ('bundled': the bundled real trace) with the "
                        "replay options below")
    p.add_argument("--json", action="store_true",
                   help="per node and zone: free blocks per order, free and managed pages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    k = slub_machine_after(args) if wants_slub(args) else machine_after(args)
    if args.json:
        import json  # noqa: PLC0415
        json.dump(k.page_alloc.zoneinfo_summary(), sys.stdout, indent=1, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(k.buddyinfo())
    return 0

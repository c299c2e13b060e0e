"""kslab slabinfo: the model's /proc/slabinfo after boot, or after the replay of a trace (--from-replay TRACE)."""

from __future__ import annotations

import argparse
import json
import sys

from ..mm.slabinfo import get_slabinfo
from .common import machine_after
from .replay import add_replay_options
from .slub_machine import slub_machine_after, wants_slub

EXAMPLES = """examples:
  kslab slabinfo                               1 CPU, 2 GiB, every kmalloc cache
  kslab slabinfo --cpus 4 --nodes 2 --debug-slab
  kslab slabinfo --cpus 2 --caches caches.manifest --json
  kslab slabinfo --allocator slub --cpus 4 --nodes 2 --caches S3/caches.log   Linux 6.12 SLUB, as it prints it
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("slabinfo", help="print the model's /proc/slabinfo after boot",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p, trace_help=argparse.SUPPRESS)
    p.add_argument("--from-replay", metavar="TRACE",
                   help="show the model after replaying TRACE (with the replay options below)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if wants_slub(args):
        sk = slub_machine_after(args)
        if args.json:
            keys = ("name", "active_objs", "num_objs", "objsize", "objperslab", "order", "active_slabs", "num_slabs")
            json.dump({"slabinfo": [{key: c[key] for key in keys} for c in sk.snapshot()["caches"]]}, sys.stdout,
                      indent=1, sort_keys=True)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(sk.slabinfo())
        return 0
    k = machine_after(args)
    if args.json:
        rows = [get_slabinfo(c) for c in k.slab_caches]
        json.dump({"slabinfo": [r.__dict__ if hasattr(r, "__dict__") else {f: getattr(r, f) for f in r.__slots__}
                                for r in rows]}, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(k.slabinfo())
    return 0

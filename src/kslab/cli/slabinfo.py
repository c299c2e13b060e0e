"""kslab slabinfo: the model's /proc/slabinfo after boot."""

from __future__ import annotations

import argparse
import json
import sys

from ..mm.slabinfo import get_slabinfo
from .common import add_machine_options, build_machine

EXAMPLES = """examples:
  kslab slabinfo                               1 CPU, 2 GiB, every kmalloc cache
  kslab slabinfo --cpus 4 --nodes 2 --debug-slab
  kslab slabinfo --cpus 2 --caches caches.manifest --json
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("slabinfo", help="print the model's /proc/slabinfo after boot",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_machine_options(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    k = build_machine(args)
    if args.json:
        rows = [get_slabinfo(c) for c in k.slab_caches]
        json.dump({"slabinfo": [r.__dict__ if hasattr(r, "__dict__") else {f: getattr(r, f) for f in r.__slots__}
                                for r in rows]}, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(k.slabinfo())
    return 0

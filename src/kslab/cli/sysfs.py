"""kslab sysfs: /sys/kernel/slab of the model's SLUB (Linux 6.12) after boot, or after the replay of a trace.

Without CACHE: the entries of /sys/kernel/slab (a directory per unmergeable cache and per merged group, such
as :0000064, and a link for every other cache name).  With CACHE (a directory or a link): its files as
FILE:VALUE lines; with FILE too: that file's value.  --all prints every file of every directory as
/sys/kernel/slab/DIR/FILE:VALUE lines, the format of the captures' sysslab.* files.
"""

from __future__ import annotations

import argparse
import sys

from .replay import add_replay_options
from .slub_machine import slub_machine_after

EXAMPLES = """examples:
  kslab sysfs                                          the entries of /sys/kernel/slab after boot
  kslab sysfs kmalloc-64                               every file of kmalloc-64's directory (:0000064)
  kslab sysfs kmalloc-64 slabs_cpu_partial --cpus 4 --nodes 2
  kslab sysfs --all --caches S1/caches.log             all of /sys/kernel/slab, as the captures hold it
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sysfs", help="print /sys/kernel/slab of the model's SLUB (6.12)", description=__doc__,
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cache", nargs="?", metavar="CACHE", help="a cache name or /sys/kernel/slab directory")
    p.add_argument("file", nargs="?", metavar="FILE", help="one file of the directory (slabs, partial, ...)")
    p.add_argument("--all", action="store_true", help="every file of every directory, DIR/FILE:VALUE lines")
    add_replay_options(p, trace_help=argparse.SUPPRESS)
    p.add_argument("--from-replay", metavar="TRACE", help="show the model after replaying TRACE (a 6.12 trace)")
    p.set_defaults(func=run, allocator="slub")


def run(args: argparse.Namespace) -> int:
    if args.allocator != "slub":
        raise ValueError("kslab sysfs: /sys/kernel/slab exists only with SLUB (--allocator slub)")
    if args.all and args.cache:
        raise ValueError("kslab sysfs: --all takes no CACHE")
    k = slub_machine_after(args)
    if args.all:
        sys.stdout.write("".join(line + "\n" for line in k.sysfs_dump()))
    elif args.cache:
        sys.stdout.write(k.sysfs(args.cache, args.file))
    else:
        dirs = sorted({line.split("/")[4] for line in k.sysfs_dump()})
        links = k.sysfs_links()
        entries = [(d, "") for d in dirs] + [(name, f" -> {d}") for name, d in links.items()]
        sys.stdout.write("".join(f"{name}{arrow}\n" for name, arrow in sorted(entries)))
    return 0

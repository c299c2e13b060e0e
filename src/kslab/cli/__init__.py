"""The ``kslab`` command: subcommands, one module each; errors become one line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..mm.errors import KslabError
from . import common

COMMANDS = ("slabinfo", "buddyinfo", "geometry", "replay", "explain", "top", "stats", "report", "sweep", "ask", "sysfs")


def build_parser() -> argparse.ArgumentParser:
    from . import ask, buddyinfo, explain, geometry, replay, report, slabinfo, stats, sweep, sysfs, top  # noqa: PLC0415
    ap = argparse.ArgumentParser(
        prog="kslab",
        description="kslab: the Linux 5.10 SLAB allocator (mm/slab.c), executable.",
        epilog="Run 'kslab COMMAND --help' for the options and examples of each command.",
    )
    from .. import __version__  # noqa: PLC0415
    ap.add_argument("--version", action="version", version=f"kslab {__version__}")
    ap.add_argument("--traceback", action="store_true", help="show the Python traceback of an error")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for mod in (slabinfo, buddyinfo, geometry, replay, explain, top, stats, report, sweep, ask, sysfs):
        mod.register(sub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    try:
        args = ap.parse_args(args_list)
    except SystemExit as e:
        return int(e.code or 0)
    if not getattr(args, "func", None):
        ap.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("kslab: interrupted", file=sys.stderr)
        return 130
    except (KslabError, OSError, ValueError) as e:
        if args.traceback or "--traceback" in args_list:
            raise
        print(f"kslab: error: {common.one_line(e)}", file=sys.stderr)
        return 1

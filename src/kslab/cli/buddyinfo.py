"""kslab buddyinfo: the model's /proc/buddyinfo after boot."""

from __future__ import annotations

import argparse
import sys

from .common import add_machine_options, build_machine


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("buddyinfo", help="print the model's /proc/buddyinfo after boot", description=__doc__)
    add_machine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    k = build_machine(args)
    sys.stdout.write(k.buddyinfo())
    return 0

"""``kslab top`` on a terminal: the options turned into a TimeMachine (or the booted machine alone)
and the curses Screen that drives it."""

from __future__ import annotations

import argparse
import curses
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..trace.events import TraceEvent
from ..trace.ftrace import ParseStats, iter_events
from ..trace.replay import ReplaySummary
from .common import build_machine
from .replay import make_replayer
from .top_screen import Screen, Settings
from .top_time import Command, Go, KernelFiles, Point, TimeMachine

DEFAULT_SNAPSHOT_MARKER = r"snapshot (\S+) begin"
SAFE_LABEL = re.compile(r"[A-Za-z0-9_.+-]+")


def kernel_file_finder(args: argparse.Namespace) -> Callable[[str], Path | None]:
    """LABEL -> the kernel's /proc/slabinfo at that snapshot, when there is such a file (see --kernel-slabinfo)."""
    template: str | None = args.kernel_slabinfo
    trace = Path(args.trace)

    def find(label: str) -> Path | None:
        if not SAFE_LABEL.fullmatch(label):
            return None
        if template is not None:
            p = Path(template.replace("{label}", label))
            return p if p.is_file() else None
        name = trace.name
        prefixes = [name[: i + 1] for i, ch in enumerate(name) if ch == "-"]
        for pre in ["", *reversed(prefixes)]:
            p = trace.parent / f"{pre}slabinfo.{label}"
            if p.is_file():
                return p
        return None
    return find


def event_source(args: argparse.Namespace) -> Callable[[], Iterable[TraceEvent]]:
    """The trace's events, read again for every pass (the full screen needs stdin for keys, so a trace on
    stdin never comes here: it is printed once)."""
    if args.cache_parsed:
        from ..trace.cache import cached_events  # noqa: PLC0415
        return lambda: cached_events(args.trace, skip_bad=args.skip_bad, stats=ParseStats())
    return lambda: iter_events(args.trace, skip_bad=args.skip_bad, stats=ParseStats())


def time_machine(args: argparse.Namespace) -> TimeMachine:
    make_replayer(args)  # the options' checks, before the screen takes the terminal
    with open(args.trace, "rb"):  # and a missing or unreadable trace: a one-line error, no screen
        pass
    rx = args.snapshot_marker or args.snapshot_on or DEFAULT_SNAPSHOT_MARKER
    try:
        snapshot_re = re.compile(rx)
    except re.error as e:
        raise ValueError(f"--snapshot-marker {rx!r}: bad regular expression: {e}") from None
    files = KernelFiles(snapshot_re, kernel_file_finder(args),
                        re.compile(args.sync_on) if args.sync_on else None,
                        Path(args.start_slabinfo) if args.start_slabinfo else None)
    return TimeMachine(lambda: make_replayer(args), event_source(args), files)


def static_view(screen: Screen, args: argparse.Namespace) -> None:
    """The booted machine, no trace: the table and the cache view, no time."""
    k = build_machine(args)
    note = ""
    while True:
        cmd = screen(Point(k, ReplaySummary(), 0, 0, 0.0, None, None, True, 0, note))
        if cmd.go is Go.QUIT:
            return
        note = "no trace: nothing to replay (give one: kslab top TRACE)"


def run_full_screen(args: argparse.Namespace, sort: str) -> int:
    """The full-screen view; returns the exit code (0 when q quits)."""
    machine = time_machine(args) if args.trace is not None else None
    trace = "" if args.trace is None else Path(args.trace).name
    settings = Settings(sort=sort, delay=args.delay or 3, step=args.every, lines=args.lines,
                        playing=not args.paused and machine is not None, trace=trace,
                        timers_run=machine is None or args.reap == "timer")
    os.environ.setdefault("ESCDELAY", "25")

    def main(stdscr: Any) -> None:
        screen = Screen(stdscr, settings)
        if machine is None:
            static_view(screen, args)
        else:
            machine.run(screen, Command(Go.STEP, 1))

    try:
        curses.wrapper(main)
    except curses.error as e:
        sys.stderr.write(f"kslab: warning: no full-screen view on this terminal ({e}); use -o to print once\n")
        return 1
    return 0

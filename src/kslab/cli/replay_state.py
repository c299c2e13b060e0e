"""The saved-state options of ``kslab replay`` (``--save-state``, ``--save-state-on``, ``--from-state``): see
:mod:`kslab.trace.state`."""

from __future__ import annotations

import argparse
import re
import sys
import time

from ..trace.ftrace import ParseStats, iter_events
from ..trace.replay import Replayer, ReplaySummary
from ..trace.state import continue_replay, load_state, watch_for_save
from .common import machine_config
from .replay import make_replayer, replay_options, run_replay


def add_state_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("saved state")
    g.add_argument("--save-state", metavar="FILE", help="save the replay's state to FILE at the end of the trace "
                   "(or at --save-state-on), to continue from it later with --from-state")
    g.add_argument("--save-state-on", metavar="REGEX", help="save the state after the first marker matching REGEX")
    g.add_argument("--from-state", metavar="FILE", help="continue the replay of TRACE from a state saved with "
                   "--save-state (with the same machine options); --action/--snapshot-on act from there on")


def uses_state(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "save_state", None) or getattr(args, "save_state_on", None)
                or getattr(args, "from_state", None))


def run_with_state(args: argparse.Namespace) -> tuple[Replayer, ReplaySummary, ParseStats, float]:
    """``run_replay`` with the saved-state options: (replayer, summary, parse stats, seconds)."""
    if args.save_state_on and not args.save_state:
        raise ValueError("--save-state-on needs --save-state FILE")
    if args.save_state_on:
        try:
            re.compile(args.save_state_on)
        except re.error as e:
            raise ValueError(f"--save-state-on {args.save_state_on!r}: bad regular expression: {e}") from None
    if args.ptr_map:
        raise ValueError("--ptr-map cannot be combined with --save-state or --from-state")
    config = machine_config(args)
    if not args.from_state:
        rep = make_replayer(args)
        fed = watch_for_save(rep, args.save_state, args.save_state_on, config, args.caches)
        summary, stats, dt = run_replay(rep, args)
        if args.save_state_on and fed() and not _saved(args.save_state):
            sys.stderr.write(f"kslab: warning: --save-state-on {args.save_state_on!r} never matched: "
                             "no state saved\n")
        return rep, summary, stats, dt
    t0 = time.perf_counter()
    rep, h = load_state(args.from_state, config, args.caches, replay_options(args))
    counter = None
    if args.save_state:
        counter = watch_for_save(rep, args.save_state, args.save_state_on, config, args.caches,
                                 (h.events, h.lineno))
    stats = ParseStats()
    summary = continue_replay(rep, h, iter_events(args.trace, skip_bad=args.skip_bad, stats=stats),
                              args.from_state, counter)
    return rep, summary, stats, time.perf_counter() - t0


def _saved(path: str) -> bool:
    from pathlib import Path  # noqa: PLC0415
    return Path(path).exists()

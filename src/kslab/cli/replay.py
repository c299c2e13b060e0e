"""kslab replay: run a kernel trace (ftrace text, trace-cmd report, perf script) through the model.

Standard output: the model's /proc/slabinfo at the end, and with --kernel-slabinfo (or no TRACE: the
bundled trace and its kernel's slabinfo) how many of the kernel's cells the model predicted.
Standard error: one line about the replay; -v adds every counter (applied, skipped, internal, followed,
...), which --json always has.  The output is the same on a terminal and in a pipe (only the progress
line depends on the terminal), so what a script reads is what a user saw.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar, overload

from ..manifest import read_manifest
from ..mm.errors import KslabError
from ..trace.events import MARK, TraceEvent
from ..trace.ftrace import ParseStats, iter_events
from ..trace.replay import Replayer, ReplayOptions, ReplaySummary
from .common import add_machine_options, machine_config
from .tracecheck import TraceCheck, check_not_empty, not_text

EXAMPLES = r"""examples:
  kslab replay trace.txt.xz --cpus 2 --caches caches.manifest
  kslab replay trace.txt --cpus 4 --nodes 2 --reap trace --snapshot-on 'snapshot (\S+) begin' --out snaps/
  kslab replay trace.txt --start-slabinfo slabinfo.0 --sync-on 'snapshot 0-start begin' \
        --action 'retune written: (.*)=>slabinfo-write \1' --ptr-map ptrmap.csv --json summary.json
  trace-cmd report | kslab replay - --cpus 8
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("replay", help="replay a kmem trace through the model and print /proc/slabinfo",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p)
    p.add_argument("--json", metavar="FILE", help="write the summary and final state as JSON")
    p.add_argument("--no-slabinfo", action="store_true", help="do not print the final /proc/slabinfo")
    p.add_argument("--kernel-slabinfo", metavar="FILE",
                   help="the real kernel's /proc/slabinfo at the end of the trace: print how many of its cells "
                        "the model predicted, and the ones it did not (default with no TRACE: the bundled one)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="print every counter of the replay on stderr (applied, skipped, internal, followed...; "
                        "always in --json); without it, one line")
    from .replay_state import add_state_options  # noqa: PLC0415 - saved state (issue 14)
    add_state_options(p)
    p.set_defaults(func=run)


def add_replay_options(p: argparse.ArgumentParser, trace_help: str | None = None) -> None:
    """The TRACE argument, the machine options and the replay options: shared by every command that replays
    a trace (replay, top, stats, report); ``make_replayer`` and ``run_replay`` read them back."""
    p.add_argument("trace", nargs="?", help=trace_help or "trace file (.gz/.xz/.zst ok) or - for stdin; default (or "
                   "'bundled'): the bundled real 5.10 trace")
    add_machine_options(p)
    g = p.add_argument_group("replay")
    g.add_argument("--reap", choices=("trace", "timer", "off"), default="trace",
                   help="run cache_reap where the trace shows it (default), on the model's clock, or never")
    g.add_argument("--start-slabinfo", metavar="FILE", help="a real /proc/slabinfo to agree with at --sync-on")
    g.add_argument("--sync-on", metavar="REGEX", help="marker at which the model syncs with --start-slabinfo")
    g.add_argument("--action", action="append", default=[], metavar="REGEX=>ACTION",
                   help="run ACTION (slabinfo-write LINE, shrink CACHE, reap [CPU], drop-caches, snapshot LABEL) "
                        "when a marker matches; \\1 etc. are the regex groups")
    g.add_argument("--snapshot-on", metavar="REGEX", help="write slabinfo.<group 1> into --out when a marker matches")
    g.add_argument("--out", metavar="DIR", help="folder for snapshots")
    g.add_argument("--ptr-map", metavar="FILE", help="CSV: event number, kernel pointer, model pointer")
    g.add_argument("--unknown-free", choices=("placeholder", "ignore"), default="placeholder",
                   help="frees of objects allocated before the trace: free a placeholder object (default) or ignore")
    g.add_argument("--skip-bad", action="store_true", help="count malformed lines as skipped instead of stopping")
    g.add_argument("--cache-parsed", action="store_true",
                   help="keep the parsed trace in a cache ($KSLAB_CACHE_DIR, default ~/.cache/kslab/parsed) so that "
                        "the next replay of the same, unchanged file skips the parsing")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress display")
    g.add_argument("--no-fast-path", action="store_true",
                   help="replay every event through the general code: no columnar lean loop, no fast paths (the "
                        "results are the same, only slower: for checking)")


DATA = Path(__file__).resolve().parent.parent / "data"


#: The word that names the bundled trace wherever a trace is taken (a file of that name: ./bundled).
BUNDLED = "bundled"


def bundled_trace() -> Path:
    return DATA / "oracle-R1-excerpt.txt.xz"


def wants_bundled(trace: str | None) -> bool:
    """No trace given, or the word 'bundled': the bundled real trace."""
    return trace is None or trace == BUNDLED


def compare_with_kernel(model_text: str, kernel_path: Path, out: IO[str] | None = None) -> tuple[int, int]:
    """Print where the model's /proc/slabinfo differs from the kernel's (report.compare, which ``kslab
    report`` draws too); returns (equal, total) cells."""
    from ..report.compare import compare_file, write_comparison  # noqa: PLC0415
    cmp = compare_file(model_text, kernel_path)
    write_comparison(cmp, out if out is not None else sys.stdout)
    return cmp.equal, cmp.total


ACTION_VERBS = ("slabinfo-write", "shrink", "reap", "drop-caches", "snapshot")


def parse_actions(specs: list[str], cpus: int | None = None) -> list[tuple[str, str]]:
    """``--action REGEX=>ACTION`` values as (regex, action) pairs, checked as far as they can be before the
    replay: the regex compiles, its group references exist, and a literal verb and argument make sense
    (``cpus``, when given, bounds ``reap N``).  A bad one is a ValueError naming the option."""
    out = []
    for spec in specs:
        rx, sep, act = spec.partition("=>")
        if not sep or not rx or not act.strip():
            raise ValueError(f"--action {spec!r}: expected REGEX=>ACTION, e.g. 'retune (.*)=>slabinfo-write \\1'")
        try:
            compiled = re.compile(rx)
        except re.error as e:
            raise ValueError(f"--action {spec!r}: bad regular expression: {e}") from None
        # the same groups, and an empty alternative (after a newline, which ends a (?x) comment): a match of
        # "" whose expand() checks the action's group references now rather than at the first marker
        probe = re.compile(rx + "\n|").match("")
        try:
            if probe is not None:
                probe.expand(act)
        except (re.error, IndexError) as e:
            raise ValueError(f"--action {spec!r}: bad group reference in the action: {e} "
                             f"(the regex has {compiled.groups} group(s))") from None
        verb, _, arg = act.strip().partition(" ")
        arg = arg.strip()
        if "\\" not in verb:
            if verb not in ACTION_VERBS:
                raise ValueError(f"--action {spec!r}: unknown action {verb!r} (expected one of "
                                 f"{', '.join(ACTION_VERBS)})")
            if verb in ("slabinfo-write", "shrink", "snapshot") and not arg:
                what = {"slabinfo-write": "a slabinfo line, e.g. 'slabinfo-write dentry 120 60 8'",
                        "shrink": "a cache name, e.g. 'shrink dentry'",
                        "snapshot": "a label, e.g. 'snapshot before'"}[verb]
                raise ValueError(f"--action {spec!r}: {verb} needs {what}")
            if verb == "drop-caches" and arg:
                raise ValueError(f"--action {spec!r}: drop-caches takes no argument")
            if verb == "reap" and arg and "\\" not in arg:
                if not arg.isdigit():
                    raise ValueError(f"--action {spec!r}: reap takes a CPU number, not {arg!r}")
                if cpus is not None and int(arg) >= cpus:
                    raise ValueError(f"--action {spec!r}: CPU {arg} does not exist (the machine has CPUs "
                                     f"0..{cpus - 1}; see --cpus)")
        out.append((rx, act))
    return out


def summary_dict(s: ReplaySummary, stats: ParseStats, seconds: float) -> dict[str, object]:
    return {
        "lines": stats.lines, "events": s.events, "header_lines": stats.header,
        "parser_skipped": dict(stats.skipped), "applied": dict(s.applied), "skipped": dict(s.skipped),
        "internal": dict(s.internal), "unknown_frees": dict(s.unknown_frees), "placeholders": dict(s.placeholders),
        "sync": s.sync, "snapshots": s.snapshots, "actions": s.actions, "cpu_remapped": s.cpu_remapped,
        "reaps": s.reaps, "followed": dict(s.followed),
        "freelist_random": freelist_dict(s),
        "order_unknown": dict(s.order_unknown),
        "seconds": round(seconds, 3), "events_per_second": int(s.events / seconds) if seconds else 0,
        "notes": s.notes[:50],
    }


def freelist_dict(s: ReplaySummary) -> dict[str, dict[str, int]]:
    """CONFIG_SLAB_FREELIST_RANDOM, per cache: what became of the objects fresh slabs handed out (see
    trace.replay.shuffle), ``learned after`` the fresh objects it took to learn the cache's random_seq."""
    out: dict[str, dict[str, int]] = {}
    for name in sorted(set(s.freelist) | set(s.freelist_learned)):
        row = dict(s.freelist.get(name, {}))
        if name in s.freelist_learned:
            row[LEARNED_AFTER] = s.freelist_learned[name]
        out[name] = row
    return out


#: the freelist_random key of a cache's count of fresh objects it took to learn its random_seq
LEARNED_AFTER = "learned after"


def freelist_totals(rows: dict[str, dict[str, int]]) -> dict[str, int]:
    """The per-cache counts of freelist_dict summed over the caches (and how many caches were learnt)."""
    tot: dict[str, int] = {}
    for row in rows.values():
        for key, v in row.items():
            if key == LEARNED_AFTER:
                tot["caches learnt"] = tot.get("caches learnt", 0) + 1
            else:
                tot[key] = tot.get(key, 0) + v
    return tot


def print_summary(d: dict[str, object], out: IO[str] | None = None) -> None:
    w = (out if out is not None else sys.stderr).write
    w(f"replay: {d['lines']} lines, {d['events']} events in {d['seconds']} s ({d['events_per_second']} events/s)\n")
    for title in ("applied", "skipped", "parser_skipped", "internal", "followed", "order_unknown", "unknown_frees",
                  "placeholders"):
        items = d[title]
        assert isinstance(items, dict)
        if items:
            w(f"  {title}:\n")
            for key, v in sorted(items.items(), key=lambda kv: (-kv[1], kv[0])):
                w(f"    {v:10d}  {key}\n")
    fr = d.get("freelist_random")
    if fr:
        assert isinstance(fr, dict)
        w("  freelist_random (fresh objects, all caches):\n")
        for key, v in sorted(freelist_totals(fr).items(), key=lambda kv: (-kv[1], kv[0])):
            w(f"    {v:10d}  {key}\n")
    if d["sync"]:
        w(f"  sync: {d['sync']}\n")
    for a in d["actions"]:  # type: ignore[attr-defined]
        w(f"  action: {a}\n")


def use_bundled_trace(args: argparse.Namespace) -> None:
    """No TRACE given: the bundled real 5.10 excerpt, replayed the way it was recorded (1 CPU, 2 GiB, prod
    kernel), with its cache log and the sync with the kernel's /proc/slabinfo at the first marker."""
    args.trace = str(bundled_trace())
    args.caches = args.caches or str(DATA / "oracle-R1-caches.log.xz")
    args.start_slabinfo = args.start_slabinfo or str(DATA / "oracle-R1-slabinfo.0-start")
    args.sync_on = args.sync_on or "snapshot 0-start begin"


def check_slabinfo_file(path: str) -> None:
    """Read and parse a /proc/slabinfo given with --start-slabinfo now, not at the sync marker: a missing or
    malformed file is a ValueError naming the option, the file and the line."""
    from ..trace.slabinfo_parse import parse_slabinfo  # noqa: PLC0415
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ValueError(f"--start-slabinfo {path}: cannot read: {e.strerror or e}") from None
    try:
        rows = parse_slabinfo(text, path)
    except KslabError as e:
        raise ValueError(f"--start-slabinfo {e} (is it a copy of /proc/slabinfo?)") from None
    if not rows:
        raise ValueError(f"--start-slabinfo {path}: no cache lines: give a copy of a kernel's /proc/slabinfo")


class MarkerWatch:
    """Counts the markers that each of --sync-on, --snapshot-on and --action's regexes matches, on the events'
    way into the replay, so that a regex that never matched can be reported (it is not an error: the trace may
    simply not have the marker, but the user asked for something that did not happen)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.watch: list[tuple[str, re.Pattern[str]]] = []
        if args.sync_on:
            self.watch.append((f"--sync-on {args.sync_on!r}", re.compile(args.sync_on)))
        if args.snapshot_on:
            self.watch.append((f"--snapshot-on {args.snapshot_on!r}", re.compile(args.snapshot_on)))
        for spec in args.action:
            self.watch.append((f"--action {spec!r}", re.compile(spec.partition("=>")[0])))
        self.hits = [0] * len(self.watch)
        self.markers = 0

    def wrap(self, events: Iterable[TraceEvent]) -> Iterator[TraceEvent]:
        mark = self.mark
        for ev in events:
            if ev.kind == MARK:
                mark(ev)
            yield ev

    def mark(self, ev: TraceEvent) -> None:
        """Count one marker (``wrap``'s work for each marker; the lean replay calls it directly)."""
        self.markers += 1
        for i, (_, rx) in enumerate(self.watch):
            if rx.search(ev.text):
                self.hits[i] += 1

    def warnings(self) -> list[str]:
        seen = f"none of the trace's {self.markers} markers" if self.markers else "the trace has no markers"
        return [f"{what} never matched ({seen}): nothing was done for it"
                for (what, _), n in zip(self.watch, self.hits, strict=True) if not n]


def replay_options(args: argparse.Namespace) -> ReplayOptions:
    """ReplayOptions from the options of ``add_replay_options`` (checked: a bad combination is a ValueError)."""
    if args.snapshot_on and not args.out:
        raise ValueError("--snapshot-on needs --out DIR")
    if args.start_slabinfo and not args.sync_on:
        raise ValueError("--start-slabinfo needs --sync-on REGEX (the marker where the model syncs)")
    for name in ("sync_on", "snapshot_on"):
        rx = getattr(args, name)
        if rx:
            try:
                re.compile(rx)
            except re.error as e:
                raise ValueError(f"--{name.replace('_', '-')} {rx!r}: bad regular expression: {e}") from None
    if args.start_slabinfo:
        check_slabinfo_file(args.start_slabinfo)
    cpus = getattr(args, "cpus", None)
    if getattr(args, "topology", None):
        cpus = None  # the topology decides; the machine's own check comes later
    return ReplayOptions(reap=args.reap, start_slabinfo=args.start_slabinfo, sync_on=args.sync_on,
                         actions=parse_actions(args.action, cpus), snapshot_on=args.snapshot_on, out=args.out,
                         ptr_map=args.ptr_map, unknown_free=args.unknown_free)


R = TypeVar("R", bound=Replayer)


@overload
def make_replayer(args: argparse.Namespace) -> Replayer: ...
@overload
def make_replayer(args: argparse.Namespace, cls: type[R]) -> R: ...


def make_replayer(args: argparse.Namespace, cls: type[Replayer] = Replayer) -> Replayer:
    """The Replayer (or a subclass) the options of ``add_replay_options`` describe, booted and ready to run."""
    if args.trace == BUNDLED:  # a command that has no default trace of its own (top)
        use_bundled_trace(args)
    opts = replay_options(args)
    config = machine_config(args)
    manifest = read_manifest(args.caches, config) if args.caches else None
    return cls(config, manifest, opts, args.caches or "")


def run_replay(rep: Replayer, args: argparse.Namespace, stats: ParseStats | None = None,
               wrap: Callable[[Iterator[TraceEvent]], Iterable[TraceEvent]] | None = None,
               progress: bool | None = None) -> tuple[ReplaySummary, ParseStats, float]:
    """Replay ``args.trace`` through ``rep``; ``wrap`` may see (or filter) the events on their way in.
    A progress line goes to stderr when it is a terminal (unless --quiet).  Returns (summary, stats, seconds)."""
    stats = stats if stats is not None else ParseStats()
    show = (not args.quiet and sys.stderr.isatty()) if progress is None else progress
    t0 = time.perf_counter()
    if show and rep.on_progress is None:
        def report_progress(n: int, lineno: int) -> None:
            dt = time.perf_counter() - t0
            sys.stderr.write(f"\r  {n:,} events, line {lineno:,}, {n / dt if dt else 0:,.0f} events/s ")
            sys.stderr.flush()
        rep.on_progress = report_progress
    watch = MarkerWatch(args)
    check = TraceCheck()
    if getattr(args, "no_fast_path", False):
        rep.fast_path = False
    elif wrap is None and not getattr(args, "cache_parsed", False):
        # the default: the columnar parser and the lean loop (trace/replay/columnar.py), same results
        from .replay_lean import run_lean  # noqa: PLC0415
        return run_lean(rep, args, stats, watch, check, t0, show)
    events: Iterable[TraceEvent]
    if getattr(args, "cache_parsed", False):
        from ..trace.cache import cached_events  # noqa: PLC0415
        events = cached_events(args.trace, skip_bad=args.skip_bad, stats=stats)
    else:
        events = iter_events(args.trace, skip_bad=args.skip_bad, stats=stats)
    if watch.watch:
        events = watch.wrap(events)
    events = check.wrap(events)
    if wrap is not None:
        events = wrap(iter(events))
    try:
        summary = rep.run(events)
    except KslabError as e:
        text = not_text(str(e))
        if text is None:
            raise
        raise ValueError(text) from None
    return summary, stats, replay_done(args, stats, watch, check, t0, show)


def replay_done(args: argparse.Namespace, stats: ParseStats, watch: MarkerWatch, check: TraceCheck, t0: float,
                show: bool) -> float:
    """After a replay (run_replay's or the lean one's): the end of the progress line, the error of a trace
    without events, the warnings.  Returns the seconds since ``t0``."""
    dt = time.perf_counter() - t0
    if show:
        sys.stderr.write("\n")
    check_not_empty(args.trace, stats)
    for text in watch.warnings() + check.warnings(stats):
        sys.stderr.write(f"kslab: warning: {text}\n")
    return dt


def one_line_summary(d: dict[str, object]) -> str:
    """What the replay did, in one line (the counters behind it: ``-v`` or ``--json``)."""
    applied, skipped = d["applied"], d["skipped"]
    assert isinstance(applied, dict) and isinstance(skipped, dict)
    return (f"replay: {d['lines']:,} lines, {d['events']:,} events in {d['seconds']} s: "
            f"{sum(applied.values()):,} applied, {sum(skipped.values()):,} skipped (-v for the counters)")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "allocator", "slab") == "slub":
        from .replay_slub import run as run_slub  # noqa: PLC0415
        return run_slub(args)
    demo = wants_bundled(args.trace)
    kernel = Path(args.kernel_slabinfo) if args.kernel_slabinfo else None
    if demo:
        use_bundled_trace(args)
        args.no_slabinfo = True
        kernel = kernel or DATA / "oracle-R1-slabinfo.1-files"
        sys.stdout.write(f"kslab replay: the bundled real trace ({bundled_trace().name}: Linux 5.10 SLAB, 1 CPU, "
                         "1500 files created and deleted in tmpfs)\n")
    if kernel is not None:
        from ..report.compare import compare_file  # noqa: PLC0415
        compare_file("", kernel)  # a missing or malformed kernel file fails now, not after the replay
    from .replay_state import run_with_state, uses_state  # noqa: PLC0415 - saved state (issue 14)
    if uses_state(args):
        rep, summary, stats, dt = run_with_state(args)
    else:
        rep = make_replayer(args)
        summary, stats, dt = run_replay(rep, args)
    d = summary_dict(summary, stats, dt)
    if demo and kernel is not None:  # the headline first, then the model's biggest caches
        compare_with_kernel(rep.k.slabinfo(), kernel)
        from ..report.top import render_top  # noqa: PLC0415
        sys.stdout.write("\n" + render_top(rep.k, limit=12, sort="c"))
    if not args.no_slabinfo:
        sys.stdout.write(rep.k.slabinfo())
    if not args.quiet:
        if args.verbose:
            print_summary(d)
        else:
            sys.stderr.write(one_line_summary(d) + "\n")
    if kernel is not None and not demo:  # after the slabinfo, the last thing on the screen
        sys.stdout.flush()
        compare_with_kernel(rep.k.slabinfo(), kernel)
    if args.json:
        from ..mm.slabinfo import get_slabinfo  # noqa: PLC0415
        d["slabinfo"] = [{f: getattr(r, f) for f in r.__slots__} for r in (get_slabinfo(c) for c in rep.k.slab_caches)]
        Path(args.json).write_text(json.dumps(d, indent=1, sort_keys=True) + "\n")
    return 0

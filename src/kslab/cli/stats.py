"""kslab stats: perf-kmem-style analysis of a kmem trace (per call site, per allocation, internal
fragmentation, cross-CPU frees) and of its replay through the model (per cache: which paths of
mm/slab.c ran, the slab lists at the end, pages taken from and given back to the buddy allocator).

Sort keys (-s, perf kmem's; comma-separated, each descending): frag (internal fragmentation,
(bytes_alloc - bytes_req) / bytes_alloc), hit (allocations), bytes (bytes allocated), pingpong
(objects freed on another CPU than the one that allocated them), callsite, ptr.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..mm.errors import KslabError
from ..report.stats import DEFAULT_SORT, TraceStats, WindowWatch, parse_sort, render_stats, stats_dict
from ..trace.ftrace import ParseStats, iter_events
from .common import machine_config
from .replay import add_replay_options, make_replayer, run_replay, use_bundled_trace, wants_bundled
from .tracecheck import TraceCheck, check_not_empty, not_text

EXAMPLES = r"""examples:
  kslab stats trace.txt.xz --cpus 2                     call sites, summary, per-cache paths of the replay
  kslab stats trace.txt.xz --caller -s hit --lines 10   the 10 call sites that allocate most often
  kslab stats trace.txt.xz --alloc -s pingpong          objects freed on another CPU than their allocation's
  kslab stats trace.txt.xz --slab --all-caches --json   every cache's path counters, as JSON
  kslab stats trace.txt.xz --no-replay -s frag,bytes    the trace alone (no model), like perf kmem stat
  kslab stats                                           the bundled real 5.10 trace
  kslab stats S1/trace.txt.xz --allocator slub --caches S1/caches.log   SLAB and SLUB side by side (what-if)
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("stats", help="perf-kmem-style statistics of a trace and of its replay through the model",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p)
    g = p.add_argument_group("statistics")
    g.add_argument("--caller", action="store_true", help="per call site table")
    g.add_argument("--alloc", action="store_true", help="per allocation (object address) table")
    g.add_argument("--slab", action="store_true", help="per cache table of the replay (paths, slab lists, pages)")
    g.add_argument("-s", "--sort", default=DEFAULT_SORT, metavar="KEY[,KEY...]",
                   help=f"sort keys: frag, hit, bytes, pingpong, callsite, ptr (default {DEFAULT_SORT})")
    g.add_argument("-l", "--lines", type=int, default=20, metavar="N",
                   help="rows of the --caller/--alloc tables (default 20; 0: all)")
    g.add_argument("--all-caches", action="store_true", help="per cache table: also the caches nothing happened to")
    g.add_argument("--no-replay", action="store_true", help="analyse the trace only (no model, no per-cache table)")
    g.add_argument("--json", action="store_true", help="print the analysis as JSON")
    p.set_defaults(func=run)


def run_whatif(args: argparse.Namespace) -> int:
    """``--allocator slub``: the trace through SLUB (booted from --caches, the trace's 6.12 cache log) and
    through SLAB (its caches inferred from the trace), side by side."""
    import copy  # noqa: PLC0415

    from ..report.whatif import render_whatif, slab_figures, slab_paths, slub_figures, whatif_dict  # noqa: PLC0415
    from .replay_slub import run_slub_replay  # noqa: PLC0415
    if not args.trace or wants_bundled(args.trace):
        raise ValueError("stats --allocator slub: give a 6.12 trace and its cache log (--caches caches.log)")
    slub = run_slub_replay(args, args.trace)
    if not slub.events:
        raise ValueError(f"{args.trace}: no events")
    sargs = copy.copy(args)
    sargs.caches, sargs.allocator, sargs.quiet = None, "slab", True
    rep = make_replayer(sargs)
    before = slab_paths(rep.k)
    run_replay(rep, sargs)
    a, b = slab_figures(rep.k, slub.cross.other_cpu, before), slub_figures(slub)
    if args.json:
        json.dump({"whatif": whatif_dict(a, b)}, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"the same trace through Linux 5.10's SLAB and Linux 6.12's SLUB ({args.trace})\n")
        sys.stdout.write(render_whatif(a, b))
    return 0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "allocator", "slab") == "slub":
        return run_whatif(args)
    sort = parse_sort(args.sort)
    if args.lines < 0:
        raise ValueError(f"--lines {args.lines}: must be 0 (all) or a positive number")
    if args.no_replay and args.slab:
        raise ValueError("--slab needs the replay: drop --no-replay")
    if wants_bundled(args.trace):
        use_bundled_trace(args)
    # sections: by default the call sites, the summary and (with the replay) the caches
    explicit = args.caller or args.alloc or args.slab
    caller = args.caller or not explicit
    alloc = args.alloc
    slab = (args.slab or not explicit) and not args.no_replay
    config = machine_config(args)
    ts = TraceStats(lambda cpu: config.cpu_to_node(cpu % config.cpus))
    window = None
    if args.no_replay:
        pstats = ParseStats()
        check = TraceCheck()
        try:
            for ev in check.wrap(iter_events(args.trace, skip_bad=args.skip_bad, stats=pstats)):
                ts.observe(ev)
        except KslabError as e:
            text = not_text(str(e))
            if text is None:
                raise
            raise ValueError(text) from None
        check_not_empty(args.trace, pstats)
        for text in check.warnings(pstats):
            sys.stderr.write(f"kslab: warning: {text}\n")
    else:
        rep = make_replayer(args)
        watch = WindowWatch.attach(rep)
        run_replay(rep, args, wrap=ts.wrap)
        window = watch.window if slab else None
        if slab and window is None:  # an empty trace
            from ..report.stats import CacheWindow  # noqa: PLC0415
            window = CacheWindow(rep.k)
    d = stats_dict(ts, window, sort, caller, alloc, args.lines, args.all_caches)
    if not args.no_replay:
        from .replay import freelist_dict  # noqa: PLC0415
        fr = freelist_dict(rep.summary)
        if fr:
            d["freelist_random"] = fr
    d["trace"] = args.trace
    if args.json:
        json.dump(d, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_stats(d) + counts_note(d, synced=bool(args.sync_on)))
    return 0


def counts_note(d: dict[str, object], synced: bool) -> str:
    """What the two allocation counts count, when they differ: the summary's every allocation event of the
    trace, the per-cache table the model's allocations from its start line (the sync, with --sync-on)."""
    caches, model, summary = d.get("caches"), d.get("model"), d.get("summary")
    if not isinstance(caches, list) or not isinstance(model, dict) or not isinstance(summary, dict):
        return ""
    in_table = sum(int(row.get("allocs", 0)) for row in caches)
    total = int(summary.get("allocations", 0))
    if in_table == total:
        return ""
    since = (f"from trace line {model['start_line']} on, where the model synced with the kernel's /proc/slabinfo"
             if synced else f"from trace line {model['start_line']} on")
    return (f"(Allocations: {total:,} counts every allocation event of the trace; the per-cache table's total, "
            f"{in_table:,}, the model's allocations {since}; a kmalloc too large for any cache counts in the "
            "first, not in the second)\n")

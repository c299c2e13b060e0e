"""kslab report: replay a trace and write ONE self-contained HTML file of interactive charts.

When the kernel's own /proc/slabinfo is known (--kernel-slabinfo for the end of the trace, the
kernel's slabinfo.LABEL beside the trace or in --kernel-dir for each --snapshot-on snapshot, or the
bundled data), the page opens with the prediction against it: cells equal per snapshot, the
differing cells, the num_objs error per cache.  Then: memory and objects per cache over time, slabs
per list (all caches or one, log scale; a click on a cache in the slabinfo table shows it over time
and its arrays and lists at the end), per-CPU and shared array fill, the paths
of mm/slab.c taken over time, slab occupancy at the end, the final /proc/slabinfo, per-cache path
counts and the trace's call sites (sortable, filterable tables).

With --allocator slub (and --caches, the trace's 6.12 cache log) the trace also goes through Linux 6.12's SLUB,
and the page opens with the two allocators side by side (slabs, memory, active objects, fast-path share,
frees on another CPU); the charts and tables are SLAB's replay, which infers its caches from the trace, as
"kslab stats --allocator slub" does.

The file fetches nothing (inline CSS, JavaScript and SVG; a Content-Security-Policy forbids any
fetch), opens from disk in any browser, and is deterministic: same input, same bytes.  Table
state can be given in the URL: report.html#sort=-num_objs&filter=kmalloc (also psort/pfilter for
the per-cache paths, csort/cfilter for the call sites).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..report.compare import compare_file, kernel_snapshot
from ..report.html import MAX_CALLERS, build_data, render_html
from ..report.stats import TraceStats
from ..report.timeline import Timeline
from ..trace.events import TraceEvent
from ..trace.replay.observer import Observer
from .common import machine_config
from .replay import DATA, add_replay_options, make_replayer, run_replay, use_bundled_trace, wants_bundled


class SnapshotTexts(Observer):
    """Keeps the model's /proc/slabinfo at each --snapshot-on snapshot, to compare it with the kernel's."""

    def __init__(self) -> None:
        self.snapshot_texts: list[tuple[str, str]] = []

    def on_snapshot(self, rep: Any, label: str, ev: TraceEvent | None) -> None:
        self.snapshot_texts.append((rep.summary.snapshots[-1], rep.k.slabinfo()))


EXAMPLES = r"""examples:
  kslab report trace.txt.xz -o report.html
  kslab report trace.txt.xz --cpus 4 --nodes 2 --caches caches.log -o what-if.html --top 15
  kslab report trace.txt --start-slabinfo slabinfo.start --sync-on 'snapshot start' -o r.html --samples 600
  kslab report -o bundled.html                       the bundled real 5.10 trace, against the kernel
  kslab report S2/trace.txt.xz --cpus 2 --allocator slub --caches S2/caches.log -o whatif.html
                                                     SLAB and SLUB side by side on a 6.12 trace
  kslab report R1/trace.txt.xz --caches R1/caches.log --start-slabinfo R1/slabinfo.0-start \
        --sync-on 'snapshot 0-start begin' --snapshot-on 'snapshot (\S+) begin' --out snaps/ -o r1.html
                                                     each snapshot against R1/slabinfo.<label>
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="replay a trace and write a self-contained interactive HTML report",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p)
    g = p.add_argument_group("report")
    g.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write (- for stdout)")
    g.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    g.add_argument("--top", type=int, default=10, metavar="N",
                   help="caches drawn one by one in the memory chart (by peak memory; default 10)")
    g.add_argument("--samples", type=int, default=300, metavar="N",
                   help="resolution of the charts: between N and 2N samples (default 300)")
    g.add_argument("--max-callers", type=int, default=MAX_CALLERS, metavar="N",
                   help=f"rows of the call-site table (the most frequent; default {MAX_CALLERS})")
    g.add_argument("--kernel-slabinfo", metavar="FILE",
                   help="the real kernel's /proc/slabinfo at the end of the trace: the report opens with the "
                        "model against it (default with no TRACE: the bundled one)")
    g.add_argument("--kernel-dir", metavar="DIR",
                   help="where the kernel's slabinfo.<label> files of --snapshot-on's snapshots are (default: "
                        "the trace's folder); each snapshot that has one is compared")
    p.set_defaults(func=run)


def comparisons(rep: Any, texts: SnapshotTexts, args: argparse.Namespace, kernel: Path | None) -> list[dict[str, Any]]:
    """The model against the kernel: at each snapshot that has a kernel file, and at the end."""
    out = []
    folder = Path(args.kernel_dir) if args.kernel_dir else Path(args.trace).parent
    synced_with = Path(args.start_slabinfo).resolve() if args.start_slabinfo else None
    if args.trace != "-" or args.kernel_dir:
        for label, text in texts.snapshot_texts:
            path = kernel_snapshot(folder, label)
            # the snapshot of the sync equals the kernel's file by construction: not a prediction
            if path is not None and path.resolve() != synced_with:
                out.append(compare_file(text, path, label).as_dict())
    if kernel is not None:
        out.append(compare_file(rep.k.slabinfo(), kernel).as_dict())
    return out


def slub_side(args: argparse.Namespace) -> tuple[argparse.Namespace, Any]:
    """``--allocator slub``: the trace through SLUB (booted from --caches, its 6.12 cache log); returns the
    options of the SLAB replay (its caches inferred from the trace) and SLUB's figures."""
    import copy  # noqa: PLC0415

    from ..report.whatif import slub_figures  # noqa: PLC0415
    from .replay_slub import run_slub_replay  # noqa: PLC0415
    slub = run_slub_replay(args, args.trace)
    if not slub.events:
        raise ValueError(f"{args.trace}: no events")
    sargs = copy.copy(args)
    sargs.caches, sargs.allocator = None, "slab"
    return sargs, slub_figures(slub)


def run(args: argparse.Namespace) -> int:
    for opt, v, low in (("--top", args.top, 1), ("--samples", args.samples, 2), ("--max-callers", args.max_callers, 1)):
        if v < low:
            raise ValueError(f"{opt} {v}: must be at least {low}")
    if args.output != "-" and Path(args.output).exists() and not args.force:
        raise ValueError(f"{args.output} exists: use --force to overwrite it, or another -o")
    kernel = Path(args.kernel_slabinfo) if args.kernel_slabinfo else None
    if getattr(args, "allocator", "slab") == "slub" and (not args.trace or wants_bundled(args.trace)):
        raise ValueError("report --allocator slub: give a 6.12 trace and its cache log (--caches caches.log)")
    if wants_bundled(args.trace):
        use_bundled_trace(args)
        kernel = kernel or DATA / "oracle-R1-slabinfo.1-files"
    if kernel is not None:
        compare_file("", kernel)  # a missing or malformed kernel file fails now, not after the replay
    if args.snapshot_on and args.out and args.trace != "-":
        folder = Path(args.kernel_dir) if args.kernel_dir else Path(args.trace).parent
        if Path(args.out).resolve() == folder.resolve():
            raise ValueError(f"--out {args.out} is where the kernel's slabinfo.LABEL files are read from: the "
                             "model's snapshots would overwrite them; give another --out")
    whatif = None
    if getattr(args, "allocator", "slab") == "slub":
        args, whatif = slub_side(args)
    config = machine_config(args)
    rep = make_replayer(args)
    before = None
    if whatif is not None:
        from ..report.whatif import slab_paths  # noqa: PLC0415
        before = slab_paths(rep.k)
    timeline = Timeline.attach(rep)
    timeline.target = args.samples
    texts = SnapshotTexts()
    rep.subscribe(texts)
    ts = TraceStats(lambda cpu: config.cpu_to_node(cpu % config.cpus))
    summary, stats, _ = run_replay(rep, args, wrap=ts.wrap)
    timeline.end()
    replay = {
        "lines": stats.lines, "events": summary.events,
        "applied_total": sum(summary.applied.values()), "skipped_total": sum(summary.skipped.values()),
        "applied": dict(sorted(summary.applied.items())), "skipped": dict(sorted(summary.skipped.items())),
        "parser_skipped": dict(sorted(stats.skipped.items())), "sync": summary.sync, "reaps": summary.reaps,
        "placeholders": sum(summary.placeholders.values()), "cpu_remapped": summary.cpu_remapped,
    }
    data = build_data(timeline, replay, ts, args.trace, top=args.top, max_callers=args.max_callers,
                      kernel=comparisons(rep, texts, args, kernel))
    if whatif is not None:
        from ..report.whatif import slab_figures, whatif_table  # noqa: PLC0415
        data["whatif"] = whatif_table(slab_figures(rep.k, whatif.cross_cpu_frees, before), whatif)
    page = render_html(data)
    if args.output == "-":
        sys.stdout.write(page)
    else:
        out = Path(args.output)
        out.write_text(page, encoding="utf-8")
        if not args.quiet:
            print(f"kslab report: wrote {out} ({len(page.encode()) // 1024} KiB, {len(data['x'])} samples, "
                  f"{len(data['slabinfo']['rows'])} caches, {data['callers']['total']} call sites)", file=sys.stderr)
    return 0

# ruff: noqa: RUF001  (the Chinese narration uses full-width punctuation on purpose)
"""kslab explain: set up a scenario with the kernel's own rules, then narrate one kfree or kmalloc
step by step: which function ran, which branch it took, and the numbers that decided it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..report.narrate import LANGS, SLAB, SLUB, render_explanation, render_step, step_depths
from ..scenarios import SCENARIOS, Explanation, ScenarioError, run_scenario
from .common import add_machine_options, build_machine
from .slub_machine import build_slub_machine, wants_slub

EXAMPLES = """examples:
  kslab explain --list
  kslab explain --scenario flush-free-block
  kslab explain --scenario flush-shared --lang zh
  kslab explain --scenario alien-overflow --cpus 4 --nodes 2 --json
  kslab explain --scenario flush-free-block --size 64 --full
  kslab explain --trace bundled --line 1500 --lang zh     event on line 1500 of the bundled real trace
  kslab explain --allocator slub --list                   the scenarios of Linux 6.12's SLUB
  kslab explain --allocator slub --scenario free-cpu-partial-drain --lang zh
  kslab explain --allocator slub --trace S2/trace.txt.xz --caches S2/caches.log --cpus 2 --line 5000

Without --cpus/--nodes a scenario boots the machine it needs (flush-shared: 2 CPUs; alien and
alien-overflow: 2 CPUs on 2 nodes; the others: 1 CPU).  The scenario runs the kernel's own
allocations and frees until the branch it is named after is taken, and narrates that operation.
With --allocator slub the scenarios are SLUB's (mm/slub.c of 6.12: fast paths, ___slab_alloc, __slab_free,
the per-CPU and node partial lists, deactivate_slab, flushing, shrinking, bulk calls).
Golden outputs: tests/golden/explain/ and tests/golden/explain-slub/ (KSLAB_UPDATE_GOLDEN=1 pytest tests/report
tests/cli).
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("explain", help="narrate one kfree/kmalloc: functions, branches and the numbers behind them",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_machine_options(p)
    # None = "not given": a scenario then picks the machine it needs (e.g. 2 CPUs for a shared array)
    p.set_defaults(cpus=None, nodes=None)
    p.add_argument("--scenario", metavar="NAME", help="the scenario to explain (see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios with a one-line description")
    p.add_argument("--lang", choices=LANGS, default="en", help="narration language (default en)")
    p.add_argument("--size", type=int, metavar="BYTES", help="kmalloc size the scenario uses (default per scenario)")
    p.add_argument("--full", action="store_true", help="show every object of a long free_block loop")
    p.add_argument("--json", action="store_true", help="print the recorded steps as JSON")
    g = p.add_argument_group("a trace's event instead of a scenario")
    g.add_argument("--trace", metavar="FILE", help="replay this trace (or 'bundled' for the bundled real excerpt)")
    g.add_argument("--event", type=int, metavar="N", help="narrate the N-th event of the trace (1-based)")
    g.add_argument("--line", type=int, metavar="L", help="narrate the event on line L of the trace")
    g.add_argument("--start-slabinfo", metavar="FILE", help="as for kslab replay")
    g.add_argument("--sync-on", metavar="REGEX", help="as for kslab replay")
    p.set_defaults(func=run)


def list_scenarios(lang: str, slub: bool = False) -> str:
    from ..scenarios_slub import SCENARIOS as SLUB_SCENARIOS  # noqa: PLC0415
    table: dict[str, Any] = dict(SLUB_SCENARIOS) if slub else dict(SCENARIOS)
    width = max(len(n) for n in table)
    return "".join(f"{name:{width}}  {sc.summary[lang]}\n" for name, sc in table.items())


def scenario_machine_args(args: argparse.Namespace, cpus: int, nodes: int) -> argparse.Namespace:
    """A copy of ``args`` whose CPU and node counts are the scenario's (``cpus``, ``nodes``) unless given;
    ``--topology`` alone defaults both to 1."""
    margs = argparse.Namespace(**vars(args))
    if args.topology:
        margs.cpus = args.cpus or 1
        margs.nodes = args.nodes or 1
    else:
        margs.nodes = args.nodes if args.nodes is not None else nodes
        margs.cpus = args.cpus if args.cpus is not None else max(cpus, margs.nodes)
    return margs


def explain_slub_scenario(args: argparse.Namespace) -> Explanation:
    """``--allocator slub``: boot the SLUB machine the options describe (with the scenario's defaults) and run
    the SLUB scenario."""
    from ..scenarios_slub import SCENARIOS as SLUB_SCENARIOS  # noqa: PLC0415
    from ..scenarios_slub import run_scenario as run_slub_scenario  # noqa: PLC0415
    sc = SLUB_SCENARIOS.get(args.scenario)
    if sc is None:
        raise ScenarioError(f"unknown SLUB scenario {args.scenario!r}; choose from {', '.join(SLUB_SCENARIOS)}")
    margs = scenario_machine_args(args, sc.cpus, sc.nodes)
    if args.size is not None and args.size <= 0:
        raise ValueError(f"--size {args.size}: must be a positive number of bytes")
    if getattr(args, "slab_debug", None) is None and sc.slab_debug is not None:
        margs.slab_debug = sc.slab_debug
    return run_slub_scenario(sc.name, build_slub_machine(margs), args.size)


def explain_scenario(args: argparse.Namespace) -> Explanation:
    """Boot the machine the options describe (with the scenario's defaults) and run the scenario."""
    sc = SCENARIOS.get(args.scenario)
    if sc is None:
        raise ScenarioError(f"unknown scenario {args.scenario!r}; choose from {', '.join(SCENARIOS)}")
    margs = scenario_machine_args(args, sc.cpus, sc.nodes)
    if sc.freelist_random:
        margs.freelist_random = True
    if args.size is not None and args.size <= 0:
        raise ValueError(f"--size {args.size}: must be a positive number of bytes")
    k = build_machine(margs)
    return run_scenario(sc.name, k, args.size)


def trace_line(trace: str, lineno: int) -> str | None:
    """Line ``lineno`` of a trace file (decompressed as the parser does), without its newline; None when
    the file is shorter."""
    from contextlib import ExitStack  # noqa: PLC0415

    from ..trace.ftrace import open_trace_text  # noqa: PLC0415
    with ExitStack() as stack:
        read, binary, _ = open_trace_text(trace, stack)
        buf: str = ""
        while buf.count("\n") < lineno:
            chunk = read(1 << 16)
            if not chunk:
                break
            buf += chunk.decode("utf-8", "replace") if binary else chunk
    lines = buf.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines[lineno - 1].rstrip("\r") if lineno <= len(lines) else None


def not_an_event(trace: str, lineno: int, target_line: int | None) -> str:
    """Why --line names no event: a header line, or a line the replay does not read (the error's text)."""
    text = trace_line(trace, lineno) if trace != "-" else ""
    if text is None:
        return f"{trace}: the trace has no line {lineno}"
    shown = text if len(text) <= 60 else text[:57] + "..."
    is_header = text.startswith("#") or not text.strip() or text.split("=")[0].strip() in ("cpus", "version")
    what = "a header line" if is_header else "not an event kslab reads"
    nxt = f"the next event is on line {target_line} (--line {target_line})" if target_line else "no event follows it"
    return f"{trace}:{lineno}: {what} ({shown!r}), nothing to explain: {nxt}"


def explain_trace_event(args: argparse.Namespace) -> str:
    """Replay a trace up to the chosen event, then narrate what the model does for that event."""
    from ..manifest import read_manifest  # noqa: PLC0415
    from ..mm.explain import Explain  # noqa: PLC0415
    from ..trace.replay import Replayer, ReplayOptions  # noqa: PLC0415
    from .common import machine_config  # noqa: PLC0415
    from .replay import DATA, bundled_trace  # noqa: PLC0415
    if (args.event is None) == (args.line is None):
        raise ValueError("with --trace give exactly one of --event N or --line L")
    trace = args.trace
    if trace == "bundled":
        trace = str(bundled_trace())
        args.caches = args.caches or str(DATA / "oracle-R1-caches.log.xz")
        args.start_slabinfo = args.start_slabinfo or str(DATA / "oracle-R1-slabinfo.0-start")
        args.sync_on = args.sync_on or "snapshot 0-start begin"
    margs = argparse.Namespace(**vars(args))
    margs.cpus = args.cpus or 1
    margs.nodes = args.nodes or 1
    config = machine_config(margs)
    manifest = read_manifest(args.caches, config) if args.caches else None
    rep = Replayer(config, manifest, ReplayOptions(start_slabinfo=args.start_slabinfo, sync_on=args.sync_on),
                   args.caches or "")
    head, target = find_event(args, trace)
    rep.run(head[:-1])
    k = rep.k
    k.explain = ex = Explain()
    rep.feed(target)
    rep.flush()  # a cache_reap line waits for the lines of its run: replay it now
    k.explain = None
    return event_narration(args, head, target, rep.kmap.get(target.ptr), ex.steps, SLAB)


def find_event(args: argparse.Namespace, trace: str) -> tuple[list[Any], Any]:
    """The events of ``trace`` up to the one --event/--line names (the list ends with it), and that event."""
    from ..trace.ftrace import iter_events  # noqa: PLC0415
    if (args.event is None) == (args.line is None):
        raise ValueError("with --trace give exactly one of --event N or --line L")
    target = None
    head = []
    events = iter_events(trace)
    for ev in events:
        head.append(ev)
        n = len(head)
        if (args.event is not None and n == args.event) or (args.line is not None and ev.lineno >= args.line):
            target = ev
            break
    events.close()
    if args.line is not None and (target is None or target.lineno != args.line):
        raise ValueError(not_an_event(trace, args.line, target.lineno if target else None))
    if target is None:
        which = args.event if args.event is not None else "on line " + str(args.line)
        raise ValueError(f"{trace}: the trace has no event {which}")
    return head, target


def event_narration(args: argparse.Namespace, head: list[Any], target: Any, model_ptr: int | None,
                    steps: list[Any], allocator: str) -> str:
    """The event's header (its number, line, CPU and text; the model object paired with its pointer) and the
    narration of what the model did for it."""
    from ..report.narrate import narrate  # noqa: PLC0415
    from ..trace.events import FUNC, MARK  # noqa: PLC0415
    lang = args.lang
    if target.kind == FUNC:
        what = f"{target.text} <-{target.parent}"
    elif target.kind == MARK:
        what = f"tracing_mark_write: {target.text}"
    else:
        what = f"{target.kind_name}: call_site={target.call_site} ptr={target.ptr:#x}"
        if target.name:
            what += f" name={target.name}"
    head_line = (f"event {len(head)} (line {target.lineno}) on CPU {target.cpu}: {what}\n"
                 if lang == "en" else f"第 {len(head)} 个事件 (第 {target.lineno} 行)，CPU {target.cpu}：{what}\n")
    if model_ptr:
        head_line += (f"model object: {model_ptr:#x}\n" if lang == "en" else f"模型中的对象：{model_ptr:#x}\n")
    if not steps:
        return head_line + ("(the model did not run an allocator path for this event)\n" if lang == "en"
                            else "(该事件在模型中不经过分配器路径)\n")
    return head_line + "\n" + narrate(steps, lang, full=args.full, allocator=allocator)


def explain_slub_trace_event(args: argparse.Namespace) -> str:
    """``--allocator slub``: replay a 6.12 trace through SLUB (booted from --caches, its cache log) up to the
    chosen event, then narrate what the model does for that event."""
    from ..mm.explain import Explain  # noqa: PLC0415
    from ..trace.replay_slub.engine import SlubReplay  # noqa: PLC0415
    from .replay import wants_bundled  # noqa: PLC0415
    if wants_bundled(args.trace):
        raise ValueError("explain --trace bundled is a 5.10 SLAB trace: with --allocator slub give a 6.12 trace")
    if not args.caches:
        raise ValueError("explain --trace with --allocator slub: give the trace's cache log with --caches caches.log")
    if args.start_slabinfo or args.sync_on:
        raise ValueError("--start-slabinfo, --sync-on: options of the SLAB replay; the SLUB replay runs from boot")
    head, target = find_event(args, args.trace)
    margs = argparse.Namespace(**vars(args))
    margs.cpus = args.cpus or 1
    margs.nodes = args.nodes or 1
    k = build_slub_machine(margs)
    rep = SlubReplay(k)
    rep.run(head[:-1])
    k.explain = ex = Explain()
    rep.run([target])
    k.explain = None
    return event_narration(args, head, target, rep.kmap.get(target.ptr), ex.steps, SLUB)


def run(args: argparse.Namespace) -> int:
    slub = wants_slub(args)
    if args.trace:
        sys.stdout.write(explain_slub_trace_event(args) if slub else explain_trace_event(args))
        return 0
    if args.list:
        sys.stdout.write(list_scenarios(args.lang, slub))
        return 0
    if not args.scenario:
        raise ValueError("give --scenario NAME (or --list to see them)")
    allocator = SLUB if slub else SLAB
    ex = explain_slub_scenario(args) if slub else explain_scenario(args)
    if args.json:
        doc = ex.as_dict()
        for d, depth, st in zip(doc["steps"], step_depths(ex.steps, allocator), ex.steps, strict=True):
            d["depth"] = depth
            d["text"] = render_step(st.func, st.key, st.values, args.lang, allocator)
        json.dump(doc, sys.stdout, indent=1, sort_keys=True, default=str)
        sys.stdout.write("\n")
    elif slub:
        from ..report.narrate_slub import render_explanation as render_slub  # noqa: PLC0415
        from ..scenarios_slub import SCENARIOS as SLUB_SCENARIOS  # noqa: PLC0415
        sys.stdout.write(render_slub(ex, args.lang, summary=SLUB_SCENARIOS[ex.scenario].summary[args.lang],
                                     full=args.full))
    else:
        sys.stdout.write(render_explanation(ex, args.lang, summary=SCENARIOS[ex.scenario].summary[args.lang],
                                            full=args.full))
    return 0

"""kslab ask: the heap-layout questions researchers ask, answered from the model, at a point of a replayed
trace (--at-line N, --at-marker REGEX; default: its end) or after a scripted sequence of kmalloc/kfree
(--script, on a machine booted from the machine options).

Questions (one per run):
  --holder ADDR        which cache, slab, slab list and CPU/shared/alien array holds ADDR now
  --next CACHE         the next N (-n) allocations on --cpu: from which slab, at which address, and how many
                       come before the first one from a fresh slab
  --release ADDR       the frees (which objects) until the slab holding ADDR goes back to the page
                       allocator, and what free_limit and cache_reap make of when
  --reuse ADDR         for each free of ADDR (a trace's address) from --at-line on, which later allocation
                       took its slot (cache, call site, trace line), in the kernel's trace and in the model

In a replay, addresses are the kernel's (the trace's): --holder and --release look at the model's object that
stands for them (the last one the replay gave for that address, if it is free now).  With
CONFIG_SLAB_FREELIST_RANDOM (--freelist-random), an answer that depends on a random start kslab cannot know
says so and gives the distribution over it.

Script (--script): operations separated by ';': ``kmalloc SIZE [xN]``, ``alloc CACHE [xN]``
(kmem_cache_alloc), ``kfree #I`` (the I-th object the script allocated, from 1), ``cpu N``; ``#I`` is also
an ADDR of --holder and --release.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Iterator

from ..mm.gfp import GFP_KERNEL
from ..mm.kernel import Kernel
from ..mm.slab.alloc import kmem_cache_alloc
from ..mm.slab.free import kfree
from ..mm.slab.kmalloc import kmalloc
from ..report import ask
from ..trace.events import MARK, TraceEvent
from .common import machine_config
from .replay import add_replay_options, make_replayer, run_replay

EXAMPLES = r"""examples:
  kslab ask --freelist-random --random-seed 1 --script 'kmalloc 64 x3' --next kmalloc-64 -n 4
  kslab ask --script 'kmalloc 512 x40; kfree #1' --holder '#1'
  kslab ask trace.txt.xz --cpus 2 --freelist-random --caches caches.manifest --at-line 400000 --next dentry
  kslab ask trace.txt.xz --cpus 2 --caches caches.manifest --reuse 0xffff88800b2c1e00
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("ask", help="heap-layout questions (holder, next objects, release, reuse) from the model",
                       description=__doc__, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p, trace_help="trace file to replay up to the point asked about (none: --script)")
    g = p.add_argument_group("ask")
    q = g.add_mutually_exclusive_group(required=True)
    q.add_argument("--holder", metavar="ADDR", help="what holds ADDR now")
    q.add_argument("--next", metavar="CACHE", help="the next allocations of CACHE on --cpu")
    q.add_argument("--release", metavar="ADDR", help="frees until the slab of ADDR goes back to the page allocator")
    q.add_argument("--reuse", metavar="ADDR", help="which later allocation took each freed slot of ADDR")
    g.add_argument("--at-line", type=int, metavar="N", help="stop the replay after trace line N")
    g.add_argument("--at-marker", metavar="REGEX", help="stop the replay after the first marker matching REGEX")
    g.add_argument("--script", metavar="OPS", help="kmalloc/kfree operations run on a booted machine (see above)")
    g.add_argument("--cpu", type=int, default=0, help="the CPU of --next and of the script's start (default 0)")
    g.add_argument("-n", type=int, default=8, metavar="N", help="how many allocations --next shows (default 8)")
    p.set_defaults(func=run)


def parse_addr(text: str, option: str, objs: list[int] | None = None) -> int:
    """An address in hex (or decimal), or ``#I``: the I-th object --script allocated."""
    if text.startswith("#"):
        if not objs or not text[1:].isdigit() or not 1 <= int(text[1:]) <= len(objs):
            raise ValueError(f"{option} {text!r}: #I names the I-th object --script allocated "
                             f"({len(objs or [])} of them)")
        return objs[int(text[1:]) - 1]
    try:
        return int(text, 16) if text.lower().startswith("0x") or re.search("[a-f]", text.lower()) else int(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: not an address (hex, e.g. 0xffff888001030000)") from None


_OP = re.compile(r"^(kmalloc|alloc|kfree|cpu)\s+(\S+)(?:\s+x(\d+))?$")


def run_script(k: Kernel, script: str, cpu: int) -> list[int]:
    """Run the --script operations on ``k``; returns the objects allocated, in order."""
    objs: list[int] = []
    k.set_cpu(cpu)
    for n, op in enumerate((s.strip() for s in script.split(";")), 1):
        if not op:
            continue
        m = _OP.match(op)
        if m is None:
            raise ValueError(f"--script operation {n} {op!r}: expected kmalloc SIZE [xN], alloc CACHE [xN], "
                             "kfree #I or cpu N")
        verb, arg, times = m.group(1), m.group(2), int(m.group(3) or 1)
        if verb == "cpu":
            if not arg.isdigit() or int(arg) not in k.topo.online_cpus:
                raise ValueError(f"--script operation {n} {op!r}: no online CPU {arg}")
            k.set_cpu(int(arg))
        elif verb == "kfree":
            if not arg.startswith("#") or not arg[1:].isdigit() or not 1 <= int(arg[1:]) <= len(objs):
                raise ValueError(f"--script operation {n} {op!r}: kfree #I with 1 <= I <= {len(objs)}")
            kfree(k, objs[int(arg[1:]) - 1])
        else:
            for _ in range(times):
                if verb == "kmalloc":
                    if not arg.isdigit():
                        raise ValueError(f"--script operation {n} {op!r}: kmalloc takes a size in bytes")
                    p = kmalloc(k, int(arg), GFP_KERNEL)
                else:
                    c = k.find_cache(arg)
                    if c is None:
                        raise ValueError(f"--script operation {n} {op!r}: no cache {arg!r}")
                    p = kmem_cache_alloc(c, GFP_KERNEL)
                if not p:
                    raise ValueError(f"--script operation {n} {op!r}: the allocation failed in the model")
                objs.append(p)
    return objs


def _stop(args: argparse.Namespace,
          history: ask.SlotHistory | None) -> Callable[[Iterator[TraceEvent]], Iterable[TraceEvent]]:
    """The events up to --at-line/--at-marker (all of them seen by ``history``, when there is one)."""
    rx = re.compile(args.at_marker) if args.at_marker else None

    def wrap(events: Iterator[TraceEvent]) -> Iterable[TraceEvent]:
        stopped = False
        for ev in events:
            if history is not None:
                history.observe(ev)
            if not stopped:
                yield ev
            if args.at_line is not None and ev.lineno >= args.at_line:
                stopped = True
            if rx is not None and ev.kind == MARK and rx.search(ev.text):
                stopped = True
            if stopped and history is None:
                return
    return wrap


def run(args: argparse.Namespace) -> int:
    if args.n < 1:
        raise ValueError(f"-n {args.n}: must be at least 1")
    if args.trace is None and (args.at_line is not None or args.at_marker):
        raise ValueError("--at-line/--at-marker need a trace to replay")
    if args.trace is None and args.reuse:
        raise ValueError("--reuse needs a trace (it follows the trace's allocations after each free)")
    if args.trace is not None and args.script:
        raise ValueError("--script runs on a booted machine: give it without a trace")
    learnt: dict[str, list[int]] = {}
    kmap: dict[int, int] = {}
    history = ask.SlotHistory() if args.reuse else None
    objs: list[int] = []
    if args.trace is None:
        k = Kernel(machine_config(args))
        objs = run_script(k, args.script or "", args.cpu)
    else:
        rep = make_replayer(args)
        orig = rep.applier.record_alloc

        def record(ev: TraceEvent, mptr: int, cachep: object) -> None:
            orig(ev, mptr, cachep)  # type: ignore[arg-type]
            kmap[ev.ptr] = mptr  # the model's object for the kernel's address, also once freed
            if history is not None:
                history.record_model(ev.ptr, mptr)
        rep.applier.record_alloc = record  # type: ignore[method-assign]
        rep.fast_path = False
        run_replay(rep, args, wrap=_stop(args, history))
        k = rep.k
        if rep.shuffle is not None:
            for c, lr in rep.shuffle.learners.items():
                cyc = lr.cycle()
                if cyc is not None:
                    learnt[c.name] = cyc
    out = sys.stdout.write
    if args.holder:
        addr = parse_addr(args.holder, "--holder", objs)
        out(render_holder(ask.holder(k, kmap.get(addr, addr)), addr if addr in kmap else None))
    elif args.next:
        nc = k.find_cache(args.next)
        if nc is None:
            raise ValueError(f"--next {args.next!r}: no such cache")
        out(render_next(ask.next_objects(k, nc, args.cpu, args.n, learnt.get(nc.name)), nc))
    elif args.release:
        addr = parse_addr(args.release, "--release", objs)
        out(render_release(ask.until_release(k, kmap.get(addr, addr))))
    else:
        assert history is not None
        addr = parse_addr(args.reuse, "--reuse")
        out(render_reuse(addr, history.after_free(addr, args.at_line or 0)))
    return 0


def render_holder(h: ask.Holder, kernel_addr: int | None) -> str:
    head = f"{h.addr:#x}" + (f" (the model's object for the kernel's {kernel_addr:#x})" if kernel_addr else "")
    if h.where is ask.Where.NOT_SLAB:
        return f"{head}: {h.where}\n"
    lines = [f"{head}: cache {h.cache}, slab pfn {h.pfn} on node {h.node} ({h.slab_list} list, "
             f"active {h.active}/{h.num}), object {h.index} + {h.offset} bytes",
             f"  held by: {h.where}" + (f" of CPU {h.cpu}" if h.where is ask.Where.CPU_ARRAY else
                                        f" of node {h.cpu}" if h.where in (ask.Where.SHARED, ask.Where.ALIEN) else "")]
    return "\n".join(lines) + "\n"


def render_next(a: ask.NextAnswer, c: object) -> str:
    lines = [f"the next {len(a.objects)} allocations of {a.cache} on CPU {a.cpu} (kmem_cache_alloc, GFP_KERNEL, "
             "nothing freed in between):"]
    for o in a.objects:
        src = f"fresh slab #{o.fresh}, slot {o.slot}" if o.fresh else "an existing slab"
        where = f"{o.addr:#x} (pfn {o.pfn}, {src})"
        if o.random:
            where = (f"fresh slab #{o.fresh} (pfn {o.pfn} in the model), slot {o.slot}: offset depends on the "
                     "slab's random start")
        lines.append(f"  {o.n:4d}  {where}")
    if a.before_fresh is None:
        lines.append("no fresh slab within the allocations tried")
    else:
        lines.append(f"{a.before_fresh} allocation(s) before the first from a fresh slab")
    if a.seq is not None and any(o.random for o in a.objects):
        p_min, p_max = min(a.start_p), max(a.start_p)
        what = "learnt from the trace (up to rotation)" if a.seq_learnt else "the model's own (the real one is unknown)"
        lines.append(f"CONFIG_SLAB_FREELIST_RANDOM: a fresh slab's objects follow random_seq, {what}, from a start "
                     f"the kernel draws at the grow (get_random_int() % {a.num}): each of the {a.num} starts has "
                     f"probability {float(p_min):.6f}..{float(p_max):.6f}; once the slab's first object is seen the "
                     f"rest follow: random_seq[0..7] = {a.seq[:8]}")
        if ask.objfreelist(c):  # type: ignore[arg-type]
            lines.append("(an objfreelist cache: the entry at the start holds the freelist and goes last)")
    return "\n".join(lines) + "\n"


def render_release(r: ask.ReleaseAnswer) -> str:
    lines = [f"slab pfn {r.pfn} of {r.cache}: {len(r.frees)} free(s) until it is empty: "
             + ", ".join(f"{p:#x}" for p in r.frees[:16]) + (" ..." if len(r.frees) > 16 else "")]
    if r.cached:
        lines.append(f"  ({len(r.cached)} of its free objects sit in per-CPU/shared/alien arrays: they reach the "
                     "slab when the arrays flush or drain)")
    lines.append(f"  node: free_limit {r.free_limit}, {r.free_objects} free objects after the frees")
    if r.released_by_free:
        lines.append("  released at once: free_block found more free objects than free_limit and destroyed the "
                     "empty slab")
    elif r.reap_seconds is not None:
        lines.append(f"  released by cache_reap after {r.reap_seconds:g} s of model time ({r.reap_passes} pass(es) "
                     f"of every CPU; drain_array empties the arrays, drain_freelist frees up to {r.tofree} slab(s) "
                     "per node pass unless free_touched)")
    else:
        lines.append(f"  not released within {r.reap_passes * 2} s of cache_reap (other free slabs go first, or "
                     "the node's free objects stay within free_limit and the slab is kept)")
    return "\n".join(lines) + "\n"


def render_reuse(addr: int, pairs: list[tuple[ask.SlotUse, ask.SlotUse | None]]) -> str:
    if not pairs:
        return f"{addr:#x}: no free of it in the trace\n"
    lines = [f"{addr:#x}: {len(pairs)} free(s)"]
    for f, a in pairs:
        if a is None:
            lines.append(f"  freed at line {f.line} ({f.call_site}): not allocated again in the trace")
        else:
            model = f", the model's object {a.model_ptr:#x}" if a.model_ptr else ""
            lines.append(f"  freed at line {f.line} ({f.call_site}) -> taken at line {a.line} by {a.call_site} "
                         f"({a.cache}{model})")
    return "\n".join(lines) + "\n"

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
stands for them (the last one the replay gave for that address, if it is free now), --holder says what the
trace last did with it, and --next and --release print the kernel's addresses (through the replay's pointer
map; a slab the kernel has not shown yet has none).  The replay stops at the line asked about with the machine
as the trace has it: boot steps the trace has not reached are not run.  With
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
from ..mm.slab_def import KmemCache
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
    g.add_argument("-n", type=int, default=8, metavar="N",
                   help="how many allocations --next shows, or frees --reuse lists (default 8)")
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


def _stop(args: argparse.Namespace, history: ask.SlotHistory,
          read_all: bool) -> Callable[[Iterator[TraceEvent]], Iterable[TraceEvent]]:
    """The events up to --at-line/--at-marker, seen by ``history`` (and, with ``read_all``, the rest of the
    trace too, seen by ``history`` only).  ``history.stop_line`` becomes the last line replayed."""
    rx = re.compile(args.at_marker) if args.at_marker else None

    def wrap(events: Iterator[TraceEvent]) -> Iterable[TraceEvent]:
        stopped = False
        for ev in events:
            if stopped and not read_all:
                return
            history.observe(ev)
            if not stopped:
                history.stop_line = ev.lineno
                yield ev
            if args.at_line is not None and ev.lineno >= args.at_line:
                stopped = True
            if rx is not None and ev.kind == MARK and rx.search(ev.text):
                stopped = True
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
    history = ask.SlotHistory()
    view: ask.KernelView | None = None
    objs: list[int] = []
    if args.trace is None:
        k = Kernel(machine_config(args))
        objs = run_script(k, args.script or "", args.cpu)
    else:
        rep = make_replayer(args)
        orig = rep.applier.record_alloc
        view = ask.KernelView()
        kv = view

        def record(ev: TraceEvent, mptr: int, cachep: KmemCache | None) -> None:
            orig(ev, mptr, cachep)
            kmap[ev.ptr] = mptr  # the model's object for the kernel's address, also once freed
            history.record_model(ev.ptr, mptr, ev.lineno)
            kv.record(rep.k, ev.ptr, mptr, cachep)
        rep.applier.record_alloc = record  # type: ignore[method-assign]
        rep.fast_path = False
        # the machine as the trace leaves it at the line asked about: the boot steps the trace has not
        # reached yet are not run by the model (its own allocations would take objects the kernel holds free)
        rep.complete_boot = False
        run_replay(rep, args, wrap=_stop(args, history, bool(args.reuse)))
        k = rep.k
        if rep.shuffle is not None:
            for c, lr in rep.shuffle.learners.items():
                cyc = lr.cycle()
                if cyc is not None:
                    learnt[c.name] = cyc
    out = sys.stdout.write
    if args.holder:
        addr = parse_addr(args.holder, "--holder", objs)
        if view is None:
            out(render_holder(ask.holder(k, addr), None))
        elif addr in kmap:
            now_for = view.m2k.get(kmap[addr])
            out(render_holder(ask.holder(k, kmap[addr]), addr, history.state_at(addr, history.stop_line),
                              now_for if now_for != addr else None))
        else:
            mptr = view.model_addr(k, addr)
            if not mptr:
                out(f"{addr:#x}: the trace has not shown this kernel address, nor an object of its slab, up to "
                    f"line {history.stop_line}\n")
            else:
                out(f"{addr:#x}: never allocated in the trace up to line {history.stop_line}; its slab stands "
                    "for a slab of the model, whose object at the same offset is:\n")
                out(render_holder(ask.holder(k, mptr), None))
    elif args.next:
        nc = k.find_cache(args.next)
        if nc is None:
            raise ValueError(f"--next {args.next!r}: no such cache")
        out(render_next(ask.next_objects(k, nc, args.cpu, args.n, learnt.get(nc.name), view=view), nc))
    elif args.release:
        addr = parse_addr(args.release, "--release", objs)
        mptr = kmap.get(addr, addr) if view is None else kmap.get(addr) or view.model_addr(k, addr)
        if not mptr:
            raise ValueError(f"--release {addr:#x}: the trace has not shown this kernel address, nor an object of "
                             "its slab")
        rc = k.virt_to_cache(mptr)
        rview = view

        def name(p: int) -> str:
            if rview is None or rc is None:
                return f"{p:#x}"
            ka, _ = rview.kernel_addr(k, p, rc)
            return f"{ka:#x}" if ka else f"(the model's {p:#x})"
        out(render_release(ask.until_release(k, mptr), name))
    else:
        addr = parse_addr(args.reuse, "--reuse")
        out(render_reuse(addr, history.after_free(addr, args.at_line or 0), args.n))
    return 0


def render_holder(h: ask.Holder, kernel_addr: int | None, kernel: ask.SlotUse | None = None,
                  now_for: int | None = None) -> str:
    """The answer of --holder; in a replay, ``kernel`` is the trace's last allocation or free of the address,
    and ``now_for`` the kernel address the model's object stands for now, when it is another one."""
    head = f"{h.addr:#x}" + (f" (the model's object for the kernel's {kernel_addr:#x})" if kernel_addr else "")
    if h.where is ask.Where.NOT_SLAB:
        return f"{head}: {h.where}\n"
    lines = [f"{head}: cache {h.cache}, slab pfn {h.pfn} on node {h.node} ({h.slab_list} list, "
             f"active {h.active}/{h.num}), object {h.index} + {h.offset} bytes",
             f"  held by: {h.where}" + (f" of CPU {h.cpu}" if h.where is ask.Where.CPU_ARRAY else
                                        f" of node {h.cpu}" if h.where in (ask.Where.SHARED, ask.Where.ALIEN) else "")]
    if kernel is not None:
        lines.append(f"  in the kernel: {'allocated' if kernel.alloc else 'freed'} at line {kernel.line} "
                     f"({kernel.call_site})")
        if now_for is not None:
            lines.append(f"  the model has handed this object out again since, for the kernel's {now_for:#x} (the "
                         "model reused another object than the kernel did)")
        elif kernel.alloc != (h.where is ask.Where.CALLER):
            lines.append("  (the model disagrees with the trace here)")
    return "\n".join(lines) + "\n"


def render_next(a: ask.NextAnswer, c: object) -> str:
    lines = [f"the next {len(a.objects)} allocations of {a.cache} on CPU {a.cpu} (kmem_cache_alloc, GFP_KERNEL, "
             "nothing freed in between):"]
    for o in a.objects:
        src = f"fresh slab #{o.fresh}, slot {o.slot}" if o.fresh else "an existing slab"
        if o.ksource is None:
            where = f"{o.addr:#x} (pfn {o.pfn}, {src})"
        elif o.kaddr:
            where = f"{o.kaddr:#x} ({o.ksource}; the model's {o.addr:#x}, pfn {o.pfn}, {src})"
        else:
            where = f"kernel address not known yet ({src}; the model's {o.addr:#x}, pfn {o.pfn})"
        if o.random:
            where = (f"fresh slab #{o.fresh} (pfn {o.pfn} in the model), slot {o.slot}: offset depends on the "
                     "slab's random start")
        lines.append(f"  {o.n:4d}  {where}")
    if any(o.ksource is not None for o in a.objects):
        lines.append("(addresses are the kernel's, through the replay's pointer map; a slab grown from now on is a "
                     "page the kernel has not shown yet)")
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


def render_release(r: ask.ReleaseAnswer, name: Callable[[int], str] = lambda p: f"{p:#x}") -> str:
    """The answer of --release; ``name`` writes an object's address (in a replay: the kernel's)."""
    if r.frees:
        lines = [f"slab pfn {r.pfn} of {r.cache}: {len(r.frees)} free(s) until it is empty: "
                 + ", ".join(name(p) for p in r.frees[:16]) + (" ..." if len(r.frees) > 16 else "")]
    else:
        lines = [f"slab pfn {r.pfn} of {r.cache}: no caller holds any of its objects"]
    if r.cached:
        lines.append(f"  ({len(r.cached)} of its free objects sit in per-CPU/shared/alien arrays: they reach the "
                     "slab when the arrays flush or drain)")
    lines.append(f"  node: free_limit {r.free_limit}, {r.free_objects} free objects after the frees")
    if r.released_by_free:
        lines.append("  released at once: free_block found more free objects than free_limit and destroyed the "
                     "empty slab")
        return "\n".join(lines) + "\n"
    if r.overdue:
        lines.append(f"  ({r.overdue} of the model's {r.timers} reap timer(s) were already due: the replay ran "
                     "cache_reap where the trace did, not on the model's clock; they run first)")
    who = f" on CPU {r.reap_cpu}" if r.reap_cpu >= 0 else ""
    if r.reap_seconds is not None:
        lines.append(f"  released by cache_reap{who} {r.reap_seconds:g} s of model time after the frees, as the "
                     f"model's reap timers fire ({r.reap_passes} cache_reap run(s); drain_array empties the "
                     f"arrays, and when the node's next_reap is due drain_freelist frees up to {r.tofree} slab(s) "
                     "unless free_touched)")
    elif not r.timers:
        lines.append("  no reap timer is armed in the model: no cache_reap will give it back")
    else:
        lines.append(f"  not released within {r.reap_passes} cache_reap run(s) of the model's timers (other free "
                     "slabs go first, or the node's free objects stay within free_limit and the slab is kept)")
    return "\n".join(lines) + "\n"


def render_reuse(addr: int, pairs: list[tuple[ask.SlotUse, ask.SlotUse | None]], limit: int | None = None) -> str:
    """The answer of --reuse: each free of ``addr`` (the first ``limit`` of them) and the allocation that next
    took it."""
    if not pairs:
        return f"{addr:#x}: no free of it in the trace\n"
    shown = pairs if limit is None else pairs[:limit]
    lines = [f"{addr:#x}: {len(pairs)} free(s)" + (f", the first {len(shown)}:" if len(shown) < len(pairs) else "")]
    for f, a in shown:
        if a is None:
            lines.append(f"  freed at line {f.line} ({f.call_site}): not allocated again in the trace")
        else:
            model = f", the model's object {a.model_ptr:#x}" if a.model_ptr else ""
            lines.append(f"  freed at line {f.line} ({f.call_site}) -> taken at line {a.line} by {a.call_site} "
                         f"({a.cache}{model})")
    return "\n".join(lines) + "\n"

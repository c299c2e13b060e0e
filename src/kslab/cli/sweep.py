"""kslab sweep: replay one trace under many machine settings, in parallel, and compare the outcomes.

Every combination of the ``--vary`` values is one setting; each setting is one replay (a fresh
machine, the whole trace) run in its own process.  The runs are spread over the local cores with
``concurrent.futures.ProcessPoolExecutor`` (``--jobs``), or handed to Ray or Dask when one of them
is installed (``--executor ray|dask``: a Ray cluster given by ``RAY_ADDRESS``, or a local one; Dask's
process scheduler).  Each run is a plain function of plain data (:func:`run_setting`), so any
executor that can call a function in another process can run it.

``--vary allocator=slab,slub`` replays the trace through Linux 5.10's SLAB and Linux 6.12's SLUB: the SLUB runs
boot from ``--caches`` (the trace's 6.12 cache log), the SLAB runs then infer their caches from the trace, as
"kslab stats --allocator slub" does.  Every row has the figures both allocators have (slabs, pages, objects,
the fast-path share and the frees on another CPU than the allocation's); the SLAB path counters stay empty for
SLUB rows (the JSON has SLUB's SLUB_STATS counters instead).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .common import plain_text
from .replay import add_replay_options, use_bundled_trace, wants_bundled

EXAMPLES = r"""examples:
  kslab sweep trace.txt.xz --caches caches.log --vary cpus=1,2,4 --vary debug=0,1
  kslab sweep --vary slab-max-order=0,1,2 --json sweep.json           # the bundled real trace
  kslab sweep trace.txt --vary cpus=4 --vary nodes=1,2 --vary noaliencache=0,1 --executor dask
  kslab sweep S2/trace.txt.xz --caches S2/caches.log --cpus 2 --vary allocator=slab,slub   what-if SLAB vs SLUB
"""

# --vary names -> the option's dest (the names of the machine options, a few short aliases)
ALIASES = {"debug": "debug_slab", "hardened": "freelist_hardened", "numa": "no_numa", "max-order": "slab_max_order"}
INT_KEYS = {"cpus", "nodes", "slab_max_order"}
BOOL_KEYS = {"debug_slab", "init_on_alloc", "init_on_free", "freelist_hardened", "noaliencache", "slab_nomerge",
             "no_numa"}
STR_KEYS = {"mem", "topology", "reap", "unknown_free", "caches", "allocator"}
#: the per-path counters shown in the table (the JSON has them all)
TABLE_PATHS = ("alloc_hit", "alloc_miss", "refill_shared", "grow", "free_hit", "free_miss", "alien_free",
               "slabs_destroyed")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("sweep", help="replay one trace under many settings in parallel and compare",
                       description=plain_text(__doc__), epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_replay_options(p)
    g = p.add_argument_group("sweep")
    g.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="a machine or replay option and its values (cpus, nodes, mem, topology, debug, "
                        "init-on-alloc, init-on-free, hardened, slab-max-order, noaliencache, slab-nomerge, "
                        "numa, reap, unknown-free, caches, allocator); repeat it: every combination is one "
                        "setting")
    g.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                   help="runs at once (default: the number of local cores)")
    g.add_argument("--executor", choices=("process", "ray", "dask"), default="process",
                   help="process (default: local cores), ray or dask (when installed)")
    g.add_argument("--json", metavar="FILE", help="write every result (all per-path counters) as JSON")
    p.set_defaults(func=run)


# ---- settings -----------------------------------------------------------------------------------------
def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on", "y"):
        return True
    if low in ("0", "false", "no", "off", "n"):
        return False
    raise ValueError(f"{text!r} is not a yes/no value (use 0 or 1)")


def _allocator(text: str) -> str:
    from .slub_machine import ALLOCATOR_CHOICES  # noqa: PLC0415
    if text not in ALLOCATOR_CHOICES:
        raise ValueError(f"{text!r} is not an allocator (choose from {', '.join(ALLOCATOR_CHOICES)})")
    return text


def parse_vary(specs: list[str]) -> list[tuple[str, list[Any]]]:
    """``["cpus=1,2", "debug=0,1"]`` -> ``[("cpus", [1, 2]), ("debug_slab", [False, True])]``."""
    out: list[tuple[str, list[Any]]] = []
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().lstrip("-")
        if not sep or not name or not values.strip():
            raise ValueError(f"--vary {spec!r}: expected NAME=V1,V2,... e.g. cpus=1,2,4")
        key = ALIASES.get(name, name).replace("-", "_")
        texts = [v.strip() for v in values.split(",") if v.strip()]
        try:
            if key == "no_numa":  # --vary numa=0,1 means CONFIG_NUMA off/on
                parsed: list[Any] = [not _bool(v) for v in texts]
            elif key in INT_KEYS:
                parsed = [int(v) for v in texts]
            elif key in BOOL_KEYS:
                parsed = [_bool(v) for v in texts]
            elif key == "allocator":
                parsed = [_allocator(v) for v in texts]
            elif key in STR_KEYS:
                parsed = texts
            else:
                known = sorted({*INT_KEYS, *BOOL_KEYS, *STR_KEYS, *ALIASES} - {"no_numa"})
                raise ValueError(f"cannot vary {name!r}: choose among {', '.join(k.replace('_', '-') for k in known)}")
        except ValueError as e:
            if "cannot vary" in str(e):
                raise
            raise ValueError(f"--vary {spec!r}: {e}") from None
        if any(k == key for k, _ in out):
            raise ValueError(f"--vary {name} is given twice")
        out.append((key, parsed))
    return out


def settings(varied: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the varied values, in the order given (the last name varies fastest)."""
    keys = [k for k, _ in varied]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in varied))]


def label(setting: dict[str, Any]) -> str:
    parts = []
    for k, v in setting.items():
        name = {v2: k2 for k2, v2 in ALIASES.items()}.get(k, k).replace("_", "-")
        if k == "no_numa":
            v = not v
        parts.append(f"{name}={int(v) if isinstance(v, bool) else v}")
    return " ".join(parts) or "(base)"


# ---- one run (in a worker process) --------------------------------------------------------------------
def run_setting(base: dict[str, Any], setting: dict[str, Any]) -> dict[str, Any]:
    """Replay the trace with the base options changed by ``setting``; returns the outcome as plain data.
    Never raises: an error becomes ``{"error": ...}``."""
    from ..mm.slabinfo import get_slabinfo  # noqa: PLC0415
    from ..report.stats import WindowWatch  # noqa: PLC0415
    from .common import one_line  # noqa: PLC0415
    from .replay import make_replayer, run_replay  # noqa: PLC0415

    class SweepWatch(WindowWatch):
        """Keeps each cache's path counters where ``kslab stats`` bases its per-cache table: at the first
        event, again at the sync with a real /proc/slabinfo (boot, cache creation and the sync's placeholder
        objects are not the trace's work)."""

        base_paths: dict[int, dict[str, int]] = {}

        def on_start(self, rep: Any, ev: Any) -> None:
            super().on_start(rep, ev)
            self.take_base()

        def on_sync(self, rep: Any, ev: Any) -> None:
            super().on_sync(rep, ev)
            self.take_base()

        def take_base(self) -> None:
            self.base_paths = {id(c): c.paths.as_dict() for c in self.k.slab_caches}

    args = argparse.Namespace(**{**base, **setting})
    args.quiet = True
    t0 = time.perf_counter()
    out: dict[str, Any] = {"setting": setting, "label": label(setting)}
    if getattr(args, "allocator", "slab") == "slub":
        return run_slub_setting(args, out, t0)
    if base.get("allocator_varied"):
        args.caches = None  # --caches is the SLUB runs' 6.12 cache log: SLAB infers its caches from the trace
    try:
        from ..report.stats import TraceStats  # noqa: PLC0415
        from .common import machine_config  # noqa: PLC0415
        config = machine_config(args)
        ts = TraceStats(lambda cpu: config.cpu_to_node(cpu % config.cpus))
        rep = make_replayer(args)
        watch = SweepWatch.attach(rep)
        summary, stats, _ = run_replay(rep, args, progress=False, wrap=ts.wrap)
    except Exception as e:  # reported per setting, never raised
        out["error"] = f"{e.__class__.__name__}: {one_line(e)}"
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out
    k = rep.k
    rows = [(c, get_slabinfo(c)) for c in k.slab_caches]
    paths: dict[str, int] = {}
    for c, _ in rows:
        base = watch.base_paths.get(id(c), {})
        for name, v in c.paths.as_dict().items():
            paths[name] = paths.get(name, 0) + v - base.get(name, 0)
    out.update(
        events=summary.events, lines=stats.lines,
        caches=len(rows),
        slabs=sum(r.num_slabs for _, r in rows),
        active_slabs=sum(r.active_slabs for _, r in rows),
        pages=sum(r.num_slabs * r.pagesperslab for _, r in rows),
        active_objs=sum(r.active_objs for _, r in rows),
        num_objs=sum(r.num_objs for _, r in rows),
        paths=paths, paths_from_line=watch.window.start_line if watch.window is not None else 0,
        fast=paths.get("alloc_hit", 0) + paths.get("free_hit", 0),
        allocs_and_frees=paths.get("alloc", 0) + paths.get("free", 0), cross_cpu_frees=ts.cross_cpu_frees,
        seconds=round(time.perf_counter() - t0, 3),
    )
    out["memory_kib"] = out["pages"] * 4
    out["fast_share"] = round(100.0 * out["fast"] / out["allocs_and_frees"], 3) if out["allocs_and_frees"] else 0.0
    return out


def run_slub_setting(args: argparse.Namespace, out: dict[str, Any], t0: float) -> dict[str, Any]:
    """One SLUB run: the trace through the SLUB model booted from --caches; the figures both allocators have,
    and the SLUB_STATS counters summed over CPUs and caches (as ``stats``)."""
    from ..mm.slub.node import get_slabinfo  # noqa: PLC0415
    from ..report.whatif import slub_figures  # noqa: PLC0415
    from .common import one_line  # noqa: PLC0415
    from .replay_slub import run_slub_replay  # noqa: PLC0415
    try:
        rep = run_slub_replay(args, args.trace)
    except Exception as e:  # reported per setting, never raised
        out["error"] = f"{e.__class__.__name__}: {one_line(e)}"
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out
    fig = slub_figures(rep)
    infos = [get_slabinfo(s) for s in rep.k.slab_caches]
    snap = rep.k.snapshot()
    stats: dict[str, int] = {}
    for c in snap["caches"]:
        for name, v in c["stats"].items():
            stats[name] = stats.get(name, 0) + v
    out.update(events=rep.events, lines=rep.events, caches=fig.caches, slabs=fig.slabs,
               active_slabs=sum(i.active_slabs for i in infos), pages=fig.memory_kib // 4,
               active_objs=sum(i.active_objs for i in infos), num_objs=sum(i.num_objs for i in infos),
               paths={}, stats=stats, paths_from_line=0, fast=fig.fast, allocs_and_frees=fig.allocs_and_frees,
               cross_cpu_frees=fig.cross_cpu_frees, memory_kib=fig.memory_kib, fast_share=round(fig.fast_share, 3),
               seconds=round(time.perf_counter() - t0, 3))
    return out


# ---- executors ----------------------------------------------------------------------------------------
def _process_map(fn: Callable[..., dict[str, Any]], base: dict[str, Any], todo: list[dict[str, Any]],
                 jobs: int) -> list[dict[str, Any]]:
    if jobs <= 1 or len(todo) <= 1:
        return [fn(base, s) for s in todo]
    from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo))) as pool:
        return list(pool.map(fn, itertools.repeat(base), todo))


def _ray_map(fn: Callable[..., dict[str, Any]], base: dict[str, Any], todo: list[dict[str, Any]],
             jobs: int) -> list[dict[str, Any]]:
    ray = _require("ray", "pip install 'ray[default]'")
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 **({} if os.environ.get("RAY_ADDRESS") else {"num_cpus": jobs}))
    remote = ray.remote(fn)
    return list(ray.get([remote.remote(base, s) for s in todo]))


def _dask_map(fn: Callable[..., dict[str, Any]], base: dict[str, Any], todo: list[dict[str, Any]],
              jobs: int) -> list[dict[str, Any]]:
    dask = _require("dask", "pip install dask")
    delayed = dask.delayed
    # a dask.distributed Client, if one is active, takes the work; else Dask's local process pool
    try:
        from distributed import get_client  # type: ignore[import-not-found]  # noqa: PLC0415
        get_client()
        scheduler: dict[str, Any] = {}
    except (ImportError, ValueError):
        scheduler = {"scheduler": "processes", "num_workers": jobs}
    return list(dask.compute(*[delayed(fn)(base, s) for s in todo], **scheduler))


def _require(module: str, how: str) -> Any:
    import importlib  # noqa: PLC0415
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"--executor {module}: the '{module}' module is not installed ({how}), "
                         "or use the default --executor process") from None


EXECUTORS = {"process": _process_map, "ray": _ray_map, "dask": _dask_map}


def sweep(base: dict[str, Any], todo: list[dict[str, Any]], executor: str = "process",
          jobs: int = 0) -> list[dict[str, Any]]:
    """Run every setting; results in the order of ``todo``."""
    return EXECUTORS[executor](run_setting, base, todo, jobs or os.cpu_count() or 1)


# ---- output -------------------------------------------------------------------------------------------
def render_table(results: Iterable[dict[str, Any]]) -> str:
    head = ["setting", "events", "slabs", "pages", "active_objs", "num_objs", "fast%", "xcpu_frees", *TABLE_PATHS,
            "seconds"]
    rows = [head]
    errors = []
    for r in results:
        if "error" in r:
            rows.append([r["label"], "error", *[""] * (len(head) - 2)])
            errors.append(f"  {r['label']}: {r['error']}")
            continue
        slab_paths = [f"{r['paths'].get(p, 0):,}" if r["paths"] else "-" for p in TABLE_PATHS]
        rows.append([r["label"], f"{r['events']:,}", f"{r['slabs']:,}", f"{r['pages']:,}", f"{r['active_objs']:,}",
                     f"{r['num_objs']:,}", f"{r['fast_share']:.1f}", f"{r['cross_cpu_frees']:,}", *slab_paths,
                     f"{r['seconds']:.2f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             .rstrip() for row in rows]
    starts = sorted({r["paths_from_line"] for r in results if "error" not in r and r["paths"]})
    if any("error" not in r and not r["paths"] for r in results):
        lines.append("(SLUB rows: fast% is SLUB_STATS alloc_fastpath + free_fastpath out of all allocations and "
                     "frees; SLAB rows: the per-CPU array hits; the SLAB path columns are SLAB's only)")
    if starts:
        lines.append(f"(the path counters from trace line {', '.join(map(str, starts))}: the sync with the kernel's "
                     "/proc/slabinfo, or the first event; as kslab stats's per-cache table counts them)")
    if errors:
        lines += ["errors:", *errors]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    varied = parse_vary(args.vary)
    if wants_bundled(args.trace):
        use_bundled_trace(args)
    elif args.trace == "-":
        raise ValueError("kslab sweep reads its trace once per setting: give a file, not standard input")
    elif not Path(args.trace).exists():
        raise FileNotFoundError(2, "No such file or directory", args.trace)
    if args.jobs < 0:
        raise ValueError(f"--jobs {args.jobs}: give a positive number (0: one per core)")
    if args.out or args.ptr_map or args.snapshot_on:
        raise ValueError("--out, --ptr-map and --snapshot-on would be written by every setting at once: "
                         "use kslab replay for them")
    todo = settings(varied)
    base = {k: v for k, v in vars(args).items() if k not in ("func", "vary", "jobs", "executor", "json")}
    base["allocator_varied"] = any(k == "allocator" for k, _ in varied)
    if args.cache_parsed:  # parse once here, so that every run reads the cache
        from ..trace.cache import cached_events  # noqa: PLC0415
        for _ in cached_events(args.trace, skip_bad=args.skip_bad):
            pass
    t0 = time.perf_counter()
    results = sweep(base, todo, args.executor, args.jobs)
    wall = time.perf_counter() - t0
    sys.stdout.write(render_table(results))
    sys.stdout.write(f"{len(todo)} setting(s) in {wall:.2f} s with --executor {args.executor}\n")
    if args.json:
        doc = {"trace": str(args.trace), "varied": {k: v for k, v in varied}, "executor": args.executor,
               "wall_seconds": round(wall, 3), "results": results}
        Path(args.json).write_text(json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return 1 if any("error" in r for r in results) else 0

#!/usr/bin/env python3
"""kslab benchmarks: replay speed, parsing speed, memory.  Run on demand, not part of the tests.

    python benchmarks/run.py                 # everything, full sizes (10M synthetic events, ~10 min)
    python benchmarks/run.py --quick         # small sizes (~1-2 min)
    python benchmarks/run.py --only model_synth,parse_synth
    python benchmarks/run.py --events 100000000 --only memory_stream   # the long memory run

Every benchmark runs in its own Python process (so memory figures are not mixed up) and measures,
in the same run, a *floor*: a loop doing one dict lookup and one list operation per event on the
same event stream.  The ratio bench/floor says how many floor loops one event of the model costs.

Results: a JSON file (``--json``, default benchmarks/results.json) and a short table on stdout.
Generated inputs (the synthetic ftrace text, the decompressed bundled trace) are kept in
``--data-dir`` (default benchmarks/.data) and reused.
"""

# ruff: noqa: PLC0415  (imports inside the benchmarks: each child process loads what it measures, after --src)

from __future__ import annotations

import argparse
import gc
import json
import lzma
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# --src DIR benchmarks another copy of the sources (e.g. a `git archive` of an older commit); the synthetic
# trace generator always comes from this tree.
SRC = Path(sys.argv[sys.argv.index("--src") + 1]).resolve() if "--src" in sys.argv else ROOT / "src"
sys.path.insert(0, str(SRC))

DATA = ROOT / "src" / "kslab" / "data"
BUNDLED = DATA / "oracle-R1-excerpt.txt.xz"
BUNDLED_CACHES = DATA / "oracle-R1-caches.log.xz"
BUNDLED_START = DATA / "oracle-R1-slabinfo.0-start"

CHUNK = 1_000_000  # synthetic events held at once by the model-alone benchmark
SYNTH_CPUS, SYNTH_NODES = 4, 2


# ---- helpers ---------------------------------------------------------------------------------------
def rss() -> int:
    """Resident set size of this process, bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def floor_loop(events: list) -> float:  # type: ignore[type-arg]
    """Seconds for the floor: one dict lookup and one list operation per event."""
    d: dict[int, int] = {}
    out: list[object] = []
    get = d.get
    append = out.append
    t0 = time.perf_counter()
    for ev in events:
        get(ev.ptr)
        append(ev)
    dt = time.perf_counter() - t0
    out.clear()
    return dt


def floor_lines(path: Path) -> tuple[int, float]:
    """(lines, seconds) of the floor over a text file's lines (read in big chunks)."""
    d: dict[str, int] = {}
    out: list[str] = []
    n = 0
    t0 = time.perf_counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            for line in chunk.split("\n"):
                d.get(line)
                out.append(line)
            n += len(out)
            out.clear()
    return n, time.perf_counter() - t0


def bundled_text(data_dir: Path) -> Path:
    p = data_dir / "oracle-R1-excerpt.txt"
    if not p.exists() or p.stat().st_mtime < BUNDLED.stat().st_mtime:
        tmp = p.with_suffix(".tmp")
        with lzma.open(BUNDLED, "rb") as src, open(tmp, "wb") as dst:
            dst.write(src.read())
        tmp.replace(p)
    return p


def _synth():  # type: ignore[no-untyped-def]
    """kslab.trace.synth of this tree (an older --src may not have it): loaded from its file."""
    try:
        from kslab.trace import synth
        return synth
    except ImportError:
        import importlib.util
        spec = importlib.util.spec_from_file_location("kslab.trace.synth", ROOT / "src/kslab/trace/synth.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["kslab.trace.synth"] = mod
        spec.loader.exec_module(mod)
        return mod


def synth_text(data_dir: Path, events: int) -> Path:
    synth = _synth()
    write_trace = synth.write_trace
    p = data_dir / f"synth-v{synth.SYNTH_VERSION}-{events}-s1-c{SYNTH_CPUS}n{SYNTH_NODES}.txt"
    if not p.exists():
        tmp = p.with_suffix(".tmp")
        print(f"  (writing {p.name} once: {events:,} synthetic events)", file=sys.stderr, flush=True)
        with open(tmp, "w", encoding="utf-8") as f:
            write_trace(f, events, seed=1, cpus=SYNTH_CPUS, nodes=SYNTH_NODES)
        tmp.replace(p)
    return p


def bundled_replayer():  # type: ignore[no-untyped-def]
    """The Replayer of ``kslab replay`` with no argument: the bundled excerpt's own machine."""
    from kslab.manifest import read_manifest
    from kslab.mm.config import MachineConfig
    from kslab.trace.replay import Replayer, ReplayOptions
    opts = ReplayOptions(start_slabinfo=str(BUNDLED_START), sync_on="snapshot 0-start begin")
    return Replayer(MachineConfig.build(cpus=1, mem="2G"), read_manifest(BUNDLED_CACHES), opts, str(BUNDLED_CACHES))


def synth_replayer(mem: str = "2G"):  # type: ignore[no-untyped-def]
    from kslab.mm.config import MachineConfig
    from kslab.trace.replay import Replayer, ReplayOptions
    return Replayer(MachineConfig.build(cpus=SYNTH_CPUS, nodes=SYNTH_NODES, mem=mem), None, ReplayOptions())


def result(name: str, events: int, seconds: float, floor_seconds: float | None, **extra: object) -> dict:  # type: ignore[type-arg]
    eps = events / seconds if seconds else 0.0
    out: dict[str, object] = {"name": name, "events": events, "seconds": round(seconds, 3),
                              "events_per_s": round(eps)}
    if floor_seconds:
        feps = events / floor_seconds
        out["floor_events_per_s"] = round(feps)
        out["ratio_to_floor"] = round(feps / eps, 1) if eps else None
    out.update(extra)
    return out


# ---- the benchmarks (each runs in a child process) ---------------------------------------------------
def bench_model_bundled(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Model alone on the bundled real excerpt: pre-parsed events in a list."""
    from kslab.trace.ftrace import iter_events
    events = list(iter_events(BUNDLED))
    best = None
    for _ in range(a.repeat):
        rep = bundled_replayer()
        gc.collect()
        t0 = time.perf_counter()
        rep.run(events)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    fl = min(floor_loop(events) for _ in range(a.repeat))
    return result("model_bundled", len(events), best or 0.0, fl, trace=BUNDLED.name)


def bench_model_synth(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Model alone on the synthetic trace: events generated in chunks of 1M (held), only the replay of
    each chunk timed; the floor loop runs over the same chunks."""
    SynthTrace = _synth().SynthTrace
    rep = synth_replayer()
    it = iter(SynthTrace(a.events, seed=1, cpus=SYNTH_CPUS, nodes=SYNTH_NODES))
    model_s = floor_s = 0.0
    n = 0
    first = True
    while True:
        chunk = []
        for ev in it:
            chunk.append(ev)
            if len(chunk) >= CHUNK:
                break
        if not chunk:
            break
        floor_s += floor_loop(chunk)
        gc.collect()
        feed = rep.feed
        t0 = time.perf_counter()
        if first:  # what Replayer.run does before its loop: the clock, the boot
            rep.clock = "seconds"
            rep.start_boot(chunk[:4096])
            first = False
        for ev in chunk:
            feed(ev)
        model_s += time.perf_counter() - t0
        n += len(chunk)
        del chunk
    t0 = time.perf_counter()
    rep.summary.events = n
    rep.finish()
    model_s += time.perf_counter() - t0
    return result("model_synth", n, model_s, floor_s, cpus=SYNTH_CPUS, nodes=SYNTH_NODES)


def _e2e(name: str, path: Path, rep, cache: bool = False) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from kslab.trace.ftrace import ParseStats, iter_events
    stats = ParseStats()
    gc.collect()
    t0 = time.perf_counter()
    if cache:
        from kslab.trace.cache import cached_events
        events = cached_events(path, stats=stats)
    else:
        events = iter_events(path, stats=stats)
    summary = rep.run(events)
    text = rep.k.slabinfo()
    dt = time.perf_counter() - t0
    return result(name, summary.events, dt, None, lines=stats.lines, lines_per_s=round(stats.lines / dt),
                  slabinfo_bytes=len(text), trace=path.name)


def bench_e2e_bundled(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Text file (decompressed bundled excerpt) to final slabinfo."""
    from kslab.trace.ftrace import iter_events
    path = bundled_text(Path(a.data_dir))
    best: dict | None = None  # type: ignore[type-arg]
    for _ in range(a.repeat):
        r = _e2e("e2e_bundled", path, bundled_replayer())
        if best is None or r["seconds"] < best["seconds"]:
            best = r
    assert best is not None
    events = list(iter_events(path))
    fl = min(floor_loop(events) for _ in range(a.repeat))
    best.update(floor_events_per_s=round(len(events) / fl),
                ratio_to_floor=round(len(events) / fl / best["events_per_s"], 1))
    return best


def bench_e2e_synth(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Synthetic ftrace text file to final slabinfo, streamed."""
    path = synth_text(Path(a.data_dir), a.events)
    r = _e2e("e2e_synth", path, synth_replayer())
    r["floor_events_per_s"] = _synth_floor_eps(a.events)
    r["ratio_to_floor"] = round(r["floor_events_per_s"] / r["events_per_s"], 1)
    return r


def _synth_floor_eps(events: int) -> int:
    """Floor events/s over (the first 1M events of) the synthetic stream."""
    SynthTrace = _synth().SynthTrace
    chunk = list(SynthTrace(min(events, CHUNK), seed=1, cpus=SYNTH_CPUS, nodes=SYNTH_NODES))
    return round(len(chunk) / min(floor_loop(chunk) for _ in range(3)))


def bench_cached_bundled(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Second replay of the bundled text, from its parse cache."""
    return _cached("cached_bundled", bundled_text(Path(a.data_dir)), bundled_replayer, a)


def bench_cached_synth(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Second replay of the synthetic text, from its parse cache."""
    return _cached("cached_synth", synth_text(Path(a.data_dir), a.events), synth_replayer, a)


def _cached(name: str, path: Path, make, a: argparse.Namespace) -> dict:  # type: ignore[no-untyped-def,type-arg]
    try:
        from kslab.trace.cache import cached_events, drop_cache
    except ImportError:
        return {"name": name, "skipped": "no parse cache in this version"}
    drop_cache(path)
    t0 = time.perf_counter()
    for _ in cached_events(path):  # first pass: parses and writes the cache
        pass
    first = time.perf_counter() - t0
    r = _e2e(name, path, make(), cache=True)
    r["first_pass_parse_and_write_s"] = round(first, 3)
    return r


def bench_parse_bundled(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    return _parse("parse_bundled", bundled_text(Path(a.data_dir)), a.repeat)


def bench_parse_synth(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    return _parse("parse_synth", synth_text(Path(a.data_dir), a.events), 1)


def _parse(name: str, path: Path, repeat: int) -> dict:  # type: ignore[type-arg]
    from kslab.trace.ftrace import ParseStats, iter_events
    best = None
    stats = ParseStats()
    for _ in range(repeat):
        stats = ParseStats()
        t0 = time.perf_counter()
        for _ev in iter_events(path, stats=stats):
            pass
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    assert best is not None
    lines, fdt = floor_lines(path)
    fdt = min([fdt] + [floor_lines(path)[1] for _ in range(repeat - 1)])
    lps = stats.lines / best
    return {"name": name, "lines": stats.lines, "events": stats.events, "seconds": round(best, 3),
            "lines_per_s": round(lps), "events_per_s": round(stats.events / best),
            "floor_lines_per_s": round(lines / fdt), "ratio_to_floor": round(lines / fdt / lps, 1),
            "mb_per_s": round(path.stat().st_size / best / 1e6, 1), "trace": path.name}


def floor_split_lines(path: Path) -> tuple[int, float]:
    """(lines, seconds) of the issue-14 floor: read the file line by line, split each line, one dict operation."""
    d: dict[str, int] = {}
    n = 0
    t0 = time.perf_counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            words = line.split()
            d[words[0] if words else ""] = n
            n += 1
    return n, time.perf_counter() - t0


def bench_parse_engines_bundled(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    return _parse_engines("parse_engines_bundled", bundled_text(Path(a.data_dir)), a.repeat)


def bench_parse_engines_synth(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    return _parse_engines("parse_engines_synth", synth_text(Path(a.data_dir), a.events), 1)


def bench_parse_engines_oracle(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    src = Path(a.oracle) / "prod" / "R2" / "trace.txt.xz"
    if not src.exists():
        return {"name": "parse_engines_oracle", "skipped": f"no {src} (--oracle DIR)"}
    path = Path(a.data_dir) / "oracle-prod-R2.txt"
    if not path.exists():
        import lzma
        path.parent.mkdir(parents=True, exist_ok=True)
        with lzma.open(src, "rb") as f, open(path, "wb") as out:
            while block := f.read(1 << 20):
                out.write(block)
    return _parse_engines("parse_engines_oracle", path, a.repeat)


def _parse_engines(name: str, path: Path, repeat: int) -> dict:  # type: ignore[type-arg]
    """Lines/s of iter_events (TraceEvents), the columnar parser's pure and compiled engines (chunks of columns)
    and the floor of floor_split_lines, one after the other in this process (best of ``repeat``)."""
    from kslab.trace import columns
    from kslab.trace.ftrace import iter_events

    def old() -> int:
        return sum(1 for _ in iter_events(path))

    def cols(engine: str) -> Callable[[], int]:
        return lambda: sum(len(c) for c in columns.iter_chunks(path, engine=engine))

    def floor() -> int:
        return floor_split_lines(path)[0]

    runs: dict[str, Callable[[], int]] = {"floor": floor, "ftrace": old, "pure": cols("pure")}
    if columns.compiled_available():
        runs["compiled"] = cols("compiled")
    best: dict[str, float] = {}
    for _ in range(repeat):
        for key, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            best[key] = min(best.get(key, dt), dt)
    lines = floor()
    lps = {k: round(lines / v) for k, v in best.items()}
    out: dict[str, object] = {"name": name, "lines": lines, "trace": path.name, "compiled_built": "compiled" in runs}
    for k, v in lps.items():
        out[f"{k}_lines_per_s"] = v
        if k != "floor":
            out[f"{k}_x_floor"] = round(lps["floor"] / v, 2)
    out["lines_per_s"] = lps.get("compiled", lps["pure"])
    return out


def bench_memory_object(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Bytes per live object (model state + pointer map): N allocations of the synthetic mix that are never
    freed, RSS before and after (4 CPUs, 2 nodes, 64 GiB so memory never runs out)."""
    SynthTrace = _synth().SynthTrace
    n = a.live
    rep = synth_replayer("64G")
    # generated before the first measure: the generator's own records are not the model's
    events = list(SynthTrace(n, seed=2, cpus=SYNTH_CPUS, nodes=SYNTH_NODES, lifetimes=((1, 1e15),)))
    feed = rep.feed
    rep.clock = "seconds"
    rep.start_boot([])
    gc.collect()
    before = rss()
    for ev in events:
        feed(ev)
    gc.collect()
    after = rss()
    live = len(rep.kmap)
    return {"name": "memory_object", "live_objects": live, "rss_delta_bytes": after - before,
            "bytes_per_live_object": round((after - before) / live, 1) if live else None,
            "model_pages": len(rep.k.mem_map), "memory_frames": len(rep.k.memory)}


def bench_memory_64g(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """Resident memory of a 64 GiB machine (4 CPUs, 2 nodes) after booting and replaying the bundled excerpt
    (the events' CPUs fold onto the machine's), over the same process before the machine was made."""
    import kslab.mm.kernel  # noqa: F401 - the imports are not the machine's cost
    from kslab.mm.config import MachineConfig
    from kslab.trace.ftrace import iter_events
    from kslab.trace.replay import Replayer, ReplayOptions
    gc.collect()
    before = rss()
    rep = Replayer(MachineConfig.build(cpus=4, nodes=2, mem="64G"), None, ReplayOptions())
    booted = rss()
    rep.run(iter_events(BUNDLED))
    gc.collect()
    after = rss()
    return {"name": "memory_64g", "mem": "64G", "overhead_bytes_booted": booted - before,
            "overhead_bytes": after - before, "overhead_mb": round((after - before) / 1e6, 1),
            "model_pages": len(rep.k.mem_map), "live_objects": len(rep.kmap)}


def bench_memory_stream(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    """RSS along a streamed replay of ``--events`` synthetic events (nothing held): sampled every 1/20th;
    flat means the RSS grows by little once the number of live objects has reached its plateau."""
    SynthTrace = _synth().SynthTrace
    rep = synth_replayer()
    st = SynthTrace(a.events, seed=3, cpus=SYNTH_CPUS, nodes=SYNTH_NODES)
    feed = rep.feed
    rep.clock = "seconds"
    rep.start_boot([])
    step = max(1, a.events // 20)
    samples = []
    n = 0
    t0 = time.perf_counter()
    for ev in st:
        feed(ev)
        n += 1
        if not n % step:
            samples.append({"events": n, "rss_mb": round(rss() / 1e6, 1), "live_objects": len(rep.kmap),
                            "model_pages": len(rep.k.mem_map)})
    dt = time.perf_counter() - t0
    rep.finish()
    half = samples[len(samples) // 2:]  # the second half: live objects on their plateau
    rss_half = [s["rss_mb"] for s in half]
    live_half = [s["live_objects"] for s in half]
    growth = (rss_half[-1] - rss_half[0]) / rss_half[0] if rss_half else 0.0
    return {"name": "memory_stream", "events": n, "seconds": round(dt, 1),
            "events_per_s_incl_generation": round(n / dt),
            "rss_mb_second_half": [min(rss_half), max(rss_half)] if rss_half else None,
            "live_objects_second_half": [min(live_half), max(live_half)] if live_half else None,
            "rss_growth_second_half": round(growth, 4), "flat": abs(growth) < 0.05, "samples": samples}


BENCHES = {
    "model_bundled": bench_model_bundled, "model_synth": bench_model_synth,
    "e2e_bundled": bench_e2e_bundled, "e2e_synth": bench_e2e_synth,
    "cached_bundled": bench_cached_bundled, "cached_synth": bench_cached_synth,
    "parse_bundled": bench_parse_bundled, "parse_synth": bench_parse_synth,
    "parse_engines_bundled": bench_parse_engines_bundled, "parse_engines_synth": bench_parse_engines_synth,
    "parse_engines_oracle": bench_parse_engines_oracle,
    "memory_object": bench_memory_object, "memory_64g": bench_memory_64g, "memory_stream": bench_memory_stream,
}

from oracle_bench import BENCHES as ORACLE_BENCHES  # noqa: E402 - issue 14's rows on the real traces

BENCHES.update(ORACLE_BENCHES)


# ---- driver ------------------------------------------------------------------------------------------
def table(results: list[dict]) -> str:  # type: ignore[type-arg]
    rows = [("benchmark", "events", "events/s", "floor ev/s", "x floor", "notes")]
    for r in results:
        if "error" in r or "skipped" in r:
            rows.append((r["name"], "", "", "", "", r.get("error") or r.get("skipped", "")))
            continue
        name = r["name"]
        notes = ""
        if name.startswith("parse_engines"):
            notes = ", ".join(f"{k} {r[k + '_lines_per_s']:,} lines/s" + (f" ({r[k + '_x_floor']}x floor)"
                                                                          if k != "floor" else "")
                              for k in ("floor", "ftrace", "pure", "compiled") if k + "_lines_per_s" in r)
        elif name.startswith("parse"):
            notes = f"{r['lines_per_s']:,} lines/s, {r['mb_per_s']} MB/s"
        elif name.startswith("e2e_oracle"):
            notes = "; ".join(f"{run}: compiled {row['compiled']['events_per_s']:,} ev/s "
                              f"({row['compiled']['x_floor']}x), pure {row['pure']['events_per_s']:,} "
                              f"({row['pure']['x_floor']}x)" for run, row in r["runs"].items())
        elif name == "model_oracle":
            notes = ", ".join(f"{k} {v['events_per_s']:,} ev/s ({v['x_floor']}x floor)" for k, v in r.items()
                              if k in ("events_objects", "columns"))
        elif name.startswith(("e2e", "cached")):
            notes = f"{r['lines_per_s']:,} lines/s"
        elif name == "memory_object":
            notes = f"{r['bytes_per_live_object']} B/live object ({r['live_objects']:,} live)"
        elif name == "memory_64g":
            notes = f"{r['overhead_mb']} MB over the interpreter"
        elif name == "memory_stream":
            notes = (f"RSS {r['rss_mb_second_half']} MB, live {r['live_objects_second_half']} "
                     f"in the 2nd half; flat={r['flat']}")
        ev = r.get("events", "")
        eps = r.get("events_per_s", r.get("events_per_s_incl_generation", ""))
        rows.append((name, f"{ev:,}" if isinstance(ev, int) else str(ev), f"{eps:,}" if isinstance(eps, int) else "",
                     f"{r['floor_events_per_s']:,}" if r.get("floor_events_per_s") else "",
                     str(r.get("ratio_to_floor", "")), notes))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    out = []
    for row in rows:
        cells = zip(row[:5], widths, strict=True)
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)) + "  " + row[5])
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: 1M synthetic events, 200k live objects")
    ap.add_argument("--events", type=int, help="synthetic events (default 10M, --quick 1M)")
    ap.add_argument("--stream-events", type=int,
                    help="events of memory_stream (default 10M, --quick 2M; the long run is 100000000)")
    ap.add_argument("--live", type=int, help="live objects of memory_object (default 1M, --quick 200k)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats of the small benchmarks (best kept)")
    ap.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(BENCHES))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results.json"), help="where to write the results")
    ap.add_argument("--data-dir", default=str(ROOT / "benchmarks" / ".data"), help="generated inputs")
    ap.add_argument("--src", help="benchmark the kslab package under this folder instead of src/")
    ap.add_argument("--oracle", default=str(ROOT.parent.parent / "shared" / "data" / "oracle-5.10"),
                    help="the oracle traces (parse_engines_oracle reads prod/R2)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one benchmark, print its JSON
    a = ap.parse_args()
    a.events = a.events or (1_000_000 if a.quick else 10_000_000)
    a.live = a.live or (200_000 if a.quick else 1_000_000)
    Path(a.data_dir).mkdir(parents=True, exist_ok=True)
    if a.one:
        if a.one == "memory_stream":
            a.events = a.stream_events or (2_000_000 if a.quick else 10_000_000)
        print(json.dumps(BENCHES[a.one](a)))
        return 0
    names = a.only.split(",") if a.only else list(BENCHES)
    for n in names:
        if n not in BENCHES:
            ap.error(f"unknown benchmark {n!r}: {', '.join(BENCHES)}")
    results = []
    for n in names:
        cmd = [sys.executable, __file__, "--one", n, "--events", str(a.events), "--live", str(a.live),
               "--repeat", str(a.repeat), "--data-dir", a.data_dir, "--oracle", a.oracle]
        if a.stream_events:
            cmd += ["--stream-events", str(a.stream_events)]
        if a.src:
            cmd += ["--src", a.src]
        if a.quick:
            cmd.append("--quick")
        print(f"running {n} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            results.append({"name": n, "error": (p.stderr.strip().splitlines() or ["failed"])[-1]})
            sys.stderr.write(p.stderr)
        else:
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["wall_s"] = round(time.perf_counter() - t0, 1)
            results.append(r)
    doc = {
        "machine": {"python": platform.python_version(), "implementation": platform.python_implementation(),
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": a.quick, "synthetic_events": a.events,
        "results": results,
    }
    Path(a.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(table(results))
    print(f"\n(results in {a.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

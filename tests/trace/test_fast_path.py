"""The replay's fast paths (trace/replay/fastpath.py: FastPath.alloc, FastPath.free) change nothing: the
same traces replayed with and without them leave the same machine, the same summary, the same pointer maps
and the same ptr-map file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from kslab.manifest import read_manifest
from kslab.mm.config import MachineConfig
from kslab.trace.events import FUNC, KMALLOC, TraceEvent
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Replayer, ReplayOptions
from kslab.trace.synth import SynthTrace

DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"


def observable(rep: Replayer, ptr_map: Path) -> dict[str, Any]:
    k = rep.k
    return {
        "summary": dataclasses.asdict(rep.summary),
        "applied order": list(rep.summary.applied),
        "machine": k.snapshot(),  # slabinfo fields, STATS, per-path counters, lists, arrays' fill
        "slabinfo": k.slabinfo(),
        "arrays": {c.name: [list(ac.entry) for ac in c.cpu_cache] for c in k.slab_caches},
        "kmap": dict(rep.kmap),
        "kcache": {p: c.name for p, c in rep.kcache.items()},
        "kpage_cache": {p: c.name for p, c in rep.kpage_cache.items()},
        "internal_rev": dict(rep.internal_rev),
        "placeholders": {c.name: list(pool) for c, pool in rep.placeholder.items() if pool},
        "cpu": (k.cpu, k.numa_node, k.jiffies, sorted(k.policies)),
        "evno": rep.evno,
        "misuse": [m.kind for m in k.misuse],
        "ptr-map": ptr_map.read_text(),
    }


def replay_both(tmp_path: Path, make: Any, events: Iterable[TraceEvent]) -> tuple[dict[str, Any], dict[str, Any]]:
    evs = list(events)
    out = []
    for fast in (False, True):
        ptr_map = tmp_path / f"ptr-{fast}.csv"
        rep: Replayer = make(str(ptr_map))
        rep.fast_path = fast
        rep.run(evs)
        out.append(observable(rep, ptr_map))
    return out[0], out[1]


def bundled(ptr_map: str, **config: Any) -> Replayer:
    opts = ReplayOptions(start_slabinfo=str(DATA / "oracle-R1-slabinfo.0-start"), sync_on="snapshot 0-start begin",
                         ptr_map=ptr_map)
    config.setdefault("cpus", 1)
    return Replayer(MachineConfig.build(**config), read_manifest(DATA / "oracle-R1-caches.log.xz"), opts)


@pytest.mark.parametrize("config", [{}, {"CONFIG_DEBUG_SLAB": True}, {"CONFIG_SLAB_FREELIST_HARDENED": True},
                                    {"cpus": 4, "nodes": 2}],
                         ids=["prod", "debug", "hardened", "2-nodes-boot-policies"])
def test_bundled_trace_same_with_and_without_fast_paths(tmp_path: Path, config: dict[str, Any]) -> None:
    slow, fast = replay_both(tmp_path, lambda p: bundled(p, **config),
                             iter_events(str(DATA / "oracle-R1-excerpt.txt.xz")))
    assert slow["summary"]["applied"]
    for key in slow:
        assert slow[key] == fast[key], key


@pytest.mark.parametrize("config", [
    {"cpus": 4, "nodes": 2},
    {"cpus": 3, "nodes": 1, "init_on_alloc": True, "init_on_free": True},
    {"cpus": 4, "nodes": 2, "CONFIG_SLAB_FREELIST_HARDENED": True},
], ids=["4cpus-2nodes", "init-on", "hardened"])
def test_synthetic_trace_same_with_and_without_fast_paths(tmp_path: Path, config: dict[str, Any]) -> None:
    def make(p: str) -> Replayer:
        return Replayer(MachineConfig.build(**config), None, ReplayOptions(ptr_map=p))
    # 4 CPUs in the trace: on 3 CPUs, CPU 3 is remapped (the general code's case)
    slow, fast = replay_both(tmp_path, make, SynthTrace(40_000, seed=3, cpus=4, nodes=2, event_gap_us=60.0))
    for key in slow:
        assert slow[key] == fast[key], key


def test_boot_policies_same_with_and_without_fast_paths(tmp_path: Path) -> None:
    """A trace that shows the boot on two nodes: pids 0 and 1 allocate with the boot's interleave policy
    (the general code), other tasks with the local policy (the fast path), until pid 1 execs /init."""
    events = list(SynthTrace(30_000, seed=3, cpus=4, nodes=2, event_gap_us=60.0))
    boot = [TraceEvent(FUNC, 0, 0, 0.5, "swapper/0", 0, text="enable_cpucache", parent="kmem_cache_init_late")]
    out = []
    for i, ev in enumerate(events):
        if i < 20_000 and i % 3 == 0 and ev.pid > 1:
            ev = dataclasses.replace(ev, pid=1 if i > 8_000 else 0)
        if i == 20_000:
            ev = dataclasses.replace(ev, kind=KMALLOC, pid=1, call_site="alloc_bprm+0x2a/0x1b0", ptr=ev.ptr or 1 << 63,
                                     bytes_req=256, bytes_alloc=256, name=None)
        out.append(ev)

    def make(p: str) -> Replayer:
        return Replayer(MachineConfig.build(cpus=4, nodes=2), None, ReplayOptions(ptr_map=p))
    slow, fast = replay_both(tmp_path, make, boot + out)
    assert sum(1 for line in slow["ptr-map"].splitlines() if line.endswith("kmalloc,kmalloc-256")) > 0
    for key in slow:
        assert slow[key] == fast[key], key

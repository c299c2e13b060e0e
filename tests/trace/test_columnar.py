"""The lean common path (trace/replay/columnar.py: run_chunks over the columnar parser's chunks) changes
nothing: the same traces replayed by ``Replayer.run`` from ``iter_events`` and by ``run_chunks`` from
``iter_chunks`` (pure and compiled engines) leave the same machine, summary, pointer maps and ptr-map file,
with the fast paths on and off, with observers and samples (the per-event fallback)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest

from kslab.manifest import read_manifest
from kslab.mm.config import MachineConfig
from kslab.trace import columns
from kslab.trace.events import MARK, TraceEvent
from kslab.trace.ftrace import ParseStats, iter_events
from kslab.trace.replay import Replayer, ReplayOptions
from kslab.trace.replay.columnar import run_chunks
from kslab.trace.synth import write_trace

DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"
BUNDLED = DATA / "oracle-R1-excerpt.txt.xz"

ENGINES = ["pure", *(["compiled"] if columns.compiled_available() else [])]


def observable(rep: Replayer, ptr_map: Path) -> dict[str, Any]:
    """What a replay leaves (as in test_fast_path.py)."""
    k = rep.k
    return {
        "summary": dataclasses.asdict(rep.summary),
        "applied order": list(rep.summary.applied),
        "machine": k.snapshot(),
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


def bundled(ptr_map: str, **config: Any) -> Replayer:
    opts = ReplayOptions(start_slabinfo=str(DATA / "oracle-R1-slabinfo.0-start"), sync_on="snapshot 0-start begin",
                         snapshot_on=r"snapshot (\S+) begin", ptr_map=ptr_map)
    config.setdefault("cpus", 1)
    return Replayer(MachineConfig.build(**config), read_manifest(DATA / "oracle-R1-caches.log.xz"), opts)


def both(tmp_path: Path, make: Any, source: Any, engine: str, fast: bool = True,
         prepare: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Replayer.run from iter_events, run_chunks from iter_chunks): what each leaves."""
    out = []
    for lean in (False, True):
        ptr_map = tmp_path / f"ptr-{lean}.csv"
        rep: Replayer = make(str(ptr_map))
        rep.fast_path = fast
        if prepare is not None:
            prepare(rep)
        marks: list[int] = []
        stats = ParseStats()
        if lean:
            chunks = columns.iter_chunks(source(), stats=stats, engine=engine)
            run_chunks(rep, chunks, on_mark=lambda ev, m=marks: m.append(ev.lineno))
        else:
            rep.run(ev for ev in iter_events(source(), stats=stats) if ev.kind != MARK or not marks.append(ev.lineno))
        d = observable(rep, ptr_map)
        d["marks"] = marks
        d["stats"] = stats
        out.append(d)
    return out[0], out[1]


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["summary"]["applied"]
    for key, value in a.items():
        assert value == b[key], key


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("config", [{}, {"CONFIG_DEBUG_SLAB": True}, {"CONFIG_SLAB_FREELIST_HARDENED": True},
                                    {"cpus": 4, "nodes": 2}, {"CONFIG_SLAB_FREELIST_RANDOM": True}],
                         ids=["prod", "debug", "hardened", "2-nodes", "freelist-random"])
def test_bundled_trace_same_as_replayer_run(tmp_path: Path, config: dict[str, Any], engine: str) -> None:
    a, b = both(tmp_path, lambda p: bundled(p, **config), lambda: BUNDLED, engine)
    assert a["marks"] and a["summary"]["snapshots"]
    assert_same(a, b)


@pytest.mark.parametrize("engine", ENGINES)
def test_bundled_trace_fast_path_off(tmp_path: Path, engine: str) -> None:
    assert_same(*both(tmp_path, bundled, lambda: BUNDLED, engine, fast=False))


class Counting:
    """An observer (the per-event fallback of run_chunks)."""

    def __init__(self) -> None:
        self.events: list[int] = []

    def on_event(self, rep: Replayer, ev: TraceEvent) -> None:
        self.events.append(ev.lineno)


@pytest.mark.parametrize("engine", ENGINES)
def test_with_an_observer_and_samples(tmp_path: Path, engine: str) -> None:
    seen: list[dict[str, Any]] = []

    def prepare(rep: Replayer) -> None:
        obs = Counting()
        rep.subscribe(obs)
        samples: list[int] = []
        rep.on_sample = lambda r, ev: samples.append(ev.lineno)
        rep.sample_every = 997
        seen.append({"obs": obs.events, "samples": samples})

    a, b = both(tmp_path, bundled, lambda: BUNDLED, engine, prepare=prepare)
    assert_same(a, b)
    assert seen[0] == seen[1] and seen[0]["samples"] and len(seen[0]["obs"]) == a["summary"]["events"]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("config", [
    {"cpus": 4, "nodes": 2},
    {"cpus": 3, "nodes": 1, "init_on_alloc": True, "init_on_free": True},
    {"cpus": 4, "nodes": 2, "CONFIG_SLAB_FREELIST_HARDENED": True},
], ids=["4cpus-2nodes", "init-on", "hardened"])
def test_synthetic_trace_same_as_replayer_run(tmp_path: Path, config: dict[str, Any], engine: str) -> None:
    text = io.StringIO()
    write_trace(text, 30_000, seed=3, cpus=4, nodes=2, event_gap_us=60.0)

    def make(p: str) -> Replayer:
        return Replayer(MachineConfig.build(**config), None, ReplayOptions(ptr_map=p))
    assert_same(*both(tmp_path, make, lambda: io.StringIO(text.getvalue()), engine))


@pytest.mark.parametrize("engine", ENGINES)
def test_short_trace(tmp_path: Path, engine: str) -> None:
    """Fewer events than the head the boot looks at (and an empty trace)."""
    lines = BUNDLED_LINES[:400]
    for n in (0, 1, len(lines)):
        text = "".join(lines[:n])
        assert_same_or_empty(*both(tmp_path, bundled, lambda t=text: io.StringIO(t), engine))


def assert_same_or_empty(a: dict[str, Any], b: dict[str, Any]) -> None:
    for key, value in a.items():
        assert value == b[key], key


def _bundled_lines() -> list[str]:
    import lzma  # noqa: PLC0415
    with lzma.open(BUNDLED, "rt") as f:
        return f.readlines()


BUNDLED_LINES = _bundled_lines()

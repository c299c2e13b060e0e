"""The seeded synthetic trace generator (benchmarks and scale tests use it)."""

from __future__ import annotations

import io
from collections import Counter

from kslab.mm.config import MachineConfig
from kslab.trace.events import KIND_NAMES
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Replayer
from kslab.trace.synth import SynthTrace, write_trace


def test_same_seed_same_trace_and_text_parses_back_equal() -> None:
    a = list(SynthTrace(20_000, seed=4))
    assert a == list(SynthTrace(20_000, seed=4))
    assert a != list(SynthTrace(20_000, seed=5))
    buf = io.StringIO()
    assert write_trace(buf, 20_000, seed=4) == 20_000
    assert list(iter_events(io.StringIO(buf.getvalue()))) == a


def test_mix_of_kinds_cpus_and_reaps() -> None:
    st = SynthTrace(60_000, seed=1, cpus=4, nodes=2, event_gap_us=40.0)  # 2.4 s of trace: reaps run
    events = list(st)
    kinds = Counter(KIND_NAMES[e.kind] for e in events)
    assert {"kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "kmalloc_node", "kmem_cache_alloc_node",
            "func"} <= set(kinds)
    assert {e.cpu for e in events} == {0, 1, 2, 3}
    assert all(e.text == "cache_reap" for e in events if KIND_NAMES[e.kind] == "func")
    assert 0 < st.live <= st.max_live
    # every free is of a live object of the right kind
    live: dict[int, int] = {}
    for e in events:
        if e.kind <= 3:
            assert e.ptr not in live
            live[e.ptr] = e.kind
        elif e.kind in (4, 5) and e.ptr:
            assert live.pop(e.ptr) in ((0, 1) if e.kind == 4 else (2, 3))
    assert len(live) == st.live


def test_replays_on_four_cpus_two_nodes() -> None:
    rep = Replayer(MachineConfig.build(cpus=4, nodes=2))
    summary = rep.run(SynthTrace(30_000, seed=2, event_gap_us=100.0))
    assert summary.events == 30_000
    assert not summary.skipped.get("kmem_cache_alloc of an unknown cache")
    assert summary.reaps > 0 and rep.k.misuse == []
    rep.k.check()

"""The replay's pipeline (trace/replay/): the stage chain, the manifest cursor, the observer hooks, and the
mm helpers the placeholders go through."""

from __future__ import annotations

import io
from itertools import pairwise
from pathlib import Path
from typing import Any

from kslab.manifest import Create, Directive, parse_manifest
from kslab.mm.config import MachineConfig
from kslab.mm.slab.adopt import adopt_obj, first_slab_for_adoption, release_free_slab
from kslab.mm.slab.grow import cache_grow_begin, cache_grow_end
from kslab.mm.slabinfo import get_slabinfo
from kslab.trace.events import TraceEvent
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Applied, Observer, Replayer, ReplayOptions
from kslab.trace.replay.apply import Apply
from kslab.trace.replay.boot import ManifestCursor
from kslab.trace.replay.stage import Stage


def _line(ts: int, payload: str) -> str:
    return f"          task-7      [000] ....     {ts}: {payload}\n"


def _kmalloc(ts: int, ptr: int) -> str:
    return _line(ts, f"kmalloc: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL")


def test_the_stages_chain_one_way_to_apply() -> None:
    rep = Replayer(MachineConfig.build(cpus=1))
    stages = rep.stages
    assert all(isinstance(s, Stage) for s in stages) and isinstance(stages[-1], Apply)
    for up, down in pairwise(stages):
        assert up.down is down
    rep.flush()  # nothing held: nothing happens
    assert rep.summary.accounted() == 0


def test_the_manifest_cursor_applies_up_to_the_entry_asked_for() -> None:
    manifest = parse_manifest(["foo 64 0 0 0", "@cpu_up 1", "bar 96 0 0 0"])
    rep = Replayer(MachineConfig.build(cpus=2), manifest, ReplayOptions())
    cursor: ManifestCursor = rep.boot.cursor
    assert cursor.find(lambda e: isinstance(e, Directive) and e.what == "nope") is None
    assert not cursor.advance_to(lambda e: isinstance(e, Directive) and e.what == "nope")
    assert rep.mb.pos == 0
    assert cursor.advance_to(lambda e: isinstance(e, Directive) and e.what == "cpu_up")
    assert rep.mb.pos == 2 and rep.k.find_cache("foo") is not None and rep.k.find_cache("bar") is None
    assert cursor.advance_to(lambda e: isinstance(e, Create) and e.name == "bar")
    assert rep.k.find_cache("bar") is not None


class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_start(self, rep: Any, ev: TraceEvent) -> None:
        self.calls.append(("start", ev.lineno, rep.summary.events))

    def on_event(self, rep: Any, ev: TraceEvent) -> None:
        self.calls.append(("event", ev.lineno))

    def on_sync(self, rep: Any, ev: TraceEvent) -> None:
        self.calls.append(("sync", ev.lineno))

    def on_snapshot(self, rep: Any, label: str, ev: TraceEvent | None) -> None:
        self.calls.append(("snapshot", label))


def test_observers_see_the_start_every_event_the_sync_and_the_snapshots(tmp_path: Path) -> None:
    trace = (_kmalloc(1, 0xFFFF888012340000) + _line(2, "tracing_mark_write: go")
             + _kmalloc(3, 0xFFFF888012340040) + _line(4, "tracing_mark_write: snap one"))
    rep = Replayer(MachineConfig.build(cpus=1), None,
                   ReplayOptions(sync_on="go", snapshot_on=r"snap (\w+)", out=str(tmp_path)))
    rec = Recorder()
    rep.subscribe(rec)
    s = rep.run(iter_events(io.StringIO(trace)), clock="counter")
    assert s.applied[Applied.MARKER_ACTED_ON] == 2
    kinds = [c[0] for c in rec.calls]
    assert kinds[0] == "start" and kinds.count("event") == s.events == 4
    # the sync waits for the next marker (no /proc/slabinfo read came first), and is seen after it;
    # the snapshot is taken at the end of the input
    assert kinds.index("sync") == kinds.index("event") + 3 and rec.calls[-1] == ("snapshot", "one")
    assert (tmp_path / "slabinfo.one").exists()


def test_adopted_objects_keep_the_model_consistent() -> None:
    """A placeholder object is taken straight from a free slab: the node's and the cache's counts move as
    cache_alloc_refill's would, and the machine's invariants hold; an emptied slab can be released."""
    rep = Replayer(MachineConfig.build(cpus=1))
    rep.run(iter([]))
    k = rep.k
    c = k.kmem_cache_create("t", 256)
    assert c is not None
    n = c.node[0]
    assert n is not None and first_slab_for_adoption(n, None) is None  # no slab yet
    page = cache_grow_begin(c, c.allocflags | 0xCC0, 0)
    assert page is not None
    cache_grow_end(c, page)
    before = get_slabinfo(c).active_objs
    assert n.free_slabs == 1 and first_slab_for_adoption(n, None) is page and n.free_slabs == 0
    got = adopt_obj(c, n, page)
    assert get_slabinfo(c).active_objs == before + 1 and k.page_of(got) is page and page.active == 1
    assert first_slab_for_adoption(n, {page.pfn}) is page and first_slab_for_adoption(n, set()) is None
    k.check()
    empty = cache_grow_begin(c, c.allocflags | 0xCC0, 0)
    assert empty is not None
    cache_grow_end(c, empty)
    slabs = n.total_slabs
    release_free_slab(c, n, empty)
    assert n.total_slabs == slabs - 1 and n.free_slabs == 0
    k.check()

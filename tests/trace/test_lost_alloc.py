"""Remote allocations the function tracer shows and no kmem event does (trace/replay/lost.py).

The shape is the one of every oracle trace with more than one node (prod/debug R3, U3, U8): during boot,
``____cache_alloc_node <-__kmalloc`` (alternate_node_alloc under the boot's interleave policy) is followed
by the task's next kmalloc event, whose object is of the CPU's own node; the remote object of that line
has no event, and the later allocations from the remote node's slab start one slot further on."""

from __future__ import annotations

import io

from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Followed, Replayer, ReplayOptions

NODE0 = 0xFFFF888012345000  # the model's 2 GiB on two nodes: node 1 starts at 1 GiB
NODE1 = 0xFFFF888052345000


def _line(ts: int, flags: str, payload: str, cpu: int = 0, comm: str = "task-7") -> str:
    return f"          {comm}      [{cpu:03d}] {flags}     {ts}: {payload}\n"


def _kmalloc(ts: int, ptr: int, node: int | None = None, cpu: int = 0) -> str:
    kind = "kmalloc" if node is None else "kmalloc_node"
    tail = "" if node is None else f" node={node}"
    return _line(ts, "....", f"{kind}: call_site=f+0x1/0x2 ptr={ptr:016x} bytes_req=64 bytes_alloc=64 "
                 f"gfp_flags=GFP_KERNEL{tail}", cpu)


def _func(ts: int, fn: str, parent: str, cpu: int = 0) -> str:
    return _line(ts, "d...", f"{fn} <-{parent}", cpu)


def _replay(text: str, tmp: str) -> tuple[Replayer, list[list[str]]]:
    ptr_map = f"{tmp}/ptrmap.csv"
    rep = Replayer(MachineConfig.build(cpus=2, nodes=2), None, ReplayOptions(ptr_map=ptr_map))
    rep.run(iter_events(io.StringIO(text)), clock="counter")
    with open(ptr_map, encoding="utf-8") as f:
        rows = [line.strip().split(",") for line in f][1:]
    return rep, rows


def _slot(model_ptr: str) -> int:
    return (int(model_ptr, 16) % 4096) // 64


def _text(lost_line: str) -> str:
    """A remote line, the local object's event, then two allocations from node 1's slab."""
    return (lost_line + _kmalloc(2, NODE0)
            + _kmalloc(3, NODE1 + 0x40, node=1) + _kmalloc(4, NODE1 + 0x80, node=1))


def test_remote_line_without_its_event_is_replayed(tmp_path) -> None:
    rep, rows = _replay(_text(_func(1, "____cache_alloc_node", "__kmalloc")), str(tmp_path))
    assert rep.summary.followed[Followed.LOST_ALLOC] == 1
    # the lost object took slot 0 of node 1's new slab: the traced ones follow it, as in the kernel
    assert [_slot(r[2]) for r in rows[1:]] == [1, 2]
    pool = [p for c, objs in rep.placeholders.pools.items() if c.name == "kmalloc-64" for p in objs]
    assert len(pool) == 1 and rep.k.mem_map.virt_to_head_page(pool[0]).nid == 1
    rep.check()


def test_remote_line_with_its_own_remote_event_adds_nothing(tmp_path) -> None:
    text = (_func(1, "____cache_alloc_node", "__kmalloc") + _kmalloc(2, NODE1)
            + _kmalloc(3, NODE1 + 0x40, node=1))
    rep, rows = _replay(text, str(tmp_path))
    assert not rep.summary.followed[Followed.LOST_ALLOC]
    assert _slot(rows[1][2]) == 0  # node 1's slab: nothing was taken before the traced allocation


def test_lines_that_do_not_stand_for_a_remote_allocation(tmp_path) -> None:
    # after a refill, ____cache_alloc_node is __do_cache_alloc's retry on the local node
    refill = _func(0, "cache_alloc_refill", "__kmalloc") + _func(1, "____cache_alloc_node", "__kmalloc")
    # a _node entry point, fallback_alloc: not alternate_node_alloc
    for lost in (refill, _func(1, "____cache_alloc_node", "kmem_cache_alloc_node_trace"),
                 _func(1, "____cache_alloc_node", "fallback_alloc")):
        rep, rows = _replay(_text(lost), str(tmp_path))
        assert not rep.summary.followed[Followed.LOST_ALLOC], lost
        assert [_slot(r[2]) for r in rows[1:]] == [0, 1]


def test_event_of_another_context_does_not_take_the_line(tmp_path) -> None:
    text = (_func(1, "____cache_alloc_node", "__kmalloc")
            + _line(2, "..s.", f"kmalloc: call_site=f+0x1/0x2 ptr={NODE0:016x} bytes_req=64 bytes_alloc=64 "
                    "gfp_flags=GFP_ATOMIC")
            + _kmalloc(3, NODE1 + 0x40, node=1))
    rep, _ = _replay(text, str(tmp_path))
    assert not rep.summary.followed[Followed.LOST_ALLOC]

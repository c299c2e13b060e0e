"""Grows whose pages the trace shows failing or coming from another node (trace/replay/grows.py), as in
the memory-pressure phase of the captures U3 and U8."""

from __future__ import annotations

import io

from kslab.mm.config import MachineConfig
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Followed, Replayer, ReplayOptions

NODE0 = 0xFFFF888012345000  # the model's 2 GiB on two nodes: node 1 starts at 1 GiB


def _line(ts: int, payload: str, cpu: int = 1, flags: str = "d...") -> str:
    return f"          dd-314      [{cpu:03d}] {flags}     {ts}: {payload}\n"


def _page(ts: int, pfn: int) -> str:
    page = 0 if pfn < 0 else 0xFFFFEA0000000000 + 64 * pfn
    return _line(ts, f"mm_page_alloc: page={page:016x} pfn={max(pfn, 0)} order=0 migratetype=2 "
                 "gfp_flags=__GFP_NOWARN|__GFP_COMP|__GFP_THISNODE")


def _trace(fallback_pfn: int) -> str:
    return (_line(1, "cache_alloc_refill <-__kmalloc") + _line(2, "cache_grow_begin <-cache_alloc_refill")
            + _page(3, -1) + _line(4, "cache_grow_end <-cache_alloc_refill")
            + _line(5, "____cache_alloc_node <-__kmalloc") + _line(6, "cache_grow_begin <-____cache_alloc_node")
            + _page(7, -1) + _line(8, "cache_grow_end <-____cache_alloc_node")
            + _line(9, "fallback_alloc <-__kmalloc") + _line(10, "cache_grow_begin <-fallback_alloc")
            + _page(11, fallback_pfn) + _line(12, "cache_grow_end <-fallback_alloc")
            + _line(13, "____cache_alloc_node <-fallback_alloc")
            + _line(14, f"kmalloc: call_site=f+0x1/0x2 ptr={NODE0:016x} bytes_req=64 bytes_alloc=64 "
                    "gfp_flags=GFP_NOWAIT", flags="...."))


def _replay(text: str) -> Replayer:
    rep = Replayer(MachineConfig.build(cpus=2, nodes=2), None, ReplayOptions())
    rep.run(iter_events(io.StringIO(text)), clock="counter")
    return rep


def _node_of_only_object(rep: Replayer) -> int:
    (mptr,) = rep.kmap.values()
    return rep.k.mem_map.virt_to_head_page(mptr).nid


def test_failed_grows_and_a_fallback_page_of_node_0_are_followed() -> None:
    rep = _replay(_trace(70_000))  # pfn 70000: node 0
    assert rep.summary.followed[Followed.GROW_FOLLOWED] == 3
    assert _node_of_only_object(rep) == 0
    assert not rep.k.replay_hooks.grow_outcomes
    rep.check()


def test_without_the_trace_s_outcomes_the_model_grows_on_its_own_node() -> None:
    text = "".join(line for line in _trace(70_000).splitlines(keepends=True) if "mm_page_alloc" not in line)
    rep = _replay(text)
    assert not rep.summary.followed[Followed.GROW_FOLLOWED]
    assert _node_of_only_object(rep) == 1

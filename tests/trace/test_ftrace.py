"""Tests of the text-trace parser: kslab.trace.ftrace.iter_events and friends.

Golden lines cover every layout the parser promises (kernel ftrace text of 3.x/5.10/6.x, the
oracle's 5.10 with cache names, trace-cmd report, perf script); the data files in ``data/`` are
small excerpts of real traces (see data/README.md).  Every parse goes through ``parse()`` which
checks the stats invariant ``lines == events + header + sum(skipped)``.
"""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import bz2
import gzip
import importlib
import io
import lzma
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from kslab.mm.gfp import __GFP_ZERO, GFP_ATOMIC, GFP_KERNEL, GFP_NOFS, parse_gfp_flags
from kslab.trace import events as E
from kslab.trace import ftrace
from kslab.trace.errors import TraceInputError, TraceParseError
from kslab.trace.events import TraceEvent
from kslab.trace.ftrace import ParseStats, iter_events

DATA = Path(__file__).parent / "data"
ORACLE_R1 = DATA / "oracle-R1-global.txt"  # 5.10 oracle, global clock, 1 CPU
ORACLE_R2 = DATA / "oracle-R2-counter.txt"  # 5.10 oracle, counter clock, 2 CPUs
OLD_SLAB = DATA / "kmem-probe-SLAB-excerpt.txt"  # 3.x, 32-bit, CRLF line ends


def count_lines(data: str | bytes) -> int:
    """Lines as the parser counts them: ends of lines, plus an unterminated last line."""
    nl = "\n" if isinstance(data, str) else b"\n"
    return data.count(nl) + (1 if data and not data.endswith(nl) else 0)  # type: ignore[arg-type]


def check_stats(stats: ParseStats, events: list[TraceEvent], lines: int | None = None) -> None:
    assert stats.consistent, stats
    assert stats.lines == stats.events + stats.header + sum(stats.skipped.values())
    assert stats.events == len(events)
    assert sum(stats.by_kind.values()) == len(events)
    if lines is not None:
        assert stats.lines == lines


def parse(source: Any, *, skip_bad: bool = False) -> tuple[list[TraceEvent], ParseStats]:
    """Parse ``source`` (text, or anything iter_events takes) and check the stats invariant."""
    stats = ParseStats()
    if isinstance(source, str) and "\n" in source:
        events = list(iter_events(io.StringIO(source), skip_bad=skip_bad, stats=stats))
        check_stats(stats, events, count_lines(source))
    else:
        events = list(iter_events(source, skip_bad=skip_bad, stats=stats))
        check_stats(stats, events)
    return events, stats


def one(line: str) -> TraceEvent:
    events, stats = parse(line + "\n")
    assert len(events) == 1, (events, stats)
    return events[0]


# ---------------------------------------------------------------------------------------------
# Golden lines


def test_stock_510_kmalloc_hashed_pointer() -> None:
    ev = one(
        "            init-1       [000] ....     1.366021: kmalloc: "
        "call_site=kmem_cache_create_usercopy+0x169/0x291 ptr=00000000a1b2c3d4 bytes_req=64 "
        "bytes_alloc=64 gfp_flags=GFP_KERNEL"
    )
    assert ev.kind == E.KMALLOC and ev.kind_name == "kmalloc"
    assert (ev.lineno, ev.cpu, ev.ts, ev.comm, ev.pid) == (1, 0, 1.366021, "init", 1)
    assert ev.call_site == "kmem_cache_create_usercopy+0x169/0x291"
    assert ev.ptr == 0xA1B2C3D4
    assert (ev.bytes_req, ev.bytes_alloc, ev.gfp) == (64, 64, GFP_KERNEL)
    assert (ev.node, ev.name, ev.accounted) == (-1, None, None)
    assert (ev.pfn, ev.order, ev.migratetype, ev.text, ev.parent) == (-1, -1, -1, "", "")


def test_stock_510_kmem_cache_free_without_name() -> None:
    ev = one(
        "     kworker/0:1-13      [000] ....     5.000001: kmem_cache_free: "
        "call_site=rcu_core+0x2a1/0x4c0 ptr=000000005e1c0b7a"
    )
    assert ev.kind == E.KMEM_CACHE_FREE
    assert (ev.comm, ev.pid, ev.call_site, ev.ptr, ev.name) == (
        "kworker/0:1", 13, "rcu_core+0x2a1/0x4c0", 0x5E1C0B7A, None)


def test_oracle_lines() -> None:
    text = """\
          <idle>-0       [000] d...         1962: kmem_cache_alloc: call_site=__trace_define_field+0x39/0x9f ptr=ffff888012e273f0 bytes_req=48 bytes_alloc=48 gfp_flags=GFP_KERNEL|__GFP_ZERO name=ftrace_event_field
          <idle>-0       [000] .N..         3632: kmem_cache_free: call_site=do_set_mempolicy+0xbb/0x140 ptr=ffff888012e66168 name=numa_policy
          <idle>-0       [000] d...         1980: kmalloc_node: call_site=alloc_desc+0x39/0x1d0 ptr=ffff888012e0a600 bytes_req=448 bytes_alloc=512 gfp_flags=GFP_KERNEL|__GFP_ZERO node=0
          <idle>-0       [000] d...         2035: kmem_cache_alloc_node: call_site=alloc_vmap_area+0x8c/0x8b0 ptr=ffff888002845040 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 name=vmap_area
          <idle>-0       [000] ....         2059: kfree: call_site=setup_kmem_cache_node+0xe5/0x3a0 ptr=0000000000000000
          <idle>-0       [000] d...         1993: mm_page_alloc: page=ffffea00004218c0 pfn=77352 order=0 migratetype=0 gfp_flags=__GFP_NOWARN|__GFP_COMP|__GFP_THISNODE
          <idle>-0       [000] ....         2622: mm_page_free: page=ffffea000008d2d0 pfn=10326 order=1
          <idle>-0       [000] dp.1            3: cache_alloc_refill <-__kmalloc
            init-1       [000] ....       477317: tracing_mark_write: oracle: snapshot 0-start begin
        kthreadd-2       [001] d...       144234: mm_page_alloc: page=ffffea00007c4c40 pfn=145464 order=0 migratetype=0 gfp_flags=GFP_KERNEL
"""
    evs, stats = parse(text)
    assert [e.kind for e in evs] == [
        E.KMEM_CACHE_ALLOC, E.KMEM_CACHE_FREE, E.KMALLOC_NODE, E.KMEM_CACHE_ALLOC_NODE, E.KFREE,
        E.MM_PAGE_ALLOC, E.MM_PAGE_FREE, E.FUNC, E.MARK, E.MM_PAGE_ALLOC,
    ]
    a, f, kn, cn, kf, pa, pf, fn, mk, pa1 = evs
    assert (a.ts, a.call_site, a.ptr, a.bytes_req, a.bytes_alloc) == (
        1962.0, "__trace_define_field+0x39/0x9f", 0xFFFF888012E273F0, 48, 48)
    assert a.gfp == GFP_KERNEL | __GFP_ZERO and a.name == "ftrace_event_field" and a.node == -1
    assert (f.ptr, f.name, f.call_site) == (0xFFFF888012E66168, "numa_policy", "do_set_mempolicy+0xbb/0x140")
    assert (kn.node, kn.bytes_req, kn.bytes_alloc, kn.name) == (0, 448, 512, None)
    assert (cn.node, cn.name, cn.ptr) == (-1, "vmap_area", 0xFFFF888002845040)
    assert (kf.ptr, kf.call_site) == (0, "setup_kmem_cache_node+0xe5/0x3a0")
    assert (pa.ptr, pa.pfn, pa.order, pa.migratetype) == (0xFFFFEA00004218C0, 77352, 0, 0)
    assert pa.gfp == parse_gfp_flags("__GFP_NOWARN|__GFP_COMP|__GFP_THISNODE")
    assert (pf.pfn, pf.order, pf.migratetype, pf.gfp) == (10326, 1, -1, 0)
    assert (fn.text, fn.parent, fn.ts, fn.comm, fn.pid) == ("cache_alloc_refill", "__kmalloc", 3.0, "<idle>", 0)
    assert (mk.text, mk.comm, mk.pid, mk.ts) == ("oracle: snapshot 0-start begin", "init", 1, 477317.0)
    assert (pa1.cpu, pa1.comm, pa1.pid, pa1.gfp) == (1, "kthreadd", 2, GFP_KERNEL)
    assert stats.clocks_seen == {"counter"}
    assert stats.formats_seen == {"ftrace+irq-info"}


@pytest.mark.parametrize(
    ("prefix", "comm", "pid"),
    [
        ("     kworker/u8:0-7       [002] d...", "kworker/u8:0", 7),
        ("          <idle>-0       [002] d...", "<idle>", 0),
        ("    gdbus worker-123     [002] ....", "gdbus worker", 123),
        ("   my-tool-v2-x-4242     [002] ....", "my-tool-v2-x", 4242),
        ("           <...>-12390   [002] ....", "<...>", 12390),
        ("  a-1 b: c] d-99999      [002] ....", "a-1 b: c] d", 99999),  # the hardest a comm can be
        ("  éàü-5                  [002] ....", "éàü", 5),
    ],
)
def test_comm_with_spaces_and_dashes(prefix: str, comm: str, pid: int) -> None:
    ev = one(prefix + "    12.500000: kfree: call_site=kfree_skb+0x1/0x2 ptr=ffff888012345678")
    assert (ev.comm, ev.pid, ev.cpu, ev.ts, ev.ptr) == (comm, pid, 2, 12.5, 0xFFFF888012345678)


def test_without_irq_info_and_with_record_tgid() -> None:
    text = """\
            init-1     [000]     1.366021: kmalloc: call_site=f+0x1/0x2 ptr=ffff888000000040 bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL
            init-1     (      1) [001] ....     1.366022: kfree: call_site=f+0x1/0x2 ptr=ffff888000000040
           <...>-77    (-------) [003] d.s.     1.366023: kfree: call_site=f+0x1/0x2 ptr=0000000000000000
            bash-300   (    299) [002]     1.366024: kfree: call_site=f+0x1/0x2 ptr=0000000000000000
"""
    evs, stats = parse(text)
    assert [(e.comm, e.pid, e.cpu, e.ts) for e in evs] == [
        ("init", 1, 0, 1.366021), ("init", 1, 1, 1.366022), ("<...>", 77, 3, 1.366023),
        ("bash", 300, 2, 1.366024),
    ]
    assert stats.formats_seen == {"ftrace", "ftrace+tgid+irq-info", "ftrace+tgid"}


def test_module_call_site_with_space() -> None:
    text = """\
     kworker/3:2-222     [003] d.s1     5.000001: kmem_cache_alloc: call_site=ext4_alloc_inode+0x1a/0x180 [ext4] ptr=ffff888012345678 bytes_req=1096 bytes_alloc=1096 gfp_flags=GFP_NOFS name=ext4_inode_cache
     kworker/3:2-222     [003] d.s1     5.000002: kmem_cache_free: call_site=ext4_free_in_core_inode+0x3b/0x50 [ext4] ptr=ffff888012345678 name=ext4_inode_cache
     kworker/3:2-222     [003] d.s1     5.000003: kfree: call_site=nf_ct_ext_destroy+0x9/0x20 [nf_conntrack] ptr=0000000000000000
"""
    a, f, k = parse(text)[0]
    assert (a.call_site, a.ptr, a.bytes_req, a.gfp, a.name) == (
        "ext4_alloc_inode+0x1a/0x180 [ext4]", 0xFFFF888012345678, 1096, GFP_NOFS, "ext4_inode_cache")
    assert (f.call_site, f.ptr, f.name) == (
        "ext4_free_in_core_inode+0x3b/0x50 [ext4]", 0xFFFF888012345678, "ext4_inode_cache")
    assert (k.call_site, k.ptr) == ("nf_ct_ext_destroy+0x9/0x20 [nf_conntrack]", 0)


def test_cache_name_runs_to_end_of_line() -> None:
    ev = one("  sh-9 [000] ....  1.0: kmem_cache_alloc: call_site=f+0x1/0x2 ptr=ffff888000000080 "
             "bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL name=odd cache name=x")
    assert ev.name == "odd cache name=x"


def test_newer_kernel_fields() -> None:
    text = """\
            bash-1234    [002] d..2.    99.123456: kmalloc: call_site=alloc_pipe_info+0x49/0x1b0 ptr=ffff888003a1c000 bytes_req=640 bytes_alloc=1024 gfp_flags=GFP_KERNEL_ACCOUNT node=-1 accounted=true
            bash-1234    [002] d..2.    99.123457: kmem_cache_free: call_site=__fput+0x1e5/0x250 ptr=ffff888003a1c100 name=filp
            bash-1234    [002] d..2.    99.123458: kmem_cache_alloc: call_site=alloc_empty_file+0x47/0xe0 ptr=ffff888003a1c100 bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL|__GFP_ZERO node=0 accounted=false
            bash-1234    [002] d..2.    99.123459: kmalloc: call_site=f+0x1/0x2 ptr=ffff888003a1c200 bytes_req=8 bytes_alloc=8 gfp_flags=GFP_ATOMIC node=1 accounted=false some_future_field=7 other=x
"""
    evs, stats = parse(text)
    k, f, c, x = evs
    assert (k.kind, k.node, k.accounted, k.bytes_req, k.bytes_alloc) == (E.KMALLOC, -1, True, 640, 1024)
    assert k.gfp == parse_gfp_flags("GFP_KERNEL_ACCOUNT")
    assert (f.kind, f.name, f.ptr) == (E.KMEM_CACHE_FREE, "filp", 0xFFFF888003A1C100)
    assert (c.kind, c.node, c.accounted, c.gfp) == (E.KMEM_CACHE_ALLOC, 0, False, GFP_KERNEL | __GFP_ZERO)
    assert (x.node, x.accounted, x.gfp, x.bytes_req) == (1, False, GFP_ATOMIC, 8)
    assert stats.formats_seen == {"ftrace+irq-info"}


def test_page_events_variants() -> None:
    text = """\
            init-1     [000] .N..     0.150000: mm_page_free_batched: page=ffffea0000075828 pfn=8595 order=0
            init-1     [000] .N..     0.150000: mm_page_alloc: page=ffffea0000075828 pfn=0x2193 order=2 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_SKIP_ZERO
            init-1     [000] .N..     0.150000: mm_page_alloc: page=(null) pfn=0 order=9 migratetype=1 gfp_flags=GFP_KERNEL
            init-1     [000] .N..     0.150000: mm_page_free: page=ffffea0000075828 pfn=0x2193 order=3
"""
    b, a, n, f = parse(text)[0]
    assert (b.kind, b.pfn, b.order, b.ptr) == (E.MM_PAGE_FREE_BATCHED, 8595, 0, 0xFFFFEA0000075828)
    assert (a.kind, a.pfn, a.order, a.migratetype) == (E.MM_PAGE_ALLOC, 0x2193, 2, 1)
    assert a.gfp == parse_gfp_flags("GFP_HIGHUSER_MOVABLE")  # the unknown flag contributes nothing
    assert (n.ptr, n.pfn, n.order) == (0, 0, 9)
    assert (f.kind, f.pfn, f.order) == (E.MM_PAGE_FREE, 0x2193, 3)
    stats = parse(text)[1]
    assert stats.unknown_gfp_flags == {"__GFP_SKIP_ZERO"}


def test_function_tracer_lines() -> None:
    text = """\
     kworker/0:1-13      [000] ....   597312.000000: cache_reap <-process_one_work
          <idle>-0       [000] d...     0.000000: cache_reap+0x0/0x2a0 <-process_one_work+0x1d4/0x3c0
          <idle>-0       [000] d...     0.000000: drain_array
          <idle>-0       [000] d...     0.000000: some_function_we_do_not_know <-other
"""
    evs, _ = parse(text)
    assert all(e.kind == E.FUNC for e in evs)
    assert [(e.text, e.parent) for e in evs] == [
        ("cache_reap", "process_one_work"),
        ("cache_reap", "process_one_work+0x1d4/0x3c0"),
        ("drain_array", ""),
        ("some_function_we_do_not_know", "other"),
    ]


def test_markers() -> None:
    text = """\
            init-1       [000] ....     1.366021: tracing_mark_write: oracle: snapshot 0-start begin
            init-1       [000] ....     1.366022: tracing_mark_write: oracle: retune written: kmalloc-64 60 30 4
"""
    text += "            init-1       [000] ....     1.366023: tracing_mark_write: \n"  # empty marker
    evs, _ = parse(text)
    assert [e.text for e in evs] == [
        "oracle: snapshot 0-start begin", "oracle: retune written: kmalloc-64 60 30 4", ""]
    assert all(e.kind == E.MARK for e in evs)


def test_trace_cmd_report() -> None:
    text = """\
cpus=2
version = 6
CPU 1 is empty
          <idle>-0     [001]  5237.596813: kmalloc:              call_site=ffffffff8110a4f5 ptr=0xffff8801f60f2c00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_ATOMIC
       trace-cmd-2794  [000]  5237.596900: kmem_cache_free:      call_site=ffffffff811f5b55 ptr=0xffff8801f5a1e000
       trace-cmd-2794  [000]  5237.596901: kfree:                call_site=ffffffff811f5b55 ptr=(nil)
       trace-cmd-2794  [000]  5237.596902: mm_page_alloc:        page=0xffffea0007d87e40 pfn=8222713 order=0 migratetype=0 gfp_flags=GFP_KERNEL
          <idle>-0     [001]  5237.596950: function:             cache_reap <-- process_one_work
          <idle>-0     [001]  5237.596951: function:                drain_array
          <idle>-0     [001]  5237.596952: print:                tracing_mark_write: hello world
          <idle>-0     [001]  5237.596953: print:                ffffffff811f5b55: from an ip
          <idle>-0     [001]  5237.596954: sched_switch:         swapper/1:0 [120] R ==> bash:2794 [120]
  <idle>-0       1d..1  5237.596990: kmalloc:              call_site=ffffffff8110a4f5 ptr=0xffff8801f60f2c40 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL
 trace-cm-2794    0d...  5237.596991: kmem_cache_alloc:     call_site=ffffffff8110a4f5 ptr=0xffff8801f60f2c80 bytes_req=32 bytes_alloc=32 gfp_flags=GFP_KERNEL
CPU:0 [3 EVENTS DROPPED]
CPU:1 [EVENTS DROPPED]
"""
    evs, stats = parse(text)
    assert [e.kind for e in evs] == [
        E.KMALLOC, E.KMEM_CACHE_FREE, E.KFREE, E.MM_PAGE_ALLOC, E.FUNC, E.FUNC, E.MARK, E.MARK,
        E.KMALLOC, E.KMEM_CACHE_ALLOC,
    ]
    k, cf, kf, pa, f1, f2, m1, m2, lk, lc = evs
    assert (k.comm, k.pid, k.cpu, k.ts, k.call_site, k.ptr, k.gfp) == (
        "<idle>", 0, 1, 5237.596813, "ffffffff8110a4f5", 0xFFFF8801F60F2C00, GFP_ATOMIC)
    assert (cf.comm, cf.pid, cf.ptr) == ("trace-cmd", 2794, 0xFFFF8801F5A1E000)
    assert kf.ptr == 0
    assert (pa.ptr, pa.pfn) == (0xFFFFEA0007D87E40, 8222713)
    assert (f1.text, f1.parent, f2.text, f2.parent) == ("cache_reap", "process_one_work", "drain_array", "")
    assert (m1.text, m2.text) == ("hello world", "from an ip")
    assert (lk.comm, lk.pid, lk.cpu, lk.ts, lk.bytes_req) == ("<idle>", 0, 1, 5237.59699, 32)
    assert (lc.comm, lc.pid, lc.cpu) == ("trace-cm", 2794, 0)
    assert stats.header == 3
    assert stats.skipped == {"other event: sched_switch": 1, "lost events": 2}
    assert stats.lost_events == 3
    assert stats.formats_seen == {"trace-cmd", "trace-cmd-latency"}


def test_perf_script() -> None:
    text = """\
         swapper     0 [000]     0.000000: kmem:kmalloc: call_site=ffffffff81234567 ptr=0xffff888012345678 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL
            perf 12345 [002] 12345.678901:          kmem:kmem_cache_alloc: call_site=kmem_cache_alloc_trace+0x15b/0x2b0 ptr=0xffff888003a1c000 bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL|__GFP_ZERO
    gdbus worker  4242 [001]    12.000000: kmem:kfree: call_site=kfree_skb+0x1/0x2 ptr=(nil)
  kworker/u8:0-7   611 [001]    12.000001: kmem:kmem_cache_free: call_site=0xffffffff81234567 ptr=0xffff888003a1c000
            perf 12/13 [003]    12.000002: kmem:mm_page_alloc: page=0xffffea0000421930 pfn=77354 order=0 migratetype=0 gfp_flags=__GFP_ZERO
            perf  4242 [001]    12.000003: ftrace:print: tracing_mark_write: marker
            perf  4242 [001]    12.000004: sched:sched_switch: prev_comm=perf prev_pid=4242
            perf  4242 [001]    12.000005:      1 kmem:kfree: call_site=f+0x1/0x2 ptr=0x0
"""
    evs, stats = parse(text)
    m, c, k, f, p, mk, k2 = evs
    assert (m.kind, m.comm, m.pid, m.cpu, m.ts) == (E.KMALLOC, "swapper", 0, 0, 0.0)
    assert (m.call_site, m.ptr, m.gfp) == ("ffffffff81234567", 0xFFFF888012345678, GFP_KERNEL)
    assert (c.kind, c.pid, c.call_site, c.ptr) == (
        E.KMEM_CACHE_ALLOC, 12345, "kmem_cache_alloc_trace+0x15b/0x2b0", 0xFFFF888003A1C000)
    assert (k.kind, k.comm, k.pid, k.ptr) == (E.KFREE, "gdbus worker", 4242, 0)
    assert (f.kind, f.comm, f.pid, f.call_site) == (E.KMEM_CACHE_FREE, "kworker/u8:0-7", 611, "0xffffffff81234567")
    assert (p.kind, p.pid, p.cpu, p.pfn, p.ptr) == (E.MM_PAGE_ALLOC, 13, 3, 77354, 0xFFFFEA0000421930)
    assert (mk.kind, mk.text) == (E.MARK, "marker")
    assert (k2.kind, k2.ptr) == (E.KFREE, 0)
    assert stats.skipped == {"other event: sched_switch": 1}
    assert stats.formats_seen == {"perf-script"}


def test_old_kernel_excerpt_crlf() -> None:
    evs, stats = parse(OLD_SLAB)
    raw = OLD_SLAB.read_bytes()
    assert b"\r\n" in raw
    assert stats.lines == raw.count(b"\n") and stats.header == 11 and not stats.skipped
    assert stats.events == stats.lines - 11
    nulls = [e for e in evs if e.kind == E.KFREE and e.ptr == 0]
    assert len(nulls) == raw.count(b"ptr=  (null)") > 0
    first = evs[0]
    assert (first.kind, first.comm, first.pid, first.ts, first.call_site, first.ptr) == (
        E.KMALLOC, "init", 1, 0.15, "c104dd2f", 0xC147DD20)
    assert (first.bytes_req, first.bytes_alloc, first.gfp) == (29, 32, GFP_KERNEL)
    zeroed = [e for e in evs if e.gfp == GFP_KERNEL | __GFP_ZERO]
    assert len(zeroed) == raw.count(b"gfp_flags=GFP_KERNEL|GFP_ZERO\r\n")
    assert all(not e.call_site.endswith("\r") and not e.name for e in evs)
    assert stats.clocks_seen == {"seconds"} and not stats.unknown_gfp_flags


# ---------------------------------------------------------------------------------------------
# Real oracle excerpts against an independent (slow, regex) reading

_REF_PREFIX = re.compile(r"\s*(.*?)-(\d+)\s+\[(\d+)\] (\S+)\s+([\d.]+): (.*)")


def reference_events(path: Path) -> Iterable[dict[str, Any]]:
    """What the oracle's 5.10 lines say, read field by field with regular expressions."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("#"):
            continue
        m = _REF_PREFIX.fullmatch(line)
        assert m is not None, line
        comm, pid, cpu, _flags, ts, payload = m.groups()
        out: dict[str, Any] = dict(lineno=n, comm=comm, pid=int(pid), cpu=int(cpu), ts=float(ts))
        if ": " not in payload:
            func, _, parent = payload.partition(" <-")
            yield dict(out, kind="func", text=func, parent=parent)
            continue
        event, _, rest = payload.partition(": ")
        if event == "tracing_mark_write":
            yield dict(out, kind="mark", text=rest)
            continue
        name = None
        if " name=" in rest:
            rest, name = rest.split(" name=", 1)
        f = dict(re.findall(r"(\w+)=(\S+)", rest))
        out["kind"] = event
        if event.startswith("mm_page"):
            out.update(ptr=int(f["page"], 16), pfn=int(f["pfn"]), order=int(f["order"]))
            if event == "mm_page_alloc":
                out.update(migratetype=int(f["migratetype"]), gfp=parse_gfp_flags(f["gfp_flags"]))
        else:
            out.update(call_site=f["call_site"], ptr=int(f["ptr"], 16), name=name)
            if "bytes_req" in f:
                out.update(bytes_req=int(f["bytes_req"]), bytes_alloc=int(f["bytes_alloc"]),
                           gfp=parse_gfp_flags(f["gfp_flags"]), node=int(f.get("node", -1)))
        yield out


@pytest.mark.parametrize(("path", "clock"), [(ORACLE_R1, "seconds"), (ORACLE_R2, "counter")])
def test_oracle_excerpts_match_reference(path: Path, clock: str) -> None:
    evs, stats = parse(path)
    ref = list(reference_events(path))
    assert len(evs) == len(ref)
    for ev, want in zip(evs, ref, strict=True):
        assert ev.kind_name == want["kind"], (ev, want)
        for key, value in want.items():
            if key != "kind":
                assert getattr(ev, key) == value, (key, ev, want)
    assert stats.header == 11 and not stats.skipped
    assert stats.clocks_seen == {clock}
    assert set(stats.by_kind) == set(E.KIND_NAMES) - {"mm_page_free_batched"}


def test_clocks() -> None:
    glob = "  sh-9 [000] ....  1234.567890: kfree: call_site=f+0x1/0x2 ptr=0000000000000000\n"
    local = "  sh-9 [000] ....  0.000001: kfree: call_site=f+0x1/0x2 ptr=0000000000000000\n"
    counter = "  sh-9 [000] ....  827090: kfree: call_site=f+0x1/0x2 ptr=0000000000000000\n"
    tsc = "  sh-9 [000] ....  12345678901234: kfree: call_site=f+0x1/0x2 ptr=0000000000000000\n"
    evs, stats = parse(glob + local)
    assert [e.ts for e in evs] == [1234.56789, 0.000001] and stats.clocks_seen == {"seconds"}
    evs, stats = parse(counter + tsc)
    assert [e.ts for e in evs] == [827090.0, 12345678901234.0] and stats.clocks_seen == {"counter"}
    assert all(isinstance(e.ts, float) for e in evs)


def test_header_lost_and_other_lines() -> None:
    text = """\
# tracer: function
#
#           TASK-PID     CPU#  ||||   TIMESTAMP  FUNCTION
#          <...>-12390 [007] ....  5891.897055: tracing_mark_write: commented out

##### CPU 1 buffer started ####
CPU:1 [LOST 1234 EVENTS]
          <idle>-0     [001] d.h.   230.859933: irq_handler_entry: irq=162 name=arch_timer
          <idle>-0     [000] d.h.   230.859943: do_timer <-tick_do_update_jiffies64.part.0
          <idle>-0     [000] d.h.   230.859993: <stack trace>
 => tick_sched_timer
 => __hrtimer_run_queues
 0)   0.123 us    |  kmem_cache_alloc();
 ------------------------------------------
          <idle>-0     [001] d.h.   230.859999: sched_switch: prev_comm=swapper/1 prev_pid=0
CPU:0 [LOST 6 EVENTS]
            bash-7     [000] d...   231.000000: sched_switch: prev_comm=bash prev_pid=7
"""
    evs, stats = parse(text)
    assert [(e.kind, e.text) for e in evs] == [(E.FUNC, "do_timer")]
    assert stats.header == 7
    assert stats.skipped == {
        "other event: irq_handler_entry": 1, "stack trace": 3, "lost events": 2,
        "other tracer: function_graph": 1, "other event: sched_switch": 2,
    }
    assert stats.lost_events == 1240


# ---------------------------------------------------------------------------------------------
# Bad input

GOOD = "          <idle>-0       [000] d...     0.000010: kfree: call_site=f+0x1/0x2 ptr=0000000000000000"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("          <idle>-0       [000] d...     0.00", "malformed: no timestamp"),
        ("          <idle>-0       [000] d...     0.000011: kmalloc: call_site=f+0x1/0x2 ptr=ffff8880000"
         "00040 bytes_req=8", "malformed: missing bytes_alloc"),
        ("          <idle>-0       [000] d...     0.000011: kmalloc: call_site=f+0x1/0x2 ptr=ffff888000000040 "
         "bytes_req=abc bytes_alloc=8 gfp_flags=GFP_KERNEL", "malformed: bad number in bytes_req"),
        ("          <idle>-0       [000] d...     0.000011: kmalloc_node: call_site=f+0x1/0x2 ptr=ffff888000000040 "
         "bytes_req=8 bytes_alloc=8 gfp_flags=GFP_KERNEL", "malformed: missing node"),
        ("          <idle>-0       [000] d...     0.000011: kfree: call_site=f+0x1/0x2 ptr=zzz",
         "malformed: bad pointer in ptr"),
        ("          <idle>-0       [000] d...     0.000011: kfree: ptr=0000000000000000", "malformed: missing call_site"),
        ("          <idle>-0       [000] d...     0.000011: mm_page_free: page=ffffea0000075828 order=0",
         "malformed: missing pfn"),
        ("          <idle>-0       [000] d...     0.000011: kmalloc:", "malformed: missing call_site"),
        ("          <idle>-0       [000] d...     0.000011:", "malformed: no event"),
        ("          <idle>-0       [000] d...     abc: kfree: call_site=f+0x1/0x2 ptr=0", "malformed: bad timestamp"),
        ("          <idle>-0       [000] d...     0.000011: cache_reap <", "malformed: unrecognised payload"),
        ("          <idle>       [000] d...     0.000011: kfree: call_site=f ptr=0", "malformed: bad prefix"),
        ("hello world", "malformed: no cpu field"),
        ("kmalloc: call_site=f+0x1/0x2 ptr=0 bytes_req=1 bytes_alloc=8 gfp_flags=GFP_KERNEL", "malformed: no cpu field"),
        ("\x00\x01\x02garbage\ufffd", "malformed: binary data"),
        ("x" * 10000, "malformed: line too long"),
    ],
)
def test_malformed_lines(bad: str, reason: str) -> None:
    text = f"# header\n{GOOD}\n{bad}\n{GOOD}\n"
    stats = ParseStats()
    seen: list[TraceEvent] = []
    with pytest.raises(TraceParseError) as info:
        for ev in iter_events(io.StringIO(text), stats=stats):
            seen.append(ev)
    err = info.value
    assert (err.path, err.lineno, err.reason, err.line) == ("<stream>", 3, reason, bad)
    assert str(err) == f"<stream>:3: {reason}: {bad!r:.80}"
    assert "\n" not in str(err)
    assert len(seen) == 1
    check_stats(stats, seen, 2)

    evs, stats = parse(text, skip_bad=True)
    assert len(evs) == 2 and [e.lineno for e in evs] == [2, 4]
    assert stats.skipped == {reason: 1}


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trace.txt"
    path.write_text(f"{GOOD}\n{GOOD}\ngarbage line\n")
    with pytest.raises(TraceParseError) as info:
        list(iter_events(path))
    assert (info.value.path, info.value.lineno) == (str(path), 3)
    assert str(info.value).startswith(f"{path}:3: malformed: no cpu field: 'garbage line'")


def test_binary_bytes(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 3
    data = (GOOD + "\n").encode() + junk + b"\n" + (GOOD + "\n").encode() + b"\xff\xfe\xc3(\x00\n" + (GOOD + "\n").encode()
    path = tmp_path / "junk.txt"
    path.write_bytes(data)
    with pytest.raises(TraceParseError) as info:
        list(iter_events(path))
    assert info.value.lineno == 2 and info.value.reason.startswith("malformed:")
    evs, stats = parse(path, skip_bad=True)
    assert len(evs) == 3
    assert stats.lines == count_lines(data)
    assert sum(n for r, n in stats.skipped.items() if r.startswith("malformed:")) == stats.lines - 3


def test_invalid_utf8_inside_a_valid_line(tmp_path: Path) -> None:
    path = tmp_path / "comm.txt"
    path.write_bytes(b"  caf\xe9-12  [000] ....  1.0: kfree: call_site=f+0x1/0x2 ptr=0000000000000000\n")
    (ev,), _ = parse(path)
    assert (ev.comm, ev.pid) == ("caf\ufffd", 12)


def test_empty_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for source in (empty, io.StringIO(""), io.BytesIO(b"")):
        evs, stats = parse(source)
        assert evs == [] and stats == ParseStats()
    gz = tmp_path / "empty.txt.gz"
    gz.write_bytes(gzip.compress(b""))
    assert parse(gz)[0] == []


def test_missing_file_fails_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        iter_events(tmp_path / "nope.txt")


def test_last_line_without_newline_and_crlf() -> None:
    evs, stats = parse(f"{GOOD}\r\n{GOOD}\r\n{GOOD}")
    assert [e.lineno for e in evs] == [1, 2, 3] and stats.lines == 3
    assert all(e.ptr == 0 and e.call_site == "f+0x1/0x2" for e in evs)


def test_skip_bad_keeps_going_on_a_mixed_file() -> None:
    text = f"{GOOD}\nnonsense\n{GOOD}\n  x-1 [000] .... 1.0: kmalloc: call_site=f ptr=1 bytes_req=z\n{GOOD}\n"
    evs, stats = parse(text, skip_bad=True)
    assert [e.lineno for e in evs] == [1, 3, 5]
    assert stats.skipped == {"malformed: no cpu field": 1, "malformed: bad number in bytes_req": 1}


# ---------------------------------------------------------------------------------------------
# Sources: compressed files, stdin, file objects, chunking


def _compress_with_zstd(data: bytes, path: Path) -> bool:
    exe = shutil.which("zstd")
    if exe is None:
        return False
    path.write_bytes(subprocess.run([exe, "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout)
    return True


def test_compressed_inputs(tmp_path: Path) -> None:
    data = ORACLE_R2.read_bytes()
    want = parse(ORACLE_R2)[0]
    paths = []
    for suffix, compress in ((".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)):
        path = tmp_path / f"trace.txt{suffix}"
        path.write_bytes(compress(data))
        paths.append(path)
    if _compress_with_zstd(data, tmp_path / "trace.txt.zst"):
        paths.append(tmp_path / "trace.txt.zst")
    for path in paths:
        got, stats = parse(path)
        assert got == want, path
        assert stats.lines == count_lines(data)
    for path in paths[:2]:
        assert parse(str(path))[0] == want


def test_zstd_stopped_early_and_failing(tmp_path: Path) -> None:
    path = tmp_path / "trace.txt.zst"
    if not _compress_with_zstd(ORACLE_R2.read_bytes() * 50, path):
        pytest.skip("no zstd program")
    gen = iter_events(path)
    assert next(gen).lineno == 12
    gen.close()  # must stop the decompressor and not complain
    bad = tmp_path / "bad.txt.zst"
    bad.write_bytes(b"not zstd at all")
    with pytest.raises(TraceInputError, match="zstd failed"):
        list(iter_events(bad))


def test_zstd_without_decompressor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trace.txt.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd")
    real_import = importlib.import_module

    def no_zstandard(name: str) -> Any:
        if name == "zstandard":
            raise ImportError(name)
        return real_import(name)

    monkeypatch.setattr(importlib, "import_module", no_zstandard)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TraceInputError, match=r"zstandard.*zstd"):
        list(iter_events(path))


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    data = ORACLE_R1.read_bytes()
    want = parse(ORACLE_R1)[0]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    got, stats = parse("-")
    assert got == want and stats.lines == count_lines(data)
    monkeypatch.setattr(sys, "stdin", io.StringIO(data.decode()))  # no .buffer
    assert parse("-")[0] == want
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"garbage\n"), encoding="utf-8"))
    with pytest.raises(TraceParseError, match=r"^<stdin>:1: "):
        list(iter_events("-"))


def test_file_objects() -> None:
    want = parse(ORACLE_R1)[0]
    with open(ORACLE_R1, encoding="utf-8") as text_file:
        assert parse(text_file)[0] == want
    with open(ORACLE_R1, "rb") as binary_file:
        assert parse(binary_file)[0] == want
    assert parse(io.BytesIO(ORACLE_R1.read_bytes()))[0] == want


@pytest.mark.parametrize("binary", [False, True])
def test_tiny_chunks(monkeypatch: pytest.MonkeyPatch, binary: bool) -> None:
    """Lines, CRLF pairs and multi-byte characters cut across reads."""
    text = "".join(
        f"  ünï-{i} [001] ....  {i}.5: kmem_cache_free: call_site=f+0x1/0x2 ptr={i:016x} name=c{i}\r\n"
        for i in range(1, 40)
    )
    want = parse(text)[0]
    for size in (1, 2, 3, 7, 64):
        monkeypatch.setattr(ftrace, "CHUNK_SIZE", size)
        source = io.BytesIO(text.encode()) if binary else io.StringIO(text)
        got = parse(source)[0]
        assert got == want
    assert [(e.comm, e.pid, e.ptr, e.name, e.ts) for e in want[:2]] == [
        ("ünï", 1, 1, "c1", 1.5), ("ünï", 2, 2, "c2", 2.5)]


def test_streams_in_chunks(tmp_path: Path) -> None:
    """A few MiB: several reads, the stats kept up to date while iterating."""
    line = ORACLE_R1.read_text().splitlines()[24] + "\n"  # a kmalloc_node line
    path = tmp_path / "big.txt.gz"
    n = 3 * ftrace.CHUNK_SIZE // len(line) + 17
    path.write_bytes(gzip.compress(line.encode() * n))
    stats = ParseStats()
    count = 0
    for ev in iter_events(path, stats=stats):
        count += 1
        if count == n - 1:
            assert 0 < stats.lines < n and stats.consistent  # updated chunk by chunk
        assert ev.kind == E.KMALLOC_NODE
    assert count == n and stats.lines == n and stats.consistent


def test_early_close_keeps_stats_consistent() -> None:
    stats = ParseStats()
    gen = iter_events(ORACLE_R2, stats=stats)
    first = [next(gen) for _ in range(3)]
    gen.close()
    check_stats(stats, first, 11 + 3)


def test_event_record() -> None:
    assert E.KIND_NAMES[E.KMEM_CACHE_ALLOC_NODE] == "kmem_cache_alloc_node"
    assert len(set(E.KIND_NAMES)) == len(E.KIND_NAMES) == E.FUNC + 1
    ev = TraceEvent(E.MARK, 1, 0, 0.5, "sh", 9, text="x")
    assert not hasattr(ev, "__dict__")  # slotted
    assert (ev.kind_name, ev.node, ev.name, ev.pfn, ev.parent) == ("mark", -1, None, -1, "")
    assert E.ALLOC_KINDS | E.FREE_KINDS | E.PAGE_KINDS | {E.MARK, E.FUNC} == set(range(len(E.KIND_NAMES)))


def test_irq_context_from_the_irq_info_flags() -> None:
    """The flags column's third character gives the context a line was written in (TraceEvent.irq);
    without that column every line is task context.  The fast path (a cached prefix) and the general
    code agree: each prefix is seen twice."""
    tail = "kfree: call_site=rcu_core+0x1/0x2 ptr=ffff888012345040\n"
    lines = [
        ("           t-1     [000] ....     1.000001: ", 0),
        ("           t-1     [000] d.s.     1.000002: ", 1),
        ("           t-1     [000] d.h1     1.000003: ", 2),
        ("           t-1     [000] dNH.     1.000004: ", 2),
        ("           t-1     [000] d.z.     1.000005: ", 3),
        ("           t-1     [000]     1.000006: ", 0),
    ]
    text = "".join(p + tail for p, _ in lines) * 2
    evs = list(iter_events(io.StringIO(text)))
    assert [e.irq for e in evs] == [want for _, want in lines] * 2
    func = list(iter_events(io.StringIO("  ksoftirqd/0-11  [000] d.s.  5: cache_flusharray <-___cache_free\n")))
    assert func[0].irq == 1 and func[0].text == "cache_flusharray"

"""The parser's fast path (the first part of the loop in ``ftrace._iter_events``) gives what the
general code gives.

A line goes through the fast path only when its prefix (``comm-pid [cpu] flags``) is already cached,
so each line below is parsed twice: alone (the first line of an input: the general code) and after a
line with the same prefix (the fast path, or the general code when the fast path declines).  Both
must give the same event, or the same skip reason, or the same error with the same line number.
"""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import dataclasses
import io

import pytest

from kslab.trace import events as E
from kslab.trace import ftrace
from kslab.trace.errors import TraceParseError
from kslab.trace.ftrace import ParseStats, iter_events
from kslab.trace.synth import synth_lines

KEY = "          <idle>-0       [000] d...  "  # what the prefix cache is keyed by: all before " TIMESTAMP: "
WARM = KEY + " 0.000000: kfree: call_site=f+0x1/0x2 ptr=0000000000000000"
CS = "call_site=tracepoint_add_func+0x142/0x4f0"

PAYLOADS = [
    # kmem events as the oracle kernels and others print them
    f"kmalloc: {CS} ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc_node: {CS} ptr=ffff88800cc28600 bytes_req=448 bytes_alloc=512 gfp_flags=GFP_KERNEL|__GFP_ZERO node=0",
    f"kmalloc_node: {CS} ptr=ffff88800cc28600 bytes_req=448 bytes_alloc=512 gfp_flags=GFP_KERNEL",
    f"kmem_cache_alloc: {CS} ptr=ffff888012e273f0 bytes_req=48 bytes_alloc=48 gfp_flags=GFP_KERNEL|__GFP_ZERO name=ftrace_event_field",
    f"kmem_cache_alloc_node: {CS} ptr=ffff888012e273f0 bytes_req=48 bytes_alloc=48 gfp_flags=GFP_KERNEL node=1 name=x y",
    f"kmalloc: {CS} ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=true",
    f"kmalloc: {CS} ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL accounted=maybe",
    f"kmalloc: {CS} ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL|__GFP_NEWFLAG",
    f"kmalloc: {CS} ptr=ffff888012ddeb00 bytes_req=6x4 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc: {CS} ptr=ffff888012ddeb00 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc: {CS} ptr=ffff888012ddeb00 ",
    f"kmalloc: {CS} ptr=ffff888012ddeb00",
    f"kmalloc: {CS} ptr=0xFFFF888012DDEB00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc: {CS} ptr=-1 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc: {CS} ptr=ff_ff bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc: {CS} ptr= bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    f"kmalloc: {CS} ptr=(null) bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    # a bad pointer and an unknown flag: the general code stops at the pointer (the flag is not recorded)
    f"kmalloc: {CS} ptr=zz bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL|__GFP_OTHERFLAG",
    "kmalloc: call_site=ext4_foo+0x10/0x20 [ext4] ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_NOFS",
    "kmalloc:   call_site=f ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_NOFS",
    "kmalloc: ptr=ffff888012ddeb00 call_site=f bytes_req=64 bytes_alloc=64 gfp_flags=GFP_NOFS",
    "kfree: call_site=setup_kmem_cache_node+0xe5/0x3a0 ptr=0000000000000000",
    "kfree: call_site=f ptr=  (null)",
    "kmem_cache_free: call_site=do_set_mempolicy+0xbb/0x140 ptr=ffff888012e57168 name=numa_policy",
    "kmem_cache_free: call_site=x ptr=ffff888012e57168",
    "kmem:kmalloc: call_site=f ptr=ffff888012ddeb00 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL",
    "kmem_cache_alloc_bulk: call_site=f ptr=ffff888012ddeb00 size=3",
    ": call_site=f ptr=ffff888012ddeb00",
    # page allocator
    "mm_page_alloc: page=ffffea00004218c0 pfn=77352 order=0 migratetype=0 gfp_flags=__GFP_NOWARN|__GFP_COMP|__GFP_THISNODE",
    "mm_page_alloc: page=ffffea00004218c0 pfn=77352 order=99 migratetype=0 gfp_flags=GFP_KERNEL",
    "mm_page_alloc: page=ffffea00004218c0 pfn=0x12e28 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
    "mm_page_alloc: page=(null) pfn=77352 order=0 migratetype=0 gfp_flags=GFP_KERNEL",
    "mm_page_free: page=ffffea000008d2d0 pfn=10326 order=1",
    "mm_page_free: page=ffffea000008d2d0 pfn=10326",
    "mm_page_free: page=ffffea000008d2d0 pfn=1_0326 order=1",
    "mm_page_free_batched: page=ffffea000008d2d0 pfn=10326",
    "mm_page_free_batched:  page=ffffea000008d2d0 pfn=10326 order=0",
    "mm_page_alloc_zone_locked: page=ffffea000008d2d0 pfn=10326 order=0 migratetype=1 percpu_refill=1",
    # function tracer
    "cache_alloc_refill <-__kmalloc",
    "cache_alloc_refill+0x10/0x200 <-__kmalloc",
    "cache_alloc_refill+0x10/0x200 <-__kmalloc+0x5/0x10",
    "cache_alloc_refill",
    "cache_alloc_refill <-",
    "a b <-c",
    "a b",
    "<stack trace>",
    ":",
    "x:",
    "",
    # markers and other events
    "tracing_mark_write: oracle: snapshot 0-start begin",
    "tracing_mark_write: text with ptr=1 and pfn=2, ptr=ffff pfn=3",
    "tracing_mark_write: x ptr=ffff pfn=3 order=1",
    "sched_switch: prev_comm=a prev_pid=1 ==> next_comm=b next_pid=2",
    "mm_page_alloc_extfrag: page=ffffea000008d2d0 pfn=10326 alloc_order=0",
    "kmalloc:",
    "kmalloc",
]

TIMESTAMPS = ["0.000000", "12.345678", "1991", "1.123456789", "٣.5", "1e5", "1.", ".5", "1_0.5", "1.2.3", "inf",
              "9" * 400, "9" * 400 + ".5", "0x10", "", "-1.5", "1\t", "\t1"]


def outcome(text: str) -> tuple[object, ...]:
    """(events without their line numbers, skip reasons, unknown gfp flags, formats, clocks) of the
    last line of ``text``, or the error it raises, for skip_bad False and True."""
    out: list[object] = []
    for skip_bad in (False, True):
        stats = ParseStats()
        try:
            evs = list(iter_events(io.StringIO(text), skip_bad=skip_bad, stats=stats))
        except TraceParseError as e:
            out.append(("error", e.lineno - text.count("\n"), e.reason, e.line, str(e).split(":", 2)[2]))
            continue
        last = [dataclasses.replace(ev, lineno=0) for ev in evs if ev.lineno == text.count("\n") + 1]
        out.append((last, sorted(stats.skipped.items()), sorted(stats.unknown_gfp_flags), sorted(stats.clocks_seen)))
    return tuple(out)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_fast_path_payloads(payload: str) -> None:
    line = f"{KEY} 12.345678: {payload}"
    cold = outcome(line)
    warm = outcome(f"{WARM}\n{line}")
    # the warm-up line adds its own clock and skip nothing; compare what the last line gave
    assert [x[:3] if x[0] != "error" else x for x in warm] == [x[:3] if x[0] != "error" else x for x in cold]


@pytest.mark.parametrize("ts", TIMESTAMPS)
@pytest.mark.parametrize("payload", [PAYLOADS[0], PAYLOADS[21], "cache_alloc_refill <-__kmalloc", PAYLOADS[28]])
def test_fast_path_timestamps(ts: str, payload: str) -> None:
    line = f"{KEY} {ts}: {payload}"
    cold = outcome(line)
    warm = outcome(f"{WARM}\n{line}")
    assert [x[:3] if x[0] != "error" else x for x in warm] == [x[:3] if x[0] != "error" else x for x in cold]


def test_fast_path_prefix_without_colon() -> None:
    """A cached prefix on a line without ``: `` (cut short): the general code says what is wrong."""
    for line in (KEY + " 1.000000", KEY + " 1.000000 kfree", KEY + " 1.000000:x", KEY.rstrip()):
        assert outcome(f"{WARM}\n{line}")[0] == outcome(line)[0]
        assert outcome(line)[0][0] == "error"


def test_bad_pointer_does_not_record_the_flags_of_its_tail() -> None:
    """The general code parses the pointer before the other fields: the fast path must not look at the
    fields (whose gfp flags would be recorded as unknown) of a line with a bad pointer."""
    bad = f"{KEY} 1.000000: kmalloc: {CS} ptr=zz bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL|__GFP_OTHERFLAG"
    stats = ParseStats()
    list(iter_events(io.StringIO(f"{WARM}\n{bad}"), skip_bad=True, stats=stats))
    assert stats.skipped == {"malformed: bad pointer in ptr": 1}
    assert stats.unknown_gfp_flags == set()


def test_errors_after_fast_lines_name_the_right_line() -> None:
    good = [f"{KEY} 1.{i:06d}: {PAYLOADS[0]}" for i in range(5000)]
    bad = f"{KEY} 2.000000: kmalloc: {CS} ptr=ffff888012ddeb00 bytes_req=6x4 bytes_alloc=64 gfp_flags=GFP_KERNEL"
    text = "\n".join([*good, bad, *good])
    with pytest.raises(TraceParseError) as info:
        list(iter_events(io.StringIO(text)))
    assert info.value.lineno == 5001 and info.value.reason == "malformed: bad number in bytes_req"
    stats = ParseStats()
    evs = list(iter_events(io.StringIO(text), skip_bad=True, stats=stats))
    assert len(evs) == 10000 and [ev.lineno for ev in evs] == [*range(1, 5001), *range(5002, 10002)]
    assert stats.skipped == {"malformed: bad number in bytes_req": 1} and stats.consistent


def test_synthetic_trace_in_small_and_large_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path keeps its caches across reads: the same events whatever the size of the reads."""
    text = "\n".join(synth_lines(20_000, seed=3, cpus=4, nodes=2)) + "\n"
    stats = ParseStats()
    want = list(iter_events(io.StringIO(text), stats=stats))
    assert stats.events == len(want) and stats.consistent and len(want) > 19_000
    assert {ev.kind for ev in want} >= {E.KMALLOC, E.KFREE, E.KMEM_CACHE_ALLOC, E.KMEM_CACHE_FREE}
    for size in (997, 65_536):
        monkeypatch.setattr(ftrace, "CHUNK_SIZE", size)
        stats2 = ParseStats()
        assert list(iter_events(io.StringIO(text), stats=stats2)) == want
        assert stats2 == stats

"""kslab ask (report.ask): the answers follow mm/slab.c's rules."""

from __future__ import annotations

import io
import itertools

import pytest

from kslab.cli import main
from kslab.mm.config import MachineConfig
from kslab.mm.gfp import GFP_KERNEL
from kslab.mm.kernel import Kernel
from kslab.mm.slab.free import kfree
from kslab.mm.slab.kmalloc import kmalloc
from kslab.report import ask
from kslab.trace.ftrace import iter_events


def _k(**opts: object) -> Kernel:
    return Kernel(MachineConfig.build(**opts))  # type: ignore[arg-type]


def test_holder_names_every_place_an_object_can_be() -> None:
    k = _k()
    a, b = kmalloc(k, 100, GFP_KERNEL), kmalloc(k, 100, GFP_KERNEL)
    kfree(k, a)
    ha, hb = ask.holder(k, a), ask.holder(k, b + 5)
    assert (ha.where, ha.cpu, ha.cache) == (ask.Where.CPU_ARRAY, 0, "kmalloc-128")
    assert (hb.where, hb.offset, hb.index) == (ask.Where.CALLER, 5, (b - k.page_of(b).s_mem) // 128)  # type: ignore[union-attr]
    # a slot above page->active of a partial slab: on the slab's freelist
    c, page = next((c, p) for c in k.slab_caches for n in c.node if n is not None for p in n.slabs_partial)
    assert page.fl is not None
    h = ask.holder(k, page.s_mem + page.fl[page.active] * c.size)
    assert (h.where, h.slab_list, h.cache) == (ask.Where.SLAB, "partial", c.name)
    assert ask.holder(k, 0x1000).where is ask.Where.NOT_SLAB


def test_next_objects_pop_the_array_then_refill_then_grow() -> None:
    k = _k()
    c = k.find_cache("kmalloc-256")
    assert c is not None
    ac = c.cpu_cache[0]
    n = c.node[0]
    assert n is not None
    cached = list(reversed(ac.entry))  # ____cache_alloc pops ac->entry LIFO
    shared = len(n.shared.entry) if n.shared is not None else 0
    want_before = len(ac.entry) + shared + n.free_objects  # then cache_alloc_refill finds nothing: cache_grow
    a = ask.next_objects(k, c, 0, max(1, len(cached)))
    assert [o.addr for o in a.objects[:len(cached)]] == cached
    assert a.before_fresh == want_before


def test_fresh_objects_follow_random_seq_from_an_unknown_start() -> None:
    k = _k(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=5)
    c = k.find_cache("kmalloc-512")
    assert c is not None and c.random_seq is not None
    a = ask.next_objects(k, c, 0, 200)
    assert a.seq == c.random_seq and abs(sum(a.start_p) - 1) == 0
    fresh = [o for o in a.objects if o.fresh == 1]
    assert fresh and all(o.random for o in fresh)
    page = k.mem_map.pfn_to_page(fresh[0].pfn)
    assert page is not None
    by_slot = {o.slot: (o.addr - page.s_mem) // c.size for o in fresh}
    seq, num = c.random_seq, c.num
    pos = [seq.index(by_slot[s]) for s in sorted(by_slot)]
    # consecutive slots are consecutive entries of random_seq (read from the start, wrapping around)
    assert all((q - p) % num == 1 for p, q in itertools.pairwise(pos))


@pytest.mark.parametrize("size", [512, 4096])
def test_release_follows_free_limit_and_cache_reap(size: int) -> None:
    k = _k()
    objs = [kmalloc(k, size, GFP_KERNEL) for _ in range(60)]
    c = k.kmalloc_slab(size, GFP_KERNEL)
    assert c is not None
    r = ask.until_release(k, objs[-1])
    assert r.tofree == (r.free_limit + 5 * c.num - 1) // (5 * c.num)
    assert r.released_by_free != (r.reap_seconds is not None)
    assert not any(ask.holder(k, o).where is ask.Where.CALLER for o in objs[-1:])
    page = k.mem_map.pfn_to_page(r.pfn)
    assert page is None or page.slab_cache is not c  # back to the page allocator
    k.check()


def test_slot_history_pairs_a_free_with_the_next_allocation() -> None:
    text = ("# tracer: nop\n"
            "  t-1 [000] .... 1: kmalloc: call_site=a+0x1/0x2 ptr=ffff888001000000 bytes_req=8 bytes_alloc=8 "
            "gfp_flags=GFP_KERNEL\n"
            "  t-1 [000] .... 2: kfree: call_site=b+0x1/0x2 ptr=ffff888001000000\n"
            "  t-1 [000] .... 3: kmem_cache_alloc: call_site=c+0x1/0x2 ptr=ffff888001000000 bytes_req=8 "
            "bytes_alloc=8 gfp_flags=GFP_KERNEL name=foo\n"
            "  t-1 [000] .... 4: kfree: call_site=b+0x1/0x2 ptr=ffff888001000000\n")
    h = ask.SlotHistory()
    for ev in iter_events(io.StringIO(text)):
        h.observe(ev)
    pairs = h.after_free(0xFFFF888001000000)
    got = [(f.line, a.line if a else None, a.cache if a else None) for f, a in pairs]
    assert got == [(3, 4, "foo"), (5, None, None)]


def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--script", "kmalloc x", "--holder", "#1"]) != 0
    assert "--script operation 1" in capsys.readouterr().err
    assert main(["ask", "--script", "kmalloc 8", "--holder", "#2"]) != 0
    assert "#I names" in capsys.readouterr().err
    assert main(["ask", "--next", "nosuch"]) != 0
    assert "no such cache" in capsys.readouterr().err


def test_ask_in_a_replay_of_a_real_trace(capsys: pytest.CaptureFixture[str]) -> None:
    # capture F2's first 30000 lines (FREELIST_RANDOM kernel, 2 CPUs): the answers at a line of the trace
    from pathlib import Path  # noqa: PLC0415
    data = Path(__file__).resolve().parents[1] / "trace" / "data"
    base = [str(data / "oracle-F2-head.txt.xz"), "--cpus", "2", "--freelist-random", "--caches",
            str(data / "oracle-F2-caches.manifest.xz"), "-q"]
    # freed at line 3026 (kfree), taken again at line 3034 (the trace's lines, counted from 1)
    assert main(["ask", *base, "--reuse", "0xffff88800285ac00"]) == 0
    out = capsys.readouterr().out
    assert "freed at line 3026" in out and "taken at line 3034" in out and "the model's object 0x" in out
    assert main(["ask", *base, "--at-line", "20000", "--next", "kmalloc-64", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "allocation(s) before the first from a fresh slab" in out
    assert main(["ask", *base, "--at-line", "3033", "--holder", "0xffff88800285ac00"]) == 0
    assert "(the model's object for the kernel's 0xffff88800285ac00): cache kmalloc-32" in capsys.readouterr().out

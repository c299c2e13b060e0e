"""CONFIG_SLAB_FREELIST_RANDOM in a replay (trace.replay.shuffle): each cache's random_seq learnt from the
objects its fresh slabs hand out, then every new slab's order predicted from its first object.

The traced kernel here is the model itself, booted with another random seed: its random_seq and start
positions are unknown to the replay, which must find them from the pointers alone, as from a real trace.
"""

from __future__ import annotations

import io
import random
from collections import Counter

import pytest

from kslab.mm.config import MachineConfig
from kslab.mm.gfp import GFP_KERNEL
from kslab.mm.kernel import Kernel
from kslab.mm.slab.free import kfree
from kslab.mm.slab.kmalloc import kmalloc
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Replayer, ReplayOptions
from kslab.trace.replay.shuffle import FreshAlloc, SlabRec, _relabel

HEADER = "# tracer: nop\n#\n"


def _boot_slab_pages(k: Kernel, size: int) -> set[int]:
    """The pages of the kmalloc cache's slabs made at boot (before any trace)."""
    c = k.kmalloc_slab(size, GFP_KERNEL)
    assert c is not None and not isinstance(c, int)
    return {p.pfn for n in c.node if n is not None
            for lst in (n.slabs_partial, n.slabs_full, n.slabs_free) for p in lst}


def _traced_kernel_run(seed: int, size: int, ops: int) -> tuple[Kernel, str]:
    """Run kmalloc/kfree of ``size`` bytes on a FREELIST_RANDOM model seeded ``seed`` (the 'kernel'), and
    write what it did as an ftrace text: the trace a real kernel would have left."""
    k = Kernel(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=seed))
    k.boot_pages = _boot_slab_pages(k, size)  # type: ignore[attr-defined]
    rnd = random.Random(7)
    live: list[int] = []
    lines = [HEADER]
    for ts in range(1, ops + 1):
        if live and rnd.random() < 0.3:
            p = live.pop(rnd.randrange(len(live)))
            kfree(k, p)
            lines.append(f"  t-9 [000] .... {ts}: kfree: call_site=t_free+0x1/0x2 ptr={p:x}\n")
        else:
            p = kmalloc(k, size, GFP_KERNEL)
            assert p
            live.append(p)
            lines.append(f"  t-9 [000] .... {ts}: kmalloc: call_site=t_alloc+0x1/0x2 ptr={p:x} bytes_req={size} "
                         f"bytes_alloc={size} gfp_flags=GFP_KERNEL\n")
    return k, "".join(lines)


def _replay(text: str, seed: int) -> tuple[Replayer, list[tuple[int, int]]]:
    rep = Replayer(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=seed), None, ReplayOptions())
    rep.run(iter_events(io.StringIO(text)))
    rep.check()
    return rep, []


def _rotations(seq: list[int]) -> set[tuple[int, ...]]:
    return {tuple(seq[i:] + seq[:i]) for i in range(len(seq))}


@pytest.mark.parametrize("size", [64, 192, 1024])
def test_learns_random_seq_then_predicts_every_new_slab(size: int) -> None:
    kern, text = _traced_kernel_run(seed=11, size=size, ops=3000)
    rep, _ = _replay(text, seed=99)
    cachep = rep.k.kmalloc_slab(size, GFP_KERNEL)
    assert cachep is not None and not isinstance(cachep, int)
    name = cachep.name
    counts = rep.summary.freelist[name]
    # learnt: the cycle found is the traced kernel's random_seq (known up to rotation: shuffle_freelist only
    # ever reads it from a random start), and it took at most two slabs' worth of fresh objects
    assert rep.shuffle is not None
    cyc = rep.shuffle.learners[cachep].cycle()
    ks = kern.find_cache(name)
    assert ks is not None and ks.random_seq is not None and cyc is not None
    assert tuple(cyc) in _rotations(ks.random_seq)
    learned = rep.summary.freelist_learned[name]
    assert learned == counts[FreshAlloc.LEARNING] and learned <= 2 * cachep.num
    # then every new slab: its first object gives the start, the rest is predicted, never wrong
    assert counts[FreshAlloc.START] >= 3
    assert counts[FreshAlloc.PREDICTED] >= counts[FreshAlloc.START] * (cachep.num // 2)
    assert counts[FreshAlloc.MISPREDICTED] == 0
    # (the slab the boot left partly used is not one the trace saw grow: its first objects do not match)
    assert counts[FreshAlloc.UNMATCHED] <= cachep.num // 8


def test_every_object_sits_where_the_kernels_does() -> None:
    # layout: the model's object at the same offset inside its slab as the kernel's, for every allocation
    kern, text = _traced_kernel_run(seed=3, size=96, ops=2500)
    rep = Replayer(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=4), None, ReplayOptions())
    pairs: list[tuple[int, int]] = []
    orig = rep.applier.record_alloc

    def spy(ev, mptr, cachep):  # type: ignore[no-untyped-def]
        pairs.append((ev.ptr, mptr))
        orig(ev, mptr, cachep)

    rep.applier.record_alloc = spy  # type: ignore[method-assign]
    rep.fast_path = False
    rep.run(iter_events(io.StringIO(text)))
    rep.check()
    assert len(pairs) > 1500
    # (objects of the slab the boot made: what the boot took from it was not traced, so cannot be known)
    boot = {kern.mem_map.virt_to_head_page(kp).pfn for kp, _ in pairs} & kern.boot_pages  # type: ignore[attr-defined, union-attr]
    assert len(boot) == 1
    wrong = [i for i, (kp, mp) in enumerate(pairs) if kp % 4096 != mp % 4096
             and kern.mem_map.virt_to_head_page(kp).pfn not in boot]  # type: ignore[union-attr]
    assert wrong == []


def test_without_the_follower_layout_is_lost() -> None:
    # the same trace replayed without learning (the follower unhooked): the model's own random starts put
    # most fresh objects elsewhere, which is what the follower is for
    _, text = _traced_kernel_run(seed=3, size=96, ops=1500)
    rep = Replayer(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=4), None, ReplayOptions())
    rep.applier.shuffle = rep.applier.fast.shuffle = None
    got: Counter[bool] = Counter()
    orig = rep.applier.record_alloc

    def spy(ev, mptr, cachep):  # type: ignore[no-untyped-def]
        got[ev.ptr % 4096 == mptr % 4096] += 1
        orig(ev, mptr, cachep)

    rep.applier.record_alloc = spy  # type: ignore[method-assign]
    rep.fast_path = False
    rep.run(iter_events(io.StringIO(text)))
    assert got[False] > got[True]


def test_relabel_is_a_permutation_of_the_free_objects() -> None:
    from kslab.mm.slab_def import KmemCache  # noqa: PLC0415
    rec = SlabRec(KmemCache.__new__(KmemCache), 0, 1, bytearray([3, 1, 0, 2, 4]), [2, 1, 3, 0, 4],
                  bytearray(5), True)
    free = {0, 2, 3, 4}  # object 1 (slot 1) is held by a caller
    r = _relabel(rec, {0: 2, 2: 1, 3: 4}, free)  # object 1 is not free: slot 2 cannot get it
    assert set(r) == set(r.values()) and set(r) <= free
    new = [r.get(x, x) for x in rec.order]
    assert new[0] == 2 and new[3] == 4 and new[1] == 1
    assert sorted(new) == [0, 1, 2, 3, 4]


def test_real_trace_random_seq_paired_and_learnt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # the first 30000 lines of capture F2 (a 5.10 kernel with CONFIG_SLAB_FREELIST_RANDOM=y, 2 CPUs): the
    # kcallocs of cache_random_seq_create are the model's own random_seq arrays, paired, not replayed
    import lzma  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from kslab.manifest import read_manifest  # noqa: PLC0415
    data = Path(__file__).resolve().parent / "data"
    trace = data / "oracle-F2-head.txt.xz"
    with lzma.open(trace, "rt") as f:
        kcallocs = sum("call_site=cache_random_seq_create+" in ln for ln in f)
    rep = Replayer(MachineConfig.build(cpus=2, mem="2G", CONFIG_SLAB_FREELIST_RANDOM=True),
                   read_manifest(data / "oracle-F2-caches.manifest.xz"), ReplayOptions(ptr_map=str(tmp_path / "p.csv")))
    seen: Counter[str] = Counter()
    assert rep.shuffle is not None
    rep.shuffle.observer = lambda kind: seen.update([kind])  # what benchmarks/freelist_layout.py counts by
    rep.run(iter_events(str(trace)))
    rep.check()
    every: Counter[str] = Counter()
    for row in rep.summary.freelist.values():
        every.update(row)
    assert seen == every
    internal = rep.summary.internal
    assert kcallocs == 60 and internal["alloc:random_seq paired"] == kcallocs
    assert internal["alloc:random_seq trace only"] == 0
    learned = rep.summary.freelist_learned
    assert {"kmalloc-64", "pid", "signal_cache"} <= set(learned)
    c64 = rep.k.find_cache("kmalloc-64")
    assert c64 is not None and learned["kmalloc-64"] <= 2 * c64.num
    total: Counter[str] = Counter()
    for row in rep.summary.freelist.values():
        total.update(row)
    assert total[FreshAlloc.PREDICTED] > 20 * total[FreshAlloc.START] > 0
    assert total[FreshAlloc.MISPREDICTED] == 0
    # kmalloc-32 and kmalloc-96: the model grows a slab where the kernel goes on with its boot-time slab
    # (shuffled by a per-slab PRNG, still a live slab of the model too); that slab's kernel objects are no
    # fresh slab's order, and are never fed to the learner, then or later (they blocked both caches on F2)
    sh = rep.shuffle
    assert sh is not None
    # (since kmem_cache_init_late is followed one enable_cpucache line at a time, kmalloc-96's boot slab is no
    # longer shared in this excerpt; kmalloc-32's still is)
    for name in ("kmalloc-32",):
        shared = [r for r in sh.slabs.values() if r.cache.name == name and r.shared]
        assert shared and rep.summary.freelist[name][FreshAlloc.SHARED] > len(shared)
        lr = sh.learners.get(shared[0].cache)
        assert lr is None or not any(lr.slabs.get(r.lid) for r in shared)


def test_stats_reports_per_cache_learning(capsys) -> None:  # type: ignore[no-untyped-def]
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from kslab.cli import main  # noqa: PLC0415
    data = Path(__file__).resolve().parent / "data"
    args = ["stats", str(data / "oracle-F2-head.txt.xz"), "--cpus", "2", "--freelist-random", "--caches",
            str(data / "oracle-F2-caches.manifest.xz"), "-q", "--slab"]
    assert main([*args, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["freelist_random"]
    k64 = rows["kmalloc-64"]
    assert 0 < k64["learned after"] == k64[FreshAlloc.LEARNING] and k64[FreshAlloc.PREDICTED] > k64["learned after"]
    assert main(args) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("kmalloc-64 "))
    assert line.split()[1] == str(k64["learned after"]) and str(k64[FreshAlloc.PREDICTED]) in line.split()

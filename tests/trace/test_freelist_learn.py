"""Learning random_seq from fresh slabs, on orders the model itself made (mm/slab.c shuffle_freelist
with a pre-computed list: a rotation of the cache's random_seq; objfreelist: the walk's first entry last)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slab.freelist_random import freelist_randomize, prandom_seed_state
from kslab.mm.slab_def import CFLGS_OBJFREELIST_SLAB
from kslab.trace.freelist_learn import FreelistLearner, Seen, start_distribution


def _fresh_slabs(k: Kernel, c, n: int) -> list:  # type: ignore[no-untyped-def]
    """At least ``n`` slabs of ``c`` grown after boot, each with the order shuffle_freelist gave it."""
    pages, seen = [], set()
    while len(pages) < n:
        p = k.page_of(k.kmem_cache_alloc(c))
        if p is not None and p.pfn not in seen:
            seen.add(p.pfn)
            pages.append((p.pfn, list(p.fl)))
    return pages


@pytest.fixture(scope="module")
def machine() -> Kernel:
    return Kernel(MachineConfig.build(cpus=2, CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=4))


@pytest.mark.parametrize("size", [64, 128, 700, 3000])
def test_one_slab_teaches_the_cycle_then_one_object_predicts_each_slab(machine, size):
    k = machine
    c = k.kmem_cache_create(f"learn-{size}", size, 0, 0)
    assert c is not None and c.random_seq is not None
    slabs = _fresh_slabs(k, c, 6)
    lr = FreelistLearner(c.num)
    pfn0, order0 = slabs[0]
    for slot, idx in enumerate(order0):
        lr.fresh(pfn0, slot, idx)
    assert lr.complete and lr.learned_after == c.num  # num - 1 links; the closing one is forced
    cyc = lr.cycle()
    assert cyc is not None
    r = c.random_seq.index(cyc[0])
    assert cyc == c.random_seq[r:] + c.random_seq[:r]  # random_seq, up to rotation
    for pfn, order in slabs[1:]:
        assert lr.fresh(pfn, 0, order[0]) is Seen.FIRST
        assert lr.predict(pfn) == dict(enumerate(order))
        start = lr.start(pfn)
        assert start is not None and cyc[start] == order[0]
    # an objfreelist cache is covered like the others: its freelist is a rotation too
    assert size != 128 or c.flags & CFLGS_OBJFREELIST_SLAB


def test_partial_knowledge_never_predicts_wrong(machine):
    k = machine
    c = k.kmem_cache_create("learn-partial", 256, 0, 0)
    assert c is not None
    slabs = _fresh_slabs(k, c, 8)
    lr = FreelistLearner(c.num)
    for i, (pfn, order) in enumerate(slabs):
        for slot in range(0, c.num // 3):  # only the first third of every slab
            lr.fresh(pfn, slot, order[slot])
        for s, (p2, o2) in enumerate(slabs[: i + 1]):
            for slot, idx in lr.predict(p2).items():
                assert o2[slot] == idx, (s, slot)
    assert lr.learned_after is None or lr.learned_after <= 8 * (c.num // 3)


def test_a_slab_shuffled_without_the_list_is_set_aside():
    num = 20
    seq = freelist_randomize(prandom_seed_state(99), num)
    lr = FreelistLearner(num)
    for slot in range(num):
        lr.fresh(1, slot, seq[(5 + slot) % num])
    cyc = lr.cycle()
    dynamic = freelist_randomize(prandom_seed_state(7), num)  # a boot-time slab's own order
    results = [lr.fresh(2, slot, idx) for slot, idx in enumerate(dynamic)]
    assert Seen.CONFLICT in results and results[-1] is Seen.IGNORED
    assert lr.cycle() == cyc and lr.predict(2) == {}


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 120), st.integers(0, 2**64 - 1), st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=6),
       st.integers(1, 10), st.booleans())
def test_learning_from_rotations(num, seed, rands, take, objfreelist):
    seq = freelist_randomize(prandom_seed_state(seed), num)
    lr = FreelistLearner(num)
    orders = []
    for slab, rand in enumerate(rands):
        start = rand % num
        walk = [seq[(start + i) % num] for i in range(num)]
        order = walk[1:] + walk[:1] if objfreelist else walk
        orders.append(order)
        for slot in range(min(take, num)):
            assert lr.fresh(slab, slot, order[slot]) is not Seen.CONFLICT
    for slab, order in enumerate(orders):
        for slot, idx in lr.predict(slab).items():
            assert order[slot] == idx
    if lr.complete:
        assert all(lr.predict(s) == dict(enumerate(o)) for s, o in enumerate(orders))


def test_start_distribution():
    assert start_distribution(64) == [Fraction(1, 64)] * 64
    d = start_distribution(3)  # 2**32 = 3 * 1431655765 + 1: position 0 has one value more
    assert d[0] == Fraction(1431655766, 2**32) and d[1] == d[2] == Fraction(1431655765, 2**32)
    assert sum(start_distribution(37)) == 1


def test_bad_input():
    with pytest.raises(ValueError):
        FreelistLearner(1)
    with pytest.raises(ValueError):
        FreelistLearner(4).fresh(0, 4, 0)


def test_a_link_that_would_close_a_short_cycle_is_a_conflict():
    lr = FreelistLearner(6)
    for slot, idx in enumerate([0, 1, 2]):
        assert lr.fresh(1, slot, idx) is not Seen.CONFLICT
    # 2 -> 0 would make the cycle 0, 1, 2 of three objects: random_seq is one cycle through all six
    assert lr.fresh(2, 0, 2) is Seen.FIRST
    assert lr.fresh(2, 1, 0) is Seen.CONFLICT
    assert lr.succ == {0: 1, 1: 2}
    # a slot seen again with another object contradicts the slab itself: its votes go, and slab 2's
    # link, which only slab 1 contradicted, is taken
    assert lr.fresh(1, 0, 0) is Seen.CONFIRMED
    assert lr.fresh(1, 0, 5) is Seen.CONFLICT and lr.succ == {2: 0}
    assert lr.fresh(1, 1, 1) is Seen.IGNORED and lr.set_aside() == 1


def _rotations(seq: list[int], starts: list[int], take: int) -> list[list[tuple[int, int]]]:
    """The first ``take`` (slot, object) pairs of slabs shuffled from ``seq`` at each start."""
    num = len(seq)
    return [[(slot, seq[(st + slot) % num]) for slot in range(take)] for st in starts]


@pytest.mark.parametrize("num", [42, 128])
def test_one_bad_early_slab_is_outvoted(num):
    """F2's kmalloc-32 and kmalloc-96: the first slab the learner heard of showed an order that is no
    rotation of random_seq (a boot-time slab's own PRNG order); the good slabs after it agree with each
    other, and outvote it."""
    seq = freelist_randomize(prandom_seed_state(2024), num)
    bad = freelist_randomize(prandom_seed_state(5), num)  # shuffle_freelist's dynamic case
    lr = FreelistLearner(num)
    for slot in range(num // 2):
        lr.fresh(100, slot, bad[slot])
    good = _rotations(seq, [3, 17, num // 2, num - 5, 9], num // 2)
    for sid, pairs in enumerate(good):
        for slot, idx in pairs:
            lr.fresh(sid, slot, idx)
    cyc = lr.cycle()
    assert cyc is not None and lr.votes > 0
    r = seq.index(cyc[0])
    assert cyc == seq[r:] + seq[:r]
    assert 100 not in lr.listed and lr.predict(100) == {}
    assert all(lr.predict(sid) == {s: seq[(st + s) % num] for s in range(num)}
               for sid, st in enumerate([3, 17, num // 2, num - 5, 9]))
    # settled (every link shown by two slabs): a new slab that disagrees is unlisted at once
    for sid, pairs in enumerate(_rotations(seq, [0, num // 4, 3 * num // 4], num), 10):
        for slot, idx in pairs:
            lr.fresh(sid, slot, idx)
    assert lr.settled
    other = freelist_randomize(prandom_seed_state(6), num)
    got = [lr.fresh(200, s, other[s]) for s in range(6)]
    assert Seen.CONFLICT in got and lr.cycle() == cyc and 200 not in lr.listed


@settings(max_examples=40, deadline=None)
@given(st.integers(8, 80), st.integers(0, 2**64 - 1), st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=6),
       st.integers(0, 2**32 - 1))
def test_vote_never_keeps_a_wrong_cycle_once_good_slabs_agree(num, seed, rands, noise):
    """Whatever a first noisy slab shows, three or more good slabs of more than half a slab each make the
    cycle random_seq (up to rotation) once they cover it, and every good slab is predicted right."""
    seq = freelist_randomize(prandom_seed_state(seed), num)
    bad = freelist_randomize(prandom_seed_state(noise), num)
    lr = FreelistLearner(num)
    for slot in range(num // 2):
        lr.fresh(-1, slot, bad[slot])
    starts = [r % num for r in rands]
    take = num // 2 + 2
    for sid, pairs in enumerate(_rotations(seq, starts, take)):
        for slot, idx in pairs:
            lr.fresh(sid, slot, idx)
    for sid, stt in enumerate(starts):
        for slot, idx in lr.predict(sid).items():
            assert idx == seq[(stt + slot) % num]
    cyc = lr.cycle()
    if cyc is not None:
        r = seq.index(cyc[0])
        assert cyc == seq[r:] + seq[:r]

"""CONFIG_SLAB_FREELIST_RANDOM, from the kernel's rules (mm/slab.c shuffle_freelist and its helpers,
mm/slab_common.c cache_random_seq_create, lib/random32.c prandom_u32_state).

The generator is checked two ways that do not use the model's code: fixed vectors printed by an
independent C implementation of L'Ecuyer's LFSR113 (tests/mm/data/lfsr113_vectors.c, recompiled here
when gcc is at hand), and the recurrence every Tausworthe component obeys: the top k bits of a
component's state are k consecutive bits of a sequence with x[j+k] = x[j] ^ x[j+q], and one step
advances that window by s bits.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slabhelp import boot

from kslab.mm.config import MachineConfig
from kslab.mm.kernel import Kernel
from kslab.mm.slab.freelist_random import (
    RndState,
    fisher_yates,
    prandom_seed_state,
    prandom_u32_state,
)
from kslab.mm.slab_common import kmem_cache_size_of_struct
from kslab.mm.slab_def import CFLGS_OBJFREELIST_SLAB, CFLGS_OFF_SLAB

C_SOURCE = Path(__file__).parent / "data" / "lfsr113_vectors.c"

#: printed by tests/mm/data/lfsr113_vectors.c: seed -> the first six outputs
VECTORS = {
    0x0: [1574944, 268744, 1109394980, 8552980, 826355289, 2421007874],
    0x1: [276959246, 18909696, 2298495022, 9442690, 3222971081, 2202869889],
    0xDEADBEEF: [1102069293, 3938551990, 1700228878, 3940971296, 1284401374, 4087523160],
    0x123456789ABCDEF0: [1565990206, 3253438099, 3391650309, 307209238, 3498746814, 4280234225],
    0xFFFFFFFFFFFFFFFF: [260173829, 14711295, 2030026778, 7343233, 3220595128, 2126831743],
}
PERM42 = [3, 8, 4, 6, 2, 7, 0, 1, 9, 5]

#: LFSR113's components: (k, q, s) of the trinomial z^k + z^q + 1 and the step size
COMPONENTS = ((31, 6, 18), (29, 2, 2), (28, 13, 7), (25, 3, 13))


def test_fixed_vectors():
    for seed, want in VECTORS.items():
        state = prandom_seed_state(seed)
        assert [prandom_u32_state(state) for _ in want] == want, hex(seed)
    assert fisher_yates(prandom_seed_state(42), 10) == PERM42


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_vectors_match_the_c_program(tmp_path):
    exe = tmp_path / "lfsr113"
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(C_SOURCE)], check=True)
    lines = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines()
    got = {int(a, 16): [int(x) for x in b.split()] for a, b in (ln.split(":") for ln in lines[:-1])}
    assert got == VECTORS
    assert [int(x) for x in lines[-1].split(":")[1].split()] == PERM42


def _window(z: int, k: int) -> list[int]:
    return [(z >> (31 - i)) & 1 for i in range(k)]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (1 << 64) - 1), st.integers(0, 40))
def test_every_component_follows_its_recurrence(seed, skip):
    state = prandom_seed_state(seed)
    for _ in range(skip):
        prandom_u32_state(state)
    before = (state.s1, state.s2, state.s3, state.s4)
    out = prandom_u32_state(state)
    after = (state.s1, state.s2, state.s3, state.s4)
    assert out == after[0] ^ after[1] ^ after[2] ^ after[3]
    for (k, q, s), z0, z1 in zip(COMPONENTS, before, after, strict=True):
        x = _window(z0, k)
        for j in range(s):
            x.append(x[j] ^ x[j + q])
        assert _window(z1, k) == x[s:s + k]


@given(st.integers(0, (1 << 64) - 1))
def test_seed_fold_and_minimum_states(seed):
    i = ((seed >> 32) ^ (seed << 10) ^ seed) & 0xFFFFFFFF
    st_ = prandom_seed_state(seed)
    for got, m in zip((st_.s1, st_.s2, st_.s3, st_.s4), (2, 8, 16, 128), strict=True):
        assert got == (i + m if i < m else i)


def test_seed_zero_gives_the_minimum_states():
    assert prandom_seed_state(0) == RndState(2, 8, 16, 128)


# ---- the model ------------------------------------------------------------------------------------

class Draws(random.Random):
    """Stands in for ``Kernel.crng``: hands out the ``script`` values first (then seeded ones) and
    records every draw as (bits, value)."""

    def __init__(self, script: list[int] | None = None, seed: int = 0) -> None:
        super().__init__(seed)
        self.script = list(script or [])
        self.drawn: list[tuple[int, int]] = []

    def getrandbits(self, n: int) -> int:
        v = self.script.pop(0) if self.script else super().getrandbits(n)
        self.drawn.append((n, v))
        return v

    def ints(self) -> list[int]:
        return [v for n, v in self.drawn if n == 32]


def _on(**kw: object) -> Kernel:
    return boot(CONFIG_SLAB_FREELIST_RANDOM=True, **kw)


def _slabs(c) -> list:  # type: ignore[no-untyped-def]
    return [p for n in c.node if n is not None for lst in (n.slabs_full, n.slabs_partial, n.slabs_free) for p in lst]


def _objfl(c) -> bool:  # type: ignore[no-untyped-def]
    return bool(c.flags & CFLGS_OBJFREELIST_SLAB)


def _dynamic_rule(c, rand: int) -> list[int]:  # type: ignore[no-untyped-def]
    """shuffle_freelist without a pre-computed list: a Fisher-Yates order from a PRNG seeded with the
    slab's random number; an objfreelist cache keeps its last object for the freelist."""
    state, n = prandom_seed_state(rand), c.num - _objfl(c)
    order = list(range(n))
    for i in reversed(range(1, n)):
        j = prandom_u32_state(state) % (i + 1)
        order[i], order[j] = order[j], order[i]
    return [*order, c.num - 1] if _objfl(c) else order


def _list_rule(c, rand: int) -> list[int]:  # type: ignore[no-untyped-def]
    """shuffle_freelist with random_seq: the list read from rand % num, wrapping; an objfreelist cache
    takes the first entry read for the freelist object, whose index goes last."""
    seq, num = c.random_seq, c.num
    start = rand % num
    walk = [seq[(start + i) % num] for i in range(num)]
    return walk[1:] + walk[:1] if _objfl(c) else walk


def test_random_seq_is_a_permutation_for_every_cache_that_may_have_one():
    k = _on(cpus=2, random_seed=5)
    for c in k.slab_caches:
        if c.num < 2:
            assert c.random_seq is None and not c.random_seq_addr, c.name
            continue
        assert c.random_seq is not None, c.name
        assert sorted(c.random_seq) == list(range(c.num)), c.name
        # kcalloc(num, sizeof(unsigned int)): a live kmalloc object big enough for the list
        assert k.ksize(c.random_seq_addr) >= 4 * c.num


def test_random_seq_comes_from_one_get_random_long():
    k = _on()
    k.crng = Draws([0x0123456789ABCDEF])
    c = k.kmem_cache_create("seq", 200, 0, 0)
    assert c is not None and c.random_seq is not None
    assert k.crng.drawn[0] == (64, 0x0123456789ABCDEF)
    assert c.random_seq == fisher_yates(prandom_seed_state(0x0123456789ABCDEF), c.num)


def test_boot_caches_shuffle_per_slab_until_kmem_cache_init_late():
    k = Kernel(MachineConfig.build(CONFIG_SLAB_FREELIST_RANDOM=True, random_seed=9), boot=False)
    k.crng = Draws(seed=9)
    k.boot_early()
    assert all(c.random_seq is None for c in k.slab_caches)
    assert all(n == 32 for n, _ in k.crng.drawn)  # no list made yet: only per-slab numbers
    for size in (192, 64, 1024):
        for _ in range(100):
            k.kmalloc(size)
    rules = {tuple(_dynamic_rule(c, r)) for c in k.slab_caches if c.num >= 2 for r in k.crng.ints()}
    slabs = [p for c in k.slab_caches if c.num >= 2 for p in _slabs(c)]
    assert len(slabs) == len(k.crng.ints())  # one get_random_int per slab grown
    assert all(tuple(p.fl) in rules for p in slabs)
    k.boot_complete()
    assert all(c.random_seq is not None for c in k.slab_caches if c.num >= 2)
    c = k.kmalloc_slab(192, 0)
    assert c is not None
    k.crng = Draws([12345])
    before = {p.pfn for p in _slabs(c)}
    while {p.pfn for p in _slabs(c)} == before:
        k.kmalloc(192)
    (new,) = [p for p in _slabs(c) if p.pfn not in before]
    assert list(new.fl) == _list_rule(c, 12345)


@pytest.mark.parametrize("size", [64, 200, 1000, 3000])
@pytest.mark.parametrize("rand", [0, 1, 63, 64, 0xFFFFFFFF, 0x80000001])
def test_start_position_and_wrap_around(size, rand):
    k = _on(random_seed=size)
    c = k.kmem_cache_create(f"test-{size}", size, 0, 0)
    assert c is not None and c.random_seq is not None
    k.crng = Draws([rand])
    obj = k.kmem_cache_alloc(c)
    page = k.page_of(obj)
    assert page is not None
    assert list(page.fl) == _list_rule(c, rand)
    # the slab hands out fl[0..active-1]: the objects a per-CPU refill took are the head of that order
    taken = list(page.fl[:page.active])
    assert (obj - page.s_mem) // c.size in taken
    k.check()


def test_objfreelist_object_is_the_walks_first_entry():
    k = _on(random_seed=3)
    c = k.kmem_cache_create("objfl", 128, 0, 0)
    assert c is not None and _objfl(c) and not c.flags & CFLGS_OFF_SLAB and c.random_seq is not None
    rand = 5 * c.num + 7
    k.crng = Draws([rand])
    page = k.page_of(k.kmem_cache_alloc(c))
    assert page is not None
    first = c.random_seq[7]
    assert page.fl[-1] == first and sorted(page.fl) == list(range(c.num))
    assert list(page.fl[:-1]) == [c.random_seq[(8 + i) % c.num] for i in range(c.num - 1)]
    # page.freelist lives in that object while the slab is not full
    assert page.freelist == page.s_mem + c.size * first + c.obj_offset
    k.check()


def test_option_off_changes_nothing():
    a = boot(cpus=2)
    b = boot(cpus=2, random_seed=77)  # the seed alone has no effect
    for k in (a, b):
        assert all(c.random_seq is None for c in k.slab_caches)
        objs = [k.kmalloc(100) for _ in range(300)]
        page = k.page_of(objs[-1])
        assert page is not None and page.fl == bytearray(range(len(page.fl or b"")))
        k.crng = Draws()
        k.kmem_cache_create("off", 300, 0, 0)
        [k.kmalloc(64) for _ in range(300)]
        assert not k.crng.drawn  # nothing draws from the stream
    assert kmem_cache_size_of_struct(a) == 136 + 8
    assert kmem_cache_size_of_struct(_on()) == 136 + 8 + 8
    assert a.slabinfo() == b.slabinfo()


def test_a_seed_repeats_exactly_and_seeds_differ():
    def run(seed: int) -> list[int]:
        k = _on(cpus=2, random_seed=seed)
        return [k.kmalloc(64) for _ in range(500)]
    assert run(11) == run(11)
    assert run(11) != run(12)


def test_destroy_frees_the_random_seq():
    k = _on()
    c = k.kmem_cache_create("gone", 300, 0, 0)
    assert c is not None and c.random_seq_addr
    addr, num = c.random_seq_addr, c.num
    assert k.virt_to_cache(addr) is not None
    k.kmem_cache_destroy(c)
    assert c.random_seq is None and not c.random_seq_addr
    # the object went back to its kmalloc cache: the next allocation there on this CPU is that object
    assert k.kmalloc(4 * num) == addr


@pytest.mark.parametrize("opts", [dict(cpus=2), dict(cpus=4, nodes=2), dict(cpus=2, CONFIG_DEBUG_SLAB=True),
                                  dict(cpus=2, init_on_free=True, CONFIG_SLAB_FREELIST_HARDENED=True)])
def test_invariants_hold_with_the_option_on(opts):
    k = _on(random_seed=1, **opts)
    k.check()
    live = []
    for i in range(3000):
        live.append((k.kmalloc([8, 64, 192, 700, 2000, 5000][i % 6], cpu=i % k.nr_cpu_ids), i % k.nr_cpu_ids))
        if i % 3 == 2:
            p, cpu = live.pop(len(live) // 2)
            k.kfree(p, cpu=(cpu + 1) % k.nr_cpu_ids)
    k.check()
    for p, cpu in live:
        k.kfree(p, cpu=cpu)
    k.advance(10 * k.config.HZ)
    k.check()


def test_check_catches_a_broken_random_seq():
    from kslab.mm.errors import SlabCorruptionError  # noqa: PLC0415
    k = _on()
    c = k.kmem_cache_create("broken", 500, 0, 0)
    assert c is not None and c.random_seq is not None
    k.check()
    c.random_seq[0] = c.random_seq[1]
    with pytest.raises(SlabCorruptionError, match="not a permutation"):
        k.check()

"""CONFIG_SLAB_FREELIST_RANDOM: the order in which a fresh slab hands out its objects.

Mirrors mm/slab_common.c (``freelist_randomize``, ``cache_random_seq_create``,
``cache_random_seq_destroy``), mm/slab.c (``freelist_state_initialize``, ``next_random_slot``,
``shuffle_freelist``) and the pseudo-random generator they use (``prandom_seed_state``,
``prandom_u32_state``: L'Ecuyer's combined Tausworthe generator LFSR113).

The entropy the kernel draws (``get_random_int``, ``get_random_long``) cannot be modelled: the model
takes it from one seeded stream per machine (``Kernel.crng``, seeded by ``--random-seed``), so a run
repeats exactly for a seed, while a real kernel's values are unpredictable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..gfp import __GFP_ZERO
from ..slab_def import CFLGS_OBJFREELIST_SLAB

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..page import Page
    from ..slab_def import KmemCache

KERNEL_SYMBOLS = ("prandom_seed_state", "prandom_u32_state", "get_random_int", "get_random_long",
                  "freelist_randomize", "cache_random_seq_create", "cache_random_seq_destroy",
                  "freelist_state_initialize", "next_random_slot", "shuffle_freelist")

ENOMEM = 12
U32 = 0xFFFFFFFF
#: sizeof(unsigned int): one random_seq entry
SIZEOF_RANDOM_SEQ_ENTRY = 4


@dataclass(slots=True)
class RndState:
    """struct rnd_state: the four component states of LFSR113."""

    s1: int
    s2: int
    s3: int
    s4: int


def _seed(x: int, m: int) -> int:
    """__seed(): each component needs a state of at least ``m`` (its low bits are discarded)."""
    return x + m if x < m else x


def prandom_seed_state(seed: int) -> RndState:
    """prandom_seed_state(): fold a 64-bit seed into 32 bits and start every component from it."""
    seed &= (1 << 64) - 1
    i = ((seed >> 32) ^ (seed << 10) ^ seed) & U32
    return RndState(_seed(i, 2), _seed(i, 8), _seed(i, 16), _seed(i, 128))


def _tausworthe(s: int, a: int, b: int, c: int, d: int) -> int:
    return (((s & c) << d) & U32) ^ ((((s << a) & U32) ^ s) >> b)


def prandom_u32_state(state: RndState) -> int:
    """prandom_u32_state(): step the four Tausworthe components and return their XOR."""
    state.s1 = _tausworthe(state.s1, 6, 13, 0xFFFFFFFE, 18)
    state.s2 = _tausworthe(state.s2, 2, 27, 0xFFFFFFF8, 2)
    state.s3 = _tausworthe(state.s3, 13, 21, 0xFFFFFFF0, 7)
    state.s4 = _tausworthe(state.s4, 3, 12, 0xFFFFFF80, 13)
    return state.s1 ^ state.s2 ^ state.s3 ^ state.s4


def get_random_int(k: Kernel) -> int:
    """get_random_int(): 32 bits from the machine's seeded stream (stands in for the kernel's CRNG)."""
    return k.crng.getrandbits(32)


def get_random_long(k: Kernel) -> int:
    """get_random_long(): 64 bits from the machine's seeded stream."""
    return k.crng.getrandbits(64)


def fisher_yates(state: RndState, count: int) -> list[int]:
    """The identity order of ``count`` entries, shuffled from the last entry down (each swaps with a
    slot drawn as prandom_u32_state() % (i + 1)): the loop of freelist_randomize and of shuffle_freelist's
    dynamic case."""
    order = list(range(count))
    for i in range(count - 1, 0, -1):
        r = prandom_u32_state(state) % (i + 1)
        order[i], order[r] = order[r], order[i]
    return order


def freelist_randomize(state: RndState, count: int) -> list[int]:
    """freelist_randomize(): a random permutation of 0..count-1."""
    return fisher_yates(state, count)


def cache_random_seq_create(cachep: KmemCache, count: int, gfp: int) -> int:
    """cache_random_seq_create(): the cache's pre-computed order, made once (from enable_cpucache), in a
    kcalloc'd array of ``count`` unsigned ints; nothing for fewer than two objects per slab."""
    k = cachep.k
    if not k.config.CONFIG_SLAB_FREELIST_RANDOM or count < 2 or cachep.random_seq is not None:
        return 0
    from .kmalloc import kmalloc  # noqa: PLC0415 - kmalloc -> alloc -> grow -> this module
    addr = kmalloc(k, count * SIZEOF_RANDOM_SEQ_ENTRY, gfp | __GFP_ZERO, internal="cache_random_seq_create")
    if not addr:
        return -ENOMEM
    seed = get_random_long(k)
    seq = freelist_randomize(prandom_seed_state(seed), count)
    cachep.random_seq = seq
    cachep.random_seq_addr = addr
    if k.explain is not None:
        k.explain.step("cache_random_seq_create", "random_seq", cache=cachep.name, count=count, seed=seed,
                       addr=addr, head=seq[:8])
    return 0


def cache_random_seq_destroy(cachep: KmemCache) -> None:
    """cache_random_seq_destroy(): kfree the pre-computed order (kfree(NULL) when there is none)."""
    addr = cachep.random_seq_addr
    cachep.random_seq = None
    cachep.random_seq_addr = 0
    if addr:
        from .kmalloc import kfree  # noqa: PLC0415
        kfree(cachep.k, addr, internal="cache_random_seq_destroy")


@dataclass(slots=True)
class FreelistInitState:
    """union freelist_init_state: a walk over the pre-computed list, or a per-slab PRNG."""

    rand: int
    pos: int = 0
    count: int = 0
    seq: list[int] | None = None
    rnd_state: RndState | None = None


def freelist_state_initialize(cachep: KmemCache, count: int) -> FreelistInitState:
    """freelist_state_initialize(): one get_random_int() either starts the walk over random_seq at
    ``rand % count`` or, when the cache has no list yet, seeds a per-slab PRNG."""
    rand = get_random_int(cachep.k)
    if cachep.random_seq is None:
        return FreelistInitState(rand, rnd_state=prandom_seed_state(rand))
    return FreelistInitState(rand, pos=rand % count, count=count, seq=cachep.random_seq)


def next_random_slot(state: FreelistInitState) -> int:
    """next_random_slot(): the list entry at ``pos`` (wrapping to 0 at the end), then advance."""
    assert state.seq is not None
    if state.pos >= state.count:
        state.pos = 0
    idx = state.seq[state.pos]
    state.pos += 1
    return idx


def shuffle_freelist(cachep: KmemCache, page: Page) -> bool:
    """shuffle_freelist(): fill ``page.fl`` in a random order; False (layout left to the caller) for a
    slab of fewer than two objects.

    With a pre-computed list the order is random_seq read from a random start, wrapping around; an
    objfreelist cache first takes the entry at the start as the object that holds the freelist, and that
    index goes last.  Without a list (caches made before kmem_cache_init_late) the order is a
    Fisher-Yates shuffle from a PRNG seeded per slab, and the objfreelist object stays the last one.
    """
    k = cachep.k
    count = num = cachep.num
    if count < 2:
        if k.explain is not None:
            k.explain.step("shuffle_freelist", "too_few", cache=cachep.name, pfn=page.pfn, num=num)
        return False
    state = freelist_state_initialize(cachep, count)
    precomputed = state.seq is not None
    start = state.pos
    objfreelist = -1
    if cachep.flags & CFLGS_OBJFREELIST_SLAB:
        objfreelist = next_random_slot(state) if precomputed else count - 1
        page.freelist = page.s_mem + cachep.size * objfreelist + cachep.obj_offset
        count -= 1
    if precomputed:
        order = [next_random_slot(state) for _ in range(count)]
    else:
        assert state.rnd_state is not None
        order = fisher_yates(state.rnd_state, count)
    if objfreelist >= 0:
        order.append(objfreelist)
    fl = bytearray(order)
    assert len(fl) == num
    page.fl = fl
    hook = k.replay_hooks.shuffled
    if hook is not None:
        hook(cachep, page, precomputed)
    if k.explain is None:
        return True
    objfl = objfreelist if objfreelist >= 0 else None
    if precomputed:
        k.explain.step("shuffle_freelist", "precomputed", cache=cachep.name, pfn=page.pfn, num=num, rand=state.rand,
                       start=start, objfreelist=objfl, head=list(fl[:8]))
    else:
        k.explain.step("shuffle_freelist", "prandom", cache=cachep.name, pfn=page.pfn, num=num, rand=state.rand,
                       objfreelist=objfl, head=list(fl[:8]))
    return True


def _page_arrays(cachep: KmemCache) -> list[list[int]]:
    """Every array of the cache that can hold objects of a slab: per-CPU, shared and alien."""
    out = [ac.entry for ac in cachep.cpu_cache]
    for n in cachep.node:
        if n is None:
            continue
        if n.shared is not None:
            out.append(n.shared.entry)
        for al in n.alien or ():
            if al is not None:
                out.append(al.entry)
    return out


def free_fresh_objects(cachep: KmemCache, page: Page) -> set[int]:
    """The indices of ``page``'s objects that no caller holds: still on the slab's freelist
    (``fl[active:]``) or waiting in an array of the cache."""
    fl = page.fl
    assert fl is not None
    free = set(fl[page.active:cachep.num])
    lo = page.s_mem
    hi = lo + cachep.size * cachep.num
    size = cachep.size
    for entry in _page_arrays(cachep):
        for objp in entry:
            if lo <= objp < hi:
                free.add((objp - lo) // size)
    return free


def adopt_shuffled_order(cachep: KmemCache, page: Page, relabel: dict[int, int], objp: int) -> int:
    """Replay only (like mm/slab/adopt.py): the traced kernel's shuffle_freelist drew another start than
    the model's, which its first objects show.  Rename the objects of the fresh ``page`` that no caller
    holds, and ``objp``, just allocated from it: object ``i`` becomes ``relabel[i]`` wherever it is (the
    slab's freelist above ``active``, the per-CPU, shared and alien arrays, an objfreelist slab's freelist
    pointer), as if the slab had been shuffled that way.  ``relabel`` is a permutation of those objects.
    Returns ``objp``'s new address.  Counters are unchanged: every object stays where it was, only which
    one is where changes."""
    if not relabel:
        return objp
    size = cachep.size
    lo = page.s_mem
    hi = lo + size * cachep.num
    held = free_fresh_objects(cachep, page)
    mine = (objp - lo) // size if lo <= objp < hi else -1
    held.add(mine)
    if set(relabel) != set(relabel.values()) or not set(relabel) <= held:
        raise ValueError(f"{cachep.name}: relabelling {relabel} is not a permutation of the slab's free objects")
    fl = page.fl
    assert fl is not None
    for i in range(page.active, cachep.num):
        fl[i] = relabel.get(fl[i], fl[i])
    for entry in _page_arrays(cachep):
        for j, p in enumerate(entry):
            if lo <= p < hi:
                idx = (p - lo) // size
                new = relabel.get(idx)
                if new is not None:
                    entry[j] = lo + size * new + (p - lo) % size
    if page.freelist is not None and cachep.flags & CFLGS_OBJFREELIST_SLAB:
        fidx = (page.freelist - cachep.obj_offset - lo) // size
        new = relabel.get(fidx)
        if new is not None and fidx != mine:
            page.freelist = lo + size * new + cachep.obj_offset
    new = relabel.get(mine)
    return objp if new is None else lo + size * new + (objp - lo) % size

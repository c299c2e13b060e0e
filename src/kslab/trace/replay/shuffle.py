"""CONFIG_SLAB_FREELIST_RANDOM in a replay: learn each cache's random_seq from the objects its fresh slabs
hand out, and from then on predict each new slab's order from its first object.

The kernel's random numbers (mm/slab.c ``freelist_state_initialize``'s get_random_int, the seed of
``cache_random_seq_create``) are not in a trace; the objects a fresh slab hands out show their effect.
For every object the model hands out for the first time from one of its fresh slabs, the replay knows
which freelist slot of that slab it came from: a refill moves ``batchcount`` objects from the slab into
the per-CPU array in slot order (``alloc_block``'s ``slab_get_obj``) and allocations pop them LIFO, so the
trace's order of allocations is the reverse of the slots' within one refill, and the model, whose
arrays follow the kernel's, pops the same slot as the kernel does.  The kernel's object sits at a byte
offset of its slab, so at an index of it; (slot, index) pairs feed a :class:`FreelistLearner` per cache.

What the model does with it (:meth:`ShuffleFollower.alloc`, before the allocation is recorded):

* a slab whose order is not known yet (the cache's cycle is still being learnt, or the slab was shuffled
  by a per-slab PRNG before kmem_cache_init_late) follows the kernel's object for this slot (counted as
  learning), renaming the free objects of the slab (freelist_random.adopt_shuffled_order);
* the first object of a new slab, once the cycle is known, gives the slab's start position: the
  rest of the slab's order is then predicted and written into the model's slab at once;
* every later fresh object of such a slab is a prediction: counted right when the model's object is the
  kernel's, wrong otherwise (and followed, so that the model keeps holding what the kernel holds);
* a model slab whose kernel objects come from a kernel slab that stands for another live slab of the
  model (the model grew where the kernel went on with an older slab) is followed and never learnt from,
  then or later: those objects are no fresh slab's order.  The learner takes a vote over the slabs
  (trace.freelist_learn), so that a slab disturbed otherwise is outvoted too.

The counts are per cache in ``ReplaySummary.freelist`` (keys of :class:`FreshAlloc`), with the objects
each cache's cycle took to learn in ``ReplaySummary.freelist_learned``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ...mm.kernel import Kernel
from ...mm.page import PAGE_SIZE, Page
from ...mm.slab.freelist_random import adopt_shuffled_order, free_fresh_objects
from ...mm.slab_def import KmemCache
from ..freelist_learn import FreelistLearner, Seen
from .options import ReplaySummary


class FreshAlloc(StrEnum):
    """Keys of ``ReplaySummary.freelist[cache]``: what became of one object a fresh slab handed out."""

    LEARNING = "learning (cycle not known yet: followed the trace)"
    PRANDOM = "per-slab PRNG slab (no random_seq yet: followed the trace)"
    START = "first object of a slab (start position learnt)"
    PREDICTED = "predicted"
    MISPREDICTED = "predicted wrong (followed the trace)"
    UNMATCHED = "kernel object not in the model's slab (other slab, colour, or taken)"
    SHARED = "kernel slab stands for another live slab of the model too (followed, not learnt from)"


@dataclass(slots=True)
class SlabRec:
    """One fresh slab of the model, as the replay follows it."""

    cache: KmemCache
    pfn: int                 # the model slab's head page
    lid: int                 # the learner's name for this slab
    order: bytearray         # slot -> object index, as the model's slab has it now
    slot_of: list[int]       # object index -> slot
    out: bytearray           # object index -> handed out at least once since the slab was made
    precomputed: bool        # shuffled from the cache's random_seq (not a per-slab PRNG)
    kbase: int = -1          # the kernel's slab it stands for (its address), once seen
    pred: list[int] | None = None  # slot -> object index for every slot, once the start is known
    shared: bool = False     # its kernel slab stood for another live slab of the model: never learnt from


def _relabel(rec: SlabRec, desired: dict[int, int], free: set[int]) -> dict[int, int]:
    """A permutation of the objects ``free`` (those of the slab that no caller holds) that puts
    ``desired[slot]`` at each slot it can; the other free objects keep their slots where they can.
    Returns old index -> new index (identities left out)."""
    assign: dict[int, int] = {}
    used: set[int] = set()
    for s, d in desired.items():
        if rec.order[s] in free and d in free and d not in used:
            assign[s] = d
            used.add(d)
    spare = [x for x in sorted(free) if x not in used]
    spare_set = set(spare)
    rest = sorted(rec.slot_of[x] for x in free if rec.slot_of[x] not in assign)
    for s in rest:  # keep an object at its own slot if nobody took it
        x = rec.order[s]
        if x in spare_set:
            assign[s] = x
            spare_set.discard(x)
    it = iter(x for x in spare if x in spare_set)
    for s in rest:
        if s not in assign:
            assign[s] = next(it)
    return {rec.order[s]: x for s, x in assign.items() if rec.order[s] != x}


class ShuffleFollower:
    """Follows and predicts the order of fresh slabs (see the module docstring)."""

    def __init__(self, k: Kernel, summary: ReplaySummary) -> None:
        self.k = k
        self.summary = summary
        self.slabs: dict[int, SlabRec] = {}  # pfn of the slab's head page -> its record
        self.kslabs: dict[int, SlabRec] = {}  # the kernel's slab (its address) -> the model's it stands for
        self.learners: dict[KmemCache, FreelistLearner] = {}
        self._lids = 0
        #: called with what became of each fresh object (benchmarks/freelist_layout.py: the layout of the
        #: predicted allocations apart from the followed ones)
        self.observer: Callable[[FreshAlloc], None] | None = None
        k.replay_hooks.shuffled = self.shuffled

    def shuffled(self, cachep: KmemCache, page: Page, precomputed: bool) -> None:
        """ReplayHooks.shuffled: the model made a new slab and shuffled its freelist."""
        fl = page.fl
        assert fl is not None
        num = cachep.num
        slot_of = [0] * num
        for s, idx in enumerate(fl[:num]):
            slot_of[idx] = s
        self._lids += 1
        self.slabs[page.pfn] = SlabRec(cachep, page.pfn, self._lids, bytearray(fl[:num]), slot_of, bytearray(num),
                                       precomputed)

    def learner(self, cachep: KmemCache) -> FreelistLearner:
        lr = self.learners.get(cachep)
        if lr is None:
            lr = self.learners[cachep] = FreelistLearner(cachep.num)
        return lr

    def alloc(self, kptr: int, cachep: KmemCache, mptr: int) -> int:
        """The model handed out ``mptr`` where the kernel handed out ``kptr``: learn, predict, follow.
        Returns the model's object (another one of the same slab when the model follows the kernel)."""
        page = self.k.mem_map.virt_to_head_page(mptr)
        if page is None:
            return mptr
        rec = self.slabs.get(page.pfn)
        if rec is None or rec.cache is not cachep or page.slab_cache is not cachep:
            return mptr
        size = cachep.size
        midx, within = divmod(mptr - page.s_mem, size)
        if rec.out[midx]:
            return mptr  # not fresh: a reused object
        rec.out[midx] = 1
        slot = rec.slot_of[midx]
        slab_size = PAGE_SIZE << cachep.gfporder
        koff = kptr % slab_size
        kidx, kwithin = divmod(koff - page.s_mem % slab_size, size)
        kbase = kptr - koff
        counts = self.summary.freelist.setdefault(cachep.name, Counter())
        if (kwithin != within or not 0 <= kidx < cachep.num or rec.kbase not in (-1, kbase)
                or (kidx != midx and rec.out[kidx])):
            counts[FreshAlloc.UNMATCHED] += 1
            if self.observer is not None:
                self.observer(FreshAlloc.UNMATCHED)
            return mptr
        if not rec.shared and self._pair(rec, kbase):
            kind = self._learn(rec, slot, kidx, midx, counts)
        else:
            # the model grew this slab where the kernel went on with an older one (still the model's too):
            # the kernel's objects here are not a fresh slab's order, now or later in this slab
            kind = FreshAlloc.SHARED
            rec.kbase = kbase
            rec.shared = True
        counts[kind] += 1
        if self.observer is not None:
            self.observer(kind)
        if kind is FreshAlloc.PREDICTED:
            return mptr
        return self._follow(rec, page, slot, kidx, mptr)

    def _pair(self, rec: SlabRec, kbase: int) -> bool:
        """Pair the model's slab with the kernel's at ``kbase``, one to one: False when the kernel's slab
        stands for another live slab of the model (the model grew a slab where the kernel used an older
        one: the slots need not match, so the learner is not fed)."""
        if rec.kbase == kbase:
            return True
        other = self.kslabs.get(kbase)
        if other is not None and other is not rec and self.slabs.get(other.pfn) is other:
            return False
        rec.kbase = kbase
        self.kslabs[kbase] = rec
        return True

    def _learn(self, rec: SlabRec, slot: int, kidx: int, midx: int, counts: Counter[str]) -> FreshAlloc:
        """Feed the learner one (slot, object) of the kernel's slab; the slab's order once it is known."""
        if not rec.precomputed:
            return FreshAlloc.PRANDOM
        cachep = rec.cache
        lr = self.learner(cachep)
        if rec.pred is not None:
            kind = FreshAlloc.PREDICTED if rec.pred[slot] == kidx == midx else FreshAlloc.MISPREDICTED
            if lr.fresh(rec.lid, slot, kidx) is Seen.CONFLICT:
                rec.pred = None
            return kind
        was_complete = lr.complete
        lr.fresh(rec.lid, slot, kidx)
        if lr.complete and cachep.name not in self.summary.freelist_learned:
            # the fresh objects it took, this one included
            self.summary.freelist_learned[cachep.name] = counts[FreshAlloc.LEARNING] + (not was_complete)
        cyc = lr.cycle()
        start = lr.start(rec.lid)
        if cyc is not None and start is not None:
            rec.pred = [cyc[(start + s) % cachep.num] for s in range(cachep.num)]
        return FreshAlloc.START if was_complete else FreshAlloc.LEARNING

    def _follow(self, rec: SlabRec, page: Page, slot: int, kidx: int, mptr: int) -> int:
        """Make the model's slab hold the kernel's object at ``slot`` (and the predicted ones at the slots
        not handed out yet)."""
        desired = {slot: kidx}
        if rec.pred is not None:
            for s, x in enumerate(rec.pred):
                if s != slot and not rec.out[rec.order[s]]:
                    desired[s] = x
        if all(rec.order[s] == x for s, x in desired.items()):
            return mptr
        cachep = rec.cache
        midx = (mptr - page.s_mem) // cachep.size
        free = {x for x in free_fresh_objects(cachep, page) if not rec.out[x]}
        free.add(midx)
        relabel = _relabel(rec, desired, free)
        if not relabel:
            return mptr
        new = adopt_shuffled_order(cachep, page, relabel, mptr)
        moved = [(rec.slot_of[old], x) for old, x in relabel.items()]
        for s, x in moved:
            rec.order[s] = x
            rec.slot_of[x] = s
        rec.out[midx] = 0
        rec.out[rec.order[slot]] = 1
        return new

"""Learning a cache's CONFIG_SLAB_FREELIST_RANDOM order from the objects its fresh slabs hand out.

The kernel's random numbers are not in a trace, but their effect is.  With a pre-computed list
(mm/slab.c ``shuffle_freelist`` after ``cache_random_seq_create``), a fresh slab's freelist is the
cache's ``random_seq`` read from a random start ``rand % num``, wrapping around.  For an objfreelist
cache the first entry read goes to the end of the freelist; the freelist is then the walk started one
place later, so it is again a rotation of the list.  Either way the order a fresh slab hands its
objects out in (``slab_get_obj`` reads ``fl[0]``, ``fl[1]``, ...) follows one cycle through the
cache's object indices: after index ``a`` comes ``succ[a]``, the entry after ``a`` in random_seq.

So every two neighbouring slots of one slab teach one link of the cycle, and once ``num - 1`` links
are known the cycle is known (the last link is forced).  From then on a new slab's first object fixes
its start and the rest of its order is predicted exactly.  The list itself is known only up to
rotation (where random_seq's entry 0 is cannot be seen), so start positions are given relative to a
fixed rotation: the cycle read from the first object the learner saw.

Slabs grown before ``kmem_cache_init_late`` are shuffled without the list (a per-slab PRNG); their
orders contradict the cycle and are set aside as such.  The caller says which slot of the slab an
object came from, and only for slots that still hold the order shuffle_freelist wrote (a free
overwrites the slots below ``page->active``; the slots above the highest ever used are untouched).

No replay wiring here: this module takes plain (slab, slot, index) observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction


class Seen(Enum):
    """What one observation did to the learner."""

    FIRST = "first"          # the slab's first known slot: nothing to link yet
    LEARNED = "learned"      # a new link of the cycle
    CONFIRMED = "confirmed"  # a link already known, seen again
    CONFLICT = "conflict"    # contradicts the cycle: the slab was not shuffled from the list
    IGNORED = "ignored"      # a slab already set aside


@dataclass(slots=True)
class SlabOrder:
    """The fresh slots seen of one slab: slot -> object index."""

    slots: dict[int, int] = field(default_factory=dict)
    links: list[tuple[int, int]] = field(default_factory=list)
    unlisted: bool = False


class FreelistLearner:
    """Learns one cache's random_seq cycle (``num`` objects per slab) from fresh slabs' slots.

    Mirrors what mm/slab.c ``shuffle_freelist`` and ``next_random_slot`` do with ``random_seq``; the
    learning itself is kslab's.
    """

    def __init__(self, num: int) -> None:
        if num < 2:
            raise ValueError(f"a cache of {num} object(s) per slab gets no random_seq (cache_random_seq_create)")
        self.num = num
        self.succ: dict[int, int] = {}
        self.pred: dict[int, int] = {}
        self.support: dict[int, set[int]] = {}  # link a -> the slabs that showed it
        self.slabs: dict[int, SlabOrder] = {}
        self.observed = 0
        self.learned_after: int | None = None  # observations it took to know the whole cycle
        self._anchor: int | None = None        # the first object index seen: position 0 of the rotation

    # ---- learning ---------------------------------------------------------------------------------
    def fresh(self, slab: int, slot: int, idx: int) -> Seen:
        """Slab ``slab`` handed out object ``idx`` from freelist slot ``slot`` (not overwritten since
        the slab was made)."""
        if not 0 <= slot < self.num or not 0 <= idx < self.num:
            raise ValueError(f"slot {slot} / object {idx} outside a slab of {self.num}")
        so = self.slabs.setdefault(slab, SlabOrder())
        if so.unlisted:
            return Seen.IGNORED
        if so.slots.get(slot) == idx:
            return Seen.CONFIRMED
        if slot in so.slots or idx in so.slots.values():
            return self._set_aside(slab, so)
        self.observed += 1
        if self._anchor is None:
            self._anchor = idx
        so.slots[slot] = idx
        seen = Seen.FIRST
        for a_slot, b_slot in ((slot - 1, slot), (slot, slot + 1)):
            if a_slot in so.slots and b_slot in so.slots:
                got = self._link(slab, so, so.slots[a_slot], so.slots[b_slot])
                if got is Seen.CONFLICT:
                    return self._set_aside(slab, so)
                if got is Seen.LEARNED or seen is Seen.FIRST:
                    seen = got
        if seen is not Seen.CONFLICT and self.learned_after is None and self.complete:
            self.learned_after = self.observed
        return seen

    def _link(self, slab: int, so: SlabOrder, a: int, b: int) -> Seen:
        if self.succ.get(a, b) != b or self.pred.get(b, a) != a:
            return Seen.CONFLICT
        if a in self.succ:
            self.support[a].add(slab)
            so.links.append((a, b))
            return Seen.CONFIRMED
        if self._closes_early(a, b):
            return Seen.CONFLICT
        self.succ[a] = b
        self.pred[b] = a
        self.support[a] = {slab}
        so.links.append((a, b))
        return Seen.LEARNED

    def _closes_early(self, a: int, b: int) -> bool:
        """Would a -> b close a cycle of fewer than ``num`` objects?"""
        n, x = 1, b
        while x in self.succ:
            x = self.succ[x]
            n += 1
            if x == a:
                return n < self.num
        return False

    def _set_aside(self, slab: int, so: SlabOrder) -> Seen:
        """A slab that contradicts the cycle: drop the links only it showed."""
        so.unlisted = True
        for a, b in so.links:
            sup = self.support.get(a)
            if sup is None:
                continue
            sup.discard(slab)
            if not sup:
                del self.support[a], self.succ[a], self.pred[b]
        so.links.clear()
        if self.learned_after is not None and not self.complete:
            self.learned_after = None
        return Seen.CONFLICT

    # ---- what is known --------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """The whole cycle is known (num - 1 links force the last)."""
        return len(self.succ) >= self.num - 1

    def _next(self, a: int) -> int | None:
        b = self.succ.get(a)
        if b is None and self.complete:
            # the one missing link runs from the object without a successor to the one without a predecessor
            (b,) = set(range(self.num)) - set(self.pred)
        return b

    def cycle(self) -> list[int] | None:
        """random_seq up to rotation, read from the first object seen; None until complete."""
        if not self.complete or self._anchor is None:
            return None
        out = [self._anchor]
        while len(out) < self.num:
            b = self._next(out[-1])
            assert b is not None
            out.append(b)
        return out

    def start(self, slab: int) -> int | None:
        """The slab's start as a position in :meth:`cycle` (the position of its slot 0's object), once
        the cycle and one of the slab's slots are known.  For an objfreelist cache the kernel's start
        (the entry it took for the freelist object) is the position before."""
        cyc = self.cycle()
        so = self.slabs.get(slab)
        if cyc is None or so is None or so.unlisted or not so.slots:
            return None
        slot, idx = min(so.slots.items())
        return (cyc.index(idx) - slot) % self.num

    def predict(self, slab: int) -> dict[int, int]:
        """Slot -> object index for every slot of ``slab`` the learned links give (seen or predicted)."""
        so = self.slabs.get(slab)
        if so is None or so.unlisted or not so.slots:
            return {}
        out = dict(so.slots)
        for slot in sorted(so.slots):
            x: int | None = so.slots[slot]
            s = slot
            while x is not None and s + 1 < self.num and s + 1 not in out:
                x = self._next(x)
                if x is not None:
                    s += 1
                    out[s] = x
        return out


def start_distribution(num: int) -> list[Fraction]:
    """P(start = p) for a slab's start position ``rand % num``, ``rand`` a uniform 32-bit value
    (freelist_state_initialize): the positions below 2**32 % num are one value likelier."""
    if num < 1:
        raise ValueError("num must be positive")
    total = 1 << 32
    return [Fraction((total - 1 - p) // num + 1, total) for p in range(num)]

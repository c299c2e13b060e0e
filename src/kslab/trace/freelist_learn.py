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
orders contradict the cycle.  So may a slab whose order reached the learner disturbed (in a replay, a
model slab that stood for an older kernel slab).  No single slab is trusted: the cycle is the vote of
the slabs (:class:`FreelistLearner`), and one bad early slab is outvoted by the good ones after it.
The caller says which slot of the slab an object came from, and only for slots that still hold the
order shuffle_freelist wrote (a free overwrites the slots below ``page->active``; the slots above the
highest ever used are untouched).

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
    """The fresh slots seen of one slab: slot -> object index, and the links they show."""

    slots: dict[int, int] = field(default_factory=dict)
    links: list[tuple[int, int]] = field(default_factory=list)
    broken: bool = False     # contradicts itself (a slot or an object seen twice): never used again
    arrival: int = 0         # the order in which the learner first heard of the slab


class FreelistLearner:
    """Learns one cache's random_seq cycle (``num`` objects per slab) from fresh slabs' slots, by a vote
    over the slabs.

    Each slab's links are a piece of one rotation of random_seq when the slab was shuffled from the list,
    and noise when it was not (a per-slab PRNG before kmem_cache_init_late, or a model slab that stands
    for an older kernel slab, or an order disturbed otherwise).  The cycle is the agreement of the slabs:
    they are taken in order of how many of their links another slab confirms (then of arrival), each one
    kept only when it agrees with the links of those kept before it.  A slab that disagrees is *unlisted*
    (nothing is predicted for it) but keeps its vote: when later slabs confirm it, the vote is taken again
    and the slab that misled the learner is unlisted instead.  Once every link of a complete cycle is
    shown by two kept slabs the cycle is *settled*: a slab that disagrees then is unlisted at once.

    Mirrors what mm/slab.c ``shuffle_freelist`` and ``next_random_slot`` do with ``random_seq``; the
    learning itself is kslab's.
    """

    def __init__(self, num: int) -> None:
        if num < 2:
            raise ValueError(f"a cache of {num} object(s) per slab gets no random_seq (cache_random_seq_create)")
        self.num = num
        self.succ: dict[int, int] = {}
        self.pred: dict[int, int] = {}
        self.support: dict[tuple[int, int], set[int]] = {}  # link -> the (unbroken) slabs that showed it
        self.slabs: dict[int, SlabOrder] = {}
        self.listed: set[int] = set()           # the slabs the cycle agrees with
        self.observed = 0
        self.votes = 0                          # how many times the vote was taken again
        self.learned_after: int | None = None  # observations it took to know the whole cycle
        self._anchor: int | None = None        # the first object index seen: position 0 of the rotation
        self._settled = False

    # ---- learning ---------------------------------------------------------------------------------
    def fresh(self, slab: int, slot: int, idx: int) -> Seen:
        """Slab ``slab`` handed out object ``idx`` from freelist slot ``slot`` (not overwritten since
        the slab was made)."""
        if not 0 <= slot < self.num or not 0 <= idx < self.num:
            raise ValueError(f"slot {slot} / object {idx} outside a slab of {self.num}")
        so = self.slabs.get(slab)
        if so is None:
            so = self.slabs[slab] = SlabOrder(arrival=len(self.slabs))
            self.listed.add(slab)
        if so.broken:
            return Seen.IGNORED
        if so.slots.get(slot) == idx:
            return Seen.CONFIRMED
        was_listed = slab in self.listed
        if slot in so.slots or idx in so.slots.values():
            self._break(slab, so)
            return Seen.CONFLICT if was_listed else Seen.IGNORED
        self.observed += 1
        if self._anchor is None:
            self._anchor = idx
        so.slots[slot] = idx
        new = [(so.slots[a], so.slots[b]) for a, b in ((slot - 1, slot), (slot, slot + 1))
               if a in so.slots and b in so.slots]
        seen = self._add_links(slab, so, new)
        if self.learned_after is None and self.complete:
            self.learned_after = self.observed
        elif self.learned_after is not None and not self.complete:
            self.learned_after = None
        if slab not in self.listed:
            return Seen.CONFLICT if was_listed else Seen.IGNORED
        return seen

    def _add_links(self, slab: int, so: SlabOrder, new: list[tuple[int, int]]) -> Seen:
        """Record the slab's new links and fit them into the cycle (or take the vote again)."""
        if not new:
            return Seen.FIRST
        listed = slab in self.listed
        settled = self.settled
        redo = False
        seen = Seen.CONFIRMED
        for a, b in new:
            so.links.append((a, b))
            sup = self.support.setdefault((a, b), set())
            sup.add(slab)
            if self.succ.get(a) == b:
                continue
            if not listed:
                # a link the cycle does not have, of a slab it disagrees with: a vote may turn
                redo = redo or (not settled and len(sup) > 1)
                continue
            if self._fits(a, b):
                self._set(a, b)
                seen = Seen.LEARNED
            elif settled:
                self._unlist(slab)
                return Seen.CONFLICT
            else:
                redo = True
        if redo:
            self._vote()
            if slab not in self.listed:
                return Seen.CONFLICT
            return Seen.LEARNED
        return seen

    def _fits(self, a: int, b: int) -> bool:
        return a not in self.succ and b not in self.pred and not self._closes_early(a, b)

    def _set(self, a: int, b: int) -> None:
        self.succ[a] = b
        self.pred[b] = a

    def _closes_early(self, a: int, b: int) -> bool:
        """Would a -> b close a cycle of fewer than ``num`` objects?"""
        n, x = 1, b
        while x in self.succ:
            x = self.succ[x]
            n += 1
            if x == a:
                return n < self.num
        return False

    def _unlist(self, slab: int) -> None:
        """A slab the settled cycle disagrees with: no longer listed (its links stay out of the cycle)."""
        self.listed.discard(slab)

    def _break(self, slab: int, so: SlabOrder) -> None:
        """A slab that contradicts itself: drop its votes, and take the vote again."""
        so.broken = True
        for link in so.links:
            sup = self.support.get(link)
            if sup is not None:
                sup.discard(slab)
                if not sup:
                    del self.support[link]
        so.links.clear()
        self.listed.discard(slab)
        self._vote()

    def _score(self, so: SlabOrder) -> int:
        """How many of the slab's links another slab shows too."""
        return sum(1 for link in so.links if len(self.support.get(link, ())) > 1)

    def _vote(self) -> None:
        """Take the vote again: the slabs most confirmed first, each kept when it agrees with those kept."""
        self.votes += 1
        self.succ, self.pred = {}, {}
        self.listed = set()
        live = [(sid, so) for sid, so in self.slabs.items() if not so.broken]
        live.sort(key=lambda t: (-self._score(t[1]), t[1].arrival))
        for sid, so in live:
            added: list[int] = []
            ok = True
            for a, b in so.links:
                if self.succ.get(a) == b:
                    continue
                if not self._fits(a, b):
                    ok = False
                    break
                self._set(a, b)
                added.append(a)
            if ok:
                self.listed.add(sid)
            else:
                for a in added:
                    del self.pred[self.succ.pop(a)]
        self._settled = self.complete and all(len(self.support.get((a, b), ())) > 1 for a, b in self.succ.items())

    # ---- what is known --------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """The whole cycle is known (num - 1 links force the last)."""
        return len(self.succ) >= self.num - 1

    @property
    def settled(self) -> bool:
        """Complete, and every link shown by two slabs: later slabs that disagree no longer move it."""
        if not self._settled and self.complete:
            self._settled = all(len(self.support.get((a, b), ())) > 1 for a, b in self.succ.items())
        return self._settled

    def set_aside(self) -> int:
        """How many slabs the cycle disagrees with (or that contradicted themselves)."""
        return len(self.slabs) - len(self.listed)

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
        if cyc is None or so is None or slab not in self.listed or not so.slots:
            return None
        slot, idx = min(so.slots.items())
        return (cyc.index(idx) - slot) % self.num

    def predict(self, slab: int) -> dict[int, int]:
        """Slot -> object index for every slot of ``slab`` the learned links give (seen or predicted)."""
        so = self.slabs.get(slab)
        if so is None or slab not in self.listed or not so.slots:
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

"""The replay engine: builds the pipeline of stages and drives it (``run``, ``feed``, ``flush``,
``finish``, ``check``); reports subscribe to it as observers (see observer.py).

The events go one way through the stages (docs/design.md has the picture)::

    feed -> FlushOrder -> IrqWindow -> IrqRefillHold -> ReapHold -> SlabinfoWriteHold -> Apply
                                                                                  (FastPath | apply)

An allocation or free outside interrupts on a CPU for which no stage holds anything goes straight to
Apply (reorder.make_feed).  Apply uses the other parts: Boot (the manifest, CPUs, task policies),
InternalPairing, Placeholders, ReapFollower and TraceClock, Markers (and through them Sync), all writing
what they find into the PointerMap and the ReplaySummary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

from ...manifest import Entry, ManifestBoot
from ...mm.config import MachineConfig
from ...mm.kernel import Kernel
from ...mm.slab_def import KmemCache
from ..events import TraceEvent
from .apply import Apply
from .boot import HEAD_EVENTS, Boot
from .internal import InternalPairing
from .markers import Markers
from .observer import Observers
from .options import Clock, ReapMode, ReplayOptions, ReplaySummary
from .placeholders import Placeholders
from .ptrmap import PointerMap
from .reap import ReapEvidence, ReapFollower, ReapHold, TraceClock
from .reorder import HOLD_LIMIT, EventCache, FlushOrder, IrqRefillHold, IrqWindow, SlabinfoWriteHold, make_feed
from .shuffle import ShuffleFollower
from .sync import Sync


class Replayer:
    """Drives a :class:`Kernel` from trace events."""

    def __init__(self, config: MachineConfig, manifest: list[Entry] | None = None,
                 options: ReplayOptions | None = None, manifest_path: str = "<manifest>") -> None:
        self.opts = opts = options or ReplayOptions()
        self.k = k = Kernel(config, boot=False)
        k.boot_early()
        self.summary = summary = ReplaySummary()
        self.observers = Observers(self)
        self.on_progress: Callable[[int, int], None] | None = None
        #: at the end of the input, run the boot steps the trace did not reach (the manifest's last
        #: creations, the CPUs not up yet); False keeps the machine as the trace left it (kslab ask at a
        #: line of the trace: the model's own boot allocations would take objects the kernel holds free)
        self.complete_boot = True
        # called as on_sample(replayer, event) every sample_every events (reports build timelines)
        self.on_sample: Callable[[Replayer, TraceEvent], None] | None = None
        self.sample_every = 0
        self.boot = boot = Boot(k, manifest, manifest_path, summary)
        self.ptrs = ptrs = PointerMap(opts.ptr_map)
        self.internal = InternalPairing(k, ptrs, boot, summary)
        self.placeholders = Placeholders(k, boot, summary)
        self.sync_state = Sync(k, ptrs, self.placeholders, opts.start_slabinfo, opts.sync_on is None)
        self.markers = Markers(k, opts, self.sync_state, summary, self.observers)
        clock = TraceClock(k, opts.reap == ReapMode.TIMER)
        evidence = ReapEvidence()
        self.reaper = ReapFollower(k, boot, ptrs, clock, evidence, opts.reap, summary)
        self.applier = apply = Apply(k, boot, ptrs, self.internal, self.placeholders, self.sync_state, self.markers,
                                     self.reaper, clock, opts.unknown_free, summary)
        if config.CONFIG_SLAB_FREELIST_RANDOM and not k.debug:
            self.shuffle: ShuffleFollower | None = ShuffleFollower(k, summary)
            apply.shuffle = apply.fast.shuffle = self.shuffle
        else:
            self.shuffle = None
        event_cache = EventCache(k, ptrs)
        stages = (FlushOrder(k, event_cache, summary), IrqWindow(k, boot, event_cache, summary),
                  IrqRefillHold(summary), ReapHold(k, evidence, HOLD_LIMIT),
                  SlabinfoWriteHold(k, boot, self.markers, apply, summary), apply)
        for up, down in pairwise(stages):
            up.down = down
        self.stages = stages
        self._feed = make_feed(*stages)
        self.feed: Callable[[TraceEvent], None] = self._feed

    # ---- observers ---------------------------------------------------------------------------------
    def subscribe(self, observer: Any) -> None:
        """Have ``observer``'s hooks (see observer.py) called from now on."""
        self.observers.add(observer)
        self.feed = self._feed_observed

    def _feed_observed(self, ev: TraceEvent) -> None:
        obs = self.observers
        if not obs.started:
            obs.started = True
            obs.start(ev)
        synced = self.sync_state.synced
        self._feed(ev)
        if not synced and self.sync_state.synced:
            obs.sync(ev)
        obs.event(ev)

    # ---- the state, as callers and tests see it ----------------------------------------------------
    @property
    def kmap(self) -> dict[int, int]:
        """Kernel object pointer -> model pointer."""
        return self.ptrs.kmap

    @property
    def kcache(self) -> dict[int, KmemCache]:
        return self.ptrs.kcache

    @property
    def kpage_cache(self) -> dict[int, KmemCache]:
        return self.ptrs.kpage_cache

    @property
    def internal_rev(self) -> dict[int, int]:
        return self.ptrs.internal_rev

    @property
    def placeholder(self) -> dict[KmemCache, list[int]]:
        """The placeholder pools (objects of unknown identity), by cache."""
        return self.placeholders.pools

    @property
    def evno(self) -> int:
        return self.ptrs.evno

    @property
    def mb(self) -> ManifestBoot:
        return self.boot.mb

    @property
    def fast_path(self) -> bool:
        """False: every event goes through the general code (the tests compare both)."""
        return self.applier.fast_path

    @fast_path.setter
    def fast_path(self, on: bool) -> None:
        self.applier.fast_path = on

    @property
    def clock(self) -> str:
        """The trace's clock, a :class:`Clock` value (decided by run() unless set before)."""
        return self.applier.clock.mode

    @clock.setter
    def clock(self, mode: str) -> None:
        self.applier.clock.mode = Clock(mode)

    @property
    def shows_boot(self) -> bool:
        return self.boot.shows_boot

    @shows_boot.setter
    def shows_boot(self, on: bool) -> None:
        self.boot.shows_boot = on

    @property
    def synced(self) -> bool:
        return self.sync_state.synced

    # ---- actions -----------------------------------------------------------------------------------
    def sync(self, ev: TraceEvent | None = None) -> None:
        """Make the model agree with the real /proc/slabinfo of ``--start-slabinfo`` (see sync.Sync)."""
        self.markers.sync(ev)

    def snapshot(self, label: str, ev: TraceEvent | None = None) -> None:
        self.markers.snapshot(label, ev)

    def action(self, text: str, ev: TraceEvent | None = None) -> None:
        """Run an administrative action (see markers.Markers.action)."""
        self.markers.action(text, ev)

    def check(self) -> None:
        """The machine's invariants, plus the replay's own: every pool object is allocated in its
        slab, sits in no array, appears once, and stands for no mapped kernel pointer."""
        self.k.check()
        self.placeholders.check(set(self.ptrs.kmap.values()))

    # ---- the loop ----------------------------------------------------------------------------------
    def start_boot(self, head: list[TraceEvent]) -> None:
        """Decide how the machine boots (see boot.Boot.start)."""
        self.boot.start(head)

    def flush(self) -> None:
        """Replay the events held back so far (as the end of the input would)."""
        for stage in self.stages:
            stage.flush()

    def begin(self, head: list[TraceEvent], clock: str | None) -> None:
        """Before the first event: the clock (``clock``, or guessed from the ``head`` events) and the boot."""
        if clock is None:
            integral = all(ev.ts == int(ev.ts) for ev in head)
            clock = Clock.COUNTER if head and integral and any(ev.ts for ev in head) else Clock.SECONDS
        self.clock = clock
        self.start_boot(head)

    def run(self, events: Iterable[TraceEvent], clock: str | None = None) -> ReplaySummary:
        """Replay every event; ``clock`` is ``seconds`` or ``counter`` (guessed from the first events)."""
        it = iter(events)
        head: list[TraceEvent] = []
        for ev in it:
            head.append(ev)
            if len(head) >= HEAD_EVENTS:
                break
        self.begin(head, clock)
        feed = self.feed
        progress = self.on_progress
        n = 0
        sample = self.on_sample
        every = self.sample_every
        for ev in head:
            feed(ev)
            n += 1
            if sample is not None and every > 0 and not n % every:
                sample(self, ev)
        if sample is not None and every > 0:
            for ev in it:
                feed(ev)
                n += 1
                if not n % every:
                    sample(self, ev)
                if progress is not None and not n & 0xFFFF:
                    progress(n, ev.lineno)
        else:
            for ev in it:
                feed(ev)
                n += 1
                if progress is not None and not n & 0xFFFF:
                    progress(n, ev.lineno)
        self.summary.events = n
        self.finish()
        return self.summary

    def finish(self) -> None:
        """The end of the input: the held events replayed, the boot completed, the last snapshot or sync
        taken, the unpaired structures counted, the pointer map closed."""
        self.flush()
        boot = self.boot
        if not boot.booted:
            boot.start([])
        self.markers.finish()
        if boot.directive_mode and self.complete_boot:
            boot.mb.finish()
        self.internal.finish()
        self.ptrs.close()

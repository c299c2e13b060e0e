"""Timelines of the model during a replay: what ``kslab report`` draws.

:class:`Timeline` (an observer of the replay) samples the whole machine every ``every`` events (the x axis is the
number of replayed events): per cache the pages and active objects, the slabs on the partial, full
and free lists, the per-CPU and shared arrays' fill, and the cumulative path counters of all
caches.  The number of samples stays between ``target`` and ``2 * target``: when it reaches
``2 * target`` every other sample is dropped and the interval doubles, so any trace length gives a
similar resolution without knowing the length in advance.

Sampling starts at the first event; with ``--sync-on`` it starts again at the sync (the model
before the sync is not the kernel's state, and the jump to the synced state would dwarf the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..trace.events import MARK, TraceEvent
from .stats import WindowWatch

#: Cumulative path counters sampled (summed over every cache), by PathCounters field.
PATH_KEYS: tuple[str, ...] = (
    "alloc_hit", "alloc_miss", "refill_shared", "refill_slab", "free_hit", "free_miss", "flush_shared",
    "flush_free_block", "alien_free", "grow", "slabs_destroyed", "reap_slabs",
)

MAX_MARKERS = 1000
MARKER_TEXT = 300


@dataclass(slots=True)
class Sample:
    x: int  # events replayed
    line: int
    ts: float
    caches: dict[str, tuple[int, int, int, int, int]]  # name -> (pages, active objs, partial, full, free)
    cpu: list[tuple[int, int]]  # per CPU: (objects in per-CPU arrays, sum of their limits)
    shared: list[tuple[int, int]]  # per node: (objects in shared arrays, sum of their limits)
    paths: list[int] = field(default_factory=list)  # PATH_KEYS, cumulative


class Timeline(WindowWatch):
    """An observer of a replay that samples the model (see the module docstring): ``Timeline.attach(rep)``."""

    target = 300
    every = 1
    x0 = 0
    n = 0
    samples: list[Sample]
    markers: list[tuple[int, int, str]]  # (x, line, text)
    markers_dropped = 0
    _started = False

    def on_start(self, rep: Any, ev: TraceEvent) -> None:
        self._started = True
        self.samples = []
        self.markers = []
        self.sample(ev.lineno, ev.ts)
        super().on_start(rep, ev)

    def on_sync(self, rep: Any, ev: TraceEvent) -> None:
        super().on_sync(rep, ev)
        self.x0 = self.n + 1  # the sync happened during this event, counted just after
        self.every = 1
        self.samples = []

    def on_event(self, rep: Any, ev: TraceEvent) -> None:
        self.n += 1
        if ev.kind == MARK:
            if len(self.markers) < MAX_MARKERS:
                self.markers.append((self.n, ev.lineno, ev.text[:MARKER_TEXT]))
            else:
                self.markers_dropped += 1
        if not (self.n - self.x0) % self.every:
            self.sample(ev.lineno, ev.ts)

    def end(self) -> None:
        """Take the last sample (after the replay's end of trace work), if it is not taken yet."""
        if not self._started:
            self._started = True
            self.samples = []
            self.markers = []
        if not self.samples or self.samples[-1].x != self.n:
            last = self.samples[-1] if self.samples else None
            self.sample(last.line if last else 0, last.ts if last else 0.0)

    def sample(self, line: int, ts: float) -> None:
        k = self.k
        ncpu = k.nr_cpu_ids
        cpu_avail = [0] * ncpu
        cpu_limit = [0] * ncpu
        sh_avail = [0] * k.nr_node_ids
        sh_limit = [0] * k.nr_node_ids
        paths = [0] * len(PATH_KEYS)
        caches: dict[str, tuple[int, int, int, int, int]] = {}
        keys = PATH_KEYS
        for c in k.slab_caches:
            total = free_objs = p = f = e = 0
            for nid, nd in enumerate(c.node):
                if nd is None:
                    continue
                total += nd.total_slabs
                free_objs += nd.free_objects
                p += nd.slabs_partial.length
                f += nd.slabs_full.length
                e += nd.slabs_free.length
                sh = nd.shared
                if sh is not None:
                    sh_avail[nid] += len(sh.entry)
                    sh_limit[nid] += sh.limit
            for cpu, ac in enumerate(c.cpu_cache[:ncpu]):
                if ac is not None:
                    cpu_avail[cpu] += len(ac.entry)
                    cpu_limit[cpu] += ac.limit
            pc = c.paths
            for i, key in enumerate(keys):
                paths[i] += getattr(pc, key)
            old = caches.get(c.name)
            row = (total << c.gfporder, total * c.num - free_objs, p, f, e)
            if old is not None:  # two caches of one name: add them up
                row = tuple(a + b for a, b in zip(old, row, strict=True))  # type: ignore[assignment]
            caches[c.name] = row
        self.samples.append(Sample(self.n, line, ts, caches, list(zip(cpu_avail, cpu_limit, strict=True)),
                                   list(zip(sh_avail, sh_limit, strict=True)), paths))
        if len(self.samples) >= 2 * self.target and self.every * 2 > self.every:
            self.every *= 2
            x0, every = self.x0, self.every
            first = self.samples[0]
            self.samples = [first] + [s for s in self.samples[1:] if not (s.x - x0) % every]


def occupancy(k: Any) -> dict[str, Any]:
    """Slabs by active objects at the end: per cache, counts[active] for active in 0..num; and for all
    caches together, by fill percentage (empty, 1-10%, ..., 91-99%, full)."""
    labels = ["empty", "1-10%", "11-20%", "21-30%", "31-40%", "41-50%", "51-60%", "61-70%", "71-80%", "81-90%",
              "91-99%", "full"]
    total = [0] * len(labels)
    per: dict[str, dict[str, Any]] = {}
    for c in k.slab_caches:
        num = c.num
        if num <= 0:
            continue
        counts = [0] * (num + 1)
        for nd in c.node:
            if nd is None:
                continue
            for lst in (nd.slabs_partial, nd.slabs_full, nd.slabs_free):
                for page in lst:
                    a = page.active
                    if 0 <= a <= num:
                        counts[a] += 1
        if not any(counts):
            continue
        for a, cnt in enumerate(counts):
            if not cnt:
                continue
            if a == 0:
                b = 0
            elif a == num:
                b = 11
            else:
                b = _bucket(a, num)
            total[b] += cnt
        key = c.name
        if key in per:  # two caches of one name (rare): keep the first
            continue
        per[key] = {"num": num, "counts": counts}
    return {"labels": labels, "all": total, "caches": dict(sorted(per.items()))}


def _bucket(active: int, num: int) -> int:
    """1..10 for a partial slab: 1 for 1-10%, 2 for 11-20%, ..., 10 for 91-99% (percent rounded up)."""
    pct = -(-100 * active // num)  # ceil
    return max(1, min(10, -(-pct // 10)))

"""Markers: the sync with a real /proc/slabinfo, snapshots, and administrative actions (``--action``)."""

from __future__ import annotations

import re
from pathlib import Path

from ...mm.kernel import Kernel
from ..events import TraceEvent
from .observer import Observers
from .options import Applied, ReplayError, ReplayOptions, ReplaySummary
from .seqread import SlabinfoRead
from .sync import Sync

SYNC, SNAPSHOT = "sync", "snapshot"  # what a marker asks for at the next /proc/slabinfo read (pending)


class Markers:
    """Acts on the trace's markers as ``--sync-on``, ``--snapshot-on`` and ``--action`` say."""

    def __init__(self, k: Kernel, opts: ReplayOptions, sync: Sync, summary: ReplaySummary,
                 observers: Observers) -> None:
        self.k = k
        self.out = opts.out
        self.sync_state = sync
        self.summary = summary
        self.observers = observers
        self.sync_re = re.compile(opts.sync_on) if opts.sync_on else None
        self.snap_re = re.compile(opts.snapshot_on) if opts.snapshot_on else None
        self.action_res = [(re.compile(rx), act) for rx, act in opts.actions]
        # sync/snapshot requests wait for the reader's read(2) of /proc/slabinfo (see mark)
        self.pending_read: list[tuple[str, str, TraceEvent]] = []
        # a slabinfo-write action already run where the kernel's slabinfo_write ran: (marker line, action)
        self.early_action: tuple[int, str] | None = None
        # a snapshot whose reader is still reading, page by page (see SlabinfoRead)
        self.reading: SlabinfoRead | None = None
        if opts.out:
            Path(opts.out).mkdir(parents=True, exist_ok=True)

    def mark(self, ev: TraceEvent) -> None:
        """Markers: sync, actions, snapshots.

        /proc/slabinfo shows the allocator as it was when the reader's read(2) generated the text:
        ``seq_read_iter`` allocates its buffer, then calls the show functions.  A marker written just
        before a reader starts (``snapshot X begin``) therefore asks for the state at that reader's
        buffer allocation; the sync and the snapshot wait for it, and happen at the next marker if no
        read comes first.
        """
        text = ev.text
        handled = False
        if self.reading is not None:
            self.read_done(ev)
        if self.pending_read:
            self.run_pending(ev)
        for rx, act in self.action_res:
            m = rx.search(text)
            if m:
                try:
                    expanded = m.expand(act)
                except (re.error, IndexError) as e:
                    raise ReplayError(f"line {ev.lineno}: --action {rx.pattern}=>{act}: {e}") from None
                if self.early_action == (ev.lineno, expanded):
                    self.early_action = None  # already run where the kernel's slabinfo_write ran
                else:
                    self.action(expanded, ev)
                handled = True
        if self.sync_re is not None and not self.sync_state.synced and self.sync_re.search(text):
            self.pending_read.append((SYNC, "", ev))
            handled = True
        if self.snap_re is not None:
            m = self.snap_re.search(text)
            if m:
                label = m.group(1) if m.groups() else str(len(self.summary.snapshots))
                self.pending_read.append((SNAPSHOT, label, ev))
                handled = True
        self.summary.applied[Applied.MARKER_ACTED_ON if handled else Applied.MARKER] += 1

    def slabinfo_write_action(self, ev: TraceEvent) -> str | None:
        """The slabinfo-write that an --action makes of marker ``ev`` (None: none does)."""
        for rx, act in self.action_res:
            m = rx.search(ev.text)
            if m:
                try:
                    expanded = m.expand(act)
                except (re.error, IndexError):
                    return None  # reported when the marker itself is handled
                return expanded if expanded.strip().startswith("slabinfo-write ") else None
        return None

    def run_pending(self, ev: TraceEvent, read: TraceEvent | None = None) -> None:
        """A /proc/slabinfo read (or the next marker): the syncs and snapshots waiting for it.  At a read
        (``read``: the reader's buffer allocation), a snapshot shows its first page of text now and the
        others as the reader reads them (``reading``)."""
        if self.reading is not None:
            self.read_done(ev)
        todo, self.pending_read = self.pending_read, []
        for what, label, mark in todo:
            if what == SYNC:
                self.sync(mark)
            elif read is not None and self.reading is None:
                safe = self.snapshot_name(label)
                self.reading = SlabinfoRead(safe, read.pid, read.ptr, self.k.slabinfo())
                if self.out:
                    Path(self.out, f"buddyinfo.{safe}").write_text(self.k.buddyinfo())
            else:
                self.snapshot(label, mark)

    def reader_event(self, ev: TraceEvent) -> None:
        """An event while a reader reads a snapshot: its next read(2), or its end."""
        reading = self.reading
        if reading is None:
            return
        if reading.wrote_page(ev):
            reading.show(self.k.slabinfo())
        elif reading.closes(ev):
            self.read_done(ev)

    def read_done(self, ev: TraceEvent | None) -> None:
        """The reader's last read(2) (its buffer freed, or the next marker): the rest of the snapshot."""
        reading, self.reading = self.reading, None
        if reading is None:
            return
        reading.show(self.k.slabinfo(), to_end=True)
        if self.out:
            Path(self.out, f"slabinfo.{reading.label}").write_text(reading.text())
        self.observers.snapshot(reading.label, ev)

    def finish(self) -> None:
        if self.reading is not None:
            self.read_done(None)
        if self.pending_read:
            self.run_pending(self.pending_read[-1][2])

    def snapshot_name(self, label: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
        self.summary.snapshots.append(safe)
        return safe

    def sync(self, ev: TraceEvent | None = None) -> None:
        report = self.sync_state.sync()
        if report is not None:
            self.summary.sync = report

    def snapshot(self, label: str, ev: TraceEvent | None = None) -> None:
        safe = self.snapshot_name(label)
        if self.out:
            Path(self.out, f"slabinfo.{safe}").write_text(self.k.slabinfo())
            Path(self.out, f"buddyinfo.{safe}").write_text(self.k.buddyinfo())
        self.observers.snapshot(safe, ev)

    def action(self, text: str, ev: TraceEvent | None = None) -> None:
        """Run an administrative action: ``slabinfo-write LINE``, ``shrink CACHE``, ``reap [CPU]``,
        ``drop-caches``, ``snapshot LABEL``."""
        where = f"line {ev.lineno}" if ev is not None else "action"
        verb, _, arg = text.strip().partition(" ")
        k = self.k
        cpu = k.cpu
        if verb == "slabinfo-write":
            res = k.slabinfo_write(arg.strip() + "\n", cpu=cpu)
            self.summary.actions.append(f"{where}: slabinfo-write {arg.strip()!r} -> {res}")
        elif verb == "shrink":
            c = k.find_cache(arg.strip())
            if c is None:
                raise ReplayError(f"{where}: action 'shrink {arg.strip()}': no such cache")
            k.kmem_cache_shrink(c, cpu=cpu)
            self.summary.actions.append(f"{where}: shrink {c.name}")
        elif verb == "reap":
            target = int(arg) if arg.strip() else cpu
            k.run_cache_reap(target)
            self.summary.actions.append(f"{where}: reap on CPU {target}")
        elif verb == "drop-caches":
            for c in list(k.slab_caches):
                k.kmem_cache_shrink(c, cpu=cpu)
            self.summary.actions.append(f"{where}: drop-caches (every cache shrunk)")
        elif verb == "snapshot":
            self.snapshot(arg.strip() or "action", ev)
        else:
            raise ReplayError(f"{where}: unknown action {verb!r} (slabinfo-write, shrink, reap, drop-caches, snapshot)")

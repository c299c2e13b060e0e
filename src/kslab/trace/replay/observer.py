"""Observers: what reports subscribe to (instead of subclassing the engine).

An observer is any object with some of these methods (the others are not called):

* ``on_start(rep, ev)``: before the first event is replayed;
* ``on_event(rep, ev)``: after each event of the trace was fed (in the trace's order; the replay may hold
  an event back and apply it later);
* ``on_sync(rep, ev)``: after the event during which the model synced with a real /proc/slabinfo;
* ``on_snapshot(rep, label, ev)``: when a snapshot was taken (``label`` as in the file's name);
* ``on_sample(rep, ev)``: every ``Replayer.sample_every`` events (also ``Replayer.on_sample``).
"""

from __future__ import annotations

from typing import Any

from ..events import TraceEvent


class Observer:
    """A base class for observers: every hook does nothing."""

    def on_start(self, rep: Any, ev: TraceEvent) -> None:
        """Before the first event."""

    def on_event(self, rep: Any, ev: TraceEvent) -> None:
        """After each event."""

    def on_sync(self, rep: Any, ev: TraceEvent) -> None:
        """After the event during which the model synced."""

    def on_snapshot(self, rep: Any, label: str, ev: TraceEvent | None) -> None:
        """A snapshot was taken."""


class Observers:
    """The engine's observers, in the order they subscribed."""

    def __init__(self, rep: Any) -> None:
        self.rep = rep
        self.items: list[Any] = []
        self.started = False  # the first event was seen

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, obs: Any) -> None:
        self.items.append(obs)

    def start(self, ev: TraceEvent) -> None:
        for o in self.items:
            if hasattr(o, "on_start"):
                o.on_start(self.rep, ev)

    def event(self, ev: TraceEvent) -> None:
        for o in self.items:
            if hasattr(o, "on_event"):
                o.on_event(self.rep, ev)

    def sync(self, ev: TraceEvent) -> None:
        for o in self.items:
            if hasattr(o, "on_sync"):
                o.on_sync(self.rep, ev)

    def snapshot(self, label: str, ev: TraceEvent | None) -> None:
        for o in self.items:
            if hasattr(o, "on_snapshot"):
                o.on_snapshot(self.rep, label, ev)

"""Saved replay state: ``kslab replay ... --save-state FILE [--save-state-on REGEX]`` and ``--from-state FILE``.

A state file is the :class:`~kslab.trace.replay.Replayer` pickled at a point of the trace (after a marker
matching ``--save-state-on`` was fed, or after the last event and before the end of input is handled), with a
header in front: the format number, the kslab version (``__version__`` and a hash of the model's and the
replay's sources, since a pickle is only good for the classes that wrote it), the machine (every compared
field of the :class:`~kslab.mm.config.MachineConfig`), a digest of the cache manifest, the replay options,
and where in the trace the state was taken (events fed, the line and a fingerprint of the last event).

Continuing (:func:`continue_replay`) feeds the events after that line to the restored replayer and then ends
the input as ``Replayer.run`` does, so that the result is the one of a replay in one go.  A file that does not
match (another format, kslab, machine, manifest, options or trace) is a :class:`StateError` of one line.

The Replayer pickles as it is, except for what belongs to the process: the progress and sample callbacks
(dropped), the pipeline's entry (a closure, rebuilt over the restored stages), and an open ``--ptr-map`` file
(refused: a state cannot be taken with ``--ptr-map``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
import re
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Final

from kslab import __version__
from kslab.mm.config import MachineConfig
from kslab.mm.errors import KslabError
from kslab.trace.events import MARK, TraceEvent
from kslab.trace.replay import Replayer, ReplayOptions, ReplaySummary
from kslab.trace.replay.reorder import make_feed

__all__ = ["FORMAT", "StateError", "StateHeader", "continue_replay", "kslab_version", "load_state", "save_state",
           "watch_for_save"]

#: The layout of the file (header, then the Replayer); bumped when it changes.
FORMAT: Final = 1
_MAGIC: Final = b"kslab-replay-state\n"
# The model's object graph is deep (lists of pages and slabs): pickle recurses once per link.
_RECURSION: Final = 200_000
# The replay options that must be the same to continue (the others act at markers still to come).
_SAME_OPTIONS: Final = ("reap", "start_slabinfo", "sync_on", "unknown_free")

_version: str | None = None


class StateError(KslabError):
    """A state file that cannot be used here: the one-line message says why."""


def kslab_version() -> str:
    """``__version__`` + a hash of the sources whose classes are pickled (kslab/mm, kslab/trace, manifest)."""
    global _version
    if _version is None:
        root = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for p in sorted([*root.glob("mm/**/*.py"), *root.glob("trace/**/*.py"), root / "manifest.py"]):
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
        _version = f"{__version__}+{h.hexdigest()[:16]}"
    return _version


def machine_fields(config: MachineConfig) -> dict[str, Any]:
    """The machine options a state belongs to: the compared fields of the config."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.compare}


def _fingerprint(ev: TraceEvent) -> tuple[Any, ...]:
    return (ev.kind, ev.lineno, ev.cpu, ev.ts, ev.pid, ev.ptr, ev.text)


@dataclasses.dataclass
class StateHeader:
    """What a state file says about itself (see the module docstring)."""

    format: int
    kslab: str
    machine: dict[str, Any]
    manifest: str
    options: dict[str, Any]
    events: int
    lineno: int
    last: tuple[Any, ...] | None
    at: str


def manifest_digest(path: str | None) -> str:
    """A digest of the cache manifest file (``""`` without one)."""
    if not path:
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@contextmanager
def _deep() -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, _RECURSION))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


# Replayer attributes that belong to the process (closures and callbacks): left out of the state, rebuilt by
# _restore (the pipeline's entry, built by make_feed over the pickled stages) or dropped (callbacks).
_OWN: Final = ("_feed", "feed", "finish", "on_progress", "on_sample")


def save_state(path: str, rep: Replayer, header: StateHeader) -> None:
    """Write ``rep`` and its header to ``path`` (through a temporary file, renamed when complete)."""
    if rep.ptrs.out is not None:
        raise StateError(f"{path}: a state cannot be saved while --ptr-map is written")
    own: dict[str, Any] = {name: rep.__dict__.pop(name) for name in _OWN if name in rep.__dict__}
    tmp = Path(path + ".tmp")
    try:
        with _deep(), open(tmp, "wb") as f:
            f.write(_MAGIC)
            pickle.dump(dataclasses.asdict(header), f, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(rep, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    finally:
        rep.__dict__.update(own)
        tmp.unlink(missing_ok=True)


def _restore(rep: Replayer) -> None:
    """What save_state left out: the pipeline's entry (as Replayer.__init__ and subscribe build it), no
    callbacks."""
    rep.on_progress = rep.on_sample = None
    rep._feed = make_feed(*rep.stages)
    rep.feed = rep._feed_observed if rep.observers else rep._feed


def read_header(f: IO[bytes], path: str) -> StateHeader:
    if f.read(len(_MAGIC)) != _MAGIC:
        raise StateError(f"{path}: not a kslab replay state (saved with kslab replay --save-state)")
    try:
        d = pickle.load(f)
        return StateHeader(**d)
    except Exception as e:
        raise StateError(f"{path}: unreadable state header: {e}") from None


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> str:
    keys = [k for k in sorted(set(saved) | set(now)) if saved.get(k) != now.get(k)]
    return ", ".join(f"{k} {saved.get(k)!r} (now {now.get(k)!r})" for k in keys)


def load_state(path: str, config: MachineConfig, manifest_path: str | None,
               options: ReplayOptions) -> tuple[Replayer, StateHeader]:
    """The Replayer saved in ``path``, checked against this kslab, machine, manifest and replay options; its
    marker actions and snapshots become those of ``options`` (they act from here on)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise StateError(f"{path}: cannot read the state: {e.strerror or e}") from None
    with f:
        h = read_header(f, path)
        if h.format != FORMAT:
            raise StateError(f"{path}: state format {h.format}, this kslab reads format {FORMAT}")
        if h.kslab != kslab_version():
            raise StateError(f"{path}: saved by kslab {h.kslab}, this is kslab {kslab_version()}: replay again")
        diff = _differences(h.machine, machine_fields(config))
        if diff:
            raise StateError(f"{path}: saved for another machine: {diff}; give the machine options it was saved with")
        if h.manifest != manifest_digest(manifest_path):
            raise StateError(f"{path}: saved with another cache manifest (--caches)")
        diff = _differences(h.options, _options(options))
        if diff:
            raise StateError(f"{path}: saved with other replay options: {diff}")
        if options.ptr_map:
            raise StateError(f"{path}: --ptr-map cannot be written when continuing from a state")
        try:
            with _deep():
                rep = pickle.load(f)
        except Exception as e:
            raise StateError(f"{path}: unreadable state: {type(e).__name__}: {e}") from None
    if not isinstance(rep, Replayer):
        raise StateError(f"{path}: the state holds no replay")
    rep.opts = dataclasses.replace(rep.opts, actions=options.actions, snapshot_on=options.snapshot_on,
                                   out=options.out)
    _restore(rep)
    markers = rep.markers
    markers.out = options.out
    markers.action_res = [(re.compile(rx), act) for rx, act in options.actions]
    markers.snap_re = re.compile(options.snapshot_on) if options.snapshot_on else None
    if options.out:
        Path(options.out).mkdir(parents=True, exist_ok=True)
    return rep, h


def _options(o: ReplayOptions) -> dict[str, Any]:
    return {name: getattr(o, name) for name in _SAME_OPTIONS}


def watch_for_save(rep: Replayer, path: str, on: str | None, config: MachineConfig, manifest_path: str | None,
                   done: tuple[int, int] = (0, 0)) -> Callable[[], int]:
    """Make ``rep`` save its state to ``path`` after feeding the first marker that matches ``on`` (or, without
    ``on``, after the last event, before the end of input is handled).  ``done``: (events, line) already
    replayed when ``rep`` came from a state.  Returns a function giving the events fed in all."""
    rx = re.compile(on) if on else None
    feed, finish = rep.feed, rep.finish
    count = [done[0]]
    last: list[TraceEvent | None] = [None]
    pending = [True]

    def header(at: str) -> StateHeader:
        ev = last[0]
        return StateHeader(FORMAT, kslab_version(), machine_fields(config), manifest_digest(manifest_path),
                           _options(rep.opts), count[0], ev.lineno if ev is not None else done[1],
                           _fingerprint(ev) if ev is not None else None, at)

    def feed_and_watch(ev: TraceEvent) -> None:
        feed(ev)
        count[0] += 1
        last[0] = ev
        if rx is not None and pending[0] and ev.kind == MARK and rx.search(ev.text):
            pending[0] = False
            save_state(path, rep, header(f"marker {ev.text!r}"))

    def finish_and_save() -> None:
        if rx is None:
            save_state(path, rep, header("end"))
        finish()

    rep.feed = feed_and_watch
    rep.finish = finish_and_save  # type: ignore[method-assign]
    return lambda: count[0]


def continue_replay(rep: Replayer, h: StateHeader, events: Iterable[TraceEvent], path: str,
                    fed: Callable[[], int] | None = None) -> ReplaySummary:
    """Feed the events after the state's line to ``rep`` and end the input (as ``Replayer.run`` does).  The
    event at the state's line must be the one it was taken after (the same trace)."""
    n = 0
    found = h.last is None
    for ev in events:
        if ev.lineno <= h.lineno:
            if ev.lineno == h.lineno and h.last is not None:
                if _fingerprint(ev) != tuple(h.last):
                    raise StateError(f"{path}: line {h.lineno} of this trace is not the event the state was saved "
                                     "after (another trace?)")
                found = True
            continue
        if not found:
            break
        rep.feed(ev)
        n += 1
    if not found:
        raise StateError(f"{path}: this trace has no event at line {h.lineno}, where the state was saved "
                         "(another trace?)")
    rep.summary.events = fed() if fed is not None else h.events + n
    rep.finish()
    return rep.summary

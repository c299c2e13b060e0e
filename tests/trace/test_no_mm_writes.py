"""Nothing under trace/ assigns to a field of an mm structure: the replay changes the model only by calling it
(its API, mm/slab/adopt.py's helpers) and through the hooks grouped for it in ``Kernel.replay_hooks``.

Two checks: the source (every assignment under src/kslab/trace to an attribute that only mm structures have),
and a replay (every assignment to an mm object made by code under src/kslab/trace while the bundled trace is
replayed with a sync, placeholders, reaps and markers, on a debug machine and on two nodes)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import kslab.mm
from kslab.manifest import read_manifest
from kslab.mm.config import MachineConfig
from kslab.mm.replay_hooks import ReplayHooks
from kslab.trace.ftrace import iter_events
from kslab.trace.replay import Replayer, ReplayOptions
from kslab.trace.synth import SynthTrace

SRC = Path(__file__).resolve().parents[2] / "src" / "kslab"
DATA = SRC / "data"
TRACE_DIR = str(SRC / "trace")


def _fields(root: Path) -> dict[str, set[str]]:
    """attribute name -> the classes under ``root`` (a folder or a file) that have it (slots, class
    annotations, self.X = ..., properties)."""
    out: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
        for cls in ast.walk(ast.parse(path.read_text())):
            if not isinstance(cls, ast.ClassDef):
                continue
            names: set[str] = set()
            for node in cls.body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
                if isinstance(node, ast.FunctionDef) and any(
                        isinstance(d, ast.Attribute) and d.attr == "setter" for d in node.decorator_list):
                    names.add(node.name)  # a property with a setter: assignable
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                        for t in node.targets):
                    names.update(c.value for c in ast.walk(node.value)
                                 if isinstance(c, ast.Constant) and isinstance(c.value, str))
            for node in ast.walk(cls):
                targets = (node.targets if isinstance(node, ast.Assign) else
                           [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
                names.update(t.attr for t in targets if isinstance(t, ast.Attribute)
                             and isinstance(t.value, ast.Name) and t.value.id == "self")
            for name in names:
                out.setdefault(name, set()).add(cls.name)
    return out


def _assignments(root: Path) -> Iterator[tuple[str, int, ast.Attribute]]:
    """Every ``<expr>.attr = / += / del`` under ``root`` (through subscripts: ``x.attr[i] = ...``), except on
    a bare ``self`` (a trace object's own field)."""
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete)) else
                       [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            todo = list(targets)
            while todo:
                base = todo.pop()
                if isinstance(base, (ast.Tuple, ast.List)):
                    todo += base.elts
                    continue
                if isinstance(base, ast.Starred):
                    todo.append(base.value)
                    continue
                while isinstance(base, ast.Subscript):  # x.attr[i] = ...: a change of x.attr
                    base = base.value
                if isinstance(base, ast.Attribute) and not (isinstance(base.value, ast.Name)
                                                            and base.value.id == "self"):
                    yield str(path.relative_to(SRC)), node.lineno, base


def test_no_assignment_under_trace_names_a_field_only_mm_structures_have() -> None:
    mm, trace = _fields(SRC / "mm"), _fields(SRC / "trace")
    hooks = set(_fields(SRC / "mm" / "replay_hooks.py"))  # the replay's own hooks into the model
    mm_only = set(mm) - set(trace) - hooks
    assert {"free_objects", "free_slabs", "num_active", "total_slabs", "slab_caches", "entry", "jiffies"} <= mm_only
    bad = [f"{path}:{line}: {ast.unparse(t)} (a field of {', '.join(sorted(mm[t.attr]))})"
           for path, line, t in _assignments(SRC / "trace") if t.attr in mm_only]
    assert not bad, "\n".join(bad)


def _mm_classes() -> list[type]:
    out = []
    for info in pkgutil.walk_packages(kslab.mm.__path__, "kslab.mm."):
        mod = importlib.import_module(info.name)
        out += [c for c in vars(mod).values()
                if inspect.isclass(c) and c.__module__ == mod.__name__ and c is not ReplayHooks
                and not issubclass(c, BaseException)]
    return out


@contextmanager
def trace_writes() -> Iterator[list[str]]:
    """Record every attribute assignment to an instance of an mm class made directly by code under trace/."""
    seen: list[str] = []
    saved: dict[type, Any] = {}
    for cls in _mm_classes():
        orig = cls.__setattr__

        def guard(self: object, name: str, value: object, _orig: Any = orig, _cls: type = cls) -> None:
            code = sys._getframe(1).f_code
            if code.co_filename.startswith(TRACE_DIR):
                seen.append(f"{code.co_filename}:{code.co_name}: {type(self).__name__}.{name}")
            _orig(self, name, value)
        guard._guard = True  # type: ignore[attr-defined]
        own = vars(cls).get("__setattr__")  # a class's own __setattr__ (a frozen dataclass's) goes back after
        try:
            cls.__setattr__ = guard  # type: ignore[assignment,method-assign]
        except TypeError:  # a class that does not allow it (none today)
            continue
        saved[cls] = own
    try:
        yield seen
    finally:
        for cls, own in saved.items():
            if own is None:
                del cls.__setattr__  # type: ignore[misc]
            else:
                cls.__setattr__ = own  # type: ignore[method-assign]


@pytest.mark.parametrize("config", [{"cpus": 1}, {"cpus": 1, "CONFIG_DEBUG_SLAB": True}, {"cpus": 4, "nodes": 2}],
                         ids=["prod", "debug", "2-nodes"])
def test_a_replay_assigns_no_field_of_the_model(config: dict[str, Any]) -> None:
    opts = ReplayOptions(start_slabinfo=str(DATA / "oracle-R1-slabinfo.0-start"), sync_on="snapshot 0-start begin")
    rep = Replayer(MachineConfig.build(**config), read_manifest(DATA / "oracle-R1-caches.log.xz"), opts)
    with trace_writes() as seen:
        rep.run(iter_events(str(DATA / "oracle-R1-excerpt.txt.xz")))
        rep.finish()
    assert rep.summary.applied and not seen, "\n".join(sorted(set(seen)))


def test_a_synthetic_replay_assigns_no_field_of_the_model() -> None:
    rep = Replayer(MachineConfig.build(cpus=4, nodes=2), None, ReplayOptions())
    with trace_writes() as seen:
        rep.run(SynthTrace(20_000, seed=5, cpus=4, nodes=2, event_gap_us=60.0))
        rep.finish()
    assert rep.summary.applied and not seen, "\n".join(sorted(set(seen)))


def test_the_guard_sees_a_write_from_trace_code() -> None:
    """The check can fail: an assignment made from a function compiled as if it were under trace/ is seen."""
    rep = Replayer(MachineConfig.build(cpus=1), None, ReplayOptions())
    n = rep.k.kmem_cache.node[0] if rep.k.kmem_cache is not None else None
    assert n is not None
    code = compile("def poke(n):\n    n.free_limit = n.free_limit\n", TRACE_DIR + "/fake.py", "exec")
    space: dict[str, Any] = {}
    exec(code, space)
    with trace_writes() as seen:
        space["poke"](n)
    assert seen == [f"{TRACE_DIR}/fake.py:poke: KmemCacheNode.free_limit"]

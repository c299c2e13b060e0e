"""The columnar parser (kslab.trace.columns) gives back exactly what kslab.trace.ftrace.iter_events gives: the
same TraceEvents (every field, ``ts`` by type too), the same ParseStats, the same TraceParseError after the same
events, on the test data, the bundled trace, random and mutated traces, with small reads and small tables; with
its pure-Python engine and with the compiled scanner (when it is built: ``pip install -e .`` or
``python setup.py build_ext --inplace``; with ``KSLAB_PURE=1`` the compiled cases are skipped)."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kslab.tools.fuzz import TraceGen, random_trace
from kslab.trace import chunk, columns, ftrace, ftrace_general
from kslab.trace.errors import TraceParseError
from kslab.trace.events import FUNC, KMEM_CACHE_ALLOC, MM_PAGE_ALLOC, TraceEvent
from kslab.trace.ftrace import ParseStats, iter_events

DATA = Path(__file__).resolve().parent / "data"
BUNDLED = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data" / "oracle-R1-excerpt.txt.xz"
FILES = [*sorted(DATA.glob("*.txt")), BUNDLED]
row = attrgetter(*TraceEvent.__dataclass_fields__)


def outcome(parse: Callable[..., Any], source: Callable[[], Any],
            skip_bad: bool) -> tuple[list[Any], Any, dict[str, Any]]:
    """(event rows, the error raised or None, the stats) of one parse."""
    stats = ParseStats()
    rows: list[Any] = []
    err = None
    try:
        for ev in parse(source(), skip_bad=skip_bad, stats=stats):
            rows.append((row(ev), type(ev.ts)))
    except TraceParseError as e:
        err = (e.path, e.lineno, e.reason, e.line, str(e))
    return rows, err, {k: getattr(stats, k) for k in ParseStats.__dataclass_fields__}


ENGINES = ["pure", pytest.param("compiled", marks=pytest.mark.skipif(
    not columns.compiled_available(), reason="the compiled scanner is not built (or KSLAB_PURE is set)"))]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each engine: ``iter_chunks`` called without one picks it."""
    name: str = request.param
    real = columns.iter_chunks

    def chosen(*args: Any, **kw: Any) -> Any:
        kw.setdefault("engine", name)
        return real(*args, **kw)

    monkeypatch.setattr(columns, "iter_chunks", chosen)
    return name


def assert_same(source: Callable[[], Any], skip_bad: bool) -> tuple[list[Any], Any, dict[str, Any]]:
    want = outcome(iter_events, source, skip_bad)
    got = outcome(columns.iter_column_events, source, skip_bad)
    assert got[1] == want[1]
    assert got[2] == want[2]
    if got[0] != want[0]:
        i = next(i for i, (a, b) in enumerate(zip(got[0], want[0], strict=False)) if a != b)
        pytest.fail(f"event {i}: columns {got[0][i]} != ftrace {want[0][i]}")
    assert len(got[0]) == len(want[0])
    return want


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("skip_bad", [False, True])
def test_files_parse_the_same(engine: str, path: Path, skip_bad: bool) -> None:
    rows, err, stats = assert_same(lambda: path, skip_bad)
    assert err is None and rows and stats["events"] == len(rows)


def test_small_reads_and_small_tables(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3001 characters, and tables started afresh every few chunks (the interning limit)."""
    monkeypatch.setattr(ftrace, "CHUNK_SIZE", 3001)
    monkeypatch.setattr(columns, "CACHE_LIMIT", 40)
    monkeypatch.setattr(ftrace, "CACHE_LIMIT", 40)
    monkeypatch.setattr(ftrace_general, "CACHE_LIMIT", 40)
    for skip_bad in (False, True):
        assert_same(lambda: BUNDLED, skip_bad)


def test_columns_and_tables(engine: str) -> None:
    """The stored and derived columns say what the events say."""
    events = list(iter_events(BUNDLED))
    chunks = list(columns.iter_chunks(BUNDLED))
    assert sum(len(c) for c in chunks) == len(events)
    i = 0
    kinds_seen = set()
    for c in chunks:
        assert [c.event(r) for r in range(len(c))] == list(c.events())
        derived = {name: c.column(name) for name in chunk._DERIVED}
        sites, names = c.interned()
        for r in range(len(c)):
            ev = events[i]
            i += 1
            assert c.lineno[r] == ev.lineno and c.ts[r] == ev.ts
            assert derived["kind"][r] == ev.kind and derived["cpu"][r] == ev.cpu and derived["irq"][r] == ev.irq
            assert sites[derived["call_site_id"][r]] == ev.call_site and names[derived["name_id"][r]] == ev.name
            for name in ("bytes_req", "bytes_alloc", "gfp", "node", "pid"):
                assert derived[name][r] == getattr(ev, name)
            if c.code[r] >= 0:
                kinds_seen.add(c.heads[c.code[r]][0])
                if ev.kind == KMEM_CACHE_ALLOC:
                    assert c.ptr[r] == ev.ptr
    # the common kinds are rows of the columns, not side-table events
    assert {FUNC, KMEM_CACHE_ALLOC, MM_PAGE_ALLOC} <= kinds_seen
    with pytest.raises(KeyError):
        chunks[0].column("nonsense")


def test_the_events_before_an_error_come_first(engine: str) -> None:
    good = (DATA / "oracle-R1-global.txt").read_text()
    bad = good + "  a-1 [000] ....  0.2: kmalloc: call_site=f ptr=\x00\n" + good
    rows, err, _ = assert_same(lambda: io.StringIO(bad), False)
    assert err is not None and err[1] == good.count("\n") + 1 and rows


SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(0, 80), st.booleans())
def test_adversarial_traces_parse_the_same(engine: str, rng: random.Random, n: int, skip_bad: bool) -> None:
    data = random_trace(rng, n)
    assert_same(lambda: io.BytesIO(data), skip_bad)


@SETTINGS
@given(st.randoms(use_true_random=False), st.booleans())
def test_generated_lines_parse_the_same(engine: str, rng: random.Random, skip_bad: bool) -> None:
    gen = TraceGen(rng, wild=0.3)
    text = "\n".join(gen.line() for _ in range(60))
    assert_same(lambda: io.StringIO(text), skip_bad)


@SETTINGS
@given(st.binary(max_size=2000))
def test_binary_garbage_parses_the_same(engine: str, data: bytes) -> None:
    assert_same(lambda: io.BytesIO(data), True)


def test_mutated_real_lines_parse_the_same(engine: str) -> None:
    """Lines of the real excerpts with a character cut, replaced, doubled (the mutations of parse_identity)."""
    rng = random.Random(7)
    lines = [x for p in FILES[:3] for x in p.read_text().split("\n")]
    junk = ["\x00", "\ufffd", ":", ": ", " ", "[", "]", "=", "0x", "(null)", "\r", "+", "9" * 30, "9" * 400, ".",
            "#", " ptr=", " pfn=", " <-", "ffffffffffffffffffff", "-"]
    for _ in range(30):
        out = []
        for x in lines:
            if x and rng.random() < 0.1:
                i = rng.randrange(len(x))
                x = x[:i] + rng.choice(junk) + x[i + rng.randrange(2):]
            out.append(x)
        text = "\n".join(out)
        for skip_bad in (True, False):
            assert_same(lambda text=text: io.StringIO(text), skip_bad)

#!/usr/bin/env python3
"""Check that this tree's trace parser gives exactly what another version of it gives.

    git archive OLD src | tar -x -C /tmp/old
    python benchmarks/parse_identity.py --ref /tmp/old/src [TRACE ...]

Both parsers (this tree's ``kslab.trace.ftrace`` and ``REF/kslab/trace/ftrace.py``, loaded as a separate
module) parse the same inputs; every TraceEvent is compared field by field (``ts`` by value and type), and
the ParseStats, and, for inputs that raise, the TraceParseError (path, line number, reason, line, message).

Inputs: the TRACE files given (e.g. the oracle traces, compressed or not), the test data under
tests/trace/data, a synthetic trace, and mutations of all of them (lines cut short, characters replaced
by garbage, binary bytes, fields doubled or dropped), each parsed with and without ``skip_bad``, with the
error of each single mutation also compared one by one (``--single N`` of them per input).
Not part of the tests (it needs the reference copy and takes minutes on the big traces).

    python benchmarks/parse_identity.py --columns [--engine pure|compiled|both] [TRACE ...]

compares, instead, this tree's columnar parser (``kslab.trace.columns.iter_column_events``, with the pure-Python
engine, the compiled scanner, or both one after the other) with this tree's ``iter_events``, on the same inputs.
"""

# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import importlib.util
import io
import lzma
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from operator import attrgetter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kslab.trace import ftrace as new  # noqa: E402
from kslab.trace.errors import TraceParseError  # noqa: E402
from kslab.trace.events import TraceEvent  # noqa: E402
from kslab.trace.ftrace import ParseStats  # noqa: E402

FIELDS = tuple(TraceEvent.__dataclass_fields__)
row = attrgetter(*FIELDS)


def load_ref(src: Path) -> Any:
    spec = importlib.util.spec_from_file_location("ref_ftrace", src / "kslab" / "trace" / "ftrace.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ref_ftrace"] = mod
    spec.loader.exec_module(mod)
    return mod


def stats_dict(s: Any) -> dict[str, Any]:
    return {k: getattr(s, k) for k in ParseStats.__dataclass_fields__}


def run(parser: Any, source: Callable[[], Any], skip_bad: bool) -> Iterator[Any]:
    """Yield ('ev', row) per event, then ('err', details) or ('ok',), then ('stats', dict)."""
    stats = parser.ParseStats()
    try:
        for ev in parser.iter_events(source(), skip_bad=skip_bad, stats=stats):
            r = row(ev)
            yield ("ev", r, type(ev.ts))
        yield ("ok",)
    except TraceParseError as e:
        yield ("err", e.path, e.lineno, e.reason, e.line, str(e))
    yield ("stats", stats_dict(stats))


class Columnar:
    """The columnar parser with one engine, in the shape ``run`` expects of a parser module."""

    ParseStats = ParseStats

    def __init__(self, engine: str) -> None:
        self.engine = engine

    def iter_events(self, source: Any, *, skip_bad: bool, stats: Any) -> Any:
        from kslab.trace.columns import iter_column_events
        return iter_column_events(source, skip_bad=skip_bad, stats=stats, engine=self.engine)


def compare(ref: Any, name: str, source: Callable[[], Any], skip_bad: bool, other: Any = new) -> tuple[int, str | None]:
    """(events compared, first difference or None)."""
    n = 0
    a_it = run(ref, source, skip_bad)
    b_it = run(other, source, skip_bad)
    sentinel = ("<end>",)
    while True:
        a = next(a_it, sentinel)
        b = next(b_it, sentinel)
        if a != b:
            return n, f"{name} (skip_bad={skip_bad}), item {n}:\n  ref: {a}\n  new: {b}"
        if a is sentinel:
            return n, None
        n += 1


def text_lines(path: Path) -> list[str]:
    if path.suffix in (".xz", ".lzma"):
        with lzma.open(path, "rb") as f:
            raw = f.read()
    else:
        raw = path.read_bytes()
    return raw.decode("utf-8", "replace").split("\n")


RAW = "\x01RAW\x01"  # in files, replaced by bytes that are not UTF-8
GARBAGE = ["\x00", "\ufffd", "é", ":", ": ", " ", "  ", "-", "[", "]", "=", "0x", "(null)", "\t", "\r", "+", "_",
           "٣", "1e5", "inf", "ptr=", " ptr=", "name=", " <-", "<-", "call_site=", "page=", " pfn=", "9" * 30,
           "9" * 400, ".", "..", "#", "=>", "kmalloc: ", "ffff", RAW]


def mutate(line: str, rng: random.Random) -> str:
    how = rng.randrange(9)
    if not line:
        return rng.choice(GARBAGE)
    i = rng.randrange(len(line) + 1)
    if how == 0:  # cut short
        return line[:i]
    if how == 1:  # a character replaced
        return line[:i] + rng.choice(GARBAGE) + line[i + 1 :]
    if how == 2:  # something inserted
        return line[:i] + rng.choice(GARBAGE) + line[i:]
    if how == 3:  # a character dropped
        return line[:i] + line[i + 1 :]
    if how == 4:  # binary bytes (as the parser decodes them)
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        return line[:i] + junk.decode("utf-8", "replace") + line[i:]
    if how == 5:  # a word doubled or dropped
        words = line.split(" ")
        j = rng.randrange(len(words))
        if rng.random() < 0.5:
            words.insert(j, words[j])
        else:
            del words[j]
        return " ".join(words)
    if how == 6:  # two characters swapped
        if i + 1 < len(line):
            return line[:i] + line[i + 1] + line[i] + line[i + 2 :]
        return line
    if how == 7:  # case changed
        return line[:i] + line[i:].upper()
    return line + rng.choice(GARBAGE)  # something appended


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", type=Path, help="src/ directory of the reference version")
    ap.add_argument("--columns", action="store_true", help="compare the columnar parser with iter_events instead")
    ap.add_argument("--engine", choices=("pure", "compiled", "both"), default="both", help="with --columns")
    ap.add_argument("--synth", type=int, default=200_000, help="events of the synthetic trace (0: none)")
    ap.add_argument("--mutate", type=float, default=0.02, help="fraction of lines mutated in the mutated copies")
    ap.add_argument("--single", type=int, default=40, help="single-mutation error checks per input")
    ap.add_argument("--mutate-lines", type=int, default=300_000, help="lines of each input used for mutations")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=0, help="CHUNK_SIZE of both parsers (default: theirs)")
    ap.add_argument("traces", nargs="*", type=Path)
    a = ap.parse_args()
    if a.columns:
        ref = new
        others = [Columnar(e) for e in (("pure", "compiled") if a.engine == "both" else (a.engine,))]
    elif a.ref is None:
        ap.error("--ref SRC is needed (or --columns)")
    else:
        ref = load_ref(a.ref.resolve())
        others = [new]
    if a.chunk:
        ref.CHUNK_SIZE = new.CHUNK_SIZE = a.chunk
    rng = random.Random(a.seed)
    failures = 0
    tmp = Path(tempfile.mkdtemp(prefix="kslab-identity-"))

    inputs: list[Path] = list(a.traces)
    inputs += sorted(p for p in (ROOT / "tests" / "trace" / "data").iterdir() if p.suffix == ".txt")
    inputs.append(ROOT / "src" / "kslab" / "data" / "oracle-R1-excerpt.txt.xz")
    if a.synth:
        from kslab.trace.synth import write_trace
        p = tmp / "synth.txt"
        with open(p, "w", encoding="utf-8") as f:
            write_trace(f, a.synth, seed=a.seed, cpus=4, nodes=2)
        inputs.append(p)

    def check(name: str, source: Callable[[], Any], skip_bad: bool) -> None:
        nonlocal failures
        for other in others:
            t0 = time.perf_counter()
            n, diff = compare(ref, name, source, skip_bad, other)
            status = "ok" if diff is None else "DIFFERENT"
            what = f" [{other.engine}]" if isinstance(other, Columnar) else ""
            print(f"{status:9} {n:>10,} items  {time.perf_counter() - t0:6.1f}s  {name} skip_bad={skip_bad}{what}",
                  flush=True)
            if diff is not None:
                failures += 1
                print(diff, flush=True)

    for path in inputs:
        for skip_bad in (False, True):
            check(str(path), lambda path=path: path, skip_bad)
        lines = text_lines(path)[: a.mutate_lines]
        # many mutations in one file, skip_bad: every reason and count must agree
        mutated = [mutate(x, rng) if rng.random() < a.mutate else x for x in lines]
        data = "\n".join(mutated).encode("utf-8").replace(RAW.encode(), b"\xff\xc3\x00\x80\xe2\x82")
        mp = tmp / f"{path.name}.mutated"
        mp.write_bytes(data)
        for skip_bad in (True, False):
            check(f"{path.name} mutated ({a.mutate:.0%} of {len(lines):,} lines)", lambda mp=mp: mp, skip_bad)
        # as a text stream, CRLF line ends
        crlf = "\r\n".join(mutated)
        check(f"{path.name} mutated, CRLF, text stream", lambda crlf=crlf: io.StringIO(crlf), True)
        # one mutation at a time: the error raised (or not) must agree
        for _ in range(a.single):
            j = rng.randrange(len(lines))
            one = list(lines)
            one[j] = mutate(one[j], rng)
            lo = max(0, j - 5000)
            text = "\n".join(one[lo : j + 50])
            check(f"{path.name} single mutation at line {j + 1 - lo}", lambda text=text: io.StringIO(text), False)
    print("FAILURES:", failures if failures else "none")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

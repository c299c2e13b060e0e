"""The trace parser on random, binary, truncated and adversarial input: it never crashes, every line is
counted (``lines == events + header + skipped``), a malformed line is one TraceParseError naming the input and
the line (or, with skip_bad, a skip counted under its reason), and a line parses the same whatever came before
it (the fast path, with the line's prefix cached, agrees with the slow path)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kslab.tools.fuzz import TraceGen, check_parser, random_trace
from kslab.trace.errors import TraceInputError, TraceParseError
from kslab.trace.events import MARK
from kslab.trace.ftrace import ParseStats, iter_events

DATA = Path(__file__).resolve().parent.parent / "trace" / "data"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOOD = "  a-1 [000] ....  0.100000: kmalloc: call_site=f+0x1/0x2 ptr=ffff888012ddeb00 bytes_req=5 bytes_alloc=8 " \
       "gfp_flags=GFP_KERNEL"


def parse(text: str | bytes, skip_bad: bool = True) -> tuple[list[object], ParseStats]:
    stats = ParseStats()
    src = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
    return list(iter_events(src, skip_bad=skip_bad, stats=stats)), stats


@FAST
@given(st.binary(max_size=3000))
def test_binary_garbage(data: bytes) -> None:
    check_parser(data)


@FAST
@given(st.text(max_size=2000))
def test_random_text(text: str) -> None:
    check_parser(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(0, 60))
def test_adversarial_traces(rng: random.Random, n: int) -> None:
    check_parser(random_trace(rng, n))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_a_line_parses_the_same_with_its_prefix_cached(rng: random.Random) -> None:
    """The fast path (prefix found in the cache) and the slow path must agree on every line."""
    line = TraceGen(rng, wild=0.4).line()
    colon = line.find(": ")
    if colon <= 0:
        return
    sp = line.rfind(" ", 0, colon)
    if sp <= 0:
        return
    warm = line[:sp] + " 0.5: tracing_mark_write: warm"
    events_w, stats_w = parse(warm + "\n")
    if stats_w.events != 1 or events_w[0].kind != MARK:  # type: ignore[attr-defined]
        return  # not a prefix the parser knows: nothing is cached
    alone, stats_a = parse(line + "\n")
    after, stats_b = parse(warm + "\n" + line + "\n")
    assert stats_b.skipped == stats_a.skipped
    assert len(after) == len(alone) + 1
    for a, b in zip(alone, after[1:], strict=True):
        b.lineno -= 1  # type: ignore[attr-defined]
        assert a == b


@pytest.mark.parametrize("ts", ["1e5", "inf", "nan", "1_0", "+1.0", "-1.0", ".5", "1.", "infinity", "9" * 400 + ".0"])
def test_odd_timestamps_are_malformed_with_or_without_a_cached_prefix(ts: str) -> None:
    bad = GOOD.replace("0.100000", ts)
    for text in (bad, GOOD + "\n" + bad):
        events, stats = parse(text + "\n")
        assert len(events) == text.count("\n")  # only GOOD, when it is there
        assert sum(v for k, v in stats.skipped.items() if k.startswith("malformed")) == 1
        assert stats.consistent
        with pytest.raises(TraceParseError) as e:
            parse(text + "\n", skip_bad=False)
        assert e.value.lineno == text.count("\n") + 1 and "timestamp" in e.value.reason


def test_impossible_page_order_is_malformed() -> None:
    line = "  a-1 [000] ....  0.1: mm_page_free: page=ffffea00000615f0 pfn=7122 order=%s"
    assert parse(line % 3)[1].events == 1
    for order in ("64", "-1", "9" * 30):
        events, stats = parse(line % order)
        assert not events and stats.skipped == {"malformed: impossible order": 1}


@pytest.mark.parametrize("text", ["", "\n", "\n\n\n", "# tracer: nop\n#\n", "\r\n", "cpus=2\n# x\n  \n"])
def test_empty_and_headers_only(text: str) -> None:
    events, stats = parse(text)
    assert not events and stats.events == 0 and stats.consistent
    assert stats.lines == stats.header


def test_a_huge_line_without_newlines_is_cut_and_counted() -> None:
    data = b"\x00\xff" * (1 << 20) + b"\n" + GOOD.encode() + b"\n"
    events, stats = parse(data)
    assert len(events) == 1 and stats.consistent
    assert sum(stats.skipped.values()) >= 1


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".xz", lzma.compress), (".bz2", bz2.compress)])
def test_truncated_and_corrupt_compressed_input(tmp_path: Path, suffix: str, compress: object) -> None:
    text = (DATA / "oracle-R1-global.txt").read_bytes() * 250  # ~2.4 MB of text: more than two reads
    packed = compress(text)  # type: ignore[operator]
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.raises(TraceInputError) as e:
        list(iter_events(cut))
    msg = str(e.value)
    assert msg.startswith(str(cut) + ": ") and "\n" not in msg and "after line" in msg
    assert "cut short" in msg or "not valid" in msg
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"this is not compressed\n")
    with pytest.raises(TraceInputError) as e:
        list(iter_events(junk))
    assert str(e.value).startswith(f"{junk}: not valid ") and "rename the file" in str(e.value)


def test_parse_error_is_one_line_naming_the_input_and_line(tmp_path: Path) -> None:
    p = tmp_path / "t.txt"
    p.write_bytes(b"# tracer: nop\n" + GOOD.encode() + b"\n  a-1 [000] ....  0.2: kmalloc: call_site=f ptr=\x00\n")
    with pytest.raises(TraceParseError) as e:
        list(iter_events(p))
    assert str(e.value).startswith(f"{p}:3: malformed") and "\n" not in str(e.value)


def test_a_byte_order_mark_is_not_a_malformed_first_line() -> None:
    for data in (b"\xef\xbb\xbf# tracer: nop\n" + GOOD.encode() + b"\n", ("\ufeff" + GOOD + "\n")):
        events, stats = parse(data, skip_bad=False)
        assert len(events) == 1 and stats.consistent and not stats.skipped

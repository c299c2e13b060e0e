"""The parse cache: a second read of a trace gives the same events and statistics without parsing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from kslab.trace import cache as cache_mod
from kslab.trace.cache import cache_path, cached_events, drop_cache
from kslab.trace.ftrace import ParseStats, iter_events
from kslab.trace.synth import synth_lines

DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSLAB_CACHE_DIR", str(tmp_path / "cache"))


def _parse(path: Path, **kw: object) -> tuple[list[object], ParseStats]:
    stats = ParseStats()
    return list(iter_events(path, stats=stats, **kw)), stats  # type: ignore[arg-type]


def _cached(path: Path, **kw: object) -> tuple[list[object], ParseStats]:
    stats = ParseStats()
    return list(cached_events(path, stats=stats, **kw)), stats  # type: ignore[arg-type]


def test_bundled_excerpt_round_trips_through_the_cache() -> None:
    trace = DATA / "oracle-R1-excerpt.txt.xz"
    want, want_stats = _parse(trace)
    first, first_stats = _cached(trace)  # parses and writes
    assert cache_path(trace).exists()
    second, second_stats = _cached(trace)  # reads
    assert first == want and second == want
    assert first_stats == want_stats and second_stats == want_stats


def test_cache_is_read_not_parsed_the_second_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("\n".join(synth_lines(3000, seed=5)) + "\n")
    want, _ = _cached(trace)

    def no_parse(*a: object, **k: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(cache_mod, "iter_events", no_parse)
    assert _cached(trace)[0] == want


def test_a_changed_trace_or_option_makes_the_cache_stale(tmp_path: Path) -> None:
    trace = tmp_path / "t.txt"
    lines = list(synth_lines(500, seed=7))
    trace.write_text("\n".join(lines) + "\n")
    assert _cached(trace)[0] == _parse(trace)[0]
    trace.write_text("\n".join(lines[:200]) + "\nnot a trace line\n")
    os.utime(trace, ns=(1, 1))
    with pytest.raises(Exception, match=r"t\.txt:201: malformed"):
        _cached(trace)  # parsed again (and fails like the parser), not read from the old cache
    events, stats = _cached(trace, skip_bad=True)
    assert events == _parse(trace, skip_bad=True)[0] and stats.skipped
    assert drop_cache(trace) and not drop_cache(trace)


def test_an_interrupted_parse_leaves_no_cache(tmp_path: Path) -> None:
    trace = tmp_path / "t.txt"
    trace.write_text("\n".join(synth_lines(200_000 // 100, seed=1)) + "\n")
    it = cached_events(trace)
    next(it)
    it.close()  # type: ignore[attr-defined]
    assert not cache_path(trace).exists()
    assert not list(cache_path(trace).parent.glob("*.tmp"))


def test_streams_are_parsed_not_cached() -> None:
    text = "\n".join(synth_lines(50, seed=3)) + "\n"
    assert list(cached_events(io.StringIO(text))) == list(iter_events(io.StringIO(text)))

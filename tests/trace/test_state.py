"""Saved replay state (kslab.trace.state, ``kslab replay --save-state/--save-state-on/--from-state``): a replay
saved at a marker and continued from the state gives the slabinfo and summary of a replay in one go; a state
that does not match (machine, options, trace, kslab version, not a state) is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kslab.cli import main
from kslab.trace import state as S

DATA = Path(__file__).resolve().parents[2] / "src" / "kslab" / "data"
TRACE = str(DATA / "oracle-R1-excerpt.txt.xz")
BASE = [TRACE, "--caches", str(DATA / "oracle-R1-caches.log.xz"), "--start-slabinfo",
        str(DATA / "oracle-R1-slabinfo.0-start"), "--sync-on", "snapshot 0-start begin", "-q"]


def replay(tmp: Path, name: str, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, object]]:
    capsys.readouterr()
    assert main(["replay", *BASE, "--json", str(tmp / f"{name}.json"), *extra]) == 0
    out = capsys.readouterr().out
    d = json.loads((tmp / f"{name}.json").read_text())
    d.pop("seconds")
    d.pop("events_per_second")
    return out, d


@pytest.mark.parametrize("marker", ["0-start end", "phase 1 files begin", "snapshot 1-files end"])
def test_continued_replay_is_the_replay_in_one_go(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   marker: str) -> None:
    one = replay(tmp_path, "one", capsys=capsys)
    st = tmp_path / "state"
    saving = replay(tmp_path, "a", "--save-state", str(st), "--save-state-on", marker, capsys=capsys)
    assert saving == one and st.exists()
    cont = replay(tmp_path, "b", "--from-state", str(st), capsys=capsys)
    assert cont[0] == one[0]  # the final /proc/slabinfo
    assert cont[1] == one[1]  # the summary
    assert one[1]["events"] == 30179


def test_state_at_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = replay(tmp_path, "one", "--save-state", str(tmp_path / "end"), capsys=capsys)
    assert replay(tmp_path, "b", "--from-state", str(tmp_path / "end"), capsys=capsys) == one


def test_a_state_saved_again_while_continuing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = replay(tmp_path, "one", capsys=capsys)
    replay(tmp_path, "a", "--save-state", str(tmp_path / "s1"), "--save-state-on", "0-start end", capsys=capsys)
    replay(tmp_path, "b", "--from-state", str(tmp_path / "s1"), "--save-state", str(tmp_path / "s2"),
           "--save-state-on", "phase 1 files end", capsys=capsys)
    assert replay(tmp_path, "c", "--from-state", str(tmp_path / "s2"), capsys=capsys) == one


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["replay", *args]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("kslab: error: ")
    return err


def test_mismatches_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    st = str(tmp_path / "state")
    replay(tmp_path, "a", "--save-state", st, "--save-state-on", "phase 1 files begin", capsys=capsys)
    assert "saved for another machine: cpus 1 (now 2)" in one_line_error([*BASE, "--from-state", st, "--cpus", "2"],
                                                                         capsys)
    assert "other replay options: reap 'trace' (now 'off')" in one_line_error(
        [*BASE, "--from-state", st, "--reap", "off"], capsys)
    assert "another cache manifest" in one_line_error([*BASE[:1], *BASE[3:], "--from-state", st], capsys)
    other = Path(__file__).parent / "data" / "oracle-R1-global.txt"
    assert "another trace" in one_line_error([str(other), *BASE[1:], "--from-state", st], capsys)
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a state\n")
    assert "not a kslab replay state" in one_line_error([*BASE, "--from-state", str(junk)], capsys)
    assert "cannot read the state" in one_line_error([*BASE, "--from-state", str(tmp_path / "none")], capsys)
    assert "--ptr-map cannot be combined" in one_line_error(
        [*BASE, "--from-state", st, "--ptr-map", str(tmp_path / "p.csv")], capsys)
    assert "--save-state-on needs --save-state" in one_line_error([*BASE, "--save-state-on", "x"], capsys)
    monkeypatch.setattr(S, "_version", "0.0.0+other")
    assert "saved by kslab" in one_line_error([*BASE, "--from-state", st], capsys)
    monkeypatch.setattr(S, "FORMAT", 99)
    assert "state format 1, this kslab reads format 99" in one_line_error([*BASE, "--from-state", st], capsys)


def test_a_marker_that_never_matches_saves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = tmp_path / "state"
    capsys.readouterr()
    assert main(["replay", *BASE, "--no-slabinfo", "--save-state", str(st), "--save-state-on", "no such"]) == 0
    assert "never matched: no state saved" in capsys.readouterr().err and not st.exists()

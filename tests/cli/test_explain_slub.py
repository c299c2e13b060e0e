"""kslab explain --allocator slub: SLUB's scenarios end to end through kslab.cli.main, pinned against golden
files (tests/golden/explain-slub, KSLAB_UPDATE_GOLDEN=1 to regenerate)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import goldens
from kslab.cli import main
from kslab.scenarios_slub import SCENARIOS

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "explain-slub"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["explain", "--allocator", "slub", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_output_is_golden(capsys, name, lang):
    rc, out, err = run(capsys, "--scenario", name, "--lang", lang)
    assert rc == 0, err
    goldens.check_golden(GOLDEN, f"{name}.{lang}.txt", out)


def test_list_names_slubs_scenarios(capsys):
    rc, out, _ = run(capsys, "--list")
    assert rc == 0
    assert [line.split()[0] for line in out.splitlines()] == list(SCENARIOS)
    rc, out, _ = run(capsys, "--list", "--lang", "zh")
    assert "cpu_partial_drain" in out and "节点" in out


def test_json_has_depths_and_texts(capsys):
    rc, out, _ = run(capsys, "--scenario", "free-to-cpu-partial", "--json")
    assert rc == 0
    doc = json.loads(out)
    keys = [(s["func"], s["key"]) for s in doc["steps"]]
    assert ("__slab_free", "to_cpu_partial") in keys and ("put_cpu_partial", "put") in keys
    depth = {s["func"]: s["depth"] for s in doc["steps"]}
    assert depth["kfree"] == 0 and depth["do_slab_free"] == 2 and depth["__slab_free"] == 3
    assert all(s["text"].startswith(s["func"] + ": ") for s in doc["steps"])


def test_user_machine_options_win(capsys):
    rc, out, _ = run(capsys, "--scenario", "alloc-fastpath", "--cpus", "4", "--size", "192")
    assert rc == 0
    assert "machine: 4 CPUs" in out and "kmalloc-192" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--scenario", "nope"], "unknown SLUB scenario 'nope'"),
    (["--scenario", "alloc-any-partial", "--nodes", "1"], "needs --nodes 2"),
    (["--scenario", "free-frozen", "--cpus", "1"], "needs --cpus 2"),
    (["--scenario", "alloc-fastpath", "--size", "0"], "--size 0"),
    (["--trace", "bundled", "--event", "1"], "is a 5.10 SLAB trace"),
    (["--scenario", "alloc-fastpath", "--freelist-random"], "options of the SLAB model"),
])
def test_errors_are_one_line(capsys, argv, message):
    rc, out, err = run(capsys, *argv)
    assert rc != 0 and not out
    assert message in err and len(err.strip().splitlines()) == 1

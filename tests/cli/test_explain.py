"""kslab explain: scenarios end to end through kslab.cli.main, pinned against golden files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import goldens
from kslab.cli import main
from kslab.scenarios import SCENARIOS

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "explain"


def check_golden(name: str, text: str) -> None:
    goldens.check_golden(GOLDEN, name, text)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(["explain", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_output_is_golden(capsys, name, lang):
    rc, out, err = run(capsys, "--scenario", name, "--lang", lang)
    assert rc == 0, err
    check_golden(f"{name}.{lang}.txt", out)


def test_list(capsys):
    rc, out, _ = run(capsys, "--list")
    assert rc == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == list(SCENARIOS)
    assert names == ["freehit", "flush-shared", "flush-free-block", "alien", "alien-overflow", "alloc-hit",
                     "alloc-refill", "alloc-grow", "grow-shuffle", "not-slab"]
    rc, out, _ = run(capsys, "--list", "--lang", "zh")
    assert "伙伴系统" in out


def test_header_names_the_state(capsys):
    rc, out, _ = run(capsys, "--scenario", "flush-shared")
    assert rc == 0
    head = out.split("\n\n")[0]
    assert "machine: 2 CPUs, 1 node" in head  # the scenario picked an SMP machine
    assert "cache kmalloc-64" in head and "array_cache avail 120/120 (full)" in head
    assert "shared 0/480" in head
    assert "operation: kfree(0x" in head


def test_user_machine_options_win(capsys):
    rc, out, _ = run(capsys, "--scenario", "flush-shared", "--cpus", "4", "--nodes", "2")
    assert rc == 0 and "machine: 4 CPUs, 2 nodes" in out
    assert "cache_flusharray: shared array has room" in out
    rc, out, _ = run(capsys, "--scenario", "freehit", "--size", "300", "--init-on-free")
    assert rc == 0 and "kmalloc-512" in out
    assert "init_on_free: memset(" in out and "object_size 512" in out


def test_json(capsys):
    rc, out, _ = run(capsys, "--scenario", "flush-free-block", "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["scenario"] == "flush-free-block"
    keys = [(s["func"], s["key"]) for s in doc["steps"]]
    assert ("free_block", "trim") in keys and ("kmem_freepages", "free_pages") in keys
    assert doc["state"]["cache"] == "kmalloc-8k" and doc["operation"]["call"] == "kfree"
    assert doc["steps"][0]["depth"] == 0 and doc["steps"][0]["text"].startswith("kfree: kfree(0x")
    assert max(s["depth"] for s in doc["steps"]) == 6  # kfree ... slabs_destroy > slab_destroy > kmem_freepages
    rc, out, _ = run(capsys, "--scenario", "flush-free-block", "--json", "--lang", "zh")
    assert "伙伴系统" in json.loads(out)["steps"][-2]["text"]


def test_full_shows_every_object(capsys):
    _, short, _ = run(capsys, "--scenario", "flush-free-block", "--size", "64", "--cpus", "2")
    _, full, _ = run(capsys, "--scenario", "flush-free-block", "--size", "64", "--cpus", "2", "--full")
    assert "--full shows every object" in short
    assert full.count("slab_put_obj: obj_to_index") == 60


@pytest.mark.parametrize(("argv", "message"), [
    (["--scenario", "flush-shared", "--cpus", "1"], "needs --cpus 2"),
    (["--scenario", "alien", "--nodes", "1"], "needs --nodes 2"),
    (["--scenario", "alien-overflow", "--noaliencache"], "noaliencache"),
    (["--scenario", "flush-shared", "--size", "8192"], "has none"),
    (["--scenario", "nope"], "unknown scenario"),
    (["--scenario", "freehit", "--size", "0"], "--size 0"),
    ([], "give --scenario"),
])
def test_errors_are_one_line(capsys, argv, message):
    rc, out, err = run(capsys, *argv)
    assert rc == 1 and out == ""
    assert err.startswith("kslab: error:") and message in err and err.count("\n") == 1


def test_bad_language_is_an_argparse_error(capsys):
    rc, _, err = run(capsys, "--scenario", "freehit", "--lang", "fr")
    assert rc == 2 and "invalid choice" in err

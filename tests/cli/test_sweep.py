"""kslab sweep: one trace (the bundled real excerpt), several settings, in parallel processes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from kslab.cli import build_parser, main
from kslab.cli.replay import use_bundled_trace
from kslab.cli.sweep import label, parse_vary, render_table, run_setting, settings


def test_vary_values_combine_in_order() -> None:
    varied = parse_vary(["cpus=1,2", "debug=0,1", "mem=2G"])
    assert varied == [("cpus", [1, 2]), ("debug_slab", [False, True]), ("mem", ["2G"])]
    todo = settings(varied)
    assert [label(s) for s in todo] == ["cpus=1 debug=0 mem=2G", "cpus=1 debug=1 mem=2G",
                                        "cpus=2 debug=0 mem=2G", "cpus=2 debug=1 mem=2G"]
    assert settings([]) == [{}]
    assert parse_vary(["numa=0"]) == [("no_numa", [True])]


@pytest.mark.parametrize("spec, message", [
    ("cpus", "expected NAME=V1,V2"),
    ("bogus=1", "cannot vary 'bogus'"),
    ("cpus=one", "invalid literal"),
    ("debug=maybe", "not a yes/no value"),
])
def test_bad_vary_is_named(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vary([spec])


def test_sweep_of_the_bundled_excerpt_in_two_processes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSLAB_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "sweep.json"
    rc = main(["sweep", "--vary", "cpus=1,2", "--jobs", "2", "--cache-parsed", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "cpus=1 " in text and "cpus=2 " in text and "2 setting(s)" in text
    doc = json.loads(out.read_text())
    assert [r["label"] for r in doc["results"]] == ["cpus=1", "cpus=2"]
    for r in doc["results"]:
        assert r["events"] == 30179
        assert r["slabs"] > 0 and r["pages"] >= r["slabs"] and 0 < r["active_objs"] <= r["num_objs"]
        assert r["paths"]["alloc"] > 0 and r["paths"]["free"] > 0
    # the parse cache was written once, before the runs
    assert len(list((tmp_path / "cache").glob("*.kpt"))) == 1

    # a run in this process gives what the worker process gave
    args = build_parser().parse_args(["sweep"])
    use_bundled_trace(args)
    base = {k: v for k, v in vars(args).items() if k not in ("func", "vary", "jobs", "executor", "json")}
    here = run_setting(base, {"cpus": 2})
    there = doc["results"][1]
    for key in ("events", "slabs", "pages", "active_objs", "num_objs", "paths"):
        assert here[key] == there[key], key


def test_a_failing_setting_is_reported_not_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sweep", "--vary", "nodes=1,3", "--jobs", "1"])  # 3 nodes on 1 CPU cannot be built
    text = capsys.readouterr().out
    assert rc == 1
    assert "nodes=3" in text and "errors:" in text and "ConfigError" in text


@pytest.mark.parametrize("executor", ["ray", "dask"])
def test_missing_executor_is_a_clear_error(executor: str, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec(executor) is not None:
        pytest.skip(f"{executor} is installed")
    rc = main(["sweep", "--executor", executor])
    assert rc == 1
    assert f"the '{executor}' module is not installed" in capsys.readouterr().err


def test_table_lists_errors() -> None:
    text = render_table([{"label": "cpus=9", "error": "ConfigError: no"}])
    assert "cpus=9" in text and "ConfigError: no" in text

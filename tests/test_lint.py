"""Lint gates: mypy (pyproject's [tool.mypy], strict on kslab.mm) over src/kslab and ruff over src and tests.

Each tool runs as ``python -m TOOL`` from the repository root and the test fails with its report.
The tools are in the ``test`` extra; without one installed its test is skipped.  mypy keeps its
incremental cache in the repository's ``.mypy_cache`` (gitignored), so a second run takes seconds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)


def _fail_unless_clean(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(f"{what} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}", pytrace=False)


def test_mypy() -> None:
    proc = _run("mypy", "--config-file", "pyproject.toml", "--cache-dir", ".mypy_cache", "src/kslab")
    _fail_unless_clean(proc, "python -m mypy src/kslab")


def test_ruff() -> None:
    proc = _run("ruff", "check", "src", "tests")
    _fail_unless_clean(proc, "python -m ruff check src tests")

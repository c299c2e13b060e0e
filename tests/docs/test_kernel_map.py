"""docs/kernel-map.md is generated from the modules' KERNEL_SYMBOLS by docs/gen_kernel_map.py: it must be
up to date, every listed symbol must be defined in its module under its own name, and (when a Linux 5.10
source tree is at hand) the kernel file the map names must define the symbol."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gen_kernel_map", ROOT / "docs" / "gen_kernel_map.py")
assert _spec is not None and _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gen  # dataclasses look their module up while the file runs
_spec.loader.exec_module(gen)

ENTRIES = gen.collect()


def test_kernel_map_is_up_to_date():
    current = gen.OUT.read_text(encoding="utf-8")
    assert current == gen.render(ENTRIES), "docs/kernel-map.md is out of date: run python docs/gen_kernel_map.py"


def test_every_module_with_kernel_symbols_is_mapped():
    assert len(ENTRIES) > 150
    modules = {e.module for e in ENTRIES}
    assert {"kslab.mm.slab.free", "kslab.mm.slab.alloc", "kslab.mm.slab.node", "kslab.mm.page_alloc"} <= modules
    unmapped = [f"{e.module}: {e.symbol}" for e in ENTRIES if not e.kernel_file and e.symbol not in gen.KSLAB_ONLY]
    assert not unmapped, f"give these a kernel file in docs/gen_kernel_map.py (DEFAULT_FILE or KERNEL_FILE): {unmapped}"
    stale = set(gen.WHERE_INSTEAD) - {e.symbol for e in ENTRIES}
    assert not stale, f"WHERE_INSTEAD names symbols no module lists any more: {sorted(stale)}"


def _symbol_cases() -> list[object]:
    cases = []
    for e in ENTRIES:
        marks = []
        if e.symbol in gen.WHERE_INSTEAD:
            # Known gaps (reported; src/ is not the docs' to change).  strict: once the symbol is defined
            # under its name, this XPASSes and fails, so the entry in WHERE_INSTEAD gets removed.
            marks.append(pytest.mark.xfail(strict=True, reason=f"known gap: {gen.WHERE_INSTEAD[e.symbol]}"))
        cases.append(pytest.param(e, id=f"{e.module.removeprefix('kslab.')}:{e.symbol}", marks=marks))
    return cases


@pytest.mark.parametrize("entry", _symbol_cases())
def test_listed_symbol_is_defined_in_its_module(entry):
    assert entry.where is not None, (f"{entry.module} lists {entry.symbol!r} in KERNEL_SYMBOLS but defines "
                                     "no function, constant or method of that name")


def _kernel_tree() -> Path | None:
    for cand in (os.environ.get("KSLAB_KERNEL_SRC"), Path.home() / ".cache" / "kslab-ref" / "linux-5.10"):
        if cand and (Path(cand) / "mm" / "slab.c").exists():
            return Path(cand)
    return None


@pytest.mark.skipif(_kernel_tree() is None, reason="no Linux 5.10 source (../shared/tools/kernel-source, or "
                                                    "KSLAB_KERNEL_SRC)")
def test_kernel_files():
    """Each symbol the map places in a kernel file is defined there (a function, macro or variable)."""
    tree = _kernel_tree()
    assert tree is not None
    wrong = []
    for e in ENTRIES:
        if not e.kernel_file:
            continue
        path = tree / e.kernel_file
        if not path.exists():  # the reference tree holds mm/, include/linux/ and lib/math/ only
            continue
        name = gen.KERNEL_NAME.get(e.symbol, e.symbol)
        text = path.read_text(encoding="utf-8", errors="replace")
        n = re.escape(name)
        if not (re.search(rf"^[A-Za-z_][^;{{}}()]*?\b{n}\s*\(", text, re.M)        # function definition
                or re.search(rf"^#\s*define\s+{n}\b", text, re.M)                   # macro
                or re.search(rf"^[A-Za-z_][^;(]*\b{n}\s*(\[[^\]]*\])*\s*[^;(]*=", text, re.M)):  # variable
            wrong.append(f"{e.symbol} is not defined in {e.kernel_file}")
    assert not wrong, "\n".join(wrong)

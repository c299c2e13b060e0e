"""Every kernel symbol a SLUB module lists in KERNEL_SYMBOLS_612 is defined there under its kernel name, and
(with a 6.12 source tree in KSLAB_KERNEL_SRC_612) the kernel defines it in mm/ or include/linux/."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from pathlib import Path

import pytest

import kslab.mm.slub

MODULES = [importlib.import_module(f"kslab.mm.slub.{m.name}") for m in pkgutil.iter_modules(kslab.mm.slub.__path__)]
LISTED = [(mod.__name__, sym) for mod in MODULES for sym in getattr(mod, "KERNEL_SYMBOLS_612", ())]
# names that are kslab's own or spelled as the kernel's variables rather than functions
KSLAB_ONLY = {"sysfs_slab_name", "set_min_partial", "kmalloc_info", "kmalloc_size_index"}


def test_modules_list_their_symbols() -> None:
    assert len(LISTED) > 40
    with_list = {m.__name__.rsplit(".", 1)[1] for m in MODULES if hasattr(m, "KERNEL_SYMBOLS_612")}
    assert {"geometry", "slab_common", "kmalloc", "debug", "init"} <= with_list


@pytest.mark.parametrize(("module", "symbol"), LISTED)
def test_listed_symbol_is_defined(module: str, symbol: str) -> None:
    assert hasattr(importlib.import_module(module), symbol), f"{module} lists {symbol} but does not define it"


def _tree() -> Path | None:
    p = os.environ.get("KSLAB_KERNEL_SRC_612")
    return Path(p) if p and (Path(p) / "mm" / "slub.c").exists() else None


@pytest.mark.skipif(_tree() is None, reason="no Linux 6.12 source in KSLAB_KERNEL_SRC_612")
def test_kernel_defines_the_symbols() -> None:
    tree = _tree()
    assert tree is not None
    text = "\n".join(p.read_text(errors="replace") for p in [*tree.glob("mm/*.[ch]"), tree / "include/linux/slab.h",
                                                            tree / "include/linux/kernel.h"] if p.exists())
    missing = [s for _, s in LISTED if s not in KSLAB_ONLY and not re.search(rf"\b{re.escape(s)}\b", text)]
    assert not missing

#!/usr/bin/env python3
"""Generate docs/kernel-map.md: where each Linux 5.10 symbol that kslab mirrors lives, in the kernel and
in kslab.

The list of symbols is the modules' own: every module of ``src/kslab`` that mirrors kernel code declares
``KERNEL_SYMBOLS = ("cache_alloc_refill", ...)``.  For each symbol the generator finds its definition in
that module (a module-level function or constant, or a method of a class of the module, whose
``__name`` Python stores mangled) and says where the kernel defines it.  The kernel side is the table
below: a default file per kslab module, exceptions per symbol, and the symbols that are kslab's own
helpers; the optional test ``tests/docs/test_kernel_map.py::test_kernel_files`` checks it against a
5.10 source tree (``../shared/tools/kernel-source``).

    python docs/gen_kernel_map.py            # (re)write docs/kernel-map.md
    python docs/gen_kernel_map.py --check    # exit 1 if docs/kernel-map.md is not up to date

tests/docs/test_kernel_map.py fails when the file is out of date, or when a listed symbol has no
definition under its name.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
OUT = ROOT / "docs" / "kernel-map.md"

# ---- where the kernel defines them (Linux 5.10) ------------------------------------------------------

#: the kernel file a kslab module mirrors, unless KERNEL_FILE names another one for a symbol
DEFAULT_FILE = {
    "kslab.mm.slab.alloc": "mm/slab.c",
    "kslab.mm.slab.debug": "mm/slab.c",
    "kslab.mm.slab.free": "mm/slab.c",
    "kslab.mm.slab.freelist_random": "mm/slab.c",
    "kslab.mm.slab.geometry": "mm/slab.c",
    "kslab.mm.slab.grow": "mm/slab.c",
    "kslab.mm.slab.kmalloc": "mm/slab_common.c",
    "kslab.mm.slab.node": "mm/slab.c",
    "kslab.mm.slab.reap": "mm/slab.c",
    "kslab.mm.slab.tune": "mm/slab.c",
    "kslab.mm.slab_common": "mm/slab_common.c",
    "kslab.mm.slabinfo": "mm/slab_common.c",
    "kslab.mm.page_alloc": "mm/page_alloc.c",
    "kslab.mm.page_free": "mm/page_alloc.c",
    "kslab.mm.page_fallback": "mm/page_alloc.c",
    "kslab.mm.page_counters": "mm/page_alloc.c",
    "kslab.mm.page_zones": "mm/page_alloc.c",
}

#: symbols the kernel defines elsewhere than the module's default file
KERNEL_FILE = {
    # include/linux/*.h and other headers
    "__alloc_pages_node": "include/linux/gfp.h",
    "ALIGN": "include/linux/kernel.h",
    "fls": "arch/x86/include/asm/bitops.h",
    "kcalloc": "include/linux/slab.h",
    "kfree_bulk": "include/linux/slab.h",
    "kmalloc": "include/linux/slab.h",
    "kmalloc_array": "include/linux/slab.h",
    "kmalloc_index": "include/linux/slab.h",
    "kmalloc_node": "include/linux/slab.h",
    "kmalloc_type": "include/linux/slab.h",
    "kzalloc": "include/linux/slab.h",
    "obj_to_index": "include/linux/slab_def.h",
    "reciprocal_divide": "include/linux/reciprocal_div.h",
    "cache_from_obj": "mm/slab.h",
    "slab_want_init_on_alloc": "mm/slab.h",
    "slab_want_init_on_free": "mm/slab.h",
    "virt_to_cache": "mm/slab.h",
    "prandom_seed_state": "include/linux/prandom.h",
    "get_random_int": "include/linux/random.h",
    "get_random_long": "include/linux/random.h",
    # other .c files
    "prandom_u32_state": "lib/random32.c",
    "freelist_randomize": "mm/slab_common.c",
    "cache_random_seq_create": "mm/slab_common.c",
    "cache_random_seq_destroy": "mm/slab_common.c",
    "reciprocal_value": "lib/math/reciprocal_div.c",
    "mempolicy_slab_node": "mm/mempolicy.c",
    "frag_show_print": "mm/vmstat.c",
    "mod_node_page_state": "mm/vmstat.c",
    "calculate_alignment": "mm/slab_common.c",
    "kmalloc_fix_flags": "mm/slab_common.c",
    "print_slabinfo_header": "mm/slab_common.c",
    "cache_show": "mm/slab_common.c",
    # mm/slab.c, from modules whose default is another file
    "__do_kmalloc": "mm/slab.c",
    "__do_kmalloc_node": "mm/slab.c",
    "__ksize": "mm/slab.c",
    "__kmem_cache_alias": "mm/slab.c",
    "__kmem_cache_create": "mm/slab.c",
    "__kmem_cache_release": "mm/slab.c",
    "get_slabinfo": "mm/slab.c",
    "kmem_cache_init": "mm/slab.c",
    "kmem_cache_init_late": "mm/slab.c",
    "slabinfo_show_stats": "mm/slab.c",
    "slabinfo_write": "mm/slab.c",
}
KERNEL_FILE["kfree@kslab.mm.slab.kmalloc"] = "mm/slab.c"

#: kslab's own helpers that the modules list among their kernel symbols, and what they stand for
KSLAB_ONLY = {
    "check": "the model's invariants (SlabCorruptionError); no kernel counterpart",
    "compute_geometry": "the geometry half of __kmem_cache_create() (mm/slab.c)",
    "kmem_cache_size_of_struct": "sizeof(struct kmem_cache) as kmem_cache_init() computes it (mm/slab.c)",
    "kmalloc_cache_name": "the names of kmalloc_info[] (mm/slab_common.c)",
}

#: kernel names that kslab spells differently
KERNEL_NAME = {
    "slabinfo_show": "slab_show",
}

#: where a listed symbol without a definition of its own name is implemented (shown in the gaps table)
WHERE_INSTEAD: dict[str, str] = {
}


@dataclass(frozen=True)
class Entry:
    symbol: str
    module: str            # kslab.mm.slab.free
    path: str              # src/kslab/mm/slab/free.py
    where: str | None      # qualified name in the module, or None when not defined
    kind: str
    kernel_file: str       # "" for kslab's own helpers
    note: str


def modules_with_symbols() -> list[tuple[str, Path]]:
    """(module name, path) of every module under src/kslab that assigns KERNEL_SYMBOLS at top level."""
    out = []
    for path in sorted((SRC / "kslab").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(target, ast.Name) and target.id == "KERNEL_SYMBOLS":
                rel = path.relative_to(SRC).with_suffix("")
                out.append((".".join(rel.parts), path))
                break
    return out


def resolve(mod: object, symbol: str) -> tuple[str, str] | None:
    """(qualified name, kind) of ``symbol`` in module ``mod``, or None."""
    if symbol in vars(mod):
        obj = vars(mod)[symbol]
        if inspect.isfunction(obj):
            return symbol, "function"
        if inspect.isclass(obj):
            return symbol, "class"
        return symbol, "constant" if isinstance(obj, (int, str)) else "table"
    for cname, cls in vars(mod).items():
        if not inspect.isclass(cls) or cls.__module__ != mod.__name__:
            continue
        stored = f"_{cname.lstrip('_')}{symbol}" if symbol.startswith("__") and not symbol.endswith("__") else symbol
        if stored in vars(cls):
            return f"{cname}.{symbol}", f"method of {cname}"
    return None


def collect() -> list[Entry]:
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    entries = []
    for name, path in modules_with_symbols():
        mod = importlib.import_module(name)
        default = DEFAULT_FILE.get(name, "")
        for symbol in mod.KERNEL_SYMBOLS:
            found = resolve(mod, symbol)
            if symbol in KSLAB_ONLY:
                kfile, note = "", KSLAB_ONLY[symbol]
            else:
                kfile = KERNEL_FILE.get(f"{symbol}@{name}") or KERNEL_FILE.get(symbol) or default
                note = f"kernel name: {KERNEL_NAME[symbol]}" if symbol in KERNEL_NAME else ""
            if found is None:
                note = "; ".join(n for n in (note, "not defined under this name: "
                                             + WHERE_INSTEAD.get(symbol, "see the module")) if n)
            entries.append(Entry(symbol, name, str(path.relative_to(ROOT)), found[0] if found else None,
                                 found[1] if found else "-", kfile, note))
    return entries


def first_doc_line(module: str) -> str:
    doc = inspect.getdoc(sys.modules[module]) or ""
    return " ".join(doc.split("\n\n")[0].split())


def render(entries: list[Entry] | None = None) -> str:
    entries = collect() if entries is None else entries
    modules = list(dict.fromkeys(e.module for e in entries))
    missing = [e for e in entries if e.where is None]
    own = [e for e in entries if not e.kernel_file]
    lines = [
        "# Kernel map: Linux 5.10 symbol → kslab",
        "",
        "<!-- Generated by docs/gen_kernel_map.py from the modules' KERNEL_SYMBOLS; do not edit by hand. -->",
        "",
        f"{len(entries)} symbols listed by {len(modules)} modules. Each module of `src/kslab` that mirrors kernel",
        "code lists the kernel symbols it implements in `KERNEL_SYMBOLS`; this page is generated from those",
        "lists (`python docs/gen_kernel_map.py`), and `tests/docs/test_kernel_map.py` fails when it is out of",
        "date. *Kernel source* is where Linux 5.10 defines the symbol; *kslab* is its definition in the module:",
        "a function, a constant or table, or a method (the page allocator is one class, `PageAllocator`,",
        "whose `__` methods Python stores under mangled names).",
        f"{len(own)} listed names are kslab helpers without a kernel counterpart, and {len(missing)} have no",
        "definition of their own name (see the last table).",
        "",
        "## By kslab module",
    ]
    for module in modules:
        rows = [e for e in entries if e.module == module]
        lines += ["", f"### `{module}` ([{rows[0].path}](../{rows[0].path}))", ""]
        summary = first_doc_line(module)
        if summary:
            lines += [summary, ""]
        lines += ["| kernel symbol | kernel source | kslab | kind | note |", "|---|---|---|---|---|"]
        for e in rows:
            where = f"`{e.where}`" if e.where else "—"
            kfile = f"`{e.kernel_file}`" if e.kernel_file else "(kslab)"
            lines.append(f"| `{e.symbol}` | {kfile} | {where} | {e.kind} | {e.note} |")
    lines += ["", "## By kernel file", "",
              "| kernel source | symbols (kslab module) |", "|---|---|"]
    by_file: dict[str, list[Entry]] = {}
    for e in entries:
        if e.kernel_file:
            by_file.setdefault(e.kernel_file, []).append(e)
    for kfile in sorted(by_file):
        items = ", ".join(f"`{e.symbol}` ({e.module.removeprefix('kslab.')})"
                          for e in sorted(by_file[kfile], key=lambda e: e.symbol.lstrip("_").lower()))
        lines.append(f"| `{kfile}` | {items} |")
    lines += ["", "## Listed, but not defined under that name", ""]
    if missing:
        lines += ["| kernel symbol | module | where it is implemented |", "|---|---|---|"]
        lines += [f"| `{e.symbol}` | `{e.module}` | {WHERE_INSTEAD.get(e.symbol, 'see the module')} |"
                  for e in missing]
    else:
        lines.append("None: every listed symbol has a definition of its own name.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate docs/kernel-map.md from the modules' KERNEL_SYMBOLS.")
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/kernel-map.md is not up to date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run python docs/gen_kernel_map.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
